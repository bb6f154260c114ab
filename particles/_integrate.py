"""Solve a :class:`~particles.Problem` as configured by a :class:`~particles.SolveConfig`:
one compiled diffrax solve of the whole batch, the one place where failures are
classified, failed batches retried trajectory by trajectory, and saves trimmed at a
collapse stop. The result is a :class:`RawSolution` in the solver's coordinates;
:meth:`particles.Trajectory.from_raw` turns it into tokens.

The state integrated is the lifted direction y_i (θ_i = y_i/|y_i|) with
dy_i/dt = |y_i| dθ_i/dt, and the radius r_i: the directions then follow the scheme
exactly whatever |y_i| drifts to numerically, so sphere-bound schemes stay on the
sphere to rounding over any horizon.
"""

import functools
import time
import warnings
from typing import NamedTuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optimistix as optx
from jaxtyping import ArrayLike, Float

from . import analysis
from ._chart import AbstractChart, AmbientChart, SpanChart
from ._config import SolveConfig, save_times
from ._devices import batch_sharding, shard_batch
from ._layers import integrate_layers
from ._problem import Problem, precision
from ._solver import step_controller
from ._status import STATUS_LEGEND, SimulationError, SimulationWarning, Status
from .analysis import min_cosine
from .sphere import normalize, safe_norm, tangent_projection


class RawSolution(NamedTuple):
    """The saves of a solve as the solver made them: ``lift`` (T, *batch, n, m) with
    θ_i = lift_i/|lift_i| in the coordinates of ``chart`` (m = d, or m = n in the span
    of the initial tokens), ``r`` (T, *batch, n); NaN at the saves a failed trajectory
    did not validly reach. ``ts`` the save times (after a collapse stop: those before
    it, then the stop time). ``stats``: step counts, wall time, number failed and, with
    a collapse stop, ``t_stop``, ``collapsed``, ``stop_delta``. ``status`` (*batch)
    as in :class:`Status`."""

    ts: jax.Array
    lift: jax.Array
    r: jax.Array
    chart: AbstractChart
    stats: dict
    status: np.ndarray


def vector_field(t, y, args):
    """The flow in lifted coordinates, y = (lift, r) and args = (scheme, attention):
    dlift_i/dt = |lift_i| dθ_i/dt (θ_i = lift_i/|lift_i|), dr_i/dt the scheme's rate."""
    lift, r = y
    scheme, attention = args[:2]  # (scheme, attention[, noise])
    norm = safe_norm(lift)
    dtheta, dr = scheme.velocity(t, lift / norm[..., None], r, attention)
    return norm[..., None] * dtheta, dr


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


def _collapse_event(level, dtype):
    """Ends the solve when every trajectory of the batch has collapsed: the real-valued
    condition min_batch min_{i≠j} ⟨θ_i, θ_j⟩ − (1 − δ) crosses zero upwards, located by
    bisection on the dense output."""

    def cond_fn(t, y, args, **kwargs):
        return jnp.min(min_cosine(normalize(y[0]))) - level

    eps = float(jnp.finfo(dtype).eps)
    return diffrax.Event(cond_fn, root_finder=optx.Bisection(rtol=10 * eps, atol=100 * eps), direction=True)


# Explicit solvers that converge to the Stratonovich solution of an SDE (diffrax's
# documentation: "SDE solvers"); Heun is the default, strong order 0.5 for the
# non-commutative noise P_θ dW (1 for additive noise), weak order 1.
STRATONOVICH_SOLVERS = (diffrax.Heun, diffrax.EulerHeun, diffrax.ReversibleHeun, diffrax.Midpoint)


def diffusion(t, y, args):
    """The noise of MODEL.md §10 in lifted coordinates: dlift_i = |lift_i| √(2D) P_θ_i ∘ dW_i
    (so that dθ_i = √(2D) P_θ_i ∘ dW_i exactly), radii noiseless; a linear map of dW."""
    lift, r = y
    noise = args[2]
    norm = safe_norm(lift)
    theta = lift / norm[..., None]

    def act(dW):
        return jnp.sqrt(2 * noise) * norm[..., None] * tangent_projection(theta, dW[0]), jnp.zeros_like(r)

    return lx.FunctionLinearOperator(act, jax.eval_shape(lambda: y))


