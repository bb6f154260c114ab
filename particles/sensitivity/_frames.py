"""Tangent frames pushed along the flow (continuous QR, Dieci, Russell and Van Vleck
1997) or through the layers (Benettin's QR after every layer)."""

import math

import diffrax
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from .._solver import UnrolledTsit5, tsit5_loop
from ._chain import Tangent, to_tangent
from ._flowmap import lifted, tokens, variational_field, vector_field


def qr_frame(W):
    """Orthonormal rows spanning the rows of W (k, n, d), and the k × k triangle R."""
    k = W.shape[0]
    q, r = jnp.linalg.qr(W.reshape(k, -1).T)
    return q.T.reshape(W.shape), r


def log_singular_values(W):
    """log σ of the frame W (k, n, d) as k vectors, descending."""
    return jnp.log(jnp.linalg.svd(W.reshape(W.shape[0], -1), compute_uv=False))


# A frame is a tuple of arrays with the frame's vector index first: the tangents' leaves
# (lift (k, n, w) and r (k, n) in the lifted coordinates, or tokens (k, n, w)), or, in
# the span reduction, one (q, n) array: q vectors on the token index that move along a
# direction orthogonal to the span (:func:`orthogonal_jvp`).


def frame_inner(P, R):
    """The q × q matrix of inner products ⟨P_i, R_j⟩ of two frames."""
    return sum(
        jnp.tensordot(p, r, axes=(tuple(range(1, p.ndim)), tuple(range(1, r.ndim)))) for p, r in zip(P, R)
    )


def frame_combine(C, P):
    """The vectors Σ_i C_ij P_i: the frame (as the columns of a matrix) times C."""
    return tuple(jnp.tensordot(C, p, axes=(0, 0)) for p in P)


def frame_matrix(P):
    """The frame's vectors as the columns of an (N, q) matrix."""
    return jnp.concatenate([p.reshape(p.shape[0], -1) for p in P], axis=1).T


def frame_unmatrix(M, P):
    """The inverse of :func:`frame_matrix`, shaped like the frame P."""
    sizes = np.cumsum([math.prod(p.shape[1:]) for p in P])[:-1].tolist()
    return tuple(m.T.reshape(p.shape) for m, p in zip(jnp.split(M, sizes), P))


def orthogonal_jvp(fn, y, U):
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


def orthonormal_start(y, frames):
    """The start frames made orthonormal in the lifted coordinates: (frames, Σ log|diag R|).

    The lift's radial directions are quotiented out of the tangents first,
    V_i ← V_i − c_i lift_i with c_i = ⟨lift_i, V_i⟩/|lift_i|² (the tokens r lift/|lift|
    do not see them), then each frame V = Q R is replaced by Q."""
    lift, (V_lift, V_r) = y[0], frames[0]
    c = jnp.sum(V_lift * lift, -1) / jnp.sum(lift * lift, -1)  # (k, n)
    frames = ((V_lift - c[..., None] * lift, V_r), *frames[1:])
    out, logs = [], []
    for P in frames:
        q, R = jnp.linalg.qr(frame_matrix(P))
        out.append(frame_unmatrix(q, P))
        logs.append(jnp.log(jnp.abs(jnp.diagonal(R))))
    return tuple(out), jnp.concatenate(logs)


STABILIZE = 1.0  # rate at which drift off the frame's constraints decays


def continuous_qr_field(orthonormalize):
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
        f, AV = variational_field(t, (y, frames[0]), args)
        moved = [AV]
        if len(frames) > 1:
            moved.append((orthogonal_jvp(lambda z: vector_field(t, z, args), y, frames[1][0]),))
        if not orthonormalize:
            return f, tuple(moved), jnp.zeros_like(logs)
        out, rates = [], []
        for Q, AQ in zip(frames, moved):
            q = Q[0].shape[0]
            BN = frame_inner(
                Q, tuple(jnp.concatenate([a, b]) for a, b in zip(AQ, Q))
            )  # [QᵀAQ, QᵀQ]: one product
            B, E = BN[:, :q], BN[:, q:] - jnp.eye(q, dtype=BN.dtype)
            T = jnp.triu(B + B.T, 1) + jnp.diag(jnp.diagonal(B))
            C = T + (STABILIZE * E - T.T @ E - E @ T) / 2
            out.append(tuple(a - c for a, c in zip(AQ, frame_combine(C, Q))))
            rates.append(jnp.diagonal(B))
        (G_lift, G_r), (V_lift, _) = out[0], frames[0]
        lift = y[0]
        radial = (
            jnp.sum(lift * G_lift, -1) + jnp.sum(f[0] * V_lift, -1) + STABILIZE * jnp.sum(lift * V_lift, -1)
        )
        out[0] = (G_lift - (radial / jnp.sum(lift * lift, -1))[..., None] * lift, G_r)
        return f, tuple(out), jnp.concatenate(rates)

    return field


def ambient_norm(d):
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


