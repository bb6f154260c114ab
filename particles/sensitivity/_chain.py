"""The problem one trajectory at a time, the chain of segments x_{s+1} = Φ_s(x_s) between
boundaries, and the tangent spaces of the state."""

import math

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._config import SolveConfig, save_times
from .._layers import apply_layer, residual_steps
from .._problem import Problem, make_problem
from .._validate import check_int, precision
from ..sphere import tangent_projection
from ._flowmap import flow_between

CONFIG_KEYS = ("solver", "rtol", "atol", "step_size", "max_steps", "ts", "reduce_span")

# -- the problem, one trajectory at a time ----------------------------------------------


def setup(x0, scheme, beta, t1, options) -> tuple[Problem, SolveConfig]:
    """make_problem and SolveConfig from simulate's keyword arguments (one-line errors)."""
    options = dict(options)
    for key in ("key", "stop_at_collapse", "progress", "shard"):
        if key in options:
            raise ValueError(f"{key}= does not apply to the sensitivity functions; drop it")
    if options.pop("noise", 0.0):
        raise ValueError(
            "noise > 0: the sensitivity functions differentiate the ODE or the layers, not the SDE"
        )
    config = {k: options.pop(k) for k in CONFIG_KEYS if k in options}
    problem = make_problem(x0, scheme, beta=beta, t1=t1, **options)
    return problem, SolveConfig(**config)


def flatten_batch(problem: Problem) -> tuple[Array, ...]:
    """x0 (B, n, d), beta (B,) and, where they differ across the batch, the positions
    (B, n), with the batch flattened (B = 1 for no batch)."""
    n, d = problem.x0.shape[-2:]
    positions = problem.attention.batch_positions
    own = () if positions is None else (jnp.reshape(positions, (-1, n)),)
    return problem.x0.reshape(-1, n, d), jnp.reshape(problem.attention.beta, (-1,)), *own


def single_problem(problem: Problem, x0, beta, positions=None) -> Problem:
    """The problem of one trajectory (tokens x0 (n, d), scalar beta, its positions (n,)
    where they differ across the batch)."""
    return problem.with_start(x0, beta, positions)


def unflatten(problem: Problem, a, lead=0):
    """Restore the batch shape on axis ``lead`` of a per-trajectory result (B first)."""
    a = jnp.moveaxis(a, 0, lead)
    return a.reshape(a.shape[:lead] + problem.batch_shape + a.shape[lead + 1 :])


def on_spheres(problem: Problem) -> bool:
    """Whether the state is a product of unit spheres (n(d − 1) tangent directions):
    sphere-bound schemes, with the projection norm in the layer mode."""
    return bool(problem.scheme.sphere_bound and problem.norm.kind == "projection")


# -- segments: the maps between boundaries ----------------------------------------------


class Segments(eqx.Module):
    """The chain x_{s+1} = Φ_s(x_s), s = 0..S−1, between ``times`` (S + 1 boundaries)."""

    times: tuple[float, ...] = eqx.field(static=True)
    layered: bool = eqx.field(static=True)
    steps: Array | None  # residual step of each layer (layer mode)

    @property
    def count(self) -> int:
        return len(self.times) - 1

    def step(self, problem: Problem, config: SolveConfig, x, s, adjoint=None):
        """x_{s+1} = Φ_s(x)."""
        if self.layered:
            return apply_layer(problem, x, s, self.steps[s])
        times = jnp.asarray(self.times, x.dtype)
        return flow_between(problem, config, x, times[s], times[s + 1], adjoint=adjoint)

    def push(self, problem: Problem, x, s, tangents):
        """(Φ_s(x), DΦ_s(x) V) of layer s for tangents V (k, n, d): exact JVPs."""
        step = lambda y: apply_layer(problem, y, s, self.steps[s])
        return jax.vmap(lambda v: jax.jvp(step, (x,), (v,)), out_axes=(None, 0))(tangents)


def segments(problem: Problem, config: SolveConfig, ts=None) -> Segments:
    """Boundaries: every layer with ``layers``; else t0, the save times, t1."""
    t0, t1 = problem.t0, problem.t1
    if problem.layers is not None:
        L = problem.layers
        steps = jnp.asarray(residual_steps(problem.residual, (t1 - t0) / L, L), problem.dtype)
        return Segments(tuple((t0 + np.arange(L + 1) * (t1 - t0) / L).tolist()), True, steps)
    inner = save_times(t0, t1, config.ts if ts is None else ts)
    times = np.unique(np.concatenate([[t0], inner, [t1]]))
    return Segments(tuple(times.tolist()), False, None)


