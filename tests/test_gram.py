"""The Gram solve path (particles._gram): the field is the image of the token field, the
solve agrees with the token solve, and the observables with particles.analysis."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import particles
from particles import analysis, schemes
from particles._gram import gram_velocity, solve_gram
from particles.analysis import GRAM_OBSERVABLES, gram_collapse_time, gram_observables


def gram(theta):
    return jnp.einsum("...id,...jd->...ij", theta, theta, precision=jax.lax.Precision.HIGHEST)


class Custom(schemes.AbstractSpeedScheme):
    """A user's scheme: s = 1 + r² + |A| t, dr/dt = r a / (1 + |A|)."""

    sphere_bound = False

    def speed(self, t, r, a, A_norm):
        return 1 + r * r + A_norm * t

    def radial_rate(self, t, r, a, A_norm):
        return r * a / (1 + A_norm)


SCHEMES = [
    ("post", schemes.Post(), 0.5),
    ("pre", schemes.Pre(), 0.5),
    ("peri", schemes.Peri(), 0.5),
    ("mix before tau", schemes.Mix(tau=1.0), 0.5),
    ("mix after tau", schemes.Mix(tau=1.0), 2.0),
    ("ngpt", schemes.NGPT(alpha=1.5), 0.5),
    ("sqrt", schemes.Sqrt(), 2.0),
    ("none", schemes.NoNorm(), 0.5),
    ("spannorm", schemes.SpanNorm(), 0.5),
    ("custom", Custom(), 0.7),
]


