"""Integrate the particle flow of a scheme with a diffrax solver, all under jit."""

import contextlib
import functools
import time
import warnings
from typing import NamedTuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from ._attention import _PRECISION, ATTENTION_KINDS, HEAD_REDUCTIONS, Attention
from ._devices import batch_sharding, shard_batch
from ._solver import UnrolledTsit5, step_controller
from ._sphere import normalize, safe_norm, span_basis
from ._trajectory import STATUS_MAX_STEPS, STATUS_NONFINITE, STATUS_OK, Trajectory
from ._validate import check_choice, check_finite_array, check_float, check_int, default_dtype
from .analysis import min_cosine
from .schemes import AbstractScheme, AbstractSpeedScheme, get_scheme


class SimulationError(RuntimeError):
    """The solver did not reach t1 (step budget spent or the state blew up)."""


class SimulationWarning(RuntimeWarning):
    """Some trajectories of a batch failed; ``Trajectory.status`` marks them."""


class _PerTrajectoryRMS(eqx.Module):
    """Error norm for a batch solved as one state: the RMS over each trajectory's
    tokens, then the max over trajectories, so every trajectory meets the tolerance."""

    batch_ndim: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)  # the ambient d (the state may hold span coordinates)

    def __call__(self, err):
        lift, r = err
        axes = tuple(range(self.batch_ndim, lift.ndim))
        sq = jnp.sum(lift * lift, axis=axes) + jnp.sum(r * r, axis=axes[:-1])
        return jnp.sqrt(jnp.max(sq) / (lift.shape[-2] * (self.dim + 1)))


def _field(t, y, args):
    """The flow in lifted coordinates: y_i = |y_i| θ_i with dy_i/dt = |y_i| dθ_i/dt, so
    the directions follow the scheme exactly whatever |y_i| drifts to numerically."""
    lift, r = y
    scheme, attention = args
    norm = safe_norm(lift)
    dtheta, dr = scheme.velocity(t, lift / norm[..., None], r, attention)
    return norm[..., None] * dtheta, dr


def _collapse_event(level, dtype):
    """Ends the solve when every trajectory of the batch has collapsed: the real-valued
    condition min_batch min_{i≠j} ⟨θ_i, θ_j⟩ − (1 − δ) crosses zero upwards, located by
    bisection on the dense output."""

    def cond_fn(t, y, args, **kwargs):
        return jnp.min(min_cosine(normalize(y[0]))) - level

    eps = float(jnp.finfo(dtype).eps)
    return diffrax.Event(cond_fn, root_finder=optx.Bisection(rtol=10 * eps, atol=100 * eps), direction=True)


@eqx.filter_jit
def _solve(
    y0,
    attention,
    scheme,
    solver,
    ts,
    t0,
    t1,
    rtol,
    atol,
    step_size,
    jumps,
    max_steps,
    progress,
    dim,
    level=None,
):
    if step_size is None:
        norm = _PerTrajectoryRMS(y0[1].ndim - 1, dim)
        controller = step_controller(rtol, atol, norm, jumps)
    else:
        controller = diffrax.ConstantStepSize()
    return diffrax.diffeqsolve(
        diffrax.ODETerm(_field),
        solver,
        t0,
        t1,
        step_size,
        y0,
        args=(scheme, attention),
        saveat=diffrax.SaveAt(ts=ts, t1=level is not None),
        stepsize_controller=controller,
        event=None if level is None else _collapse_event(level, ts.dtype),
        max_steps=max_steps,
        throw=False,
        progress_meter=diffrax.TqdmProgressMeter() if progress else diffrax.NoProgressMeter(),
    )


