import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import particles
from particles import analysis as A


def orthonormal(n=4, d=5):
    return jnp.eye(n, d, dtype=jnp.float64)


def single_point(n=5, d=3):
    return jnp.tile(jnp.asarray([0.6, 0.0, 0.8]), (n, 1))[:, :d]


def antipodal(m=3, d=3):
    e = jnp.eye(1, d, dtype=jnp.float64)[0]
    return jnp.concatenate([jnp.tile(e, (m, 1)), jnp.tile(-e, (m, 1))])


def k_clusters(k=3, per=2, d=6, angle=0.01):
    """k clusters around the axes e_0..e_{k-1}; token s of cluster c is tilted by
    s·angle towards its own spare axis e_{k+c} (needs d >= 2k)."""
    tokens = []
    for c in range(k):
        for s in range(per):
            v = np.zeros(d)
            v[c] = math.cos(angle * s)
            v[k + c] = math.sin(angle * s)
            tokens.append(v)
    return jnp.asarray(np.array(tokens))


def chain(m=5, a=0.04, extra=False, d=3):
    """Tokens at angles 0, a, 2a, ... on a great circle: neighbours within δ=1e-3
    (cos a ≥ 0.999), next-neighbours not (cos 2a < 0.999); optionally one far token."""
    angles = np.arange(m) * a
    pts = np.stack([np.cos(angles), np.sin(angles), np.zeros(m)], -1)
    if extra:
        pts = np.vstack([pts, [0.0, 0.0, 1.0]])
    return jnp.asarray(np.pad(pts, ((0, 0), (0, d - 3))))


def test_cosines_and_pair_density_on_hand_made_configurations():
    cases = [
        (orthonormal(), 0.0, 0.0, 0.0),
        (single_point(), 1.0, 1.0, 1.0),
        (antipodal(), (12 - 18) / 30, -1.0, 12 / 30),
        (k_clusters(), (3 * 2 * math.cos(0.01)) / 30, 0.0, 6 / 30),
        (single_point(n=1), 1.0, 1.0, 1.0),
    ]
    for theta, mean, minimum, density in cases:
        np.testing.assert_allclose(A.mean_cosine(theta), mean, atol=1e-12)
        np.testing.assert_allclose(A.min_cosine(theta), minimum, atol=1e-12)
        np.testing.assert_allclose(A.pair_density(theta, 1e-3), density, atol=1e-12)


def test_cluster_count_components_not_thresholds():
    assert int(A.cluster_count(orthonormal(), 1e-3)) == 4
    assert int(A.cluster_count(single_point(), 1e-3)) == 1
    assert int(A.cluster_count(antipodal(), 1e-3)) == 2
    assert int(A.cluster_count(k_clusters(), 1e-3)) == 3
    # a chain is one component although its ends are far apart
    assert float(A.pair_density(chain(), 1e-3)) < 0.5
    assert int(A.cluster_count(chain(), 1e-3)) == 1
    assert int(A.cluster_count(chain(extra=True), 1e-3)) == 2
    # chain labels spread from the far end too (token order reversed)
    assert int(A.cluster_count(chain()[::-1], 1e-3)) == 1


def test_observables_batch_and_jit():
    batch = jnp.stack([chain(extra=True, d=6), k_clusters()])
    counts = jax.jit(A.cluster_count, static_argnums=1)(batch, 1e-3)
    np.testing.assert_array_equal(counts, [2, 3])
    nested = jnp.stack([batch, batch[::-1]])  # (2, 2, n, d)
    np.testing.assert_array_equal(jax.jit(A.cluster_count)(nested, 1e-3), [[2, 3], [3, 2]])
    for f in (A.mean_cosine, A.min_cosine, A.pair_density, A.effective_rank):
        got = jax.jit(f)(nested)
        assert got.shape == (2, 2)
        np.testing.assert_allclose(got[0, 0], f(batch[0]), rtol=1e-12)


