r"""Sensitivity of the flow and of the layer stack (MODEL.md §9): finite-time Lyapunov
exponents, gradients of a loss with respect to every depth and every layer's weights,
and the top of the Hessian spectrum.

Gradients differentiate through the solve :func:`particles.simulate` runs: the ODE
between save times is the same diffrax solve (:func:`particles._integrate.flow_between`),
and ``layers=L`` the same layer maps (:func:`particles._layers.apply_layer`). Both are
seen as a chain of *segments* x_{s+1} = Φ_s(x_s) between the boundaries t_0 < ... < t_S
(the save times in the ODE mode, one layer each with ``layers``), so that

    DΦ = DΦ_{S−1} ⋯ DΦ_0,       ∂ℓ/∂x_s = DΦ_sᵀ ∂ℓ/∂x_{s+1}.

Lyapunov exponents push a frame of tangents forward instead: through each layer's JVP,
or, in the ODE mode, along the variational equation solved with the flow in one loop
(:func:`_variational_loop`, the same Tsit5 pair and step control).

The state space is the product of unit spheres for sphere-bound schemes (post, ngpt,
sqrt; with the projection norm in the layer mode), with n(d − 1) tangent directions,
and R^{n×d} otherwise. Batches (x0 of shape (*batch, n, d), beta broadcast against it)
are handled one trajectory at a time under ``jax.vmap`` (a single one without it),
each with its own steps.

References: Benettin, Galgani, Giorgilli, Strelcyn, *Lyapunov characteristic exponents
for smooth dynamical systems*, Meccanica 15 (1980) (QR re-orthonormalisation); Dieci,
Russell, Van Vleck, SIAM J. Numer. Anal. 34 (1997) (continuous QR); Zhang
et al., arXiv 2510.09904 (gradient norms per layer); Petrov et al., arXiv 2510.16927
(Hessian blocks of transformer sublayers); Lanczos, J. Res. NBS 45 (1950).
"""

import dataclasses
import math
from collections.abc import Callable

import diffrax
import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._config import SolveConfig, save_times
from ._integrate import _lifted, _tokens, _variational_field, flow_between, vector_field
from ._layers import apply_layer, residual_steps
from ._problem import Problem, make_problem, precision
from ._solver import UnrolledTsit5, tsit5_loop
from ._validate import check_choice, check_int
from .sphere import span_basis, tangent_projection

WRT = ("x0", "Q", "K", "V", "mlp", "gamma", "bias")
LYAPUNOV_METHODS = ("auto", "jacobian", "qr")
HESSIAN_METHODS = ("auto", "lanczos", "dense")
DENSE_MAX = 512  # tangent dimensions up to which the local exponents form the matrix
# "auto" takes the whole tangent Jacobian (exact) up to this many directions, or when all
# exponents are asked for; measured on 2 CPU cores (post, random Q, K, V, T = 5, float32):
# n(d−1) = 28, 120, 496 directions took 19, 31, 571 ms by "jacobian" and 5, 9, 11 ms by
# "qr" with k = 8 (docs/sensitivity.md).
JACOBIAN_MAX = 128
_CONFIG_KEYS = ("solver", "rtol", "atol", "step_size", "max_steps", "ts", "reduce_span")


# -- the problem, one trajectory at a time ----------------------------------------------


def _setup(x0, scheme, beta, t1, options) -> tuple[Problem, SolveConfig]:
    """make_problem and SolveConfig from simulate's keyword arguments (one-line errors)."""
    options = dict(options)
    for key in ("key", "stop_at_collapse", "progress", "shard"):
        if key in options:
            raise ValueError(f"{key}= does not apply to the sensitivity functions; drop it")
    if options.pop("noise", 0.0):
        raise ValueError(
            "noise > 0: the sensitivity functions differentiate the ODE or the layers, not the SDE"
        )
    config = {k: options.pop(k) for k in _CONFIG_KEYS if k in options}
    problem = make_problem(x0, scheme, beta=beta, t1=t1, **options)
    return problem, SolveConfig(**config)


def _flat(problem: Problem) -> tuple[Array, Array]:
    """x0 (B, n, d) and beta (B,) with the batch flattened (B = 1 for no batch)."""
    n, d = problem.x0.shape[-2:]
    return problem.x0.reshape(-1, n, d), jnp.reshape(problem.attention.beta, (-1,))


def _single(problem: Problem, x0, beta) -> Problem:
    """The problem of one trajectory (tokens x0 (n, d), scalar beta)."""
    return eqx.tree_at(lambda p: (p.x0, p.attention.beta), problem, (x0, beta))


def _unflatten(problem: Problem, a, lead=0):
    """Restore the batch shape on axis ``lead`` of a per-trajectory result (B first)."""
    a = jnp.moveaxis(a, 0, lead)
    return a.reshape(a.shape[:lead] + problem.batch_shape + a.shape[lead + 1 :])


def on_spheres(problem: Problem) -> bool:
    """Whether the state is a product of unit spheres (n(d − 1) tangent directions):
    sphere-bound schemes, with the projection norm in the layer mode."""
    return bool(problem.scheme.sphere_bound and problem.norm.kind == "projection")


# -- segments: the maps between boundaries ----------------------------------------------


class _Segments(eqx.Module):
    """The chain x_{s+1} = Φ_s(x_s), s = 0..S−1, between ``times`` (S + 1 boundaries)."""

    times: tuple[float, ...] = eqx.field(static=True)
    layered: bool = eqx.field(static=True)
    steps: Array | None  # residual step of each layer (layer mode)

    @property
    def count(self) -> int:
        return len(self.times) - 1

    def step(self, problem: Problem, config: SolveConfig, x, s, adjoint=None):
        """x_{s+1} = Φ_s(x)."""
        if self.layered:
            return apply_layer(problem, x, s, self.steps[s])
        times = jnp.asarray(self.times, x.dtype)
        return flow_between(problem, config, x, times[s], times[s + 1], adjoint=adjoint)

    def push(self, problem: Problem, x, s, tangents):
        """(Φ_s(x), DΦ_s(x) V) of layer s for tangents V (k, n, d): exact JVPs."""
        step = lambda y: apply_layer(problem, y, s, self.steps[s])
        return jax.vmap(lambda v: jax.jvp(step, (x,), (v,)), out_axes=(None, 0))(tangents)


