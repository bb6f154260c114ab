"""Initial conditions: the same seed gives the same tokens in float32 and float64."""

import jax
import numpy as np
import pytest

import particles

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