def test_energy_known_values_and_beta_broadcast():
    n, beta = 4, 1.5
    np.testing.assert_allclose(
        A.energy(orthonormal(n), beta), (math.exp(beta) + n - 1) / (2 * beta * n), rtol=1e-12
    )
    np.testing.assert_allclose(A.energy(single_point(), beta), math.exp(beta) / (2 * beta), rtol=1e-12)
    both = jnp.stack([orthonormal(n, 3 + 2)[:, :5], orthonormal(n, 5)])
    betas = jnp.asarray([1.0, 2.0])
    expected = [(math.exp(b) + n - 1) / (2 * b * n) for b in (1.0, 2.0)]
    np.testing.assert_allclose(A.energy(both, betas), expected, rtol=1e-12)
    np.testing.assert_allclose(jax.jit(A.energy)(both, betas), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="nonzero beta"):
        A.energy(orthonormal(), 0.0)


def test_energy_never_decreases_along_post_flow():
    # same shapes and options as the collapse-time test below: one compile for both
    x0 = particles.init.uniform_sphere(0, 4, 4, dtype=jnp.float64)
    traj = particles.simulate(
        x0, "post", beta=1.0, t1=6.0, ts=np.linspace(0, 6, 1201), rtol=1e-10, atol=1e-12
    )
    e = np.asarray(A.energy(traj.theta, 1.0))
    assert np.all(np.diff(e) >= -1e-9) and e[-1] > e[0] + 1e-3