class PerTrajectoryBrownian(diffrax.AbstractBrownianPath):
    """Independent Brownian paths, one per trajectory of a batch: trajectory b's path is
    the ``diffrax.VirtualBrownianTree`` of ``keys[b]`` with the state shape of one
    trajectory, so it does not depend on which other trajectories share the solve
    (nor on the batch size, the chunking of a sweep, or the padding of a sharded batch)."""

    t0: Float[ArrayLike, ""]
    t1: Float[ArrayLike, ""]
    tol: Float[ArrayLike, ""]
    keys: jax.Array  # (*batch,) jax.random keys
    shape: tuple = eqx.field(static=True)  # ShapeDtypeStructs of one trajectory's state
    levy_area: type = eqx.field(static=True, default=diffrax.BrownianIncrement)

    def evaluate(self, t0, t1=None, left=True, use_levy=False):
        def one(key):
            tree = diffrax.VirtualBrownianTree(self.t0, self.t1, tol=self.tol, shape=self.shape, key=key)
            return tree.evaluate(t0, t1, left, use_levy)

        for _ in range(self.keys.ndim):
            one = jax.vmap(one)
        return one(self.keys)


def brownian_path(y0, key, t0, t1, tol):
    """The Brownian paths W of a solve from ``key``: one VirtualBrownianTree over the
    whole state for a single key, one per trajectory for keys of the batch shape."""
    batch = key.ndim
    shape = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[batch:], a.dtype), y0)
    if batch == 0:
        return diffrax.VirtualBrownianTree(t0, t1, tol=tol, shape=shape, key=key)
    return PerTrajectoryBrownian(t0, t1, tol, key, shape)


def _terms(y0, noise, key, t0, t1, step_size):
    """The ODE term, and with noise the Brownian control term (paths from ``key``,
    resolved to a hundredth of a step)."""
    drift = diffrax.ODETerm(vector_field)
    if noise is None:
        return drift
    bm = brownian_path(y0, key, t0, t1, step_size / 100)
    return diffrax.MultiTerm(drift, diffrax.ControlTerm(diffusion, bm))


@eqx.filter_jit
def _solve(
    y0,
    args,
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
    level,
    noise=None,
    key=None,
    adjoint=diffrax.RecursiveCheckpointAdjoint(),
    observe=None,
):
    if step_size is None:
        controller = step_controller(rtol, atol, _PerTrajectoryRMS(y0[1].ndim - 1, dim), jumps)
    else:
        controller = diffrax.ConstantStepSize()
    return diffrax.diffeqsolve(
        _terms(y0, noise, key, t0, t1, step_size),
        solver,
        t0,
        t1,
        step_size,
        y0,
        args=args if noise is None else (*args, noise),
        saveat=diffrax.SaveAt(ts=ts, t1=level is not None, **({} if observe is None else {"fn": observe})),
        stepsize_controller=controller,
        event=None if level is None else _collapse_event(level, ts.dtype),
        max_steps=max_steps,
        adjoint=adjoint,
        throw=False,
        progress_meter=diffrax.TqdmProgressMeter() if progress else diffrax.NoProgressMeter(),
    )


# The array work before and after the solve is one compiled program each (op by op it
# was some forty small programs, each traced and looked up in the compilation cache on
# every start of the command line).
@functools.partial(jax.jit, static_argnums=(1, 2))
def initial_state(x, sphere_bound: bool, span: bool):
    """(coordinates of θ, r, chart) at t0 from the tokens x: θ in the span's coordinates
    when ``span`` (:class:`SpanChart`), else in R^d."""
    theta = normalize(x)
    r = jnp.ones(x.shape[:-1], x.dtype) if sphere_bound else safe_norm(x)
    chart = SpanChart.of(theta) if span else AmbientChart(x.shape[-1])
    return chart.encode(theta), r, chart


@jax.jit
def _valid_saves(lift, r):
    """Per save and token: finite, with a radius r > 0."""
    return jnp.all(jnp.isfinite(lift), axis=-1) & jnp.isfinite(r) & (r > 0)


