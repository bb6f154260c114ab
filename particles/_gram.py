"""The flow of a speed scheme on the Gram matrix G = ΘΘᵀ, for Q = K = V = I (MODEL.md §8).

With identity weights the attention weights depend on the tokens only through their
inner products, and A_i = Σ_j w_ij θ_j is a combination of the tokens, so the direction
flow dθ_i/dt = P_{θ_i} A_i / s_i (Karagodin et al., arXiv 2510.22026) closes on
G_ij = ⟨θ_i, θ_j⟩ and the radii r_i. With W the weights,

    ⟨A_i, θ_j⟩ = (WG)_ij,    a_i = ⟨θ_i, A_i⟩ = (WG)_ii,    |A_i|² = (W G Wᵀ)_ii = Σ_j (WG)_ij W_ij,

so ⟨dθ_i/dt, θ_j⟩ = ((WG)_ij − a_i G_ij)/s_i =: M_ij and

    dG/dt = M + Mᵀ,    M = S⁻¹ (WG − diag(a) G),    dr_i/dt = radial_rate(t, r_i, a_i, |A_i|),

with s_i = speed(t, r_i, a_i, |A_i|): every input of a speed scheme is a function of
(G, r), so the radii of pre, peri, mix and spannorm close too. W = softmax(βG) row-wise
(USA: e^{βG}/n; causal: keys j ≤ i only). Schemes that attend to the tokens x = rθ
(NoNorm) have weights softmax_j(β r_i r_j G_ij) and A_i = Σ_j w_ij r_j θ_j: the same
formulas with W replaced by W diag(r). On G_ii = 1, M_ii = a_i (1 − G_ii)/s_i = 0.

Computed in D = 1 − G (the halved squared chord distances |θ_i − θ_j|²/2), with
z_i = Σ_j W_ij (1 for softmax), WG = z1ᵀ − WD and a_i = z_i − (WD)_ii:

    s_i M_ij = (WD)_ii − (WD)_ij + a_i D_ij,    dD/dt = −(M + Mᵀ),

every term of order D: no cancellation of 1s once the tokens cluster, and M_ii = 0
exactly. One n × n × n product (WD) per evaluation and d nowhere.

:func:`solve_gram` integrates the chord distances C_ij = |θ_i − θ_j| = √(2 D_ij),
dC_ij/dt = (dD_ij/dt)/C_ij (see :class:`_ChordRMS` for why).
"""

import time
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from ._config import save_times
from ._model import AbstractKernel, as_kernel, as_position
from ._outcome import status_of_saves
from ._problem import check_dtype
from ._solver import tsit5_loop
from ._validate import check_finite_array, check_float, check_int, precision
from .analysis import (
    gram_min_cosine,
    gram_observables,
)
from .kernels import PRECISION as _PRECISION
from .schemes import AbstractSpeedScheme, closes_on_gram, get_scheme


def _check_scheme(scheme) -> AbstractSpeedScheme:
    """The scheme as an instance, if its flow closes on (G, r): a speed scheme whose
    velocity is the generic one (an ambient scheme, or one that overrides ``velocity``,
    may move the tokens out of their span)."""
    scheme = get_scheme(scheme)
    if not closes_on_gram(scheme):
        raise ValueError(
            f"scheme {scheme.name!r} is not a speed scheme with the generic velocity, so its flow need not "
            "close on the Gram matrix; use particles.simulate, or give it as an AbstractSpeedScheme "
            "(speed and radial_rate only)"
        )
    return scheme


