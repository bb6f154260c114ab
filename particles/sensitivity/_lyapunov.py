"""Finite-time Lyapunov exponents (MODEL.md §9)."""

import dataclasses
import math

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float

from .._problem import Problem
from .._validate import check_choice
from ..sphere import span_basis
from ._chain import Tangent, batched, check_k, segments, setup, start_state, tangent_dim, unflatten
from ._frames import jacobian_exponents, qr_exponents, qr_frame, variational_loop
from ._hessian import lanczos

LYAPUNOV_METHODS = ("auto", "jacobian", "qr")
DENSE_MAX = 512  # tangent dimensions up to which the local exponents form the matrix
# "auto" takes the whole tangent Jacobian (exact) up to this many directions, or when all
# exponents are asked for; measured on 2 CPU cores (post, random Q, K, V, T = 5, float32):
# n(d−1) = 28, 120, 496 directions took 19, 31, 571 ms by "jacobian" and 5, 9, 11 ms by
# "qr" with k = 8 (docs/sensitivity.md).
JACOBIAN_MAX = 128


@dataclasses.dataclass(frozen=True)
class LyapunovSpectrum:
    """Finite-time Lyapunov exponents of the flow map x(t0) ↦ x(t1).

    ``exponents`` (*batch, k), descending: λ_i = log σ_i(DΦ)/(t1 − t0). ``ts`` the
    boundaries t0 < ... < t1 (the save times; every layer with ``layers``). ``local``
    (*batch, len(ts), k) or None: the instantaneous exponents at the boundaries, the
    top eigenvalues of the symmetrised linearisation of the vector field on the
    tangent space (ODE mode, ``local=True``). ``method`` "jacobian" or "qr";
    ``config`` the problem as plain values."""

    exponents: Float[ArrayLike, "*batch k"]
    ts: Float[ArrayLike, " S"]
    local: Float[ArrayLike, "*batch S k"] | None
    method: str
    config: dict

    def to_xarray(self):
        """An ``xarray.Dataset`` (dims sample, index, time); leading batch dimensions
        are flattened into ``sample`` (attr ``batch_shape``)."""
        import json

        import xarray as xr

        ex = np.asarray(self.exponents)
        batch = ex.shape[:-1]
        lead = ("sample",) if batch else ()
        shape = (-1,) if batch else ()
        data = {"exponents": (lead + ("index",), ex.reshape(shape + ex.shape[-1:]))}
        if self.local is not None:
            loc = np.asarray(self.local)
            data["local"] = (lead + ("time", "index"), loc.reshape(shape + loc.shape[-2:]))
        attrs = {
            "method": self.method,
            "batch_shape": json.dumps(list(batch)),
            "config": json.dumps(self.config),
        }
        return xr.Dataset(data, coords={"time": np.asarray(self.ts, float)}, attrs=attrs)

    def save(self, path) -> None:
        """Write :meth:`to_xarray` as NetCDF; the file appears complete or not at all."""
        from .._io import write_atomic

        write_atomic(self.to_xarray(), path)


def ambient_velocity(problem: Problem, t, x):
    """dx/dt at tokens x (n, d) of one trajectory: ṙ θ + r θ̇ from the scheme's velocity
    (r ≡ 1 on the spheres)."""
    theta = x / jnp.linalg.norm(x, axis=-1, keepdims=True)
    r = jnp.ones(x.shape[:-1], x.dtype) if problem.scheme.sphere_bound else jnp.linalg.norm(x, axis=-1)
    dtheta, dr = problem.scheme.velocity(t, theta, r, problem.attention)
    return dr[..., None] * theta + r[..., None] * dtheta


def _local_exponents(problem, t, x, k, key):
    """The top k eigenvalues of the symmetrised tangent linearisation ½ Uᵀ(DF + DFᵀ)U of
    the vector field F at x (dense up to :data:`DENSE_MAX` directions, else Lanczos)."""
    tangent = Tangent.at(problem, x)
    shape = tangent.shape(x)
    F = lambda y: ambient_velocity(problem, t, y)
    _, pull = jax.vjp(F, x)

    def sym(c):
        u = tangent.embed(c.reshape(shape))
        jv = jax.jvp(F, (x,), (u,))[1]
        return tangent.coords((jv + pull(u)[0]) / 2).reshape(-1)

    dim = math.prod(shape)
    if dim <= DENSE_MAX:
        M = jax.vmap(sym)(jnp.eye(dim, dtype=x.dtype))
        return jnp.linalg.eigvalsh((M + M.T) / 2)[::-1][:k]
    return lanczos(sym, dim, k, key=key, dtype=x.dtype)[0]


def _span_exponents(problem, config, segs, x, k, method, key):
    """The exponents through the span of the initial tokens (identity weights, a scheme
    that keeps the span, n < d): the flow is O(d)-equivariant, so DΦ is block diagonal,
    the span's n·m directions (m = n − 1 on the spheres, n off them) and, on the
    orthogonal complement, one n × n map M acting on the token index, the same for each
    of the d − n directions. Solved in the span's n coordinates, with M's frame carried
    by :func:`orthogonal_jvp`; M's log σ counted d − n times. (log σ (k), None)."""
    n, d = x.shape
    basis = span_basis(x / jnp.linalg.norm(x, axis=-1, keepdims=True))  # (n, d)
    c = jnp.einsum("id,kd->ik", x, basis)
    tangent = Tangent.at(problem, c)
    if method == "jacobian":
        inside, across = tangent.identity(c), jnp.eye(n, dtype=x.dtype)
    else:
        k_in, key_out = min(k, math.prod(tangent.shape(c))), jax.random.fold_in(key, 1)
        inside, _ = qr_frame(
            jax.vmap(tangent.embed)(jax.random.normal(key, (k_in, *tangent.shape(c)), x.dtype))
        )
        across = jnp.linalg.qr(jax.random.normal(key_out, (n, min(k, n)), x.dtype))[0].T
    _, logs, _ = variational_loop(
        problem, config, segs, c, inside, across, orthonormalize=method != "jacobian", d=d
    )
    m = inside.shape[0]
    merged = jnp.concatenate([logs[:m], jnp.repeat(logs[m:], d - n)])
    return jnp.sort(merged)[::-1][:k], None