def _segments(problem: Problem, config: SolveConfig, ts=None) -> _Segments:
    """Boundaries: every layer with ``layers``; else t0, the save times, t1."""
    t0, t1 = problem.t0, problem.t1
    if problem.layers is not None:
        L = problem.layers
        steps = jnp.asarray(residual_steps(problem.residual, (t1 - t0) / L, L), problem.dtype)
        return _Segments(tuple((t0 + np.arange(L + 1) * (t1 - t0) / L).tolist()), True, steps)
    inner = save_times(t0, t1, config.ts if ts is None else ts)
    times = np.unique(np.concatenate([[t0], inner, [t1]]))
    return _Segments(tuple(times.tolist()), False, None)


def _chain(problem, config, segs, x, adjoint=None, offsets=None, checkpoint=False):
    """x_S and the states (S + 1, n, d) along the chain from x; ``offsets`` (S + 1, n, d)
    are added to each state (their gradient is ∂ℓ/∂x_s)."""
    offsets = jnp.zeros((segs.count + 1, *x.shape), x.dtype) if offsets is None else offsets

    def body(x, s):
        x = x + offsets[s]
        return segs.step(problem, config, x, s, adjoint), x

    body = jax.checkpoint(body) if checkpoint else body
    last, xs = jax.lax.scan(body, x, jnp.arange(segs.count))
    last = last + offsets[-1]
    return last, jnp.concatenate([xs, last[None]])


# -- tangent spaces ---------------------------------------------------------------------


def tangent_basis(theta: Float[ArrayLike, "n d"]) -> Float[Array, "n dm1 d"]:
    """An orthonormal basis of each T_{θ_i} S^{d−1}: rows 2..d of the Householder
    reflection H_i = I − 2uuᵀ/|u|², u = θ_i + sign(θ_{i1}) e_1, which maps θ_i to ∓e_1."""
    theta = jnp.asarray(theta)
    d = theta.shape[-1]
    sign = jnp.where(theta[..., :1] >= 0, 1.0, -1.0).astype(theta.dtype)
    u = theta + sign * jnp.eye(d, dtype=theta.dtype)[0]
    H = (
        jnp.eye(d, dtype=theta.dtype)
        - 2 * u[..., :, None] * u[..., None, :] / jnp.sum(u * u, -1)[..., None, None]
    )
    return H[..., 1:, :]


class _Tangent(eqx.Module):
    """Coordinates of the tangent space at tokens x: c (n, d − 1) ↦ Σ_k c_ik b_ik on the
    spheres (b_ik from :func:`tangent_basis`), the identity on R^{n×d} otherwise."""

    basis: Array | None  # (n, d − 1, d), or None off the spheres

    @classmethod
    def at(cls, problem: Problem, x) -> "_Tangent":
        return cls(
            tangent_basis(x / jnp.linalg.norm(x, axis=-1, keepdims=True)) if on_spheres(problem) else None
        )

    def embed(self, c):
        return c if self.basis is None else jnp.einsum("ik,ikd->id", c, self.basis)

    def coords(self, v):
        return v if self.basis is None else jnp.einsum("id,ikd->ik", v, self.basis)

    def shape(self, x) -> tuple[int, int]:
        n, d = x.shape
        return (n, d) if self.basis is None else (n, d - 1)

    def identity(self, x):
        """Every coordinate direction, embedded: (N, n, d)."""
        shape = self.shape(x)
        eye = jnp.eye(math.prod(shape), dtype=x.dtype).reshape(-1, *shape)
        return jax.vmap(self.embed)(eye)


def tangent_dim(problem: Problem) -> int:
    n, d = problem.x0.shape[-2:]
    return n * (d - 1) if on_spheres(problem) else n * d


def _to_tangent(problem, x, v):
    """v projected onto the tangent space at x (the identity off the spheres)."""
    return tangent_projection(x / jnp.linalg.norm(x, axis=-1, keepdims=True), v) if on_spheres(problem) else v


def _check_k(k, dim) -> int:
    if k is None:
        return dim
    k = check_int("k", k, minimum=1)
    if k > dim:
        raise ValueError(f"k={k} is out of range: the problem has {dim} directions (1 <= k <= {dim})")
    return k


def _start(problem: Problem, x0):
    """The initial state: the directions x0/|x0| on the spheres, else x0."""
    return x0 / jnp.linalg.norm(x0, axis=-1, keepdims=True) if on_spheres(problem) else x0


# -- Lyapunov exponents -----------------------------------------------------------------


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
        from ._trajectory import write_atomic

        write_atomic(self.to_xarray(), path)


def _qr(W):
    """Orthonormal rows spanning the rows of W (k, n, d), and the k × k triangle R."""
    k = W.shape[0]
    q, r = jnp.linalg.qr(W.reshape(k, -1).T)
    return q.T.reshape(W.shape), r


def _log_singular_values(W):
    """log σ of the frame W (k, n, d) as k vectors, descending."""
    return jnp.log(jnp.linalg.svd(W.reshape(W.shape[0], -1), compute_uv=False))


# A frame is a tuple of arrays with the frame's vector index first: the tangents' leaves
# (lift (k, n, w) and r (k, n) in the lifted coordinates, or tokens (k, n, w)), or, in
# the span reduction, one (q, n) array: q vectors on the token index that move along a
# direction orthogonal to the span (:func:`_orthogonal_jvp`).


def _inner(P, R):
    """The q × q matrix of inner products ⟨P_i, R_j⟩ of two frames."""
    return sum(
        jnp.tensordot(p, r, axes=(tuple(range(1, p.ndim)), tuple(range(1, r.ndim)))) for p, r in zip(P, R)
    )


def _combine(C, P):
    """The vectors Σ_i C_ij P_i: the frame (as the columns of a matrix) times C."""
    return tuple(jnp.tensordot(C, p, axes=(0, 0)) for p in P)


