"""``diffrax.diffeqsolve``'s loop written out for a forward solve, with diffrax's own
parts: each step is ``solver.step``, then ``controller.adapt_step_size``, then the saves
inside the step from ``solver.interpolation_cls``, then the event's value; after the loop,
the event time by ``optimistix.root_find``, the saves after it dropped and the state at
it saved last. The same calls on the same numbers as diffrax 0.7's ``loop`` (its
``_integrate.py``), so the same steps and results to the last bit, in one
``lax.while_loop`` that compiles faster (a sweep's solve: 1.4-1.5 s, not 2.2-2.7 s): no adjoint's
checkpointed loop and buffers, no step traced three times to find its static parts, no
dense output or general events.

One difference of set-up is deliberate and matches diffrax: ``diffeqsolve`` hands the
controller its terms wrapped (``WrapTerm``), and ``PIDController`` then starts every
solve with the step 0.01 instead of Hairer's estimate; so does :func:`run`
(``dt0=None``)."""

from typing import NamedTuple

import diffrax
import jax
import jax.numpy as jnp
import optimistix as optx
from jaxtyping import PyTree

RESULTS = diffrax.RESULTS

_FIRST_STEP = 0.01  # what diffeqsolve's PIDController starts with (see the module docstring)


class _State(NamedTuple):
    y: PyTree
    tprev: jax.Array
    tnext: jax.Array
    made_jump: jax.Array | bool
    solver_state: PyTree
    controller_state: PyTree
    result: RESULTS
    num_steps: jax.Array
    num_accepted: jax.Array
    num_rejected: jax.Array
    save_index: jax.Array  # the next row of save_ts/save_ys
    ts_index: jax.Array  # the next of the requested save times
    save_ts: jax.Array
    save_ys: PyTree
    progress: PyTree
    event: tuple  # (tprev, tnext, dense info of the last step, value at tprev, mask)


def _identity(t, y, args):
    return y


def _t1_floor(t1):
    """t1 less 100 ulp: a step ending past it ends at t1 (as diffeqsolve; in a loop, where
    diffeqsolve writes out the hundred steps, which took 0.19 s to compile)."""
    below = lambda _, t: jnp.nextafter(t, jnp.asarray(-jnp.inf, t1.dtype))  # noqa: E731
    return jax.lax.fori_loop(0, 100, below, t1)


def _save_in_step(s: _State, keep, interpolation, ts, save_fn, args):
    """The saves at the requested times inside the step just accepted (ts ≤ the step's end)."""

    def cond(c):
        i = c[0]
        return keep & (ts[jnp.minimum(i, len(ts) - 1)] <= s.tnext) & (i < len(ts))

    def body(c):
        i, j, save_ts, save_ys = c
        t = ts[i]
        value = save_fn(t, interpolation.evaluate(t), args)
        save_ys = jax.tree.map(lambda buf, v: buf.at[j].set(v), save_ys, value)
        return i + 1, j + 1, save_ts.at[j].set(t), save_ys

    return jax.lax.while_loop(cond, body, (s.ts_index, s.save_index, s.save_ts, s.save_ys))


def _event_after_step(s: _State, event, y, tprev, dense, args, result):
    """The event's value at the new state, and whether it crossed zero upwards in this step."""
    if event is None:
        return s.event, result
    value = event.cond_fn(tprev, y, args)
    mask = (jnp.sign(s.event[3]) <= 0) & (jnp.sign(value) > 0)
    return (s.tprev, s.tnext, dense, value, mask), RESULTS.where(mask, RESULTS.event_occurred, result)


def _step(
    s: _State,
    *,
    terms,
    solver,
    controller,
    error_order,
    args,
    ts,
    t0,
    t1,
    t1_floor,
    save_fn,
    event,
    progress_meter,
):
    y, y_error, dense, solver_state, solver_result = solver.step(
        terms, s.tprev, s.tnext, s.y, args, s.solver_state, s.made_jump
    )
    y_error = jax.tree.map(lambda x: jnp.where(jnp.isnan(x), jnp.inf, x), y_error)
    keep, tprev, tnext, made_jump, controller_state, controller_result = controller.adapt_step_size(
        s.tprev, s.tnext, s.y, y, args, y_error, error_order, s.controller_state
    )
    tprev = jnp.minimum(tprev, t1)
    tnext = jnp.where(tnext > t1_floor, jnp.where(keep, t1, tprev + 0.5 * (t1 - tprev)), tnext)
    progress = progress_meter.step(s.progress, (tprev - t0) / (t1 - t0))
    kept = lambda new, old: jax.tree.map(lambda a, b: jnp.where(keep, a, b), new, old)  # noqa: E731
    result = RESULTS.where(
        s.result == RESULTS.successful, RESULTS.where(keep, solver_result, RESULTS.successful), s.result
    )
    result = RESULTS.where(result == RESULTS.successful, controller_result, result)
    interpolation = solver.interpolation_cls(t0=s.tprev, t1=s.tnext, **dense)
    ts_index, save_index, save_ts, save_ys = _save_in_step(s, keep, interpolation, ts, save_fn, args)
    y = kept(y, s.y)
    event_state, result = _event_after_step(s, event, y, tprev, dense, args, result)
    return _State(
        y=y, tprev=tprev, tnext=tnext, made_jump=made_jump if isinstance(s.made_jump, bool) else kept(made_jump, s.made_jump),
        solver_state=kept(solver_state, s.solver_state), controller_state=controller_state, result=result,
        num_steps=s.num_steps + 1, num_accepted=s.num_accepted + jnp.where(keep, 1, 0),
        num_rejected=s.num_rejected + jnp.where(keep, 0, 1), save_index=save_index, ts_index=ts_index,
        save_ts=save_ts, save_ys=save_ys, progress=progress, event=event_state,
    )  # fmt: skip