# The array work before and after the solve is one compiled program each (op by op it
# was some forty small programs, each traced and looked up in the compilation cache on
# every start of the command line; timed in alternation, the start got no faster).
@functools.partial(jax.jit, static_argnums=(1, 2))
def _initial_state(x, sphere_bound: bool, span: bool):
    """(θ, r, basis) at t0 from the tokens x: θ in the span's coordinates θ_i = Σ_k c_ik b_k
    when ``span`` (basis: the orthonormal rows b_k), else in R^d (basis None)."""
    theta = normalize(x)
    r = jnp.ones(x.shape[:-1], x.dtype) if sphere_bound else safe_norm(x)
    if not span:
        return theta, r, None
    basis = span_basis(theta)
    return jnp.einsum("...id,...kd->...ik", theta, basis, precision=_PRECISION), r, basis


@jax.jit
def _valid_saves(lift, r):
    """Per save and token: finite, with a radius r > 0."""
    return jnp.all(jnp.isfinite(lift), axis=-1) & jnp.isfinite(r) & (r > 0)


@jax.jit
def _outputs(lift, r, basis):
    """θ (*batch, T, n, ·) and r (*batch, T, n) from the saves (T, *batch, ...); θ mapped
    back to R^d when a span ``basis`` is given (norms are kept)."""
    theta = jnp.moveaxis(normalize(lift), 0, -3)
    if basis is not None:
        theta = jnp.einsum("...tik,...kd->...tid", theta, basis, precision=_PRECISION)
    return theta, jnp.moveaxis(r, 0, -2)


class SolverSaves(NamedTuple):
    """The saves of a solve as the solver made them (see ``simulate(_solver_saves=True)``):
    ``lift`` (T, *batch, n, m) with θ_i = lift_i / |lift_i| (m = n in the span's
    coordinates, else d), ``r`` (T, *batch, n), NaN where a failed trajectory has no
    valid state; ``stats`` and ``status`` as in :class:`Trajectory`."""

    ts: jax.Array
    lift: jax.Array
    r: jax.Array
    stats: dict
    status: np.ndarray


def _keeps_span(scheme, att) -> bool:
    """Whether every token stays in the span of the initial tokens: true for a speed
    scheme (dθ_i/dt ∝ P_{θ_i} A_i) whose attention vectors A_i = Σ_j w_ij θ_j (or r_j θ_j)
    are combinations of the tokens (V = I), with weights that depend on the tokens
    only through inner products (Q = K = I), so that the flow is the same in any
    orthonormal coordinates of that span."""
    return (
        att.identity_weights
        and isinstance(scheme, AbstractSpeedScheme)
        and type(scheme).velocity is AbstractSpeedScheme.velocity
        and type(scheme)._attend is AbstractScheme._attend
    )


def _weights(name, w, d):
    if w is None:
        return None
    w = check_finite_array(name, w)
    if w.ndim < 2 or w.ndim > 4 or w.shape[-2:] != (d, d):
        raise ValueError(
            f"{name} has shape {w.shape}; expected (d, d), (heads, d, d) or (layers, heads, d, d) with d={d}"
        )
    return jnp.asarray(w.reshape((1,) * (4 - w.ndim) + w.shape))


def _check_logit_range(att, beta, x, scheme, dtype):
    """Refuse a beta whose logits β⟨Q θ_i, K θ_j⟩ overflow the dtype: e^{logit} for USA
    (float32 overflows at 88.7, float64 at 709.8), the logit itself for softmax (which
    subtracts the row max, so any finite logit is safe). The bound |β|·max‖Q‖‖K‖ is
    exact for sphere-attending schemes; schemes that attend to the tokens x = rθ get
    max|x_0|² in it, a bound at t0 only (a later blow-up ends as a failed trajectory)."""
    scale = 1.0
    if not att.identity_weights:
        eye = np.eye(x.shape[-1])
        q, k = (
            np.linalg.norm(eye if w is None else np.asarray(w, float), ord=2, axis=(-2, -1))
            for w in (att.Q, att.K)
        )
        scale = float(np.max(q * k))
    if scheme.attends_to_tokens:
        scale *= float(np.max(np.sum(np.asarray(x, float) ** 2, axis=-1)))
    bound = float(np.max(np.abs(beta), initial=0.0)) * scale
    big = float(np.finfo(dtype).max)
    limit = float(np.log(big)) if att.kind == "usa" else big / 2
    if bound > limit:
        what = f"exp({bound:.4g}) overflows" if att.kind == "usa" else f"logits up to {bound:.3g} overflow"
        raise ValueError(
            f"attention={att.kind!r} with |beta|={np.max(np.abs(beta)):g}: {what} {np.dtype(dtype).name} "
            f"(largest logit allowed {limit:.4g}); lower |beta|, use float64, or softmax attention"
        )