def _matrix(P):
    """The frame's vectors as the columns of an (N, q) matrix."""
    return jnp.concatenate([p.reshape(p.shape[0], -1) for p in P], axis=1).T


def _unmatrix(M, P):
    """The inverse of :func:`_matrix`, shaped like the frame P."""
    sizes = np.cumsum([math.prod(p.shape[1:]) for p in P])[:-1].tolist()
    return tuple(m.T.reshape(p.shape) for m, p in zip(jnp.split(M, sizes), P))


def _orthogonal_jvp(fn, y, U):
    """D fn(y) on the directions orthogonal to the span of y's tokens, for the frame U
    (q, n): the first leaf of y (the lift, or the tokens; (n, w)) padded by q zero
    columns, the vector U_j placed in column w + j of the tangent, and the same columns
    of the output's first leaf read back, (q, n). By O(d) equivariance each column
    moves by the same n × n map, apart from the others and from the span."""
    leaves, tree = jax.tree.flatten(y)
    first, w = leaves[0], leaves[0].shape[-1]
    padded = jnp.concatenate([first, jnp.zeros((first.shape[0], U.shape[0]), first.dtype)], axis=1)
    tangent = [jnp.concatenate([jnp.zeros_like(first), U.T], axis=1), *map(jnp.zeros_like, leaves[1:])]
    _, out = jax.jvp(lambda *ls: fn(jax.tree.unflatten(tree, ls)), (padded, *leaves[1:]), tuple(tangent))
    return jax.tree.leaves(out)[0][:, w:].T


def _orthonormal_start(y, frames):
    """The start frames made orthonormal in the lifted coordinates: (frames, Σ log|diag R|).

    The lift's radial directions are quotiented out of the tangents first,
    V_i ← V_i − c_i lift_i with c_i = ⟨lift_i, V_i⟩/|lift_i|² (the tokens r lift/|lift|
    do not see them), then each frame V = Q R is replaced by Q."""
    lift, (V_lift, V_r) = y[0], frames[0]
    c = jnp.sum(V_lift * lift, -1) / jnp.sum(lift * lift, -1)  # (k, n)
    frames = ((V_lift - c[..., None] * lift, V_r), *frames[1:])
    out, logs = [], []
    for P in frames:
        q, R = jnp.linalg.qr(_matrix(P))
        out.append(_unmatrix(q, P))
        logs.append(jnp.log(jnp.abs(jnp.diagonal(R))))
    return tuple(out), jnp.concatenate(logs)


STABILIZE = 1.0  # rate at which drift off the frame's constraints decays


def _continuous_qr_field(orthonormalize):
    """The flow y' = f(y), its variational equation on the frames and the logs (Dieci,
    Russell and Van Vleck, *On the computation of Lyapunov exponents for continuous
    dynamical systems*, SIAM J. Numer. Anal. 34, 1997): with V = Q R (Q orthonormal, R
    upper triangular) and V' = A V (A = Df),

        Q' = A Q − Q T,    (log R_ii)' = T_ii = B_ii,    B = QᵀA Q,
        T = diag(B) + the strict upper triangle of B + Bᵀ,

    so that the frame stays orthonormal and, where its span is invariant (at rest,
    e.g. consensus), still: the steps are set by how the frame turns, not by how fast
    the directions it spans decay (which a solve of V itself must resolve, however often
    it is re-orthonormalised). Each frame separately.

    Two constraints are invariant but not attracting, and a Runge–Kutta step drifts
    off them: E = QᵀQ − I grows as E' = −TᵀE − ET (at the rate −2λ of the frame's
    exponents λ < 0), and so does the tangents' component along the lift's radial
    directions (the tokens r lift/|lift| do not see it; left in, it has exponent 0 and
    takes over the frame). Both are made to decay at the rate γ = :data:`STABILIZE`:
    Q' gains −½ Q (γE − TᵀE − ET), so that E' = −γE to first order; then each row
    w_i of the tangents' lift gets the multiple of lift_i that makes
    ⟨lift_i, w_i⟩' = −γ⟨lift_i, w_i⟩ (the flow's own radial part included). The
    orthogonal frame of the span reduction has no radial part. Without
    ``orthonormalize``: the variational equation itself."""

    def field(t, s, args):
        y, frames, logs = s
        f, AV = _variational_field(t, (y, frames[0]), args)
        moved = [AV]
        if len(frames) > 1:
            moved.append((_orthogonal_jvp(lambda z: vector_field(t, z, args), y, frames[1][0]),))
        if not orthonormalize:
            return f, tuple(moved), jnp.zeros_like(logs)
        out, rates = [], []
        for Q, AQ in zip(frames, moved):
            q = Q[0].shape[0]
            BN = _inner(Q, tuple(jnp.concatenate([a, b]) for a, b in zip(AQ, Q)))  # [QᵀAQ, QᵀQ]: one product
            B, E = BN[:, :q], BN[:, q:] - jnp.eye(q, dtype=BN.dtype)
            T = jnp.triu(B + B.T, 1) + jnp.diag(jnp.diagonal(B))
            C = T + (STABILIZE * E - T.T @ E - E @ T) / 2
            out.append(tuple(a - c for a, c in zip(AQ, _combine(C, Q))))
            rates.append(jnp.diagonal(B))
        (G_lift, G_r), (V_lift, _) = out[0], frames[0]
        lift = y[0]
        radial = (
            jnp.sum(lift * G_lift, -1) + jnp.sum(f[0] * V_lift, -1) + STABILIZE * jnp.sum(lift * V_lift, -1)
        )
        out[0] = (G_lift - (radial / jnp.sum(lift * lift, -1))[..., None] * lift, G_r)
        return f, tuple(out), jnp.concatenate(rates)

    return field