def test_effective_rank():
    np.testing.assert_allclose(A.effective_rank(orthonormal(4, 6)), 4.0, rtol=1e-10)
    np.testing.assert_allclose(A.effective_rank(single_point()), 1.0, rtol=1e-10)
    np.testing.assert_allclose(A.effective_rank(antipodal()), 1.0, rtol=1e-10)
    # two directions with singular values 2 and 1: p = (2/3, 1/3)
    theta = jnp.asarray([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    p = np.array([2, math.sqrt(2)]) / (2 + math.sqrt(2))
    np.testing.assert_allclose(A.effective_rank(theta), math.exp(-np.sum(p * np.log(p))), rtol=1e-10)


def test_radius_stats():
    r = jnp.asarray([[1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0]])
    s = A.radius_stats(r)
    np.testing.assert_allclose(s.mean, [2.5, 2.0])
    np.testing.assert_allclose(s.std, [math.sqrt(1.25), 0.0])
    np.testing.assert_allclose(s.min, [1.0, 2.0])
    np.testing.assert_allclose(s.max, [4.0, 2.0])


def test_crossing_time_interpolates():
    ts = jnp.linspace(0.0, 1.0, 11)
    y = jnp.stack([ts, 0.5 + 0 * ts, ts - 2, jnp.where(ts < 0.55, ts, jnp.nan)])
    got = A.crossing_time(ts, y, 0.35)
    np.testing.assert_allclose(got, [0.35, 0.0, np.inf, 0.35], rtol=1e-12)
    assert float(A.crossing_time(ts, ts, 0.95)) == pytest.approx(0.95, rel=1e-12)


@pytest.mark.slow
def test_collapse_time_and_stop_at_collapse_match_reduced_model():
    """Equiangular post run: the time ρ reaches 1 − δ from the reduced model (MODEL.md §3),
    solved densely, is where collapse_time interpolates and where the event stops."""
    n, beta, delta = 4, 1.0, 1e-3
    # the same reduced solve and stopped simulate shapes as tests/test_sweep.py: shared compiles
    ts_dense = np.linspace(0.0, 6.0, 6001)
    rho, _ = particles.equiangular.solve("post", n, np.asarray([0.5, beta, 3.0]), 0.0, ts_dense)
    t_ref = float(A.crossing_time(ts_dense, rho, 1 - delta)[1])
    assert 3.0 < t_ref < 6.0

    x0 = particles.init.equiangular(n, n, 0.0, dtype=jnp.float64)
    kw = dict(beta=beta, t1=6.0, rtol=1e-10, atol=1e-12)
    traj = particles.simulate(x0, "post", ts=np.linspace(0, 6, 1201), **kw)
    assert float(A.collapse_time(traj, delta)) == pytest.approx(t_ref, abs=1e-6)
    assert float(A.collapse_time(traj, 1e-14)) == np.inf

    pair = jnp.stack([x0, x0])
    stopped = particles.simulate(pair, "post", ts=np.linspace(0, 6, 13), stop_at_collapse=delta, **kw)
    assert stopped.stats["collapsed"]
    assert stopped.stats["t_stop"] == pytest.approx(t_ref, abs=1e-6)
    assert float(stopped.ts[-1]) == stopped.stats["t_stop"]
    np.testing.assert_array_equal(stopped.ts[:-1], np.arange(0, 4.5, 0.5)[: len(stopped.ts) - 1])
    assert float(stopped.ts[-2]) < t_ref
    np.testing.assert_allclose(A.min_cosine(stopped.theta[:, -1]), 1 - delta, atol=1e-10)
    np.testing.assert_allclose(A.collapse_time(stopped, delta), t_ref, atol=1e-6)


def test_fit_recovers_synthetic_rate_and_exponent():
    ts = jnp.linspace(1.0, 100.0, 400)
    rho = jnp.stack([1 - 3 * jnp.exp(-0.17 * ts), 1 - 2 * ts**-1.3])
    fit = A.fit_collapse_rate(ts, rho)
    np.testing.assert_allclose(fit.rate[0], 0.17, rtol=1e-10)
    np.testing.assert_allclose(fit.exponent[1], 1.3, rtol=1e-10)
    np.testing.assert_allclose([fit.r2_exponential[0], fit.r2_power[1]], 1.0, rtol=1e-10)
    assert list(fit.best) == ["exponential", "power"]
    jitted = jax.jit(A.fit_collapse_rate)(ts, rho)
    np.testing.assert_array_equal(jitted.exponential, [True, False])
    with pytest.raises(ValueError, match="tail"):
        A.fit_collapse_rate(ts, rho, tail=0.0)


def test_fit_uses_only_saves_above_the_dtype_floor():
    """A float32 post run to t = 60: 1 − ρ reaches the rounding floor by t ≈ 8, so the
    last half of the saves is round-off. The fit takes the last half of the saves above
    the floor (rate 2, not NaN), says which, and with too few such saves says so instead
    of NaN with R² = 1."""
    ts = np.linspace(0.0, 60.0, 121)
    rho = jnp.asarray(1 - np.exp(-2 * ts), jnp.float32)  # exactly 1 from t ≈ 8.3 on
    fit = A.fit_collapse_rate(ts, rho)
    assert fit.best == "exponential" and float(fit.rate) == pytest.approx(2.0, rel=1e-3)
    assert 3 <= int(fit.points) < 20 and float(fit.t_end) < 8 and float(fit.t_start) > 2
    late = A.fit_collapse_rate(ts[60:], rho[60:])  # nothing above the floor
    assert late.best == "too few points" and int(late.points) == 0
    assert np.isnan([late.rate, late.exponent, late.r2_exponential, late.r2_power]).all()
    batch = A.fit_collapse_rate(ts, jnp.stack([rho, jnp.ones_like(rho)]))
    assert list(batch.best) == ["exponential", "too few points"] and list(batch.points) == [
        int(fit.points),
        0,
    ]


@pytest.mark.slow
def test_fit_classifies_reduced_model_tails():
    """post collapses like e^{-2t}, pre like t^{-2} (MODEL.md §3)."""
    n, beta = 8, 1.0
    ts = np.linspace(0.0, 12.0, 241)
    rho, _ = particles.equiangular.solve("post", n, beta, 0.0, ts)
    fit = A.fit_collapse_rate(ts, rho)
    assert fit.best == "exponential"
    assert float(fit.rate) == pytest.approx(2.0, rel=1e-3)
    ts = np.geomspace(1.0, 1e4, 200)
    rho, _ = particles.equiangular.solve("pre", n, beta, 0.0, ts)
    fit = A.fit_collapse_rate(ts, rho)
    assert fit.best == "power"
    assert float(fit.exponent) == pytest.approx(2.0, rel=1e-2)


def test_observable_registry():
    theta = jnp.stack([orthonormal(), orthonormal()])
    r = jnp.ones(theta.shape[:-1])
    values = A.observe(list(A.OBSERVABLES), theta, r, 2.0)
    assert set(values) == set(A.OBSERVABLES)
    assert all(v.shape == (2,) for v in values.values())
    np.testing.assert_array_equal(values["cluster_count"], [4, 4])
    np.testing.assert_allclose(values["radius_mean"], 1.0)
    assert A.check_observables("mean_cosine, pair_density") == ("mean_cosine", "pair_density")
    with pytest.raises(
        ValueError, match=r"unknown observable 'cosine'; choose from: mean_cosine, min_cosine"
    ):
        A.observe(["cosine"], theta, r, 2.0)
    with pytest.raises(ValueError, match="no observables"):
        A.check_observables("")
