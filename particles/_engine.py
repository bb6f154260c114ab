"""The diffrax engine: the one place ``diffrax.diffeqsolve`` is called for the token
flow (:func:`solve_ode`), with its error norm (each trajectory's RMS, max over the
batch) and the collapse event."""

import diffrax
import equinox as eqx
import jax.numpy as jnp
import optimistix as optx

from ._flow import vector_field
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


@eqx.filter_jit
def solve_density(term, solver, y0, args, ts, t1, controller, max_steps):
    """One ``diffrax.diffeqsolve`` for a flow whose state is a density's coefficients
    (:mod:`particles.meanfield`): from t = 0 to ``t1`` with the given term, solver and
    step-size controller, saving at ``ts``; failures are reported in ``result``, not
    raised."""
    return diffrax.diffeqsolve(
        term,
        solver,
        0.0,
        t1,
        None,
        y0,
        args=args,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=controller,
        max_steps=max_steps,
        throw=False,
    )
