import os

import jax
import pytest
from hypothesis import settings

# Tests run in float64 with strict dtype promotion (as diffrax's test suite does);
# the library itself defaults to float32.
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")

# CI replays the same hypothesis examples every run (a red CI blocks landing); locally
# each run draws new ones.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def getkey():
    keys = iter(jax.random.split(jax.random.key(0), 1000))
    return lambda: next(keys)