def variational_loop(problem, config, segs, x, V, U=None, *, orthonormalize, states=False, d=None):
    """The flow and its variational equation in one solve
    (:func:`particles._solver.tsit5_loop`, the steps controlled on the state and the
    frames: at rest, e.g. at consensus, steps controlled on the state alone grow far
    too long for the tangents): with ``orthonormalize`` the frames kept orthonormal
    along the way by the continuous QR method (:func:`continuous_qr_field`), so that
    no direction is lost to rounding however long the horizon; else V' = Df V itself.

    ``V`` (k, n, w) tangents at the tokens x (n, w); ``U`` (q, n) or None: the frame
    orthogonal to the span (:func:`orthogonal_jvp`); ``d`` the ambient dimension
    (default w), for the error norm (:func:`ambient_norm`). Returns the frames at t1 in
    token coordinates (orthonormal, or DΦ V and DΦ U), the logs (Σ log|diag R| along
    the way, or log σ), frame by frame, and the tokens at ``segs.times`` (with
    ``states``; else None); NaN where the solve failed."""
    dtype = x.dtype
    if not isinstance(config.solver, (UnrolledTsit5, diffrax.Tsit5)):
        raise ValueError(
            f"solver={type(config.solver).__name__}: the variational equation is solved with Tsit5; drop solver="
        )
    lift = lambda z: lifted(problem, z)
    y0, V0 = jax.vmap(lambda v: jax.jvp(lift, (x,), (v,)), out_axes=(None, 0))(V)
    frames = (V0,) if U is None else (V0, (orthogonal_jvp(lift, x, U),))
    logs = jnp.zeros(sum(P[0].shape[0] for P in frames), dtype)
    if orthonormalize:  # D lift need not keep the start frame orthonormal
        frames, logs = orthonormal_start(y0, frames)
    jumps = tuple(problem.jump_times()) if config.adaptive else ()
    ts = segs.times if states else segs.times[-1:]  # saves cost a copy of their buffer every step
    sol = tsit5_loop(
        continuous_qr_field(orthonormalize), (y0, frames, logs), (problem.scheme, problem.attention),
        t0=problem.t0, t1=problem.t1, ts=jnp.asarray(ts, dtype), rtol=config.rtol, atol=config.atol,
        norm=ambient_norm(x.shape[-1] if d is None else d), max_steps=config.max_steps, save_fn=lambda s: tokens(s[0]),
        jump_ts=jumps or None, step_size=config.step_size,
    )  # fmt: skip
    y1, frames, logs = sol.y
    W = jax.vmap(lambda v: jax.jvp(tokens, (y1,), (v,))[1])(frames[0])
    out = [to_tangent(problem, tokens(y1), W)]
    if U is not None:
        out.append(orthogonal_jvp(tokens, y1, frames[1][0]))
    parts, final = [], []
    for P in out:  # the last orthonormalisation, in token coordinates
        if orthonormalize:
            q, R = qr_frame(P)
            final.append(q)
            parts.append(jnp.log(jnp.abs(jnp.diagonal(R))))
        else:
            final.append(P)
            parts.append(log_singular_values(P))
    bad = ~sol.ok
    nan = lambda a: jnp.where(bad, jnp.nan, a)  # noqa: E731
    return [nan(a) for a in final], nan(logs + jnp.concatenate(parts)), sol.saves if states else None


def forward_sweep(problem, config, segs, x, Q, orthonormalize=True):
    """Benettin's sweep through the layers: the tangent frame Q (k, n, d) pushed by the
    exact JVP of each layer, re-orthonormalised by a QR after every layer. Returns the
    final frame, Σ_s log|diag R_s| (k), and the states (S + 1, n, d). Without
    ``orthonormalize``: the frame DΦ Q itself and its log σ."""

    def body(carry, s):
        x, Q, logs = carry
        x1, W = segs.push(problem, x, s, Q)
        W = to_tangent(problem, x1, W)
        if not orthonormalize:
            return (x1, W, logs), x
        Q1, r = qr_frame(W)
        return (x1, Q1, logs + jnp.log(jnp.abs(jnp.diagonal(r)))), x

    init = (x, Q, jnp.zeros(Q.shape[0], x.dtype))
    (last, Q, logs), xs = jax.lax.scan(body, init, jnp.arange(segs.count))
    if not orthonormalize:
        logs = log_singular_values(Q)
    return Q, logs, jnp.concatenate([xs, last[None]])


def push_frame(problem, config, segs, x, Q, orthonormalize, states):
    """(frame, logs, states at the boundaries or None): through the layers, or along
    the ODE; logs Σ log|diag R|, or log σ of the frame without ``orthonormalize``."""
    if segs.layered:
        return forward_sweep(problem, config, segs, x, Q, orthonormalize)
    (frame,), logs, xs = variational_loop(
        problem, config, segs, x, Q, orthonormalize=orthonormalize, states=states
    )
    return frame, logs, xs


def qr_exponents(problem, config, segs, x, k, key, states=False):
    """Top-k exponents by Benettin's method from a random tangent frame: (logs, states)."""
    tangent = Tangent.at(problem, x)
    c = jax.random.normal(key, (k, *tangent.shape(x)), x.dtype)
    Q, _ = qr_frame(jax.vmap(tangent.embed)(c))
    _, logs, xs = push_frame(problem, config, segs, x, Q, True, states)
    return logs, xs


def jacobian_exponents(problem, config, segs, x, k, states=False):
    """Top-k exponents from the singular values of the whole tangent Jacobian DΦ U
    (U an orthonormal basis of the tangent space at x): (log σ (k), states)."""
    _, log_sigma, xs = push_frame(problem, config, segs, x, Tangent.at(problem, x).identity(x), False, states)
    return log_sigma[:k], xs
