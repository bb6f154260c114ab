"""The argument checks (particles/_validate.py): one-line ValueErrors that name the
argument, the value and what is allowed."""

import re

import jax
import numpy as np
import pytest

from particles._validate import (
    as_key,
    check_choice,
    check_finite_array,
    check_float,
    check_int,
    default_dtype,
)


def raises(message):
    """pytest.raises for a ValueError of exactly this one-line message."""
    return pytest.raises(ValueError, match="^" + re.escape(message) + "$")


def test_check_int():
    assert check_int("n", 3) == 3 and type(check_int("n", np.int64(3))) is int
    assert check_int("n", 5, minimum=5) == 5
    with raises("n=4 must be at least 5"):
        check_int("n", 4, minimum=5)
    for bad in (3.0, True, "3", None):
        with raises(f"n={bad!r} must be an integer"):
            check_int("n", bad)


def test_check_float():
    assert check_float("beta", 2) == 2.0 and type(check_float("beta", np.float32(0.5))) is float
    assert check_float("beta", "1e-3") == 1e-3  # what float() reads
    assert check_float("beta", -1.0) == -1.0
    assert check_float("noise", 0.0, nonnegative=True) == 0.0
    with raises("beta='x' must be a real number"):
        check_float("beta", "x")
    with raises("beta=None must be a real number"):
        check_float("beta", None)
    with raises("beta=nan must be finite"):
        check_float("beta", float("nan"))
    with raises("beta=inf must be finite"):
        check_float("beta", np.inf)
    with raises("rtol=0.0 must be positive"):
        check_float("rtol", 0.0, positive=True)
    with raises("noise=-0.1 must be non-negative"):
        check_float("noise", -0.1, nonnegative=True)


def test_check_choice():
    assert check_choice("scheme", "post", ("post", "pre")) == "post"
    with raises("scheme='mid' is not one of: post, pre"):
        check_choice("scheme", "mid", ("post", "pre"))
    with raises("layers=3 is not one of: 1, 2"):
        check_choice("layers", 3, (1, 2))


def test_check_finite_array():
    out = check_finite_array("x0", [[1.0, 2.0]])
    assert isinstance(out, np.ndarray) and out.shape == (1, 2)
    with raises("x0 contains non-finite values (NaN or inf)"):
        check_finite_array("x0", [1.0, np.nan])
    with raises("x0 contains non-finite values (NaN or inf)"):
        check_finite_array("x0", np.array([-np.inf]))
    with raises("x0 must be a numeric array, got dtype <U1"):
        check_finite_array("x0", ["a"])


def test_as_key():
    same = lambda a, b: np.array_equal(jax.random.key_data(a), jax.random.key_data(b))
    assert same(as_key(3), jax.random.key(3)) and same(as_key(np.int64(3)), jax.random.key(3))
    key = jax.random.key(7)
    assert as_key(key) is key
    raw = jax.random.PRNGKey(7)  # the legacy uint32 (2,) form
    assert as_key(raw) is raw
    for bad in (True, 1.5, "0", np.zeros(3, np.uint32)):
        with pytest.raises(ValueError, match=r"^key=.* must be a jax.random key or an integer seed$"):
            as_key(bad)


def test_default_dtype_is_jax_default_float():
    # tests run in 64-bit mode (conftest.py)
    assert default_dtype() == np.dtype("float64") == jax.numpy.zeros(()).dtype