def _lyapunov_one(p, x0, config, segs, k, method, local, seed, span):
    """The exponents (k) of one trajectory and, with ``local``, its local ones (S + 1, k)."""
    key = jax.random.key(seed)
    x = start_state(p, x0)
    if span:
        logs, _ = _span_exponents(p, config, segs, x, k, method, key)
    elif method == "jacobian":
        logs, xs = jacobian_exponents(p, config, segs, x, k, local)
    else:
        logs, xs = qr_exponents(p, config, segs, x, k, key, local)
    ex = jnp.sort(logs)[::-1] / (p.t1 - p.t0)
    if not local:
        return ex, None
    times = jnp.asarray(segs.times, x.dtype)
    return ex, jax.vmap(lambda t, y: _local_exponents(p, t, y, k, key))(times, xs)


def lyapunov(
    x0: Float[ArrayLike, "*batch n d"],
    scheme,
    *,
    beta,
    t1,
    k: int | None = None,
    method: str = "auto",
    local: bool = False,
    seed: int = 0,
    **simulate_options,
) -> LyapunovSpectrum:
    r"""Finite-time Lyapunov exponents λ_i = log σ_i(DΦ)/(t1 − t0) of the flow map
    Φ: x(t0) ↦ x(t1) (MODEL.md §9), all of them or the top ``k``, for every trajectory
    of the batch; ``simulate_options`` as for :func:`particles.simulate` (``layers=L``:
    the product of the L layer Jacobians). DΦ is restricted to the tangent space of the
    state: n(d − 1) directions on the product of unit spheres (sphere-bound schemes;
    x0 is taken as its directions), n·d on R^{n×d}.

    ``ts`` (default: every unit of time) are the boundaries reported in the result:
    where the local exponents are taken, and, with ``layers``, every layer. With
    identity weights, n < d and a scheme that keeps the span (every built-in speed
    scheme; ``reduce_span=True``, the default), the flow is O(d)-equivariant and DΦ
    splits into the span's directions and one n × n map repeated on each of the d − n
    directions orthogonal to it: solved in the span's n coordinates instead of d.

    ``method``: "jacobian" pushes an orthonormal basis of the tangent space along the
    flow and takes the singular values of the whole tangent Jacobian: exact to the
    solve's tolerance, but the small σ_i are lost below eps·σ_1 (float32 over long
    horizons). "qr" (Benettin et al. 1980) pushes a random k-frame instead, kept
    orthonormal all the way, and sums log|diag R| of its QR factorisation: no exponent
    is lost to rounding, and these converge to the top k exponents as t1 − t0 grows,
    with an O(1/(t1 − t0)) offset from the random start frame (their sum is exact: the
    k-volume growth of the frame; with k = all, log|det DΦ|/(t1 − t0)). In the ODE
    mode the frame follows the variational equation in its continuous QR form (Dieci,
    Russell and Van Vleck 1997), solved alongside the flow in one Tsit5 solve with the
    steps controlled on both (:func:`continuous_qr_field`; the jacobian method solves
    dV/dt = Df V itself); with ``layers`` the tangents are exact JVPs of each layer,
    re-orthonormalised by a QR after every layer. "auto" is "jacobian" up to
    :data:`JACOBIAN_MAX` = 128 tangent directions or when all exponents are asked for,
    and "qr" beyond (measured: 496 directions cost 571 ms by "jacobian", 11 ms by "qr"
    with k = 8; docs/sensitivity.md). ``seed``: the random start frame of "qr".
    ``local=True`` adds the instantaneous exponents at ``ts`` (ODE mode)."""
    problem, config = setup(x0, scheme, beta, t1, simulate_options)
    check_choice("method", method, LYAPUNOV_METHODS)
    dim = tangent_dim(problem)
    k = check_k(k, dim)
    if local and problem.layers is not None:
        raise ValueError("local=True applies to the ODE mode (a vector field); drop it with layers=L")
    if method == "auto":
        method = "jacobian" if dim <= JACOBIAN_MAX or k == dim else "qr"
    if problem.layers is None and config.ts is None:  # re-orthonormalise once per unit of time
        every = np.append(np.arange(problem.t0, problem.t1, 1.0)[1:], problem.t1)
        config = dataclasses.replace(config, ts=tuple(every.tolist()))
    segs = segments(problem, config)
    n, d = problem.x0.shape[-2:]
    span = bool(problem.layers is None and problem.keeps_span and n < d and config.reduce_span and not local)
    ex, loc = batched(problem, _lyapunov_one, config, segs, k, method, local, seed, span)
    ex = unflatten(problem, ex)
    loc = None if loc is None else unflatten(problem, loc)
    return LyapunovSpectrum(ex, np.asarray(segs.times), loc, method, problem.describe())
