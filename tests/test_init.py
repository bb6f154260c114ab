"""Initial conditions, their argument checks, and seeds independent of precision."""

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


DRAWS = {
    "uniform_sphere": lambda dtype: particles.init.uniform_sphere(3, 7, 5, batch=2, dtype=dtype),
    "gaussian": lambda dtype: particles.init.gaussian(3, 7, 5, scale=2.0, dtype=dtype),
    "clusters": lambda dtype: particles.init.clusters(3, 7, 5, k=2, spread=0.1, dtype=dtype),
    "from_spec uniform": lambda dtype: particles.init.from_spec("uniform", 4, 6, 3, dtype=dtype),
}


@pytest.mark.parametrize("name", DRAWS)
def test_same_seed_same_tokens_in_float32_and_float64(name):
    x64 = DRAWS[name](np.float64)
    x32 = DRAWS[name](np.float32)
    assert x64.dtype == np.float64 and x32.dtype == np.float32
    # the float32 draw is the float64 one rounded: equal to float32 rounding, not merely close
    np.testing.assert_array_equal(np.asarray(x32), np.asarray(x64).astype(np.float32))


def test_default_dtype_outside_64_bit_mode_is_float32():
    with jax.enable_x64(False):
        assert particles.init.uniform_sphere(0, 3, 2).dtype == np.float32
