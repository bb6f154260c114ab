"""The engines of the solves: the token flow's forward solve (:func:`solve_ode`, the
loop of :mod:`particles._loop`), its solve to differentiate (:func:`solve_ode_adjoint`)
and the mean-field solve (:func:`solve_density`), the one place ``diffrax.diffeqsolve``
is called, with the error norm (each trajectory's RMS, max over the batch) and
the collapse event."""

import diffrax
import equinox as eqx
import jax.numpy as jnp
import optimistix as optx

from ._flow import vector_field
from ._loop import run
from ._noise import brownian_path, diffusion
from ._solver import step_controller
from .analysis import min_cosine
from .sphere import normalize


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


def _terms(y0, noise, key, t0, t1, step_size):
    """The ODE term, and with noise the Brownian control term (paths from ``key``,
    resolved to a hundredth of a step)."""
    drift = diffrax.ODETerm(vector_field)
    if noise is None:
        return drift
    bm = brownian_path(y0, key, t0, t1, step_size / 100)
    return diffrax.MultiTerm(drift, diffrax.ControlTerm(diffusion, bm))


def _controller(rtol, atol, step_size, y0, dim, jumps):
    """PI control to rtol/atol in each trajectory's RMS (:func:`step_controller`), or
    constant steps."""
    if step_size is None:
        return step_controller(rtol, atol, _PerTrajectoryRMS(y0[1].ndim - 1, dim), jumps)
    return diffrax.ConstantStepSize()


@eqx.filter_jit
def solve_ode(
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
    observe=None,
) -> diffrax.Solution:
    """The forward solve of the token flow from ``y0`` = (lift, r) on [t0, t1], saving
    at ``ts`` (``observe(t, y, args)`` of the state, or the state), ending early once
    every trajectory has collapsed to ``level`` (None: never), with noise ``noise``
    (Brownian paths from ``key``).

    It is ``diffrax.diffeqsolve``'s loop written out (:func:`particles._loop.run`) with
    diffrax's own parts: the terms, the solver's step, the step-size controller, the
    solver's interpolation for the saves and optimistix's root find for the collapse
    time, called in the order ``diffeqsolve`` calls them, so it takes the same steps and
    returns the same numbers, bit for bit (tests/test_engine.py), as a
    :class:`diffrax.Solution`. What it leaves out (the adjoint's checkpointed loop, the
    tracing of each step three times over, dense output, events in general) is what the
    compiler spent its time on: a sweep's solve program compiled in 1.4-1.5 s instead
    of 2.2-2.7 s (benchmarks/HISTORY.md), and a step costs the same. It cannot be differentiated in
    reverse mode: :func:`solve_ode_adjoint` is the solve for that."""
    terms = _terms(y0, noise, key, t0, t1, step_size)
    args = args if noise is None else (*args, noise)
    event = None if level is None else _collapse_event(level, ts.dtype)
    return run(
        terms, solver, _controller(rtol, atol, step_size, y0, dim, jumps), y0, args, ts=ts, t0=t0, t1=t1,
        dt0=step_size, max_steps=max_steps, save_fn=observe, event=event,
        progress_meter=diffrax.TqdmProgressMeter() if progress else diffrax.NoProgressMeter(),
    )  # fmt: skip


@eqx.filter_jit
def solve_ode_adjoint(
    y0, args, solver, ts, t0, t1, rtol, atol, step_size, jumps, max_steps, dim, adjoint
) -> diffrax.Solution:
    """:func:`solve_ode` (without noise, collapse stop or progress) by
    ``diffrax.diffeqsolve`` with ``adjoint``: the solve to differentiate in reverse mode
    (:mod:`particles.sensitivity`). The same steps and numbers as :func:`solve_ode`."""
    return diffrax.diffeqsolve(
        diffrax.ODETerm(vector_field),
        solver,
        t0,
        t1,
        step_size,
        y0,
        args=args,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=_controller(rtol, atol, step_size, y0, dim, jumps),
        max_steps=max_steps,
        adjoint=adjoint,
        throw=False,
    )


@eqx.filter_jit
def solve_density(term, solver, y0, args, ts, t1, controller, max_steps):
    """The solve of a flow whose state is a density's coefficients
    (:mod:`particles.meanfield`): from t = 0 to ``t1`` with the given term, solver and
    step-size controller, saving at ``ts``, by the forward engine (``diffeqsolve``'s
    steps and numbers, :mod:`particles._loop`); failures are reported in ``result``,
    not raised."""
    t0 = jnp.zeros((), ts.dtype)
    return run(
        term,
        solver,
        controller,
        y0,
        args,
        ts=ts,
        t0=t0,
        t1=jnp.asarray(t1, ts.dtype),
        dt0=None,
        max_steps=max_steps,
    )
