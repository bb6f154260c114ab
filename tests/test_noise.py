"""Noisy transformers (MODEL.md §10): the Stratonovich SDE on the sphere against exact
results. Seeds are fixed, so the statistical checks are deterministic; each bound is
stated in standard errors of the sample mean."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.special

import particles
from particles._problem import brownian_keys


@pytest.mark.parametrize(
    "d, D",
    [(2, 0.5), pytest.param(3, 0.25, marks=pytest.mark.slow), pytest.param(8, 0.1, marks=pytest.mark.slow)],
)
def test_lone_token_is_brownian_motion_on_the_sphere(d, D):
    """n = 1: E⟨θ(t), θ(0)⟩ = e^{−D(d−1)t}, within 4 standard errors over 2000 paths."""
    paths, ts = 2000, np.array([0.5, 1.0, 2.0])
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


@pytest.mark.slow
def test_noisy_kuramoto_below_and_above_the_threshold():
    """d = 2, β = 0: for D < 1/2 the order parameter solves r = I₁(r/D)/I₀(r/D) (D = 1/4:
    0.8315) up to finite-n effects of order 1/√n; for D > 1/2 the state is incoherent."""
    D = 0.25
    r_mf = 0.8315
    assert abs(r_mf - scipy.special.i1(r_mf / D) / scipy.special.i0(r_mf / D)) < 1e-3
    assert abs(_order_parameter(D) - r_mf) < 2 / np.sqrt(256)
    assert _order_parameter(0.75) < 3 / np.sqrt(256)


def mean_field_order_parameter(d, D):
    """The root r > 0 of r = I_{d/2}(r/D)/I_{d/2−1}(r/D) (MODEL.md §10: the von
    Mises-Fisher stationary states at β = 0), which exists for D < 1/d."""
    f = lambda r: r - scipy.special.ive(d / 2, r / D) / scipy.special.ive(d / 2 - 1, r / D)
    return scipy.optimize.brentq(f, 1e-9, 1.0, xtol=1e-14)


def _stationary_r(d, D, n=256, seeds=4):
    """r = |mean_i θ_i| at 16 saves over t in [15, 30] per seed, β = 0, h = 0.1."""
    x0 = particles.init.uniform_sphere(0, n, d, batch=seeds)
    ts = np.linspace(15.0, 30.0, 16)
    traj = particles.simulate(x0, "post", beta=0.0, t1=30.0, ts=ts, noise=D, key=2, step_size=0.1)
    return np.linalg.norm(np.asarray(traj.theta).mean(-2), axis=-1)


@pytest.mark.parametrize(
    "d, below, above", [(3, 0.2, 0.5), pytest.param(8, 0.08, 0.2, marks=pytest.mark.slow)]
)
def test_threshold_at_one_over_d_with_the_mean_field_order_parameter(d, below, above):
    """β = 0 in any d (MODEL.md §10): incoherence loses stability at D = 1/d.

    Below (D < 1/d) r settles at the mean-field root r = I_{d/2}(r/D)/I_{d/2−1}(r/D)
    (d = 3, D = 0.2: 0.7259; measured 0.736), within 0.5/√n = 0.031: finite-n
    fluctuations of r are O(1/√n) and its bias O(1/n). Above, the tokens stay
    incoherent: linearising, m = mean_i θ_i is an Ornstein-Uhlenbeck process with rate
    (d − 1)(D − 1/d) and noise 2D(d − 1)/(dn) per component, so E r² = 1/(n(1 − 1/(dD)))
    (d = 3, D = 0.5: rms 0.108; independent tokens would give 1/√n = 0.0625). The rms
    over 4 seeds × 16 saves (≈ 20 independent samples, relative error ≈ 9%) must be
    within 30% of it."""
    n = 256
    r_mf = mean_field_order_parameter(d, below)
    assert abs(_stationary_r(d, below).mean() - r_mf) < 0.5 / np.sqrt(n)
    rms = np.sqrt(np.mean(_stationary_r(d, above) ** 2))
    expected = np.sqrt(1 / (n * (1 - 1 / (d * above))))
    assert abs(rms / expected - 1) < 0.3, (rms, expected)


def test_threshold_moves_with_beta_to_the_linear_instability_of_the_uniform_state():
    """β > 0, post (softmax), d = 2: linearised at the uniform measure the softmax drift is
    the USA one divided by Z = ∫ e^{β⟨θ,y⟩} dσ(y), so by Funk-Hecke the first harmonic
    grows at rate (d − 1)(D_1(β) − D), D_1(β) = I_{d/2}(β)/(β I_{d/2−1}(β)) (β = 2:
    0.3489). At D = 1.3 D_1 = 0.4535 < 1/2, ordered at β = 0 (mean field r = 0.42), the
    tokens are incoherent with E r² = 1/(n(1 − D_1/D)) (rms 0.130; measured 0.113, within
    30% as in the β = 0 test); at D = 0.7 D_1 they order (r = 0.57 measured; > 0.4 asserted,
    10 times the incoherent rms at n = 256 ≈ 1/16 · 0.7)."""
    d, beta, n = 2, 2.0, 256
    d1 = scipy.special.ive(d / 2, beta) / (beta * scipy.special.ive(d / 2 - 1, beta))
    assert mean_field_order_parameter(d, 1.3 * d1) > 0.3  # β = 0 would be ordered there
    x0 = particles.init.uniform_sphere(0, n, d, batch=4)
    ts = np.linspace(15.0, 30.0, 16)
    r = lambda D: np.linalg.norm(
        np.asarray(
            particles.simulate(x0, "post", beta=beta, t1=30.0, ts=ts, noise=D, key=2, step_size=0.1).theta
        ).mean(-2),
        axis=-1,
    )
    rms = np.sqrt(np.mean(r(1.3 * d1) ** 2))
    assert abs(rms / np.sqrt(1 / (n * (1 - 1 / 1.3))) - 1) < 0.3, rms
    assert r(0.7 * d1).mean() > 0.4


@pytest.mark.slow
def test_strong_order_one_half_and_weak_order_one_with_constant_steps():
    """Heun on the lone token (n = 1, d = 3, D = 0.5, T = 1; 8000 paths): steps h = 2^−k,
    k = 1..4, against h_ref = 2^−6 on the same Brownian paths (one VirtualBrownianTree,
    exact at the dyadic step times). Strong error sqrt(E|θ_h(T) − θ_ref(T)|²) and weak
    error E⟨θ_h(T) − θ_ref(T), θ(0)⟩, fitted against h − h_ref: slopes 0.44 (strong
    order 1/2 for the non-commutative noise P_θ dW; bootstrap std 0.008) and 1.11 (weak
    order 1; bootstrap std 0.10), asserted within [0.35, 0.6] and [0.75, 1.5]. The
    reference itself has E⟨θ(T), θ(0)⟩ = e^{−D(d−1)T} within 4 standard errors."""
    d, D, T, paths = 3, 0.5, 1.0, 8000
    x0 = np.tile(np.eye(d)[None, :1], (paths, 1, 1))
    end = lambda h: np.asarray(
        particles.simulate(x0, "post", beta=1.0, t1=T, ts=[T], noise=D, key=5, step_size=h).theta[:, -1, 0]
    )
    ref, ks = end(2.0**-6), np.arange(1, 5)
    ends = [end(2.0**-k) for k in ks]
    strong = [np.sqrt(np.mean(np.sum((e - ref) ** 2, axis=-1))) for e in ends]
    weak = [np.mean(e[:, 0] - ref[:, 0]) for e in ends]
    log_h = np.log(2.0**-ks - 2.0**-6)
    strong_order, weak_order = np.polyfit(log_h, np.log(strong), 1)[0], np.polyfit(log_h, np.log(weak), 1)[0]
    assert 0.35 < strong_order < 0.6, strong
    assert 0.75 < weak_order < 1.5, weak
    assert abs(ref[:, 0].mean() - np.exp(-D * (d - 1) * T)) < 4 * ref[:, 0].std() / np.sqrt(paths)


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


@pytest.mark.slow
def test_keys_per_trajectory_make_each_path_independent_of_its_batch():
    """key= one key or integer seed per trajectory: trajectory b has the paths of
    key[b] alone, bit for bit, whatever else is in the batch (what makes sweeps over
    noise independent of their chunking)."""
    x0 = particles.init.uniform_sphere(0, 5, 3, batch=4)
    kw = dict(beta=1.0, t1=1.0, ts=[0.5, 1.0], step_size=0.05, noise=0.2)
    whole = particles.simulate(x0, "post", key=[10, 11, 12, 13], **kw).theta
    np.testing.assert_array_equal(particles.simulate(x0[2], "post", key=12, **kw).theta, whole[2])
    keys = jax.vmap(jax.random.key)(jnp.arange(10, 14))  # typed keys: the same as their seeds
    np.testing.assert_array_equal(
        jax.random.key_data(brownian_keys(keys, (4,))),
        jax.random.key_data(brownian_keys([10, 11, 12, 13], (4,))),
    )
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
