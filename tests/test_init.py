"""Initial conditions and their argument checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import particles


def test_initial_conditions():
    x = particles.init.uniform_sphere(0, 5, 3, batch=(2, 4))
    assert x.shape == (2, 4, 5, 3)
    np.testing.assert_allclose(jnp.linalg.norm(x, axis=-1), 1, atol=1e-12)
    e = particles.init.equiangular(4, 6, 0.3, r0=2.0)
    gram = np.asarray(e @ e.T)
    np.testing.assert_allclose(np.diag(gram), 4.0, atol=1e-12)
    np.testing.assert_allclose(gram[~np.eye(4, dtype=bool)], 4.0 * 0.3, atol=1e-12)
    c = particles.init.clusters(0, 12, 5, k=3, spread=1e-4)
    cos = np.asarray(c @ c.T)
    assert np.all(cos[np.arange(12)[:, None] % 3 == np.arange(12) % 3] > 0.999)
    np.testing.assert_array_equal(
        particles.init.gaussian(3, 4, 2), particles.init.gaussian(jax.random.key(3), 4, 2)
    )


def test_bad_init_and_scheme_parameters():
    with pytest.raises(ValueError, match="n <= d"):
        particles.init.equiangular(5, 4, 0.0)
    with pytest.raises(ValueError, match="rho0"):
        particles.init.equiangular(3, 5, 1.5)
    with pytest.raises(ValueError, match="alpha"):
        particles.get_scheme("ngpt", alpha=-1.0)
    with pytest.raises(ValueError, match="key"):
        particles.init.uniform_sphere("seed", 3, 3)
