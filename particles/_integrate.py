"""Solve a :class:`~particles.Problem` as configured by a :class:`~particles.SolveConfig`:
the driver. It picks the path (discrete layers, or the token flow of :mod:`particles._flow`
in R^d or in the span chart), solves the whole batch in one compiled diffrax solve
(:mod:`particles._engine`), and leaves the verdict to :mod:`particles._outcome`
(classification, retries, collapse stop). The result is a
:class:`~particles.RawSolution` in the solver's coordinates;
:meth:`particles.Trajectory.from_raw` turns it into tokens.
"""

import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import analysis
from ._config import SolveConfig, save_times
from ._devices import batch_sharding, shard_batch
from ._engine import solve_ode
from ._flow import initial_state
from ._layers import integrate_layers
from ._noise import check_noise
from ._outcome import mark_failures, raise_for_single, retry_each, trim_at_stop, valid_saves
from ._problem import Problem
from ._solution import ObservedSolution, RawSolution
from ._status import Status
from ._validate import precision
from .analysis import min_cosine
from .sphere import normalize


def _shard(coords, r0, att, key, sharding):
    """The batch spread over the devices of ``sharding`` (None: as it is), padded with
    copies of the first trajectories, per-trajectory Brownian keys with it. Returns
    (coords, r0, attention, key, the unpadded batch size or None)."""
    if sharding is None:
        return coords, r0, att, key, None
    per_trajectory = key is not None and key.ndim > 0
    batch_arrays = att.batch_arrays()
    arrays = [coords, r0, *batch_arrays, *([key] if per_trajectory else [])]
    (coords, r0, *rest), size = shard_batch(arrays, sharding)
    att = att.with_batch(*rest[: len(batch_arrays)])
    return coords, r0, att, rest[-1] if per_trajectory else key, size


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
        valid = jnp.all(valid_saves(lift, r), axis=-1)
        values = analysis.observe(self.names, theta, r, args[1].beta, self.delta)
        values["_min_cosine"] = min_cosine(theta)
        # as floats (valid: 1.0 or 0.0; cluster counts): diffrax fills the saves it did not make with inf
        return {k: v.astype(lift.dtype) for k, v in {**values, "_valid": valid}.items()}


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

        noise = check_noise(problem, config)

        def solve(y0, att, level=None, key=key):
            return solve_ode(
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
            saves, status, retry_steps = retry_each((coords, r0), att, key, solve)
            num_steps += retry_steps
        wall = time.perf_counter() - start
        if status.flat[0] != Status.OK and not batch:
            raise_for_single(sol, config, t1)
        if size is not None:  # drop the padding copies
            saves, status = jax.tree.map(lambda a: a[:, :size], saves), status[:size]
        # after a collapse stop, the saves not made are inf by design
        made = slice(None) if retried else np.isfinite(np.asarray(sol.ts))
        saves, status = mark_failures(saves, status, made, batch, t1)
        ts, saves, stop = trim_at_stop(sol, ts, saves, config.stop_at_collapse, retried, t1)
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
