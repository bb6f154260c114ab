"""Initial configurations of n tokens in R^d. ``key`` is a ``jax.random`` key or an
integer seed; ``batch`` (an int or a shape) adds leading batch dimensions.

Random draws are made in float64 and rounded to ``dtype`` at the end, so the same
seed gives the same tokens, up to rounding, in float32 and float64: a float64 rerun
of a float32 experiment starts from the same configuration."""

import functools
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._validate import as_key, check_float, check_int, default_dtype
from .sphere import normalize


def _in_float64(draw, dtype):
    """``draw()`` computed in float64, rounded to ``dtype`` (default: JAX's)."""
    dtype = dtype or default_dtype()
    with jax.enable_x64(True):
        return draw().astype(dtype)


def _shape(batch, n, d):
    check_int("n", n, minimum=1)
    check_int("d", d, minimum=2)
    if batch is None:
        return (n, d)
    batch = (batch,) if isinstance(batch, int) else tuple(batch)
    for b in batch:
        check_int("batch", b, minimum=1)
    return (*batch, n, d)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _normalised_gaussians(key, shape, dtype):
    # one compiled program per shape, the rounding to dtype included: op by op, the draw's
    # primitives compiled one by one took ~0.5 s of a fresh sweep's first result
    return normalize(jax.random.normal(key, shape, jnp.float64)).astype(dtype)


def uniform_sphere(key, n: int, d: int, batch=None, dtype=None) -> Float[Array, "*batch n d"]:
    """i.i.d. tokens uniform on S^{d-1} (normalised Gaussians)."""
    shape = _shape(batch, n, d)
    dtype = jnp.dtype(dtype or default_dtype())
    return _in_float64(lambda: _normalised_gaussians(as_key(key), shape, dtype), dtype)


def gaussian(key, n: int, d: int, scale: float = 1.0, batch=None, dtype=None) -> Float[Array, "*batch n d"]:
    """i.i.d. tokens N(0, scale² I_d / d), so that |x_i| ≈ scale."""
    shape = _shape(batch, n, d)
    scale = check_float("scale", scale, positive=True)
    draw = lambda: scale / math.sqrt(d) * jax.random.normal(as_key(key), shape, jnp.float64)
    return _in_float64(draw, dtype)


def equiangular(n: int, d: int, rho0: float, r0: float = 1.0, dtype=None) -> Float[Array, "n d"]:
    """Tokens with ⟨θ_i, θ_j⟩ = rho0 for i ≠ j and |x_i| = r0 (MODEL.md §3).

    rho0 = 0: the first n basis vectors (needs n ≤ d); rho0 > 0:
    θ_i = √rho0 e_0 + √(1 − rho0) e_i (needs n + 1 ≤ d).
    """
    check_int("n", n, minimum=1)
    check_int("d", d, minimum=2)
    rho0 = check_float("rho0", rho0)
    r0 = check_float("r0", r0, positive=True)
    if not 0 <= rho0 <= 1:
        raise ValueError(f"rho0={rho0!r} must lie in [0, 1]")
    dtype = dtype or default_dtype()
    if rho0 == 0:
        if n > d:
            raise ValueError(f"equiangular start with rho0=0 needs n <= d, got n={n}, d={d}")
        theta = jnp.eye(n, d, dtype=dtype)
    else:
        if n + 1 > d:
            raise ValueError(f"equiangular start with rho0>0 needs n + 1 <= d, got n={n}, d={d}")
        theta = math.sqrt(rho0) * jnp.eye(1, d, dtype=dtype) + math.sqrt(1 - rho0) * jnp.eye(
            n, d, k=1, dtype=dtype
        )
    return r0 * theta


def clusters(
    key, n: int, d: int, k: int, spread: float, batch=None, dtype=None
) -> Float[Array, "*batch n d"]:
    """n tokens in k clusters: token i sits near centre i mod k (centres uniform on
    the sphere), perturbed by Gaussian noise of standard deviation ``spread`` and
    projected back onto the sphere."""
    shape = _shape(batch, n, d)
    check_int("k", k, minimum=1)
    spread = check_float("spread", spread, nonnegative=True)
    kc, kn = jax.random.split(as_key(key))

    def draw():
        centres = normalize(jax.random.normal(kc, (*shape[:-2], k, d), jnp.float64))
        members = jnp.take(centres, jnp.arange(n) % k, axis=-2)
        return normalize(members + spread * jax.random.normal(kn, shape, jnp.float64))

    return _in_float64(draw, dtype)


SPECS = ("uniform", "gaussian", "equiangular:RHO", "FILE.npy")


def check_spec(spec, name: str = "init") -> str:
    """Validate a named initial condition: "uniform", "gaussian", "equiangular:RHO" or
    the path of an (n, d) array saved with ``numpy.save`` ("FILE.npy"); errors name
    the argument ``name``."""
    if spec in ("uniform", "gaussian"):
        return spec
    if isinstance(spec, str) and spec.endswith(".npy"):
        if not os.path.isfile(spec):
            raise ValueError(f"{name} {spec!r}: file does not exist")
        return spec
    if isinstance(spec, str) and spec.startswith("equiangular:"):
        try:
            float(spec.split(":", 1)[1])
        except ValueError:
            raise ValueError(f"{name}={spec!r}: RHO must be a number") from None
        return spec
    raise ValueError(f"{name}={spec!r} is not one of: {', '.join(SPECS)}")


def from_spec(spec: str, key, n, d, dtype=None, name: str = "init") -> Float[Array, "n d"]:
    """Tokens from a named initial condition (see :func:`check_spec`); ``key`` seeds
    the random ones and is ignored by the equiangular start and a file. For a file,
    ``n`` and ``d`` may be None (taken from the file), else they must agree with it;
    the others need both."""
    check_spec(spec, name)
    if spec.endswith(".npy"):
        return _load_tokens(spec, n, d, dtype or default_dtype(), name)
    if spec == "uniform":
        return uniform_sphere(key, n, d, dtype=dtype)
    if spec == "gaussian":
        return gaussian(key, n, d, dtype=dtype)
    return equiangular(n, d, float(spec.split(":", 1)[1]), dtype=dtype)


def _load_tokens(path, n, d, dtype, name):
    with open(path, "rb") as f:
        is_npy = f.read(6) == b"\x93NUMPY"
    try:
        if not is_npy:
            raise ValueError("not a NumPy .npy file")
        x0 = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        if not is_npy:
            reason = "not a NumPy .npy file"
        elif "allow_pickle" in str(e):
            reason = "it holds Python objects"
        else:
            reason = "truncated or corrupt"
        raise ValueError(
            f"{name} {path!r}: cannot read an (n, d) array: {reason} (write one with numpy.save)"
        ) from None
    if not isinstance(x0, np.ndarray) or not np.issubdtype(x0.dtype, np.number):
        raise ValueError(f"{name} {path!r}: expected a numeric (n, d) array written with numpy.save")
    if x0.ndim != 2:
        raise ValueError(f"{name} {path!r}: expected an (n, d) array, got shape {x0.shape}")
    for what, value, actual in (("n", n, x0.shape[0]), ("d", d, x0.shape[1])):
        if value is not None and value != actual:
            given = f"--{what} {value}" if name.startswith("--") else f"{what}={value}"
            raise ValueError(f"{given} disagrees with {name} {path!r}, which has {what}={actual}")
    return jnp.asarray(x0, dtype)
