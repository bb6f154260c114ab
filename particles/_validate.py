"""Argument checks that raise one-line ``ValueError`` messages naming the argument,
the value given and what is allowed."""

import contextlib
import math
import numbers

import jax
import numpy as np


def default_dtype():
    """JAX's default float dtype: float64 in 64-bit mode, else float32 (without
    creating an array, which would compile a program)."""
    return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))


def precision(dtype) -> contextlib.AbstractContextManager:
    """The context a computation in ``dtype`` runs in: JAX's 64-bit mode for float64
    (the one place the library switches it), nothing for float32."""
    return jax.enable_x64(True) if np.dtype(dtype) == np.float64 else contextlib.nullcontext()


def check_int(name, value, *, minimum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}={value!r} must be an integer")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={value!r} must be at least {minimum}")
    return int(value)


def check_float(name, value, *, positive=False, nonnegative=False):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} must be a real number") from None
    if not math.isfinite(v):
        raise ValueError(f"{name}={value!r} must be finite")
    if positive and v <= 0:
        raise ValueError(f"{name}={value!r} must be positive")
    if nonnegative and v < 0:
        raise ValueError(f"{name}={value!r} must be non-negative")
    return v


def check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of: {', '.join(map(str, allowed))}")
    return value


def check_finite_array(name, value):
    a = np.asarray(value)
    if not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"{name} must be a numeric array, got dtype {a.dtype}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return a


def as_key(key):
    """A ``jax.random`` key from a key or a plain integer seed."""
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        return jax.random.key(int(key))
    if isinstance(key, jax.Array) and (
        jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) or key.shape == (2,)
    ):
        return key
    raise ValueError(f"key={key!r} must be a jax.random key or an integer seed")