def chain(problem, config, segs, x, adjoint=None, offsets=None, checkpoint=False):
    """x_S and the states (S + 1, n, d) along the chain from x; ``offsets`` (S + 1, n, d)
    are added to each state (their gradient is ∂ℓ/∂x_s)."""
    offsets = jnp.zeros((segs.count + 1, *x.shape), x.dtype) if offsets is None else offsets

    def body(x, s):
        x = x + offsets[s]
        return segs.step(problem, config, x, s, adjoint), x

    body = jax.checkpoint(body) if checkpoint else body
    last, xs = jax.lax.scan(body, x, jnp.arange(segs.count))
    last = last + offsets[-1]
    return last, jnp.concatenate([xs, last[None]])


# -- tangent spaces ---------------------------------------------------------------------


def tangent_basis(theta: Float[ArrayLike, "n d"]) -> Float[Array, "n dm1 d"]:
    """An orthonormal basis of each T_{θ_i} S^{d−1}: rows 2..d of the Householder
    reflection H_i = I − 2uuᵀ/|u|², u = θ_i + sign(θ_{i1}) e_1, which maps θ_i to ∓e_1."""
    theta = jnp.asarray(theta)
    d = theta.shape[-1]
    sign = jnp.where(theta[..., :1] >= 0, 1.0, -1.0).astype(theta.dtype)
    u = theta + sign * jnp.eye(d, dtype=theta.dtype)[0]
    H = (
        jnp.eye(d, dtype=theta.dtype)
        - 2 * u[..., :, None] * u[..., None, :] / jnp.sum(u * u, -1)[..., None, None]
    )
    return H[..., 1:, :]


class Tangent(eqx.Module):
    """Coordinates of the tangent space at tokens x: c (n, d − 1) ↦ Σ_k c_ik b_ik on the
    spheres (b_ik from :func:`tangent_basis`), the identity on R^{n×d} otherwise."""

    basis: Array | None  # (n, d − 1, d), or None off the spheres

    @classmethod
    def at(cls, problem: Problem, x) -> "Tangent":
        return cls(
            tangent_basis(x / jnp.linalg.norm(x, axis=-1, keepdims=True)) if on_spheres(problem) else None
        )

    def embed(self, c):
        return c if self.basis is None else jnp.einsum("ik,ikd->id", c, self.basis)

    def coords(self, v):
        return v if self.basis is None else jnp.einsum("id,ikd->ik", v, self.basis)

    def shape(self, x) -> tuple[int, int]:
        n, d = x.shape
        return (n, d) if self.basis is None else (n, d - 1)

    def identity(self, x):
        """Every coordinate direction, embedded: (N, n, d)."""
        shape = self.shape(x)
        eye = jnp.eye(math.prod(shape), dtype=x.dtype).reshape(-1, *shape)
        return jax.vmap(self.embed)(eye)


def tangent_dim(problem: Problem) -> int:
    n, d = problem.x0.shape[-2:]
    return n * (d - 1) if on_spheres(problem) else n * d


def to_tangent(problem, x, v):
    """v projected onto the tangent space at x (the identity off the spheres)."""
    return tangent_projection(x / jnp.linalg.norm(x, axis=-1, keepdims=True), v) if on_spheres(problem) else v


def check_k(k, dim) -> int:
    if k is None:
        return dim
    k = check_int("k", k, minimum=1)
    if k > dim:
        raise ValueError(f"k={k} is out of range: the problem has {dim} directions (1 <= k <= {dim})")
    return k


def start_state(problem: Problem, x0):
    """The initial state: the directions x0/|x0| on the spheres, else x0."""
    return x0 / jnp.linalg.norm(x0, axis=-1, keepdims=True) if on_spheres(problem) else x0


def check_loss(loss, problem: Problem):
    """A callable of the tokens (n, d) returning a scalar, or a one-line ValueError."""
    if not callable(loss):
        raise ValueError(f"loss={loss!r} must be a function of the final tokens (n, d) returning a scalar")
    n, d = problem.x0.shape[-2:]
    with precision(problem.dtype):
        out = jax.eval_shape(loss, jax.ShapeDtypeStruct((n, d), problem.dtype))
    if not hasattr(out, "shape") or out.shape != ():
        raise ValueError(
            f"loss must return a scalar; it returned {getattr(out, 'shape', type(out).__name__)}"
        )
    return loss


@eqx.filter_jit
def over_batch(fn, problem, *args):
    """fn(single problem, x0, *args) over the flattened batch (``fn`` and the non-array
    ``args`` static: a second call with the same ones reuses the compiled program). One
    trajectory is solved as it is: under ``vmap`` the small matrix products of the
    frame become batched products, slower on a CPU (measured, docs/sensitivity.md)."""
    one = lambda x0, *batch: fn(single_problem(problem, x0, *batch), x0, *args)  # noqa: E731
    arrays = flatten_batch(problem)
    if arrays[0].shape[0] == 1:
        return jax.tree.map(lambda a: a[None], one(*(a[0] for a in arrays)))
    return jax.vmap(one)(*arrays)


def batched(problem, fn, *args):
    with precision(problem.dtype):
        return over_batch(fn, problem, *args)