def _retry_each(y0, att, solve):
    """Solve every trajectory of a failed batch on its own (its own step budget):
    (lift, r, status, num_steps) with the batch axes first."""
    batch = att.beta.shape
    lifts, rs, status, steps = [], [], [], 0
    for idx in np.ndindex(*batch):
        sol = solve((y0[0][idx], y0[1][idx]), eqx.tree_at(lambda a: a.beta, att, att.beta[idx]))
        lifts.append(sol.ys[0])
        rs.append(sol.ys[1])
        steps += int(sol.stats["num_steps"])
        if sol.result == diffrax.RESULTS.successful:
            status.append(STATUS_OK)
        elif sol.result == diffrax.RESULTS.max_steps_reached:
            status.append(STATUS_MAX_STEPS)
        else:
            status.append(STATUS_NONFINITE)
    stack = lambda parts: jnp.reshape(jnp.stack(parts), (*batch, *parts[0].shape))
    return stack(lifts), stack(rs), np.reshape(np.asarray(status, np.int8), batch), steps


def simulate(
    x0,
    scheme,
    *,
    beta,
    t1,
    ts=None,
    t0=0.0,
    attention="softmax",
    Q=None,
    K=None,
    V=None,
    causal=False,
    heads="sum",
    solver=None,
    rtol=1e-6,
    atol=1e-8,
    step_size=None,
    dtype=None,
    max_steps=100_000,
    progress=False,
    stop_at_collapse=None,
    block_size=None,
    shard=True,
    reduce_span=True,
    _solver_saves=False,
    **scheme_params,
) -> Trajectory:
    """Simulate n tokens under the attention flow of a normalization scheme.

    dθ_i/dt = (1/s_i) P_{θ_i} A_i(Θ), dr_i/dt = the scheme's radial rate (MODEL.md §2;
    Karagodin et al., arXiv 2510.22026), integrated with a diffrax solver (Tsit5 by
    default, with its stages unrolled: :class:`particles._solver.UnrolledTsit5`) under
    adaptive step control; ``step_size`` gives constant steps instead.

    ``x0`` has shape (..., n, d); ``beta`` is a scalar or an array broadcast against
    the leading batch dimensions. A batch is solved as one state in one compiled call;
    the step size is controlled so that every trajectory meets ``rtol``/``atol`` in
    its own RMS norm. ``ts`` are the save times (default: 101 points on [t0, t1]).
    ``Q``, ``K``, ``V``: (d, d), (heads, d, d) or (layers, heads, d, d) arrays (see
    :func:`particles.random_weights`); ``None`` is the identity. ``dtype`` defaults to
    that of ``x0``; ``float64`` turns on JAX's 64-bit mode for this call.

    ``stop_at_collapse=δ`` ends the solve (a diffrax event, located by root finding) at
    the first time every trajectory of the batch has collapsed, min_{i≠j} ⟨θ_i, θ_j⟩
    ≥ 1 − δ. The save times after the stop are dropped and the state at the stop is
    appended as the last save, so ``traj.ts[-1] == traj.stats["t_stop"]``;
    ``stats["collapsed"]`` says whether the stop happened (else the run reached t1). A
    batch already collapsed at t0 has no crossing and runs to t1.

    ``block_size``: rows of queries attended at a time (default: chosen from n and the
    batch size, dense for small problems; see :class:`particles.Attention`). ``shard``:
    with several local devices (GPUs, or CPU devices from
    ``XLA_FLAGS=--xla_force_host_platform_device_count=N``) the leading batch axis is
    split across them; the results are those of one device.

    ``reduce_span``: with n < d, identity Q, K, V and a speed scheme (every built-in
    one), dθ_i/dt is a combination of θ_1..θ_n, so the tokens stay in the span of the
    initial tokens; the solve then runs in n orthonormal coordinates of that span
    (from a QR factorization of Θ(t0)ᵀ) and maps back, for n·n instead of n·d numbers
    per trajectory: the same flow, the error still measured in R^d. With constant
    steps the two agree to rounding; with adaptive steps the error estimate is taken
    component by component in other coordinates, so the step sequences (not the
    tolerance met) differ. ``False`` solves in R^d.

    ``_solver_saves`` (internal, for sweeps): return the saves as the solver made them,
    a :class:`SolverSaves`, instead of a Trajectory: the lifted state unnormalised, time
    first, in the span's orthonormal coordinates when the span reduction applies (every
    observable of :mod:`particles.analysis` depends on inner products only). For a sweep
    unit (64 seeds × 301 saves) normalising, mapping back and moving the time axis took
    half as long as the solve.

    Failures. A single trajectory that does not reach t1 (step budget spent, the state
    non-finite) raises :class:`SimulationError`. In a batch the others are kept: when
    the batched solve fails, each trajectory is solved again on its own (with its own
    ``max_steps``, no collapse stop), and those that fail again are marked in
    ``traj.status`` (1 non-finite state or a radius ≤ 0, 2 step budget; see
    :class:`Trajectory`) with NaN at the saves they did not validly reach, and a :class:`SimulationWarning` is issued; a batch
    never raises for a failed solve, even when every trajectory fails.
    With USA attention, a ``beta`` whose weights e^{β⟨Qθ,Kθ⟩} overflow the dtype is
    refused up front (ValueError). Negative ``beta`` is supported: it weights far
    tokens more, but the flow still collapses (E_β is maximal at consensus for all β ≠ 0).
    """
    scheme = get_scheme(scheme, **scheme_params)
    check_choice("attention", attention, ATTENTION_KINDS)
    check_choice("heads", heads, HEAD_REDUCTIONS)
    solver = UnrolledTsit5() if solver is None else solver
    if not isinstance(solver, diffrax.AbstractSolver):
        raise ValueError(f"solver={solver!r} must be a diffrax solver such as diffrax.Tsit5()")
    max_steps = check_int("max_steps", max_steps, minimum=1)
    if block_size is not None:
        block_size = check_int("block_size", block_size, minimum=1)
    rtol = check_float("rtol", rtol, positive=True)
    atol = check_float("atol", atol, positive=True)
    if step_size is not None:
        step_size = check_float("step_size", step_size, positive=True)
    elif not isinstance(solver, diffrax.AbstractAdaptiveSolver):
        raise ValueError(f"solver {type(solver).__name__} has no error estimate: give step_size")
    if stop_at_collapse is not None:
        stop_at_collapse = check_float("stop_at_collapse", stop_at_collapse, positive=True)
    t0 = check_float("t0", t0)
    t1 = check_float("t1", t1)
    if not t1 > t0:
        raise ValueError(f"t1={t1!r} must be greater than t0={t0!r}")

    x0_np = np.asarray(x0)
    if x0_np.ndim < 2:
        raise ValueError(f"x0 has shape {x0_np.shape}; expected (..., n, d)")
    check_finite_array("x0", x0_np)
    n, d = x0_np.shape[-2:]
    check_int("n", n, minimum=1)
    check_int("d", d, minimum=2)
    if np.any(np.linalg.norm(x0_np, axis=-1) == 0):
        raise ValueError("x0 contains a zero-norm token; every token needs a direction")
    beta_np = check_finite_array("beta", beta)
    try:
        batch = np.broadcast_shapes(x0_np.shape[:-2], beta_np.shape)
    except ValueError:
        raise ValueError(
            f"beta of shape {beta_np.shape} does not broadcast against the batch shape {x0_np.shape[:-2]}"
        ) from None

    if dtype is None:
        dtype = x0_np.dtype if np.issubdtype(x0_np.dtype, np.floating) else default_dtype()
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype={dtype} must be float32 or float64")
    x64 = jax.enable_x64(True) if dtype == np.float64 else contextlib.nullcontext()

    with x64:
        dtype = jnp.float64 if dtype == np.float64 else jnp.float32
        ts_np = np.asarray(np.linspace(t0, t1, 101) if ts is None else ts, dtype=dtype)
        if ts_np.ndim != 1 or ts_np.size == 0 or not np.all(np.isfinite(ts_np)):
            raise ValueError("ts must be a non-empty 1-d array of finite times")
        if np.any(np.diff(ts_np) <= 0):
            raise ValueError("ts must be strictly increasing")
        if ts_np[0] < t0 or ts_np[-1] > t1:
            raise ValueError(f"ts must lie in [t0, t1] = [{t0}, {t1}], got [{ts_np[0]}, {ts_np[-1]}]")
        ts_arr = jnp.asarray(ts_np)

        att = Attention(
            beta=jnp.asarray(np.broadcast_to(np.asarray(beta_np, dtype), batch)),
            Q=_weights("Q", Q, d),
            K=_weights("K", K, d),
            V=_weights("V", V, d),
            kind=attention,
            causal=bool(causal),
            heads=heads,
            block_size=block_size,
        )
        _check_logit_range(att, beta_np, x0_np, scheme, dtype)
        span = bool(reduce_span and n < d and _keeps_span(scheme, att))
        theta0, r0, basis = _initial_state(
            jnp.asarray(np.broadcast_to(x0_np.astype(dtype), (*batch, n, d))), scheme.sphere_bound, span
        )
        jumps = sorted(set(att.layer_jumps(t0, t1)) | {t for t in scheme.jump_times() if t0 < t < t1})
        jumps = jnp.asarray(jumps, dtype) if jumps and step_size is None else None

        sharding = batch_sharding() if shard and batch else None
        size = None
        if sharding is not None:
            (theta0, r0, beta_b), size = shard_batch([theta0, r0, att.beta], sharding)
            att = eqx.tree_at(lambda a: a.beta, att, beta_b)

        start = time.perf_counter()

        def solve(y0, att, level=None):
            return _solve(
                y0,
                att,
                scheme,
                solver,
                ts_arr,
                jnp.asarray(t0, dtype),
                jnp.asarray(t1, dtype),
                jnp.asarray(rtol, dtype),
                jnp.asarray(atol, dtype),
                None if step_size is None else jnp.asarray(step_size, dtype),
                jumps,
                max_steps,
                bool(progress),
                int(d),
                level,
            )

        level = None if stop_at_collapse is None else jnp.asarray(1 - stop_at_collapse, dtype)
        sol = solve((theta0, r0), att, level)
        lift, r = jax.block_until_ready(sol.ys)
        ok = sol.result in (diffrax.RESULTS.successful, diffrax.RESULTS.event_occurred)
        num_steps = int(sol.stats["num_steps"])
        retried = not ok and bool(batch)
        if retried:
            lift, r, status, retry_steps = _retry_each((theta0, r0), att, solve)
            lift, r = jnp.moveaxis(lift, len(batch), 0), jnp.moveaxis(r, len(batch), 0)
            num_steps += retry_steps
        wall = time.perf_counter() - start
        if not ok and not batch:
            reached = float(jnp.max(jnp.where(jnp.isfinite(sol.ts), sol.ts, -jnp.inf)))
            if sol.result == diffrax.RESULTS.max_steps_reached:
                raise SimulationError(
                    f"the solve hit max_steps={max_steps} before t1={t1} (last save time reached "
                    f"{reached:g}): raise max_steps, loosen rtol/atol, or shorten t1"
                )
            raise SimulationError(
                f"the solve failed before t1={t1} ({sol.result}); the state may have become "
                "non-finite: lower beta, tighten rtol, or shorten t1"
            )
        if size is not None:
            lift, r = lift[:, :size], r[:, :size]  # drop the padding copies
            if retried:
                status = status[:size]
        # a save with NaN/inf, or a radius r ≤ 0 (the polar form x = rθ broke down: pre at a
        # token whose radius shrinks to 0 in finite time), marks its trajectory failed; such
        # saves, and those a failed trajectory did not reach (diffrax: inf), become NaN
        valid = np.asarray(_valid_saves(lift, r))  # (T, *batch, n)
        finite = np.all(valid, axis=-1)
        if not retried:  # after a collapse stop, the saves not made are inf by design
            finite = finite[np.isfinite(np.asarray(sol.ts))]
        finite = np.all(finite, axis=0)
        if not retried:
            status = np.where(finite, STATUS_OK, STATUS_NONFINITE).astype(np.int8)
        status = np.where((status == STATUS_OK) & ~finite, STATUS_NONFINITE, status).astype(np.int8)
        if not batch and status != STATUS_OK:
            raise SimulationError(
                f"the state became non-finite (or a radius reached 0) before t1={t1}: lower beta, "
                "shorten t1, or use adaptive steps (no step_size)"
            )
        if np.any(status != STATUS_OK):
            bad = ~np.all(valid, axis=-1)[..., None]  # (T, *batch, 1): the whole save
            lift = jnp.where(bad[..., None], jnp.nan, lift)
            r = jnp.where(bad, jnp.nan, r)
            warnings.warn(
                f"{np.sum(status != STATUS_OK)} of {status.size} trajectories failed before t1={t1}; "
                "they are marked in traj.status (1 non-finite, 2 max_steps) and NaN where not reached",
                SimulationWarning,
                stacklevel=2,
            )
        ts_out = ts_arr
        stop = {}
        if retried and stop_at_collapse is not None:  # the retries ran to t1
            stop = {"t_stop": t1, "collapsed": False, "stop_delta": stop_at_collapse}
        elif stop_at_collapse is not None:
            # sol.ts: the saves at ts up to the stop, then the end time, then inf.
            done = np.flatnonzero(np.isfinite(np.asarray(sol.ts)))
            t_stop, collapsed = float(sol.ts[done[-1]]), bool(sol.event_mask)
            keep = done[np.asarray(sol.ts)[done] < t_stop] if collapsed else done[:-1]
            keep = np.append(keep, done[-1]) if collapsed else keep
            ts_out, lift, r = sol.ts[keep], lift[keep], r[keep]
            stop = {"t_stop": t_stop, "collapsed": collapsed, "stop_delta": stop_at_collapse}
        stats = {
            "num_steps": num_steps,
            "num_accepted": int(sol.stats["num_accepted_steps"]),
            "num_rejected": int(sol.stats["num_rejected_steps"]),
            "wall_time": wall,
            "num_failed": int(np.sum(status != STATUS_OK)),
            **stop,
        }
        if _solver_saves:
            return SolverSaves(ts=ts_out, lift=lift, r=r, stats=stats, status=status)
        theta, r = _outputs(lift, r, basis)
        config = {
            "scheme": scheme.name,
            "scheme_params": scheme.params(),
            "n": int(n),
            "d": int(d),
            "beta": beta_np.tolist(),
            "t0": t0,
            "t1": t1,
            "attention": attention,
            "causal": bool(causal),
            "heads": heads,
            "weights": "identity" if att.identity_weights else f"custom, {att.num_layers} layer(s)",
            "solver": type(solver).__name__,
            "rtol": rtol,
            "atol": atol,
            "step_size": step_size,
            "dtype": np.dtype(dtype).name,
            "stop_at_collapse": stop_at_collapse,
        }
        return Trajectory(ts=ts_out, theta=theta, r=r, stats=stats, config=config, status=status)
