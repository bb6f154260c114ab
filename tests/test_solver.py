"""The unrolled Tsit5 is diffrax's Tsit5: same steps, same answers."""

import diffrax
import numpy as np

import particles
from particles._solver import UnrolledTsit5


def test_unrolled_tsit5_matches_diffrax(getkey):
    # three layers of piecewise-constant weights: steps are clipped at t=1, 2 (made_jump)
    d, layers = 4, 3
    x0 = particles.init.uniform_sphere(getkey(), 10, d, batch=2)
    Q, K, V = particles.random_weights(getkey(), d, layers=layers)
    kw = dict(beta=2.0, t1=3.0, ts=[0.3, 1.7, 3.0], rtol=1e-8, atol=1e-8, Q=Q, K=K, V=V)
    ours = particles.simulate(x0, "pre", solver=UnrolledTsit5(), **kw)
    ref = particles.simulate(x0, "pre", solver=diffrax.Tsit5(), **kw)
    assert ours.stats["num_steps"] == ref.stats["num_steps"]
    assert ours.stats["num_rejected"] == ref.stats["num_rejected"]
    np.testing.assert_allclose(ours.theta, ref.theta, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.r, ref.r, rtol=1e-12)


def test_clustered_tokens_stay_within_tolerance():
    """Once the tokens cluster the flow is mildly stiff. An integral controller then
    steps at the edge of Tsit5's stability region and the cluster drifts: on this problem
    its final error was 5.4e-6 at rtol = atol = 1e-6. The PI controller (``step_controller``)
    keeps it at 1.1e-7; the bound is the tolerance itself."""
    x0 = particles.init.uniform_sphere(1, 8, 16, batch=4, dtype=np.float64)
    kw = dict(beta=4.0, t1=30.0, ts=[30.0])
    ref = particles.simulate(x0, "post", rtol=1e-11, atol=1e-11, **kw)
    traj = particles.simulate(x0, "post", rtol=1e-6, atol=1e-6, **kw)
    error = np.linalg.norm(np.asarray(traj.theta - ref.theta), axis=-1)
    assert np.max(error) < 1e-6, np.max(error, axis=(0, 2))