@pytest.mark.parametrize("kind", ["softmax", "usa"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("label, scheme, t", SCHEMES, ids=[s[0] for s in SCHEMES])
def test_gram_velocity_is_the_image_of_the_token_velocity(label, scheme, t, kind, causal, getkey):
    theta = particles.init.uniform_sphere(getkey(), 7, 5, batch=2)
    r = jax.random.uniform(getkey(), (2, 7), jnp.float64, 0.5, 2.0)
    beta = jnp.asarray([1.7, -0.8])
    att = particles.Attention(beta=beta, Q=None, K=None, V=None, kind=kind, causal=causal)
    t = jnp.asarray(t)
    dtheta, dr_ref = scheme.velocity(t, theta, r, att)
    dG_ref = jnp.einsum("...id,...jd->...ij", dtheta, theta) + jnp.einsum("...id,...jd->...ij", theta, dtheta)
    dG, dr = gram_velocity(t, gram(theta), r, scheme, beta, kind, causal)
    scale = max(1.0, float(jnp.max(jnp.abs(dG_ref))))
    np.testing.assert_allclose(dG, dG_ref, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(dr, dr_ref, rtol=0, atol=1e-12 * scale)


def test_gram_velocity_refuses_an_ambient_scheme():
    class Ambient(schemes.AbstractAmbientScheme):
        def ambient_velocity(self, t, x, A):
            return A

    G = jnp.eye(3)
    with pytest.raises(ValueError, match="speed scheme"):
        gram_velocity(0.0, G, jnp.ones(3), Ambient(), 1.0)


def _start(key, n, d, batch):
    x0 = particles.init.uniform_sphere(key, n, d, batch=batch) * jnp.linspace(0.5, 2.0, n)[:, None]
    theta = x0 / jnp.linalg.norm(x0, axis=-1, keepdims=True)
    return x0, np.asarray(gram(theta)), np.asarray(jnp.linalg.norm(x0, axis=-1))


@pytest.mark.parametrize("scheme", ["post", "pre"])
def test_constant_steps_match_the_token_solve(scheme, getkey):
    """Tsit5 on (C, r) and Tsit5 on the tokens are two fifth-order discretisations of
    one flow: same steps, answers within 1e-12 at h = 1/40, the gap shrinking at ~h^5."""
    x0, G0, r0 = _start(getkey(), 8, 16, 3)
    ts = np.linspace(0, 2, 5)
    gaps = []
    for h in (0.1, 0.05, 0.025):
        traj = particles.simulate(x0, scheme, beta=4.0, t1=2.0, ts=ts, step_size=h, dtype="float64")
        sol = solve_gram(G0, r0, scheme, beta=4.0, t1=2.0, ts=ts, step_size=h)
        G = np.moveaxis(np.asarray(sol.G), 0, -3)
        r = np.moveaxis(np.asarray(sol.r), 0, -2)
        assert sol.stats["num_steps"] == traj.stats["num_steps"]
        gaps.append(max(np.max(np.abs(G - gram(traj.theta))), np.max(np.abs(r - traj.r))))
    assert gaps[-1] < 1e-12, gaps
    assert gaps[0] / gaps[1] > 16 and gaps[1] / gaps[2] > 16, gaps  # order ≥ 4 visible


def test_adaptive_solve_meets_the_tolerance():
    """Against a tight token reference: within the tolerance, or as accurate as the token
    solve at the same tolerance (up to 1.5x). (Radii: the constant-step tests; n = 32,
    d = 128 and pre/peri: benchmarks/gram_accuracy.py.)"""
    x0 = particles.init.uniform_sphere(1, 8, 16, batch=4, dtype=np.float64)
    ts = np.linspace(0, 30, 31)
    kw = dict(beta=1.0, t1=30.0, ts=ts)
    ref = particles.simulate(x0, "post", rtol=1e-11, atol=1e-11, **kw)
    tok = particles.simulate(x0, "post", rtol=1e-6, atol=1e-6, **kw)
    sol = solve_gram(np.asarray(gram(x0)), None, "post", rtol=1e-6, atol=1e-6, **kw)
    assert sol.ok and np.all(sol.status == 0)
    G_ref = np.asarray(gram(ref.theta))
    G = np.moveaxis(np.asarray(sol.G), 0, -3)
    r = np.moveaxis(np.asarray(sol.r), 0, -2)
    error = np.max(np.abs(G - G_ref), axis=(0, 2, 3))  # per save
    token_error = np.max(np.abs(gram(tok.theta) - G_ref))
    assert np.max(error) < max(1e-6, 1.5 * token_error), (np.max(error), token_error)
    assert np.all(r == 1)
    # collapsed by t = 10 (β = 1): 1 − G_ij ~ e^{−2t} falls far below atol, and the chord
    # distances keep it; integrating G itself, the error sat at ~atol (1e-6) from then on
    late = ts >= 10
    assert np.min(G_ref[:, late]) > 1 - 1e-6
    assert np.max(error[late]) < 1e-10, np.max(error[late])


def test_a_long_run_stays_a_gram_matrix_of_unit_vectors_in_R_d(getkey):
    """Unit diagonal exactly, symmetric to rounding, positive semidefinite of rank d
    (n = 8 tokens in d = 4) to the tolerance, over T = 300 (the program of
    test_adaptive_solve_meets_the_tolerance, compiled once)."""
    x0 = particles.init.uniform_sphere(getkey(), 8, 4, batch=4)
    sol = solve_gram(
        np.asarray(gram(x0)),
        None,
        "post",
        beta=1.0,
        t1=300.0,
        ts=np.linspace(0, 300, 31),
        rtol=1e-6,
        atol=1e-6,
    )
    G = np.asarray(sol.G)
    assert np.max(np.abs(np.diagonal(G, axis1=-2, axis2=-1) - 1)) == 0
    assert np.max(np.abs(G - np.swapaxes(G, -1, -2))) < 1e-15
    lam = np.linalg.eigvalsh(G)  # ascending: the first n - d vanish
    assert np.max(np.abs(lam[..., :4])) < 1e-6, np.max(np.abs(lam[..., :4]))
    assert np.all(np.isfinite(G))


def test_stop_level_ends_the_solve_at_the_collapse():
    """The event stops where min_{i≠j} G_ij reaches the level (root found on the dense
    output), after the saves below it; the collapse time read off the saves is t_stop."""
    x0 = particles.init.uniform_sphere(3, 6, 8, batch=3, dtype=np.float64)
    level = 1 - 1e-3
    sol = solve_gram(
        np.asarray(gram(x0)), None, "post", beta=1.0, t1=30.0, ts=np.linspace(0, 30, 31), stop_level=level
    )
    t_stop = sol.stats["t_stop"]
    assert sol.stats["collapsed"] and 0 < t_stop < 30 and sol.ts[-1] == t_stop
    min_cos = np.min(np.where(np.eye(6, dtype=bool), np.inf, np.asarray(sol.G)), axis=(-1, -2))  # (T, batch)
    assert abs(np.min(min_cos[-1]) - level) < 1e-9
    assert np.all(np.min(min_cos[:-1], axis=1) < level)
    np.testing.assert_allclose(sol.ts[:-1], np.arange(len(sol.ts) - 1), atol=0)
    collapse = gram_collapse_time(sol.ts, sol.G, 1e-3, t_stop, time_axis=0)
    assert np.all(collapse <= t_stop + 1e-12) and np.isclose(np.max(collapse), t_stop, atol=1e-9)


def test_coincident_tokens_that_would_separate_are_refused():
    with pytest.raises(ValueError, match="coincident"):
        solve_gram(np.ones((3, 3)), np.array([1.0, 2.0, 3.0]), "pre", beta=1.0, t1=1.0)
    with pytest.raises(ValueError, match="coincident"):
        solve_gram(np.ones((3, 3)), None, "post", beta=1.0, t1=1.0, causal=True)


def unit(a):
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def test_observables_match_analysis():
    n, d = 9, 5  # n > d: G has n − d zero eigenvalues
    rng = np.random.default_rng(0)  # inputs in numpy: no small programs to compile
    theta = unit(rng.normal(size=(3, n, d)))
    theta[0, 1] = theta[0, 0]  # two tokens together: a zero singular value beyond the n − d
    r = rng.uniform(0.5, 2.0, (3, n))
    beta, delta = np.array([1.0, 2.0, 3.0]), 0.5
    G = np.einsum("...id,...jd->...ij", theta, theta)
    # each side one compiled program (op by op, the while loops and decompositions took 10 s)
    ours = jax.jit(lambda G: gram_observables(tuple(GRAM_OBSERVABLES), G, r, beta, delta))(G)
    ref = jax.jit(lambda th: analysis.observe(tuple(analysis.OBSERVABLES), th, r, beta, delta))(theta)
    assert set(ours) == set(ref)
    for name in ref:
        np.testing.assert_allclose(ours[name], ref[name], rtol=1e-12, atol=1e-12, err_msg=name)
    assert 1 < ref["cluster_count"][0] < n and ref["pair_density"][0] > 0

    # collapse time: tokens contracting onto a centre, θ_i(t) ∝ c + e^{−t} ε_i
    ts = np.linspace(0, 10, 41)
    c = unit(rng.normal(size=(3, 1, 1, d)))
    theta = unit(c + np.exp(-ts)[:, None, None] * 0.5 * rng.normal(size=(3, 1, n, d)))
    traj = lambda th: particles.Trajectory(ts=ts, theta=th, r=jnp.ones(th.shape[:-1]), stats={}, config={})
    expected = jax.jit(lambda th: analysis.collapse_time(traj(th), 1e-3))(theta)
    assert np.all(np.isfinite(expected))
    G = np.einsum("...id,...jd->...ij", theta, theta)
    np.testing.assert_allclose(jax.jit(gram_collapse_time)(ts, G), expected, rtol=1e-12)
