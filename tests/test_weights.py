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
