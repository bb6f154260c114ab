"""Noisy transformers (MODEL.md §10): the Stratonovich SDE on the sphere against exact
results. Seeds are fixed, so the statistical checks are deterministic; each bound is
stated in standard errors of the sample mean."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

import particles


@pytest.mark.parametrize("d, D", [(2, 0.5), (3, 0.25), (8, 0.1)])
def test_lone_token_is_brownian_motion_on_the_sphere(d, D):
    """n = 1: E⟨θ(t), θ(0)⟩ = e^{−D(d−1)t}, within 4 standard errors over 4000 paths."""
    paths, ts = 4000, np.array([0.5, 1.0, 2.0])
    x0 = np.tile(np.eye(d)[None, :1], (paths, 1, 1))
    traj = particles.simulate(x0, "post", beta=1.0, t1=2.0, ts=ts, noise=D, key=1, step_size=0.01)
    cos = np.asarray(traj.theta[:, :, 0, 0])  # ⟨θ(t), e_1⟩ per path and save
    exact = np.exp(-D * (d - 1) * ts)
    stderr = cos.std(0) / np.sqrt(paths)
    assert np.all(np.abs(cos.mean(0) - exact) < 4 * stderr), (cos.mean(0), exact, stderr)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(traj.theta), axis=-1), 1, atol=1e-12)


def _order_parameter(D, n=256, seeds=4, t1=40.0):
    """|mean_i θ_i| averaged over t in [25, 40] and seeds, d = 2, β = 0 (noisy Kuramoto)."""
    x0 = particles.init.uniform_sphere(0, n, 2, batch=seeds)
    ts = np.linspace(25.0, t1, 16)
    traj = particles.simulate(x0, "post", beta=0.0, t1=t1, ts=ts, noise=D, key=2, step_size=0.05)
    return float(np.linalg.norm(np.asarray(traj.theta).mean(-2), axis=-1).mean())


def test_noisy_kuramoto_below_and_above_the_threshold():
    """d = 2, β = 0: for D < 1/2 the order parameter solves r = I₁(r/D)/I₀(r/D) (D = 1/4:
    0.8315) up to finite-n effects of order 1/√n; for D > 1/2 the state is incoherent."""
    D = 0.25
    r_mf = 0.8315
    assert abs(r_mf - scipy.special.i1(r_mf / D) / scipy.special.i0(r_mf / D)) < 1e-3
    assert abs(_order_parameter(D) - r_mf) < 2 / np.sqrt(256)
    assert _order_parameter(0.75) < 3 / np.sqrt(256)


def test_noise_zero_is_the_ode_and_the_same_key_gives_the_same_paths():
    x0 = particles.init.uniform_sphere(3, 5, 4, batch=2)
    kw = dict(beta=2.0, t1=1.0, ts=[0.5, 1.0], step_size=0.05, solver=diffrax.Heun())
    ode = particles.simulate(x0, "pre", **kw)
    np.testing.assert_array_equal(particles.simulate(x0, "pre", noise=0.0, key=7, **kw).theta, ode.theta)
    a = particles.simulate(x0, "pre", noise=0.1, key=7, **kw)
    b = particles.simulate(x0, "pre", noise=0.1, key=7, **kw)
    c = particles.simulate(x0, "pre", noise=0.1, key=8, **kw)
    np.testing.assert_array_equal(a.theta, b.theta)
    assert float(np.max(np.abs(a.theta - c.theta))) > 1e-3
    assert float(np.max(np.abs(a.r - ode.r))) > 0  # the radii follow their ODE, driven by noisy directions


def test_keys_per_trajectory_make_each_path_independent_of_its_batch():
    """key= one key or integer seed per trajectory: trajectory b has the paths of
    key[b] alone, bit for bit, whatever else is in the batch (what makes sweeps over
    noise independent of their chunking)."""
    x0 = particles.init.uniform_sphere(0, 5, 3, batch=4)
    kw = dict(beta=1.0, t1=1.0, ts=[0.5, 1.0], step_size=0.05, noise=0.2)
    whole = particles.simulate(x0, "post", key=[10, 11, 12, 13], **kw).theta
    np.testing.assert_array_equal(particles.simulate(x0[2], "post", key=12, **kw).theta, whole[2])
    keys = jax.vmap(jax.random.key)(jnp.arange(10, 14))
    np.testing.assert_array_equal(particles.simulate(x0, "post", key=keys, **kw).theta, whole)
    with pytest.raises(ValueError, match=r"key has shape \(2,\); give one key, or one per trajectory"):
        particles.simulate(x0, "post", key=[1, 2], **kw)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(noise=-0.1, key=0, step_size=0.1), "noise=-0.1 must be non-negative"),
        (dict(noise=float("nan"), key=0, step_size=0.1), "noise=nan must be finite"),
        (dict(noise=0.1, step_size=0.1), "needs key="),
        (dict(noise=0.1, key=0), "needs constant steps"),
        (dict(noise=0.1, key=0, step_size=0.1, solver=diffrax.Tsit5()), "Stratonovich SDE solver"),
        (dict(noise=0.1, key=0, layers=4), "not to layers=L"),
    ],
)
def test_bad_noise_arguments_get_one_line_errors(kw, match):
    x0 = particles.init.uniform_sphere(0, 3, 3)
    with pytest.raises(ValueError, match=match) as info:
        particles.simulate(x0, "post", beta=1.0, t1=1.0, **kw)
    assert "\n" not in str(info.value)


def test_cli_noise(capsys):
    from particles.cli import main

    argv = [
        "simulate",
        "--n",
        "6",
        "--d",
        "3",
        "--t1",
        "1",
        "--noise",
        "0.2",
        "--step-size",
        "0.05",
        "--seed",
        "3",
    ]
    assert main(argv) == 0
    assert "final mean cosine" in capsys.readouterr().out
    assert main(["simulate", "--n", "6", "--d", "3", "--t1", "1", "--noise", "0.2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "needs constant steps" in err and "\n" not in err
