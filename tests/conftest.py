import os
import shutil
import tempfile

import jax
import pytest
from hypothesis import settings

# Tests run in float64 with strict dtype promotion (as diffrax's test suite does);
# the library itself defaults to float32.
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")

# One persistent compilation cache per test run, for the tests' subprocesses (docs,
# command lines, benchmarks: fresh interpreters that compile the same programs); empty at
# the start of each run, as on CI; removed by the process that made it. The command
# line's own cache (``$XDG_CACHE_HOME/particles/jax``) is in the run's folder too: tests
# neither read nor fill the user's. The benchmarks of a cold start remove these variables.
_OWN_CACHE = "PARTICLES_TEST_CACHE" not in os.environ
if _OWN_CACHE:
    os.environ["PARTICLES_TEST_CACHE"] = tempfile.mkdtemp(prefix="particles-tests-")
os.environ.update(
    JAX_COMPILATION_CACHE_DIR=os.path.join(os.environ["PARTICLES_TEST_CACHE"], "jax"),
    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
    JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
    XDG_CACHE_HOME=os.path.join(os.environ["PARTICLES_TEST_CACHE"], "xdg"),
)
# The test processes themselves do not use it: with the fast-compiling flags below a
# program compiles in about 0.1 s, less than writing every program to the cache costs.
# Measured (2026-12-08, 2-core AMD EPYC): the suite 287 s with it, 267 s without.
jax.config.update("jax_enable_compilation_cache", False)


# Tests compile many small programs and run each for milliseconds: XLA's LLVM back end at
# optimisation level 0 and XLA's older CPU fusion emitters (not the MLIR ones) compile
# them faster (flax's test suite does the first for its slow compiles). Benchmarks,
# figures and users keep the default. Measured on the 2-core machine (2026-12-08): five
# first simulate calls 7.2-8.6 s with the default, 5.9-7.1 s at -O0; one solve program
# compiled in 0.52 s at -O0, 0.16 s with the older emitters too; `make test` 452 s -> 271 s.
# PARTICLES_TEST_DEFAULT_COMPILER=1 keeps XLA's defaults (tests/test_engine.py's exact
# comparison with diffeqsolve holds for the compiler users get).
DEFAULT_COMPILER = bool(os.environ.get("PARTICLES_TEST_DEFAULT_COMPILER"))
if not DEFAULT_COMPILER:
    os.environ["XLA_FLAGS"] = " ".join(
        [
            os.environ.get("XLA_FLAGS", ""),
            "--xla_backend_optimization_level=0",
            "--xla_llvm_disable_expensive_passes=true",
            "--xla_cpu_use_fusion_emitters=false",
        ]
    ).strip()


def pytest_unconfigure(config):
    if _OWN_CACHE:
        shutil.rmtree(os.environ["PARTICLES_TEST_CACHE"], ignore_errors=True)


# CI replays the same hypothesis examples every run (a red CI blocks landing); locally
# each run draws new ones.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def getkey():
    keys = iter(jax.random.split(jax.random.key(0), 1000))
    return lambda: next(keys)
