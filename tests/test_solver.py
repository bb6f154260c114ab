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
