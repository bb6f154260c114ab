"""The noise of MODEL.md §10 (Stratonovich, dθ_i = drift dt + √(2D) P_θ_i ∘ dW_i) as
diffrax terms: the diffusion in lifted coordinates, the Brownian paths (one per
trajectory of a batch), and the rules a noisy solve must follow."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import ArrayLike, Float

from .sphere import safe_norm, tangent_projection

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


def check_noise(problem, config):
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