def _ambient_norm(d):
    """The error norm of the solve with its frames, each part's RMS taken as entries
    of R^{n×d} (the tokens' span coordinates embedded with zeros, as
    :func:`particles.simulate` measures the span solve, so that the reduction does not
    tighten the tolerance; the frame orthogonal to the span, (q, n), as q tangents
    with n nonzero entries): the larger of the state's and the frames'."""

    def norm(err):
        (lift, r), frames, _ = err
        w = lift.shape[-1]
        state = (jnp.sum(lift * lift) + jnp.sum(r * r)) / (lift.size // w * d + r.size)
        inside, *across = frames
        total = sum(jnp.sum(a * a) for P in frames for a in P)
        count = inside[0].size // w * d + sum(a.size for a in inside[1:]) + sum(P[0].size * d for P in across)
        return jnp.sqrt(jnp.maximum(state, total / count))

    return norm


def _variational_loop(problem, config, segs, x, V, U=None, *, orthonormalize, states=False, d=None):
    """The flow and its variational equation in one solve
    (:func:`particles._solver.tsit5_loop`, the steps controlled on the state and the
    frames: at rest, e.g. at consensus, steps controlled on the state alone grow far
    too long for the tangents): with ``orthonormalize`` the frames kept orthonormal
    along the way by the continuous QR method (:func:`_continuous_qr_field`), so that
    no direction is lost to rounding however long the horizon; else V' = Df V itself.

    ``V`` (k, n, w) tangents at the tokens x (n, w); ``U`` (q, n) or None: the frame
    orthogonal to the span (:func:`_orthogonal_jvp`); ``d`` the ambient dimension
    (default w), for the error norm (:func:`_ambient_norm`). Returns the frames at t1 in
    token coordinates (orthonormal, or DΦ V and DΦ U), the logs (Σ log|diag R| along
    the way, or log σ), frame by frame, and the tokens at ``segs.times`` (with
    ``states``; else None); NaN where the solve failed."""
    dtype = x.dtype
    if not isinstance(config.solver, (UnrolledTsit5, diffrax.Tsit5)):
        raise ValueError(
            f"solver={type(config.solver).__name__}: the variational equation is solved with Tsit5; drop solver="
        )
    lift = lambda z: _lifted(problem, z)
    y0, V0 = jax.vmap(lambda v: jax.jvp(lift, (x,), (v,)), out_axes=(None, 0))(V)
    frames = (V0,) if U is None else (V0, (_orthogonal_jvp(lift, x, U),))
    logs = jnp.zeros(sum(P[0].shape[0] for P in frames), dtype)
    if orthonormalize:  # D lift need not keep the start frame orthonormal
        frames, logs = _orthonormal_start(y0, frames)
    jumps = tuple(problem.jump_times()) if config.adaptive else ()
    ts = segs.times if states else segs.times[-1:]  # saves cost a copy of their buffer every step
    sol = tsit5_loop(
        _continuous_qr_field(orthonormalize), (y0, frames, logs), (problem.scheme, problem.attention),
        t0=problem.t0, t1=problem.t1, ts=jnp.asarray(ts, dtype), rtol=config.rtol, atol=config.atol,
        norm=_ambient_norm(x.shape[-1] if d is None else d), max_steps=config.max_steps, save_fn=lambda s: _tokens(s[0]),
        jump_ts=jumps or None, step_size=config.step_size,
    )  # fmt: skip
    y1, frames, logs = sol.y
    W = jax.vmap(lambda v: jax.jvp(_tokens, (y1,), (v,))[1])(frames[0])
    out = [_to_tangent(problem, _tokens(y1), W)]
    if U is not None:
        out.append(_orthogonal_jvp(_tokens, y1, frames[1][0]))
    parts, final = [], []
    for P in out:  # the last orthonormalisation, in token coordinates
        if orthonormalize:
            q, R = _qr(P)
            final.append(q)
            parts.append(jnp.log(jnp.abs(jnp.diagonal(R))))
        else:
            final.append(P)
            parts.append(_log_singular_values(P))
    bad = ~sol.ok
    nan = lambda a: jnp.where(bad, jnp.nan, a)  # noqa: E731
    return [nan(a) for a in final], nan(logs + jnp.concatenate(parts)), sol.saves if states else None


def _forward_sweep(problem, config, segs, x, Q, orthonormalize=True):
    """Benettin's sweep through the layers: the tangent frame Q (k, n, d) pushed by the
    exact JVP of each layer, re-orthonormalised by a QR after every layer. Returns the
    final frame, Σ_s log|diag R_s| (k), and the states (S + 1, n, d). Without
    ``orthonormalize``: the frame DΦ Q itself and its log σ."""

    def body(carry, s):
        x, Q, logs = carry
        x1, W = segs.push(problem, x, s, Q)
        W = _to_tangent(problem, x1, W)
        if not orthonormalize:
            return (x1, W, logs), x
        Q1, r = _qr(W)
        return (x1, Q1, logs + jnp.log(jnp.abs(jnp.diagonal(r)))), x

    init = (x, Q, jnp.zeros(Q.shape[0], x.dtype))
    (last, Q, logs), xs = jax.lax.scan(body, init, jnp.arange(segs.count))
    if not orthonormalize:
        logs = _log_singular_values(Q)
    return Q, logs, jnp.concatenate([xs, last[None]])


def _push_frame(problem, config, segs, x, Q, orthonormalize, states):
    """(frame, logs, states at the boundaries or None): through the layers, or along
    the ODE; logs Σ log|diag R|, or log σ of the frame without ``orthonormalize``."""
    if segs.layered:
        return _forward_sweep(problem, config, segs, x, Q, orthonormalize)
    (frame,), logs, xs = _variational_loop(
        problem, config, segs, x, Q, orthonormalize=orthonormalize, states=states
    )
    return frame, logs, xs


def _qr_exponents(problem, config, segs, x, k, key, states=False):
    """Top-k exponents by Benettin's method from a random tangent frame: (logs, states)."""
    tangent = _Tangent.at(problem, x)
    c = jax.random.normal(key, (k, *tangent.shape(x)), x.dtype)
    Q, _ = _qr(jax.vmap(tangent.embed)(c))
    _, logs, xs = _push_frame(problem, config, segs, x, Q, True, states)
    return logs, xs


def _jacobian_exponents(problem, config, segs, x, k, states=False):
    """Top-k exponents from the singular values of the whole tangent Jacobian DΦ U
    (U an orthonormal basis of the tangent space at x): (log σ (k), states)."""
    _, log_sigma, xs = _push_frame(
        problem, config, segs, x, _Tangent.at(problem, x).identity(x), False, states
    )
    return log_sigma[:k], xs


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
    tangent = _Tangent.at(problem, x)
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
    by :func:`_orthogonal_jvp`; M's log σ counted d − n times. (log σ (k), None)."""
    n, d = x.shape
    basis = span_basis(x / jnp.linalg.norm(x, axis=-1, keepdims=True))  # (n, d)
    c = jnp.einsum("id,kd->ik", x, basis)
    tangent = _Tangent.at(problem, c)
    if method == "jacobian":
        inside, across = tangent.identity(c), jnp.eye(n, dtype=x.dtype)
    else:
        k_in, key_out = min(k, math.prod(tangent.shape(c))), jax.random.fold_in(key, 1)
        inside, _ = _qr(jax.vmap(tangent.embed)(jax.random.normal(key, (k_in, *tangent.shape(c)), x.dtype)))
        across = jnp.linalg.qr(jax.random.normal(key_out, (n, min(k, n)), x.dtype))[0].T
    _, logs, _ = _variational_loop(
        problem, config, segs, c, inside, across, orthonormalize=method != "jacobian", d=d
    )
    m = inside.shape[0]
    merged = jnp.concatenate([logs[:m], jnp.repeat(logs[m:], d - n)])
    return jnp.sort(merged)[::-1][:k], None


def _lyapunov_one(p, x0, config, segs, k, method, local, seed, span):
    """The exponents (k) of one trajectory and, with ``local``, its local ones (S + 1, k)."""
    key = jax.random.key(seed)
    x = _start(p, x0)
    if span:
        logs, _ = _span_exponents(p, config, segs, x, k, method, key)
    elif method == "jacobian":
        logs, xs = _jacobian_exponents(p, config, segs, x, k, local)
    else:
        logs, xs = _qr_exponents(p, config, segs, x, k, key, local)
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
    steps controlled on both (:func:`_continuous_qr_field`; the jacobian method solves
    dV/dt = Df V itself); with ``layers`` the tangents are exact JVPs of each layer,
    re-orthonormalised by a QR after every layer. "auto" is "jacobian" up to
    :data:`JACOBIAN_MAX` = 128 tangent directions or when all exponents are asked for,
    and "qr" beyond (measured: 496 directions cost 571 ms by "jacobian", 11 ms by "qr"
    with k = 8; docs/sensitivity.md). ``seed``: the random start frame of "qr".
    ``local=True`` adds the instantaneous exponents at ``ts`` (ODE mode)."""
    problem, config = _setup(x0, scheme, beta, t1, simulate_options)
    check_choice("method", method, LYAPUNOV_METHODS)
    dim = tangent_dim(problem)
    k = _check_k(k, dim)
    if local and problem.layers is not None:
        raise ValueError("local=True applies to the ODE mode (a vector field); drop it with layers=L")
    if method == "auto":
        method = "jacobian" if dim <= JACOBIAN_MAX or k == dim else "qr"
    if problem.layers is None and config.ts is None:  # re-orthonormalise once per unit of time
        every = np.append(np.arange(problem.t0, problem.t1, 1.0)[1:], problem.t1)
        config = dataclasses.replace(config, ts=tuple(every.tolist()))
    segs = _segments(problem, config)
    n, d = problem.x0.shape[-2:]
    span = bool(problem.layers is None and problem.keeps_span and n < d and config.reduce_span and not local)
    ex, loc = _batched(problem, _lyapunov_one, config, segs, k, method, local, seed, span)
    ex = _unflatten(problem, ex)
    loc = None if loc is None else _unflatten(problem, loc)
    return LyapunovSpectrum(ex, np.asarray(segs.times), loc, method, problem.describe())


# -- Lanczos ----------------------------------------------------------------------------


def lanczos(matvec: Callable, dim: int, k: int, *, iters: int | None = None, key=None, dtype=None):
    """The k largest eigenvalues (descending) and their vectors (k, dim) of the symmetric
    operator ``matvec`` on R^dim, by ``iters`` Lanczos steps (default min(dim, 2k + 30))
    with full re-orthogonalisation (Gram–Schmidt twice), restarting from a fresh random
    direction orthogonal to the Krylov basis when it breaks down (an invariant
    subspace). With iters = dim the tridiagonal matrix is similar to the operator: every
    eigenvalue, multiplicities included."""
    iters = min(dim, 2 * k + 30) if iters is None else min(check_int("iters", iters, minimum=k), dim)
    key = jax.random.key(0) if key is None else key
    dtype = dtype or jnp.float32
    tiny = jnp.sqrt(jnp.finfo(dtype).eps)

    def orthogonalize(w, V):
        for _ in range(2):
            w = w - V.T @ (V @ w)
        return w

    def body(j, state):
        V, alpha, off = state
        v = V[j]
        w = matvec(v)
        a = jnp.vdot(v, w)
        w = orthogonalize(w, V)
        b = jnp.linalg.norm(w)
        fresh = orthogonalize(jax.random.normal(jax.random.fold_in(key, j + 1), (dim,), dtype), V)
        broke = b <= tiny * jnp.maximum(jnp.abs(a), jnp.linalg.norm(jnp.abs(alpha), jnp.inf) + 1e-30)
        w = jnp.where(broke, fresh / jnp.linalg.norm(fresh), w / jnp.where(b > 0, b, 1))
        V = V.at[j + 1].set(jnp.where(j + 1 < iters, w, 0))
        return V, alpha.at[j].set(a), off.at[j].set(jnp.where(broke, 0, b))

    v0 = jax.random.normal(key, (dim,), dtype)
    V = jnp.zeros((iters + 1, dim), dtype).at[0].set(v0 / jnp.linalg.norm(v0))
    init = (V, jnp.zeros(iters, dtype), jnp.zeros(iters, dtype))
    V, alpha, off = jax.lax.fori_loop(0, iters, body, init)
    T = jnp.diag(alpha) + jnp.diag(off[:-1], 1) + jnp.diag(off[:-1], -1)
    theta, S = jnp.linalg.eigh(T)
    order = jnp.argsort(theta)[::-1][:k]
    return theta[order], (V[:iters].T @ S[:, order]).T


# -- gradients --------------------------------------------------------------------------


def _check_loss(loss, problem: Problem):
    """A callable of the tokens (n, d) returning a scalar, or a one-line ValueError."""
    if not callable(loss):
        raise ValueError(f"loss={loss!r} must be a function of the final tokens (n, d) returning a scalar")
    n, d = problem.x0.shape[-2:]
    with precision(problem.dtype):
        out = jax.eval_shape(loss, jax.ShapeDtypeStruct((n, d), problem.dtype))
    if not hasattr(out, "shape") or out.shape != ():
        raise ValueError(
            f"loss must return a scalar; it returned {getattr(out, 'shape', type(out).__name__)}"
        )
    return loss


def _offset_gradients(problem, config, segs, loss, x0, checkpoint):
    """∂ℓ/∂x_s (S + 1, n, d) for ℓ = loss(x_S): the gradient with respect to an offset
    added to each state of the chain (one reverse pass)."""

    def f(offsets):
        return loss(_chain(problem, config, segs, x0, offsets=offsets, checkpoint=checkpoint)[0])

    return jax.grad(f)(jnp.zeros((segs.count + 1, *x0.shape), x0.dtype))


@eqx.filter_jit
def _over_batch(fn, problem, *args):
    """fn(single problem, x0, *args) over the flattened batch (``fn`` and the non-array
    ``args`` static: a second call with the same ones reuses the compiled program). One
    trajectory is solved as it is: under ``vmap`` the small matrix products of the
    frame become batched products, slower on a CPU (measured, docs/sensitivity.md)."""
    one = lambda x0, beta: fn(_single(problem, x0, beta), x0, *args)  # noqa: E731
    x0, beta = _flat(problem)
    if x0.shape[0] == 1:
        return jax.tree.map(lambda a: a[None], one(x0[0], beta[0]))
    return jax.vmap(one)(x0, beta)


def _batched(problem, fn, *args):
    with precision(problem.dtype):
        return _over_batch(fn, problem, *args)


def _gradients_at(p, x, config, segs, loss, checkpoint, index):
    return _offset_gradients(p, config, segs, loss, x, checkpoint)[np.asarray(index)]


def layer_gradients(
    x0: Float[ArrayLike, "*batch n d"],
    scheme,
    *,
    loss,
    beta,
    t1,
    layers: int,
    checkpoint: bool = True,
    **simulate_options,
) -> Float[Array, "layers_plus_1 *batch n d"]:
    """∂ℓ/∂x_l, l = 0..L, for ℓ = ``loss``(x_L) (a JAX function of the output tokens
    (n, d) returning a scalar): x_l is the input of layer l + 1 (x_0 = x0), through the
    layer maps of :func:`particles.simulate` with ``layers=L``. Shape (L + 1, *batch, n,
    d). One reverse pass: DΦ_lᵀ applied from the top, ``checkpoint``: each layer
    recomputed in the backward pass (``jax.checkpoint``), so only the L + 1 states are
    kept. The backward-stability profile |∂ℓ/∂x_l| of Zhang et al., arXiv 2510.09904."""
    problem, config = _setup(x0, scheme, beta, t1, {**simulate_options, "layers": layers})
    loss = _check_loss(loss, problem)
    segs = _segments(problem, config)
    index = tuple(range(segs.count + 1))
    out = _batched(problem, _gradients_at, config, segs, loss, checkpoint, index)
    return _unflatten(problem, out, lead=1)


def gradients(
    x0: Float[ArrayLike, "*batch n d"],
    scheme,
    *,
    loss,
    beta,
    t1,
    ts=None,
    **simulate_options,
) -> Float[Array, "T *batch n d"]:
    """The adjoint ∂ℓ/∂x(t) at the save times ``ts`` (default: those of
    :func:`particles.simulate`) for ℓ = ``loss``(x(t1)), in the ODE mode: one reverse
    pass through the solves between save times (diffrax's recursive checkpointing).
    Shape (T, *batch, n, d); on the spheres the component along each θ_i is that of
    the lifted coordinates (the flow divides by |x_i| first)."""
    if simulate_options.get("layers") is not None:
        raise ValueError("gradients() is the ODE mode; with layers=L use layer_gradients()")
    problem, config = _setup(x0, scheme, beta, t1, simulate_options)
    loss = _check_loss(loss, problem)
    segs = _segments(problem, config, ts)
    wanted = save_times(problem.t0, problem.t1, ts)
    index = tuple(np.searchsorted(np.asarray(segs.times), wanted).tolist())
    out = _batched(problem, _gradients_at, config, segs, loss, False, index)
    return _unflatten(problem, out, lead=1)


# -- weights ----------------------------------------------------------------------------

_MLP_NAMES = ("W1", "b1", "W2", "b2")


def _weights(problem: Problem, names, materialize=False) -> dict:
    """The problem's weights by name (Q, K, V, W1, b1, W2, b2, gamma, bias); absent
    ones left out, or with ``materialize`` given their default value (identity
    attention weights (1, 1, d, d), γ = 1, b = 0)."""
    d, dtype = problem.x0.shape[-1], problem.dtype
    att, mlp, norm = problem.attention, problem.mlp, problem.norm
    out = {}
    for name in names:
        if name in ("Q", "K", "V"):
            w = getattr(att, name)
            if w is None and materialize:
                w = jnp.eye(d, dtype=dtype)[None, None]
        elif name in _MLP_NAMES:
            w = None if mlp is None else getattr(mlp, name)
        else:
            w = getattr(norm, name)
            if (
                w is None
                and materialize
                and norm.kind != "projection"
                and not (name == "bias" and norm.kind == "rmsnorm")
            ):
                w = (jnp.ones if name == "gamma" else jnp.zeros)(d, dtype)
        if w is not None:
            out[name] = jnp.asarray(w)
    return out


def _with_weights(problem: Problem, weights: dict) -> Problem:
    """The problem with some weights replaced (identity attention weights given
    explicitly where the problem had None)."""
    where = {"Q": lambda p: p.attention.Q, "K": lambda p: p.attention.K, "V": lambda p: p.attention.V,
             "gamma": lambda p: p.norm.gamma, "bias": lambda p: p.norm.bias}  # fmt: skip
    for name in _MLP_NAMES:
        where[name] = lambda p, name=name: getattr(p.mlp, name)
    for name, w in weights.items():
        problem = eqx.tree_at(where[name], problem, w, is_leaf=lambda v: v is None)
    return problem


def _layer_axis(problem: Problem, name: str, w) -> bool:
    """Whether weight ``name`` has a leading axis of one entry per layer."""
    if name in ("Q", "K", "V"):
        return w.shape[0] > 1 or problem.layers == 1
    base = {"gamma": 1, "bias": 1}.get(name, {"W1": 2, "b1": 1, "W2": 2, "b2": 1}.get(name))
    return w.ndim > base


_WEIGHT_NAMES = ("Q", "K", "V", *_MLP_NAMES, "gamma", "bias")


def _weight_grads(p, x, config, segs, loss):
    f = lambda w: loss(_chain(_with_weights(p, w), config, segs, _start(p, x), checkpoint=segs.layered)[0])
    return jax.grad(f)(_weights(p, _WEIGHT_NAMES))


@dataclasses.dataclass(frozen=True)
class WeightGradients:
    """∂ℓ/∂w for every weight w of the layers (``grads``: name ↦ array of shape (*batch,
    *w.shape)) and the per-layer profile ``norms``: sublayer ↦ (*batch, L) Frobenius
    norms, "Q", "K", "V" (attention), "mlp" (W1, b1, W2, b2 together), "gamma",
    "bias" (the norm's), for the weights that have one entry per layer."""

    grads: dict
    norms: dict


def weight_gradients(
    x0: Float[ArrayLike, "*batch n d"], scheme, *, loss, beta, t1, **simulate_options
) -> WeightGradients:
    """The gradient of ℓ = ``loss``(x(t1)) with respect to each layer's weights (Q, K,
    V, the MLP's, γ, b), per trajectory, grouped by layer and sublayer: the "gradient
    norm per layer" profile of Zhang et al., arXiv 2510.09904. Discrete layers
    (``layers=L``) or the ODE (weights per unit time)."""
    problem, config = _setup(x0, scheme, beta, t1, simulate_options)
    loss = _check_loss(loss, problem)
    segs = _segments(problem, config)
    weights = _weights(problem, _WEIGHT_NAMES)

    grads = {
        name: _unflatten(problem, g)
        for name, g in _batched(problem, _weight_grads, config, segs, loss).items()
    }
    b = len(problem.batch_shape)
    per_layer = lambda g: jnp.sqrt(jnp.sum(g.reshape(*g.shape[: b + 1], -1) ** 2, axis=-1))
    norms = {name: per_layer(g) for name, g in grads.items() if _layer_axis(problem, name, weights[name])}
    mlp = [norms.pop(name) for name in _MLP_NAMES if name in norms]
    if mlp:
        norms["mlp"] = jnp.sqrt(sum(m**2 for m in mlp))
    return WeightGradients(grads, norms)


# -- Hessian spectra --------------------------------------------------------------------

_GROUPS = {"Q": ("Q",), "K": ("K",), "V": ("V",), "mlp": _MLP_NAMES, "gamma": ("gamma",), "bias": ("bias",)}


@dataclasses.dataclass(frozen=True)
class HessianSpectrum:
    """The top ``k`` eigenvalues (*batch, k), descending, of the Hessian of the loss with
    respect to ``wrt`` (of ``layer``, or all layers when None), and with
    ``vectors=True`` the eigenvectors (*batch, k, N) in the flattened coordinates
    (``jax.flatten_util.ravel_pytree`` of the parameters: x0 (n, d); the arrays of a
    weight group in the order W1, b1, W2, b2)."""

    eigenvalues: Float[ArrayLike, "*batch k"]
    vectors: Float[ArrayLike, "*batch k N"] | None
    wrt: str
    layer: int | None
    method: str


def _check_parameters(problem: Problem, wrt: str, layer):
    """Check that the problem has the parameters ``wrt`` names (and ``layer``)."""
    if wrt == "x0":
        return None
    weights = _weights(problem, _GROUPS[wrt], materialize=True)
    if not weights:
        need = "an mlp" if wrt == "mlp" else "norm='layernorm' (or 'rmsnorm' for gamma)"
        raise ValueError(f"wrt={wrt!r}: the problem has no such weights; give {need}")
    if layer is None:
        return
    layered = {name: w for name, w in weights.items() if _layer_axis(problem, name, w)}
    if not layered:
        raise ValueError(
            f"layer={layer}: the {wrt} weights are shared by all layers (no layer axis); drop layer"
        )
    size = min(w.shape[0] for w in layered.values())
    layer = check_int("layer", layer, minimum=0)
    if layer >= size:
        raise ValueError(
            f"layer={layer} is out of range: the {wrt} weights have {size} layers (0..{size - 1})"
        )


def _hessian_loss(problem, config, segs, loss, wrt, layer, x0):
    """(the flat parameters, ℓ as a function of them) for one trajectory."""
    adjoint = None if segs.layered else diffrax.DirectAdjoint()  # forward-over-reverse through diffrax
    run = lambda p, x: loss(_chain(p, config, segs, x, adjoint=adjoint)[0])
    if wrt == "x0":
        flat, unravel = jax.flatten_util.ravel_pytree(x0)
        return flat, lambda v: run(problem, unravel(v))
    weights = _weights(problem, _GROUPS[wrt], materialize=True)
    if layer is None:
        flat, unravel = jax.flatten_util.ravel_pytree(weights)
        return flat, lambda v: run(_with_weights(problem, unravel(v)), x0)
    part = {name: w[layer] for name, w in weights.items() if _layer_axis(problem, name, w)}
    flat, unravel = jax.flatten_util.ravel_pytree(part)

    def f(v):
        new = {name: weights[name].at[layer].set(w) for name, w in unravel(v).items()}
        return run(_with_weights(problem, new), x0)

    return flat, f


def _hessian_top(p, x, config, segs, loss, wrt, layer, method, k, steps, seed):
    flat, f = _hessian_loss(p, config, segs, loss, wrt, layer, x)
    if method == "dense":
        vals, vecs = jnp.linalg.eigh(jax.hessian(f)(flat))
        return vals[::-1][:k], vecs[:, ::-1][:, :k].T
    hvp = lambda v: jax.jvp(jax.grad(f), (flat,), (v,))[1]
    return lanczos(hvp, flat.shape[0], k, iters=steps, key=jax.random.key(seed), dtype=flat.dtype)


def hessian_spectrum(
    x0: Float[ArrayLike, "*batch n d"],
    scheme,
    *,
    loss,
    wrt: str,
    k: int,
    beta,
    t1,
    layer: int | None = None,
    vectors: bool = False,
    method: str = "auto",
    iters: int | None = None,
    seed: int = 0,
    **simulate_options,
) -> HessianSpectrum:
    """The top-k eigenvalues (the k largest, descending) of the Hessian of ℓ =
    ``loss``(x(t1)) with respect to ``wrt``: "x0" (the tokens), "Q", "K", "V", "mlp"
    (W1, b1, W2, b2), "gamma", "bias" (the norm's), all layers or one ``layer``.
    Identity attention weights and a default γ = 1, b = 0 are differentiated at those
    values. "lanczos": ``iters`` Lanczos steps (:func:`lanczos`, default 2k + 30) on
    Hessian-vector products Hv = ∂_ε ∇ℓ(p + εv) (forward-over-reverse: a JVP of the
    gradient; diffrax's DirectAdjoint in the ODE mode), never forming the Hessian;
    "dense": ``jax.hessian`` and its eigendecomposition; "auto": dense when the
    parameters are no more than the Lanczos steps. The curvature blocks of Petrov et al.,
    arXiv 2510.16927 (MODEL.md §9)."""
    problem, config = _setup(x0, scheme, beta, t1, simulate_options)
    check_choice("wrt", wrt, WRT)
    check_choice("method", method, HESSIAN_METHODS)
    if wrt == "x0" and layer is not None:
        raise ValueError("layer= selects weights; wrt='x0' has none")
    loss = _check_loss(loss, problem)
    _check_parameters(problem, wrt, layer)
    segs = _segments(problem, config)
    with precision(problem.dtype):
        x, beta = (a[0] for a in _flat(problem))
        one = _single(problem, x, beta)
        dim = jax.eval_shape(lambda: _hessian_loss(one, config, segs, loss, wrt, layer, x)[0]).shape[0]
    k = _check_k(k, dim)
    steps = min(dim, 2 * k + 30) if iters is None else min(check_int("iters", iters, minimum=k), dim)
    if method == "auto":
        method = "dense" if dim <= steps else "lanczos"

    vals, vecs = _batched(problem, _hessian_top, config, segs, loss, wrt, layer, method, k, steps, seed)
    vals = _unflatten(problem, vals)
    return HessianSpectrum(vals, _unflatten(problem, vecs) if vectors else None, wrt, layer, method)


# -- the stability profile of a layer stack ---------------------------------------------


def random_readout(key, n: int, d: int, dtype=None) -> Callable:
    """ℓ(x) = Σ_i ⟨g_i, x_i⟩/(n√d) with g fixed i.i.d. N(0, 1) (``key``: a jax.random key
    or an int seed): a random linear read-out of the output tokens, the loss of the
    stability profiles (its gradient at the output has norm ≈ 1/√n)."""
    from ._validate import as_key, default_dtype

    g = jax.random.normal(as_key(key), (n, d), dtype or default_dtype())
    return lambda x: jnp.sum(g.astype(x.dtype) * x) / (n * math.sqrt(d))


def stability_profile(
    x0: Float[ArrayLike, "*batch n d"], scheme, *, loss, beta, t1, layers: int, **simulate_options
):
    """The depth profile of a layer stack (Zhang et al., arXiv 2510.09904) as an
    ``xarray.Dataset`` over ``layer`` = 0..L (the input of layer l + 1; L the output):
    ``hidden_norm`` the mean token norm mean_i |x_l,i|, ``gradient_norm`` |∂ℓ/∂x_l|
    (Frobenius, :func:`layer_gradients`) and, per layer (``block`` = 1..L),
    ``grad_Q``, ``grad_K``, ``grad_V``, ``grad_mlp``, ``grad_gamma``, ``grad_bias``:
    the norms of the gradient with respect to that layer's weights
    (:func:`weight_gradients`). Leading batch dimensions are flattened into ``sample``."""
    import xarray as xr

    from ._simulate import simulate

    options = {**simulate_options, "layers": layers}
    traj = simulate(x0, scheme, beta=beta, t1=t1, **options)
    hidden = np.moveaxis(np.mean(np.asarray(traj.r), axis=-1), -1, 0)  # (L + 1, *batch)
    grads = np.asarray(layer_gradients(x0, scheme, loss=loss, beta=beta, t1=t1, **options))
    gnorm = np.sqrt(np.sum(grads**2, axis=(-1, -2)))
    weights = weight_gradients(x0, scheme, loss=loss, beta=beta, t1=t1, **options).norms
    batch = hidden.shape[1:]
    lead, flat = (("sample",), (-1,)) if batch else ((), ())
    per_depth = lambda a: (("layer", *lead), np.asarray(a).reshape(a.shape[0], *flat))
    data = {"hidden_norm": per_depth(hidden), "gradient_norm": per_depth(gnorm)}
    for name, w in weights.items():
        w = np.moveaxis(np.asarray(w), -1, 0)
        data[f"grad_{name}"] = (("block", *lead), w.reshape(w.shape[0], *flat))
    coords = {"layer": np.arange(layers + 1), "block": np.arange(1, layers + 1)}
    return xr.Dataset(data, coords=coords, attrs={"scheme": str(scheme), "layers": layers})