def _retry_each(y0, att, key, solve):
    """Solve every trajectory of a failed batch on its own (its own step budget; with
    per-trajectory Brownian keys, its own paths): the saves with the time axis first,
    status (batch), and the steps taken."""
    batch = att.beta.shape
    saves, status, steps = [], [], 0
    for idx in np.ndindex(*batch):
        own = key[idx] if key is not None and key.ndim else key
        sol = solve((y0[0][idx], y0[1][idx]), eqx.tree_at(lambda a: a.beta, att, att.beta[idx]), key=own)
        saves.append(sol.ys)
        steps += int(sol.stats["num_steps"])
        status.append(Status.from_result(sol.result))
    stack = lambda *parts: jnp.moveaxis(  # noqa: E731
        jnp.reshape(jnp.stack(parts), (*batch, *parts[0].shape)), len(batch), 0
    )
    return jax.tree.map(stack, *saves), np.reshape(np.asarray(status, np.int8), batch), steps


def _raise_for_single(sol, config, t1):
    """A single trajectory that did not reach t1 raises :class:`SimulationError`."""
    if Status.from_result(sol.result) == Status.MAX_STEPS:
        reached = float(jnp.max(jnp.where(jnp.isfinite(sol.ts), sol.ts, -jnp.inf)))
        raise SimulationError(
            f"the solve hit max_steps={config.max_steps} before t1={t1} (last save time reached "
            f"{reached:g}): raise max_steps, loosen rtol/atol, or shorten t1"
        )
    raise SimulationError(
        f"the solve failed before t1={t1} ({sol.result}); the state may have become "
        "non-finite: lower beta, tighten rtol, or shorten t1"
    )


def _mark_failures(saves, status, made, batch, t1):
    """Mark as failed (NONFINITE) every trajectory with a save that is NaN/inf or has a
    radius r ≤ 0 (the polar form x = rθ broke down: pre at a token whose radius shrinks
    to 0 in finite time), among the saves ``made``; such saves, and those a failed
    trajectory did not reach (diffrax: inf), become NaN. ``saves``: the state (lift, r),
    or a dict of what :class:`Observe` saved. Returns (saves, status)."""
    if isinstance(saves, dict):
        valid = np.asarray(saves["_valid"]) == 1  # (T, *batch)
    else:
        valid = np.all(np.asarray(_valid_saves(*saves)), axis=-1)
    finite = np.all(valid[made], axis=0)
    status = np.where((status == Status.OK) & ~finite, Status.NONFINITE, status).astype(np.int8)
    if not batch and status != Status.OK:
        raise SimulationError(
            f"the state became non-finite (or a radius reached 0) before t1={t1}: lower beta, "
            "shorten t1, or use adaptive steps (no step_size)"
        )
    if np.any(status != Status.OK):
        bad = ~valid  # (T, *batch): the whole save

        def blank(a):
            return jnp.where(jnp.reshape(bad, bad.shape + (1,) * (a.ndim - bad.ndim)), jnp.nan, a)

        saves = jax.tree.map(blank, saves)
        warnings.warn(
            f"{np.sum(status != Status.OK)} of {status.size} trajectories failed before t1={t1}; "
            f"they are marked in traj.status ({STATUS_LEGEND}) and NaN where not reached",
            SimulationWarning,
            stacklevel=4,
        )
    return saves, status


def _trim_at_stop(sol, ts, saves, delta, retried, t1):
    """After a collapse stop (``delta``), keep the saves before the stop and the state at
    the stop as the last save. Returns (ts, saves, stop stats)."""
    if delta is None:
        return ts, saves, {}
    if retried:  # the retries ran to t1
        return ts, saves, {"t_stop": t1, "collapsed": False, "stop_delta": delta}
    # sol.ts: the saves at ts up to the stop, then the end time, then inf.
    done = np.flatnonzero(np.isfinite(np.asarray(sol.ts)))
    t_stop, collapsed = float(sol.ts[done[-1]]), bool(sol.event_mask)
    keep = done[np.asarray(sol.ts)[done] < t_stop] if collapsed else done[:-1]
    keep = np.append(keep, done[-1]) if collapsed else keep
    saves = jax.tree.map(lambda a: a[keep], saves)
    return sol.ts[keep], saves, {"t_stop": t_stop, "collapsed": collapsed, "stop_delta": delta}