def _stop_at_event(f: _State, solver, event, args, save_fn):
    """After the loop: the event time (root find on the last step's interpolation), the
    saves after it dropped, the state at it saved last. Returns (save_ts, save_ys, result)."""
    tprev, tnext, dense, _, happened = f.event

    def root_find():
        interpolation = solver.interpolation_cls(t0=tprev, t1=tnext, **dense)

        def g(t, _):
            value = jax.lax.cond(
                happened, lambda: event.cond_fn(t, interpolation.evaluate(t), args), lambda: 0.0 * t
            )
            return jnp.where(happened, value, tnext - t)

        found = optx.root_find(
            g, event.root_finder, y0=tnext, options={"lower": tprev, "upper": tnext}, throw=False
        )
        y_final = jax.lax.cond(f.num_steps == 0, lambda: f.y, lambda: interpolation.evaluate(found.value))
        ok = found.result == optx.RESULTS.successful
        return found.value, y_final, RESULTS.where(ok, f.result, RESULTS.promote(found.result))

    t_final, y_final, result = jax.lax.cond(happened, root_find, lambda: (f.tprev, f.y, f.result))
    after = f.save_ts > t_final
    index = f.save_index - jnp.sum(after & (f.save_ts < jnp.inf))
    save_ts = jnp.where(after, jnp.inf, f.save_ts).at[index].set(t_final)
    blank = lambda a: jnp.where(after[(...,) + (None,) * (a.ndim - 1)], jnp.inf, a)  # noqa: E731
    save_ys = jax.tree.map(lambda a, v: blank(a).at[index].set(v), f.save_ys, save_fn(t_final, y_final, args))
    return save_ts, save_ys, result


def run(
    terms, solver, controller, y0, args, *, ts, t0, t1, dt0, max_steps, save_fn=None, event=None,
    progress_meter=diffrax.NoProgressMeter(),
) -> diffrax.Solution:  # fmt: skip
    """Solve ``terms`` with ``solver`` and ``controller`` from ``y0`` on [t0, t1] (t0 < t1),
    saving ``save_fn(t, y, args)`` (default y) at ``ts``; with ``event`` (one real-valued
    ``cond_fn`` crossing zero upwards, and a root finder) ending there and saving the
    state at the event last, as ``diffrax.SaveAt(ts=ts, t1=True)`` does. As ``diffeqsolve(...,
    throw=False)`` returns it: ts and ys (inf where not saved), result, stats,
    event_mask."""
    save_fn = _identity if save_fn is None else save_fn
    error_order = solver.error_order(terms)
    tnext, controller_state = controller.init(
        terms, t0, t1, y0, _FIRST_STEP if dt0 is None else dt0, args, solver.func, error_order
    )
    tnext = jnp.minimum(tnext, t1)
    solver_state = solver.init(terms, t0, tnext, y0, args)
    rows = len(ts) + (event is not None)
    shape = jax.eval_shape(lambda: save_fn(t0, y0, args))
    # a controller that steps across jumps (ClipStepSizeController's jump_ts) says per step
    # whether it made one; without jumps made_jump stays the constant False, as in diffeqsolve
    made_jump = jnp.asarray(False) if getattr(controller, "jump_ts", None) is not None else False
    event_state = None
    if event is not None:
        dense = jax.eval_shape(lambda: solver.step(terms, t0, tnext, y0, args, solver_state, made_jump))[2]
        zeros = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), dense)
        event_state = (t0, t0, zeros, event.cond_fn(t0, y0, args), jnp.asarray(False))
    zero = jnp.asarray(0)
    state = _State(
        y=y0, tprev=t0, tnext=tnext, made_jump=made_jump, solver_state=solver_state, controller_state=controller_state,
        result=RESULTS.successful, num_steps=zero,
        num_accepted=zero, num_rejected=zero, save_index=zero, ts_index=zero, save_ts=jnp.full(rows, jnp.inf, ts.dtype),
        save_ys=jax.tree.map(lambda a: jnp.full((rows, *a.shape), jnp.inf, a.dtype), shape),
        progress=progress_meter.init(), event=event_state,
    )  # fmt: skip
    running = lambda s: (s.tprev < t1) & (s.result == RESULTS.successful)  # noqa: E731
    bounded = running if max_steps is None else (lambda s: running(s) & (s.num_steps < max_steps))
    t1_floor = _t1_floor(t1)  # once, before the loop
    step = lambda s: _step(  # noqa: E731
        s, terms=terms, solver=solver, controller=controller, error_order=error_order, args=args, ts=ts, t0=t0,
        t1=t1, t1_floor=t1_floor, save_fn=save_fn, event=event, progress_meter=progress_meter,
    )  # fmt: skip
    f = jax.lax.while_loop(bounded, step, state)
    save_ts, save_ys, result = f.save_ts, f.save_ys, f.result
    if event is not None:
        save_ts, save_ys, result = _stop_at_event(f, solver, event, args, save_fn)
    progress_meter.close(f.progress)
    result = RESULTS.where(running(f._replace(result=result)), RESULTS.max_steps_reached, result)
    stats = {"num_steps": f.num_steps, "num_accepted_steps": f.num_accepted, "num_rejected_steps": f.num_rejected,
             "max_steps": max_steps}  # fmt: skip
    return diffrax.Solution(
        t0=t0, t1=t1, ts=save_ts, ys=save_ys, interpolation=None, stats=stats, result=result, solver_state=None,
        controller_state=None, made_jump=None, event_mask=None if event is None else f.event[4],
    )  # fmt: skip