def _safe_sqrt(x):
    """√max(x, 0) with a zero (not NaN) gradient at 0 (double where)."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1)), 0)


def _distance_velocity(t, D, r, scheme, beta, kernel, position):
    """(dD/dt, dr/dt) for D = 1 − G (module docstring)."""
    n = D.shape[-1]
    beta = jnp.asarray(beta, D.dtype)[..., None, None]
    if scheme.attends_to_tokens:
        logits = beta * (r[..., :, None] * r[..., None, :]) * (1 - D)
        shift = 0.0
    else:  # β G = β − β D: the row constant β leaves softmax unchanged, USA gets e^β
        logits = -beta * D
        shift = beta
    index = jnp.arange(n)
    W = kernel.weights(position.logits(logits, index, index), n, shift)
    if scheme.attends_to_tokens:  # A_i = Σ_j w_ij r_j θ_j
        W = W * r[..., None, :]
    WD = jnp.matmul(W, D, precision=_PRECISION)
    z = jnp.sum(W, axis=-1)
    WD_diag = jnp.diagonal(WD, axis1=-2, axis2=-1)
    a = z - WD_diag
    A_norm = _safe_sqrt(jnp.sum((z[..., None] - WD) * W, axis=-1))  # Σ_j (WG)_ij W_ij
    s = jnp.broadcast_to(scheme.speed(t, r, a, A_norm), a.shape)
    moving = s != 0  # s = 0 only where A = 0: no attention, no motion (not 0/0)
    inv_s = jnp.where(moving, 1 / jnp.where(moving, s, 1), 0)
    M = inv_s[..., None] * (WD_diag[..., None] - WD + a[..., None] * D)
    dr = jnp.broadcast_to(scheme.radial_rate(t, r, a, A_norm), a.shape)
    return -(M + jnp.swapaxes(M, -1, -2)), dr


def gram_velocity(
    t,
    G: Float[ArrayLike, "*b n n"],
    r: Float[ArrayLike, "*b n"],
    scheme,
    beta,
    kind: "str | AbstractKernel" = "softmax",
    causal: bool = False,
) -> tuple[Float[Array, "*b n n"], Float[Array, "*b n"]]:
    """(dG/dt, dr/dt) of a speed scheme with Q = K = V = I (module docstring; MODEL.md §8).

    ``G`` holds the cosines ⟨θ_i, θ_j⟩ (unit diagonal), ``r`` the radii; leading batch
    dimensions are allowed and ``beta`` (a scalar or an array) broadcasts against them.
    Where the speed s_i is 0 (A_i = 0 under ngpt, peri) token i does not move, as in
    :meth:`particles.AbstractSpeedScheme.velocity`.
    """
    scheme = _check_scheme(scheme)
    dD, dr = _distance_velocity(t, 1 - G, r, scheme, beta, as_kernel(kind), as_position(causal=causal))
    return -dD, dr


def _chord_field(t, y, args):
    """dC_ij/dt = (dD_ij/dt)/C_ij for the chord distances C (D = C²/2); 0 where C_ij = 0
    (the diagonal; tokens that coincide exactly stay together)."""
    C, r = y
    dD, dr = _distance_velocity(t, C * C / 2, r, *args)
    apart = C != 0
    dC = jax.lax.optimization_barrier(jnp.where(apart, dD / jnp.where(apart, C, 1), 0))
    # XLA's fused code rounded dC_ij and dC_ji differently (1 ulp, accumulating over a
    # run): keep the upper triangle of the one materialised array, so C stays symmetric
    n = C.shape[-1]
    return jnp.where(jnp.triu(jnp.ones((n, n), bool)), dC, jnp.swapaxes(dC, -1, -2)), dr


class _ChordRMS(eqx.Module):
    """Error norm of :func:`solve_gram`: per trajectory the RMS over the n² chord
    distances C_ij = |θ_i − θ_j| and the n radii, then the max over the trajectories of
    the batch (every trajectory meets the tolerance).

    Why chord distances, not G. A chord error is a token-level error:
    |δC_ij| ≤ |δθ_i| + |δθ_j|, so the user's tolerance keeps its meaning (the token
    solve's RMS over the n(d + 1) numbers of a trajectory allows a token error of
    ~√(d + 1) tol, hence chord errors up to ~2√(d + 1) tol: this norm is the tighter
    one). Integrating G (or D = 1 − G) with the same norm, the error of 1 − G_ij is
    controlled only in absolute terms: once the tokens cluster, 1 − G ~ e^{−2t}
    (post) falls below atol, the error estimate vanishes, the steps grow to the edge of
    Tsit5's stability region for the rate-2 decay (h ≈ 1.7) and the numerical 1 − G
    sits there at ~atol: measured with a G-state version of this solve (not kept) on the
    ensemble of benchmarks/gram_accuracy.py (n = 32, d = 128, β = 4, T = 30, post),
    G errors of 1e-6 to 4e-6 for t in [10, 30] at rtol = atol = 1e-6, where the token
    solve's are ≤ 1.5e-9. The chords decay at rate 1, like the tokens' deviations in a
    cluster, and stay accurate: G errors ≤ 1e-10 after t = 10 (the benchmark's table).
    """

    batch_ndim: int = eqx.field(static=True)

    def __call__(self, err):
        C, r = err
        sq = jnp.sum(C * C, axis=(-1, -2)) + jnp.sum(r * r, axis=-1)
        n = r.shape[-1]
        return jnp.sqrt(jnp.max(sq) / (n * n + n))


def _save_fn(observe, beta, delta):
    """What the solve keeps at each save: the state (C, r), or the named observables of
    (G, r) and min_{i≠j} G_ij (the collapse time's input), per trajectory."""
    if observe is None:
        return lambda y: y

    def save(y):
        C, r = y
        G = 1 - C * C / 2
        return {**gram_observables(observe, G, r, beta, delta), "_min_cosine": gram_min_cosine(G)}

    return save


@eqx.filter_jit
def _solve(
    y0,
    scheme,
    beta,
    kernel,
    position,
    ts,
    t0,
    t1,
    rtol,
    atol,
    step_size,
    jumps,
    max_steps,
    level,
    observe,
    delta,
):
    """The Gram solve as one compiled loop (:func:`particles._solver.tsit5_loop`): one
    program per (n, batch, scheme, dtype), whatever d the tokens came from."""
    stop = None if level is None else (lambda y: jnp.min(gram_min_cosine(1 - y[0] * y[0] / 2)) - level)
    return tsit5_loop(
        _chord_field, y0, (scheme, beta, kernel, position), t0=t0, t1=t1, ts=ts, rtol=rtol, atol=atol,
        norm=_ChordRMS(y0[1].ndim - 1), max_steps=max_steps, save_fn=_save_fn(observe, beta, delta),
        stop_fn=stop, jump_ts=jumps, step_size=step_size,
    )  # fmt: skip


class GramSolution(NamedTuple):
    """The saves of :func:`solve_gram`, time first as the solver makes them: the chord
    distances ``C`` (T, *batch, n, n), C_ij = |θ_i − θ_j|, and the radii ``r``
    (T, *batch, n) at ``ts`` (after a collapse stop: the saves before it, then the state
    at the stop). ``G`` = 1 − C²/2 and ``D`` = 1 − G = C²/2 (to full relative precision
    however close the tokens) are computed on access. ``status`` (batch shape): 0 ok, 1
    a non-finite save, a radius ≤ 0 or a failed solve. ``ok``: the solve reached its
    end (t1 or the stop) within ``max_steps``. ``stats``: step counts, wall time, and for a stop ``t_stop`` and ``collapsed``."""

    ts: Float[Array, " T"]
    C: Float[Array, "T *batch n n"]
    r: Float[Array, "T *batch n"]
    stats: dict
    status: Int[np.ndarray, "*batch"]
    ok: bool

    @property
    def D(self) -> Float[Array, "T *batch n n"]:
        return self.C * self.C / 2

    @property
    def G(self) -> Float[Array, "T *batch n n"]:
        return 1 - self.C * self.C / 2


def initial_chords(G0: np.ndarray) -> np.ndarray:
    """The chord distances |θ_i − θ_j| = √(2 − 2 cos_ij) of a Gram matrix XXᵀ (numpy,
    any batch), symmetric, with an exact zero diagonal."""
    scale = 1 / np.sqrt(np.diagonal(G0, axis1=-2, axis2=-1))
    cos = G0 * scale[..., :, None] * scale[..., None, :]
    chord = np.sqrt(np.maximum(2 * (1 - (cos + np.swapaxes(cos, -1, -2)) / 2), 0))
    idx = np.arange(G0.shape[-1])
    chord[..., idx, idx] = 0
    return chord


class GramObservation(NamedTuple):
    """What a sweep keeps of a Gram solve (:func:`observe_gram`), time first: ``values``
    name -> (T, *batch), ``min_cosine`` (T, *batch) for the collapse time (NaN at saves
    not reached), ``t_stop``/``stopped`` (a collapse stop), ``ok``, ``num_steps``."""

    values: dict
    min_cosine: np.ndarray
    t_stop: float
    stopped: bool
    ok: bool
    num_steps: int


def observe_gram(
    x0: Float[ArrayLike, "*batch n d"],
    scheme,
    *,
    beta,
    kernel,
    position,
    ts,
    t0,
    t1,
    rtol,
    atol,
    max_steps,
    stop_level,
    names,
    delta,
) -> GramObservation | None:
    """The named observables of the flow from tokens ``x0`` at ``ts``, from the Gram
    solve in float64 whatever the tokens' dtype (a sweep's path: the arguments are
    those of a checked :class:`particles._problem.Problem` whose flow closes on G;
    ``None`` where the tokens have coincident pairs, which the token solve handles).

    Why float64: in float32 the chords inside a cluster lose their digits to
    cancellation in WD (a difference of O(1) distances to the far tokens), the field
    turns noisy at the scale of the chords and the step controller crawls: n = 32,
    d = 8, β = 4, 16 seeds, rtol = atol = 1e-6 took 11 404 steps in float32 and 83 in
    float64 (2026-12-02). A float64 Gram evaluation costs n³ flops; the token solve's
    float32 one 2n²d (n²·n in its span)."""
    with jax.enable_x64(True):
        x = np.asarray(x0, np.float64)
        chord = initial_chords(x @ np.swapaxes(x, -1, -2))
        if np.any((chord == 0) & ~np.eye(chord.shape[-1], dtype=bool)):
            return None
        r0 = np.ones(chord.shape[:-1]) if scheme.sphere_bound else np.linalg.norm(x, axis=-1)
        batch = np.broadcast_shapes(chord.shape[:-2], np.shape(beta))
        y0 = (
            jnp.asarray(np.broadcast_to(chord, (*batch, *chord.shape[-2:]))),
            jnp.asarray(np.broadcast_to(r0, (*batch, r0.shape[-1]))),
        )
        beta = jnp.asarray(np.broadcast_to(np.asarray(beta, np.float64), batch))
        sol = _run(
            y0, scheme, beta, kernel, position, np.asarray(ts, np.float64), t0, t1, rtol, atol, None, max_steps,
            stop_level, tuple(names), delta, np.float64,
        )  # fmt: skip
        values = {k: np.asarray(v) for k, v in sol.saves.items() if k != "_min_cosine"}
        return GramObservation(
            values, np.asarray(sol.saves["_min_cosine"]), sol.t_end, sol.stopped, sol.ok, sol.num_steps
        )


def _check_start(G0, r0, beta, scheme, position, dtype):
    """The start of :func:`solve_gram`, checked: (initial chords, r0, beta, batch shape, dtype)."""
    G0_np = check_finite_array("G0", G0).astype(np.float64)
    if G0_np.ndim < 2 or G0_np.shape[-1] != G0_np.shape[-2]:
        raise ValueError(f"G0 has shape {G0_np.shape}; expected (..., n, n)")
    if np.any(np.diagonal(G0_np, axis1=-2, axis2=-1) <= 0):
        raise ValueError("G0 has a diagonal entry <= 0; it must be a Gram matrix of nonzero tokens")
    n = G0_np.shape[-1]
    r0_np = np.ones(G0_np.shape[:-1]) if r0 is None or scheme.sphere_bound else check_finite_array("r0", r0)
    beta_np = check_finite_array("beta", beta)
    try:
        batch = np.broadcast_shapes(G0_np.shape[:-2], r0_np.shape[:-1], beta_np.shape)
    except ValueError:
        raise ValueError(
            f"G0 {G0_np.shape}, r0 {r0_np.shape} and beta {beta_np.shape} have batch shapes that do not broadcast"
        ) from None
    if r0_np.shape[-1:] != (n,) or np.any(r0_np <= 0):
        raise ValueError(f"r0 must have shape (..., {n}) with positive radii")
    dtype = check_dtype(dtype, np.asarray(G0))

    chord = initial_chords(G0_np)
    together = (chord == 0) & ~np.eye(n, dtype=bool)
    if np.any(together):
        r_b = np.broadcast_to(r0_np, (*np.broadcast_shapes(chord.shape[:-2], r0_np.shape[:-1]), n))
        unequal = np.any(together & (r_b[..., :, None] != r_b[..., None, :]))
        if not position.permutation_equivariant or unequal:
            raise ValueError(
                "G0 has coincident tokens (G_ij = 1 for some i != j) that the flow would separate "
                "(causal mask or different radii); solve_gram keeps coincident tokens together: "
                "use particles.simulate"
            )
    return chord, r0_np, beta_np, batch, dtype


def solve_gram(
    G0: Float[ArrayLike, "*batch n n"],
    r0: Float[ArrayLike, "*batch n"] | None,
    scheme,
    *,
    beta,
    t1,
    t0=0.0,
    ts=None,
    attention="softmax",
    causal=False,
    rtol=1e-6,
    atol=1e-8,
    step_size=None,
    max_steps=100_000,
    stop_level=None,
    dtype=None,
) -> GramSolution:
    """Solve the Gram flow of a speed scheme with Q = K = V = I (:func:`gram_velocity`)
    from ``G0`` (the cosines ⟨θ_i, θ_j⟩ of the initial directions, or any Gram matrix
    XXᵀ: it is normalised to a unit diagonal) and radii ``r0`` (``None``: all 1;
    ignored by ``sphere_bound`` schemes, which keep r ≡ 1).

    The state is the chord distances C_ij = |θ_i − θ_j| = √(2(1 − G_ij)) and the radii,
    integrated with Tsit5 in one compiled ``lax.while_loop`` (the tableau and PI step
    control of :func:`particles.simulate`), the error of each trajectory in the RMS
    over its n² + n numbers, the max over the batch (a token-level
    tolerance, at least as accurate as the token solve at the same ``rtol``/``atol``);
    or constant steps ``step_size``. ``ts``: save times (default 101 points on
    [t0, t1]). ``stop_level``: end the solve when every trajectory has
    min_{i≠j} G_ij ≥ stop_level (found on the dense output; ``simulate(stop_at_collapse=δ)`` is
    ``stop_level = 1 − δ``). ``dtype`` defaults to that of ``G0``; float64 turns on
    JAX's 64-bit mode for this call.

    Tokens that coincide exactly at t0 (G_ij = 1, i ≠ j) stay together; that is the
    flow unless their speeds differ (a radius-dependent speed with different radii, or
    a causal mask), which is refused.
    """
    scheme = _check_scheme(scheme)
    max_steps = check_int("max_steps", max_steps, minimum=1)
    rtol = check_float("rtol", rtol, positive=True)
    atol = check_float("atol", atol, positive=True)
    if step_size is not None:
        step_size = check_float("step_size", step_size, positive=True)
    if stop_level is not None:
        stop_level = check_float("stop_level", stop_level)
    t0, t1 = check_float("t0", t0), check_float("t1", t1)
    if not t1 > t0:
        raise ValueError(f"t1={t1!r} must be greater than t0={t0!r}")
    kernel, position = as_kernel(attention), as_position(causal=causal)
    chord, r0_np, beta_np, batch, dtype = _check_start(G0, r0, beta, scheme, position, dtype)
    n = chord.shape[-1]
    with precision(dtype):
        ts_np = save_times(t0, t1, ts).astype(dtype)
        C = jnp.asarray(np.broadcast_to(chord, (*batch, n, n)), dtype)
        r = jnp.asarray(np.broadcast_to(r0_np, (*batch, n)), dtype)
        beta_arr = jnp.asarray(np.broadcast_to(beta_np, batch), dtype)
        sol = _run(
            (C, r), scheme, beta_arr, kernel, position, ts_np, t0, t1, rtol, atol, step_size, max_steps,
            stop_level, None, None, dtype,
        )  # fmt: skip
        (C_s, r_s), ts_out = sol.saves, jnp.asarray(ts_np)
        stop = {}
        if stop_level is not None:
            t_stop, collapsed = float(sol.t_end), bool(sol.stopped)
            stop = {"t_stop": t_stop, "collapsed": collapsed}
            if collapsed:  # the saves before the stop, then the state at the stop
                keep = np.asarray(ts_np) < t_stop
                ts_out = jnp.append(ts_out[keep], t_stop)
                C_s = jnp.concatenate([C_s[keep], sol.final[0][None]])
                r_s = jnp.concatenate([r_s[keep], sol.final[1][None]])
        valid = jnp.all(jnp.isfinite(C_s), axis=(-1, -2)) & jnp.all(jnp.isfinite(r_s) & (r_s > 0), axis=-1)
        status = status_of_saves(valid, sol.ok)
        stats = {
            "num_steps": int(sol.num_steps),
            "num_accepted": int(sol.num_steps - sol.num_rejected),
            "num_rejected": int(sol.num_rejected),
            "wall_time": sol.wall_time,
            **stop,
        }
        return GramSolution(ts=ts_out, C=C_s, r=r_s, stats=stats, status=status, ok=bool(sol.ok))


class _Timed(NamedTuple):
    saves: object
    final: object
    t_end: float
    stopped: bool
    ok: bool
    num_steps: int
    num_rejected: int
    wall_time: float


def _run(
    y0,
    scheme,
    beta,
    kernel,
    position,
    ts,
    t0,
    t1,
    rtol,
    atol,
    step_size,
    max_steps,
    stop_level,
    observe,
    delta,
    dtype,
):
    """:func:`_solve` on host values (checked), timed; inside the caller's precision."""
    scalar = lambda v: None if v is None else jnp.asarray(v, dtype)  # noqa: E731
    jumps = [t for t in scheme.jump_times() if t0 < t < t1]
    jumps = tuple(sorted(jumps)) if jumps and step_size is None else None
    start = time.perf_counter()
    sol = _solve(
        y0, scheme, beta, kernel, position, jnp.asarray(ts, dtype), scalar(t0), scalar(t1), scalar(rtol), scalar(atol),
        scalar(step_size), None if jumps is None else jnp.asarray(jumps, dtype), max_steps, scalar(stop_level),
        observe, scalar(delta),
    )  # fmt: skip
    sol = jax.block_until_ready(sol)
    return _Timed(
        sol.saves, sol.final, float(sol.t_end), bool(sol.stopped), bool(sol.ok), int(sol.num_steps),
        int(sol.num_rejected), time.perf_counter() - start,
    )  # fmt: skip