def _check_noise(problem, config):
    """The noise level for the solve (None without noise); a noisy problem needs constant
    steps and a Stratonovich solver."""
    if not problem.noise:
        return None
    if not isinstance(config.solver, STRATONOVICH_SOLVERS):
        names = ", ".join(f"diffrax.{s.__name__}()" for s in STRATONOVICH_SOLVERS)
        raise ValueError(
            f"noise > 0 needs a Stratonovich SDE solver ({names}), not {type(config.solver).__name__}"
        )
    if config.adaptive:
        raise ValueError("noise > 0 needs constant steps: give step_size")
    return problem.noise


def _shard(coords, r0, att, key, sharding):
    """The batch spread over the devices of ``sharding`` (None: as it is), padded with
    copies of the first trajectories, per-trajectory Brownian keys with it. Returns
    (coords, r0, attention, key, the unpadded batch size or None)."""
    if sharding is None:
        return coords, r0, att, key, None
    per_trajectory = key is not None and key.ndim > 0
    arrays = [coords, r0, att.beta, *([key] if per_trajectory else [])]
    (coords, r0, beta, *keys), size = shard_batch(arrays, sharding)
    att = eqx.tree_at(lambda a: a.beta, att, beta)
    return coords, r0, att, keys[0] if per_trajectory else key, size


def _lifted(problem: Problem, x):
    """The lifted state (θ = x/|x|, r = |x|; r = 1 for sphere-bound schemes) of tokens x."""
    r = jnp.ones(x.shape[:-1], x.dtype) if problem.scheme.sphere_bound else safe_norm(x)
    return normalize(x), r


def _tokens(y):
    lift, r = y
    return r[..., None] * normalize(lift)


def _variational_field(t, state, args):
    """The flow and its variational equation: dy/dt = f(y), dV_j/dt = Df(y) V_j."""
    y, V = state
    push = lambda v: jax.jvp(lambda y: vector_field(t, y, args), (y,), (v,))
    return jax.vmap(push, out_axes=(None, 0))(V)


def flow_between(problem: Problem, config: SolveConfig, x, ta, tb, *, adjoint=None):
    """The flow map x(ta) ↦ x(tb) of one trajectory (``problem`` unbatched: x0 (n, d),
    scalar beta) as a differentiable function of the tokens ``x`` (n, d) and of the
    problem's weights: the lifted state of :func:`integrate` (θ = x/|x|, r = |x|, or
    r = 1 for sphere-bound schemes) solved by the same diffrax solve, returned as
    tokens r θ. ``adjoint``: the default ``RecursiveCheckpointAdjoint`` for gradients,
    ``DirectAdjoint`` for forward-over-reverse. Failures are not classified here: a
    failed solve returns NaN."""
    dtype = x.dtype
    jumps = problem.jump_times()
    jumps = jnp.asarray(jumps, dtype) if jumps and config.adaptive else None
    scalar = lambda v: None if v is None else jnp.asarray(v, dtype)
    args = (problem.scheme, problem.attention)
    lift = lambda x: _lifted(problem, x)
    sol = _solve(
        lift(x), args, config.solver, jnp.reshape(scalar(tb), (1,)), scalar(ta), scalar(tb),
        scalar(config.rtol), scalar(config.atol), scalar(config.step_size), jumps, config.max_steps, False,
        int(x.shape[-1]), None, adjoint=diffrax.RecursiveCheckpointAdjoint() if adjoint is None else adjoint,
    )  # fmt: skip
    bad = ~jnp.isfinite(sol.ts[0])  # a failed solve: its save is inf
    return jnp.where(bad, jnp.nan, _tokens(jax.tree.map(lambda a: a[0], sol.ys)))


class Observe(eqx.Module):
    """What a sweep saves instead of the state (``diffrax.SaveAt(fn=...)``): per
    trajectory the named observables of the directions (in the solver's coordinates:
    they need inner products only), min_{i≠j} ⟨θ_i, θ_j⟩ (``_min_cosine``, for the
    collapse time) and whether the state is finite with radii > 0 (``_valid``). Saves of
    (T, batch) numbers, not (T, batch, n, m): a 640-trajectory solve of n = 32 tokens and
    301 saves keeps 790 MB of states otherwise."""

    names: tuple = eqx.field(static=True)
    delta: float = eqx.field(static=True)

    def __call__(self, t, y, args):
        lift, r = y
        theta = normalize(lift)
        valid = jnp.all(_valid_saves(lift, r), axis=-1)
        values = analysis.observe(self.names, theta, r, args[1].beta, self.delta)
        values["_min_cosine"] = min_cosine(theta)
        # as floats (valid: 1.0 or 0.0; cluster counts): diffrax fills the saves it did not make with inf
        return {k: v.astype(lift.dtype) for k, v in {**values, "_valid": valid}.items()}


