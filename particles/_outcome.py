"""How a solve ended, trajectory by trajectory: the one place where failures are
classified (:data:`~particles.Status`), a failed batch is retried trajectory by
trajectory, a single failed trajectory raises :class:`~particles.SimulationError`, the
saves a failed trajectory did not validly reach become NaN (with a warning), and the
saves are trimmed at a collapse stop."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np

from ._status import STATUS_LEGEND, SimulationError, SimulationWarning, Status


@jax.jit
def valid_saves(lift, r):
    """Per save and token: finite, with a radius r > 0."""
    return jnp.all(jnp.isfinite(lift), axis=-1) & jnp.isfinite(r) & (r > 0)


def retry_each(y0, att, key, solve):
    """Solve every trajectory of a failed batch on its own (its own step budget; with
    per-trajectory Brownian keys, its own paths): the saves with the time axis first,
    status (batch), and the steps taken."""
    batch = att.beta.shape
    saves, status, steps = [], [], 0
    for idx in np.ndindex(*batch):
        own = key[idx] if key is not None and key.ndim else key
        sol = solve((y0[0][idx], y0[1][idx]), att.with_batch(*(a[idx] for a in att.batch_arrays())), key=own)
        saves.append(sol.ys)
        steps += int(sol.stats["num_steps"])
        status.append(Status.from_result(sol.result))
    stack = lambda *parts: jnp.moveaxis(  # noqa: E731
        jnp.reshape(jnp.stack(parts), (*batch, *parts[0].shape)), len(batch), 0
    )
    return jax.tree.map(stack, *saves), np.reshape(np.asarray(status, np.int8), batch), steps


def raise_for_single(sol, config, t1):
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


def mark_failures(saves, status, made, batch, t1):
    """Mark as failed (NONFINITE) every trajectory with a save that is NaN/inf or has a
    radius r ≤ 0 (the polar form x = rθ broke down: pre at a token whose radius shrinks
    to 0 in finite time), among the saves ``made``; such saves, and those a failed
    trajectory did not reach (diffrax: inf), become NaN. ``saves``: the state (lift, r),
    or a dict of what :class:`Observe` saved. Returns (saves, status)."""
    if isinstance(saves, dict):
        valid = np.asarray(saves["_valid"]) == 1  # (T, *batch)
    else:
        valid = np.all(np.asarray(valid_saves(*saves)), axis=-1)
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


def trim_at_stop(sol, ts, saves, delta, retried, t1):
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


def status_of_saves(valid, ok=True) -> np.ndarray:
    """Per trajectory, from ``valid`` (T, *batch: each save finite, radii > 0) and
    whether the solve itself succeeded (``ok``): OK where both hold, else NONFINITE."""
    every = np.all(np.asarray(valid), axis=0) & bool(ok)
    return np.where(every, Status.OK, Status.NONFINITE).astype(np.int8)


def observed_outcome(obs, solve_one, batch: int, ts):
    """The outcome of a solve that saved observables (a sweep's Gram solve): ``obs``
    with ``min_cosine`` (T, batch), ``t_stop``, ``ok``; a failed one is solved again
    trajectory by trajectory, ``solve_one(i)`` each to t1 (no stop), as the token
    solve's retries. Returns (the parts, status per trajectory): MAX_STEPS where a
    solve ran out of steps, NONFINITE where a save it made is not finite."""
    parts = [obs] if obs.ok else [solve_one(i) for i in range(batch)]
    ok = np.concatenate([np.full(p.min_cosine.shape[1], p.ok) for p in parts])
    made = np.concatenate(
        [np.broadcast_to((ts <= p.t_stop)[:, None], p.min_cosine.shape) for p in parts], axis=1
    )
    min_cos = np.concatenate([p.min_cosine for p in parts], axis=1)  # (T, batch), NaN where not reached
    nonfinite = np.any(made & ~np.isfinite(min_cos), axis=0)
    status = np.where(ok, np.where(nonfinite, Status.NONFINITE, Status.OK), Status.MAX_STEPS).astype(np.int8)
    return parts, status
