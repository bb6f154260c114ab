import jax
import pytest

# Tests run in float64 with strict dtype promotion (as diffrax's test suite does);
# the library itself defaults to float32.
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture
def getkey():
    keys = iter(jax.random.split(jax.random.key(0), 1000))
    return lambda: next(keys)