class ObservedSolution(NamedTuple):
    """:func:`integrate` with ``observe``: ``values`` name -> (T, *batch) (NaN at the
    saves a failed trajectory did not validly reach), ``ts``, ``stats`` and ``status``
    as in :class:`RawSolution`."""

    ts: jax.Array
    values: dict
    stats: dict
    status: np.ndarray


def integrate(
    problem: Problem, config: SolveConfig, observe: Observe | None = None
) -> RawSolution | ObservedSolution:
    """Solve ``problem`` as ``config`` says; see :func:`particles.simulate` for the
    failure rules (a single trajectory raises :class:`SimulationError`; in a batch the
    failed ones are marked in ``status``, the others kept, a warning issued). With
    ``observe`` (the ODE only): save what it computes instead of the state, and return
    an :class:`ObservedSolution`."""
    batch, dtype, t1 = problem.batch_shape, problem.dtype, problem.t1
    n, d = problem.x0.shape[-2:]
    if problem.layers is not None:
        with precision(dtype):
            return integrate_layers(problem, config)
    with precision(dtype):
        ts = jnp.asarray(save_times(problem.t0, t1, config.ts), dtype)
        span = config.reduce_span and n < d and problem.keeps_span
        coords, r0, chart = initial_state(problem.x0, problem.scheme.sphere_bound, span)
        jumps = problem.jump_times()
        jumps = jnp.asarray(jumps, dtype) if jumps and config.adaptive else None
        sharding = batch_sharding() if config.shard and batch else None
        coords, r0, att, key, size = _shard(coords, r0, problem.attention, problem.key, sharding)
        scalar = lambda v: None if v is None else jnp.asarray(v, dtype)
        level = scalar(None if config.stop_at_collapse is None else 1 - config.stop_at_collapse)

        noise = _check_noise(problem, config)

        def solve(y0, att, level=None, key=key):
            return _solve(
                y0, (problem.scheme, att), config.solver, ts, scalar(problem.t0), scalar(t1),
                scalar(config.rtol), scalar(config.atol), scalar(config.step_size), jumps,
                config.max_steps, config.progress, int(d), level, scalar(noise), key, observe=observe,
            )  # fmt: skip

        start = time.perf_counter()
        sol = solve((coords, r0), att, level)
        saves = jax.block_until_ready(sol.ys)
        status = np.full(att.beta.shape, Status.from_result(sol.result), np.int8)
        num_steps = int(sol.stats["num_steps"])
        retried = status.size > 0 and status.flat[0] != Status.OK and bool(batch)
        if retried:
            saves, status, retry_steps = _retry_each((coords, r0), att, key, solve)
            num_steps += retry_steps
        wall = time.perf_counter() - start
        if status.flat[0] != Status.OK and not batch:
            _raise_for_single(sol, config, t1)
        if size is not None:  # drop the padding copies
            saves, status = jax.tree.map(lambda a: a[:, :size], saves), status[:size]
        # after a collapse stop, the saves not made are inf by design
        made = slice(None) if retried else np.isfinite(np.asarray(sol.ts))
        saves, status = _mark_failures(saves, status, made, batch, t1)
        ts, saves, stop = _trim_at_stop(sol, ts, saves, config.stop_at_collapse, retried, t1)
        stats = {
            "num_steps": num_steps,
            "num_accepted": int(sol.stats["num_accepted_steps"]),
            "num_rejected": int(sol.stats["num_rejected_steps"]),
            "wall_time": wall,
            "num_failed": int(np.sum(status != Status.OK)),
            **stop,
        }
        if observe is not None:
            return ObservedSolution(ts=ts, values=saves, stats=stats, status=status)
        return RawSolution(ts=ts, lift=saves[0], r=saves[1], chart=chart, stats=stats, status=status)
