"""Random weight ensembles."""

import numpy as np
import pytest

import particles


def test_random_weight_ensembles():
    d = 64
    Q, K, V = particles.random_weights(1, d, heads=2, layers=3)
    assert Q.shape == (3, 2, d, d)
    assert not np.allclose(Q, K)
    assert np.std(np.asarray(Q)) == pytest.approx(1 / np.sqrt(d), rel=0.05)
    G, _, _ = particles.random_weights(2, d, ensemble="goe")
    np.testing.assert_array_equal(G, np.swapaxes(G, -1, -2))
    eig = np.linalg.eigvalsh(np.asarray(G[0, 0]))
    assert 1.6 < eig.max() < 2.4 and -2.4 < eig.min() < -1.6  # semicircle edge at ±2


def test_random_norm_draws_gains_and_biases_of_the_layers_figure():
    """γ = 1 + 0.1 N(0, 1), b = 0.1 N(0, 1) (the README's layers figure), keyword
    arguments of simulate, one row per layer or one shared row."""
    d, L = 64, 48
    ln = particles.random_norm(2, d, layers=L)
    assert set(ln) == {"gamma", "bias"} and ln["gamma"].shape == ln["bias"].shape == (L, d)
    gamma, bias = np.asarray(ln["gamma"]), np.asarray(ln["bias"])
    assert np.mean(gamma) == pytest.approx(1.0, abs=0.01) and np.std(gamma) == pytest.approx(0.1, rel=0.05)
    assert np.mean(bias) == pytest.approx(0.0, abs=0.01) and np.std(bias) == pytest.approx(0.1, rel=0.05)
    assert not np.allclose(gamma - 1, bias)  # independent draws
    np.testing.assert_array_equal(
        particles.random_norm(2, d, layers=L)["gamma"], gamma
    )  # same key, same draw
    shared = particles.random_norm(0, 8, scale=0.5)
    assert shared["gamma"].shape == (8,) and np.std(np.asarray(shared["bias"])) > 0.2
    x0 = particles.init.uniform_sphere(0, 4, 8)
    traj = particles.simulate(
        x0, "pre", beta=1.0, t1=4.0, layers=4, norm="layernorm", **particles.random_norm(1, 8)
    )
    assert np.all(np.isfinite(np.asarray(traj.theta)))
    with pytest.raises(ValueError, match="scale"):
        particles.random_norm(0, 8, scale=-1.0)
