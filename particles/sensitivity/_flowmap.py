"""The flow map of one trajectory as a differentiable function, and its variational
equation: the seam between the solve and the sensitivity functions."""

import diffrax
import jax
import jax.numpy as jnp

from .._config import SolveConfig
from .._engine import solve_ode_adjoint
from .._flow import lifted, tokens, vector_field
from .._problem import Problem


def variational_field(t, state, args):
    """The flow and its variational equation: dy/dt = f(y), dV_j/dt = Df(y) V_j."""
    y, V = state
    push = lambda v: jax.jvp(lambda y: vector_field(t, y, args), (y,), (v,))
    return jax.vmap(push, out_axes=(None, 0))(V)


def flow_between(problem: Problem, config: SolveConfig, x, ta, tb, *, adjoint=None):
    """The flow map x(ta) ↦ x(tb) of one trajectory (``problem`` unbatched: x0 (n, d),
    scalar beta) as a differentiable function of the tokens ``x`` (n, d) and of the
    problem's weights: the lifted state of :func:`integrate` (θ = x/|x|, r = |x|, or
    r = 1 for sphere-bound schemes) solved with the same steps by ``diffeqsolve``,
    which can be differentiated in reverse mode, returned as tokens r θ. ``adjoint``:
    the default ``RecursiveCheckpointAdjoint`` for gradients, ``DirectAdjoint`` for
    forward-over-reverse. Failures are not classified here: a
    failed solve returns NaN."""
    dtype = x.dtype
    jumps = problem.jump_times()
    jumps = jnp.asarray(jumps, dtype) if jumps and config.adaptive else None
    scalar = lambda v: None if v is None else jnp.asarray(v, dtype)
    args = (problem.scheme, problem.attention)
    lift = lambda x: lifted(problem, x)
    sol = solve_ode_adjoint(
        lift(x), args, config.solver, jnp.reshape(scalar(tb), (1,)), scalar(ta), scalar(tb),
        scalar(config.rtol), scalar(config.atol), scalar(config.step_size), jumps, config.max_steps,
        int(x.shape[-1]), diffrax.RecursiveCheckpointAdjoint() if adjoint is None else adjoint,
    )  # fmt: skip
    bad = ~jnp.isfinite(sol.ts[0])  # a failed solve: its save is inf
    return jnp.where(bad, jnp.nan, tokens(jax.tree.map(lambda a: a[0], sol.ys)))
