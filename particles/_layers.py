"""Discrete depth: L transformer layers run as one compiled ``lax.scan`` (MODEL.md §7),
and the ODE of a layer map where its small-step limit exists.

Layer l (l = 0..L−1) starts at time t_l = t0 + l h, h = (t1 − t0)/L, and applies the
scheme's layer map (:meth:`particles.AbstractScheme.layer`: attention, then the MLP,
each a residual sublayer placed by the scheme, normalised by the problem's
:class:`~particles.Norm`) with residual step h_l:

    constant: h,   inv_sqrt_depth: h/√L,   inv_depth: h/L,   inv_sqrt_layer: h/√(l+1)

(the depth scalings compared by Zhang et al., arXiv 2510.09904, and the LayerNorm
scaling of Sun et al., arXiv 2502.05795). The state after layer l is saved at t_{l+1}.

:class:`LayerLimit` is the ODE of a layer map, dx/dt = ∂_h layer(t, x, h)|_{h=0}, for a
norm other than the projection or with an MLP (see :mod:`particles._norms` for when it
exists); on post-type layers the velocity is projected onto the manifold the norm's
iterates retract to, which removes the O(ε) off-manifold part of D LN.
"""

import math
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._chart import AmbientChart
from ._devices import batch_sharding, shard_batch
from ._mlp import AbstractMLP
from ._norms import Norm
from ._outcome import status_of_saves
from ._solution import RawSolution
from ._status import SimulationError, Status
from .schemes import AbstractScheme
from .sphere import safe_norm, tangent_projection

RESIDUALS = ("constant", "inv_sqrt_depth", "inv_depth", "inv_sqrt_layer")


def residual_steps(residual: str, h: float, layers: int) -> np.ndarray:
    """The residual step h_l of each layer l = 0..L−1 (module docstring)."""
    l = np.arange(layers, dtype=float)
    scale = {
        "constant": np.ones(layers),
        "inv_sqrt_depth": np.full(layers, 1 / math.sqrt(layers)),
        "inv_depth": np.full(layers, 1 / layers),
        "inv_sqrt_layer": 1 / np.sqrt(l + 1),
    }[residual]
    return h * scale


def layer_save_index(t0: float, t1: float, layers: int, ts) -> np.ndarray:
    """Indices l of the saves (the state after l layers, at t0 + l h): every layer by
    default; ``ts`` must lie on that grid (to 1e-9 of a step), else a one-line error."""
    if ts is None:
        return np.arange(layers + 1)
    h = (t1 - t0) / layers
    ts = np.asarray(ts, dtype=float)
    index = np.rint((ts - t0) / h)
    if np.any(np.abs(ts - (t0 + index * h)) > 1e-9 * h) or np.any(index < 0) or np.any(index > layers):
        raise ValueError(
            f"ts must lie on the layer grid t0 + l*h (h = (t1 - t0)/layers = {h:g}, l = 0..{layers}); "
            "leave ts unset to save after every layer"
        )
    return index.astype(int)


def _layer_map(scheme, attention, norms, mlp, t, x, h, layer):
    """Layer ``layer`` (traced) of the stack at time t with residual step h; ``norms`` the
    attention sublayer's Norm and the MLP's (None: the same)."""
    att = attention.at_layer(layer)
    f_mlp = None if mlp is None else mlp.at_layer(layer)
    norm, mlp_norm = (None if n is None else n.at_layer(layer) for n in norms)
    return scheme.layer(t, x, h, lambda y: att(0.0, y), f_mlp, norm, mlp_norm)


@eqx.filter_jit
def _scan_layers(x0, scheme, attention, norms, mlp, t0, h, steps, save_index):
    """The saves (len(save_index), *batch, n, d) of the layer stack from x0."""

    def body(x, inputs):
        layer, step = inputs
        x = _layer_map(scheme, attention, norms, mlp, t0 + layer.astype(h.dtype) * h, x, step, layer)
        return x, x

    layers = jnp.arange(steps.shape[0])
    _, xs = jax.lax.scan(body, x0, (layers, steps))
    return jnp.concatenate([x0[None], xs])[save_index]


def apply_layer(problem, x, layer, step):
    """Layer ``layer`` (an int or a traced integer) of ``problem``'s stack applied to the
    tokens ``x`` with residual step ``step`` (one of :func:`residual_steps`): the map the
    ``lax.scan`` of :func:`integrate_layers` applies, as a differentiable function of x
    and of the problem's weights."""
    h = (problem.t1 - problem.t0) / problem.layers
    t = jnp.asarray(problem.t0, x.dtype) + jnp.asarray(layer).astype(x.dtype) * jnp.asarray(h, x.dtype)
    norms = (problem.norm, problem.mlp_norm)
    return _layer_map(problem.scheme, problem.attention, norms, problem.mlp, t, x, step, layer)


def integrate_layers(problem, config):
    """The discrete-layer solve of ``problem`` (``problem.layers`` layers): a
    :class:`particles.RawSolution` with the tokens themselves as the saves (θ = x/|x|,
    r = |x|); a trajectory whose state becomes non-finite is marked NONFINITE (a single
    one raises :class:`SimulationError`)."""
    t0, t1, layers, dtype = problem.t0, problem.t1, problem.layers, problem.dtype
    h = (t1 - t0) / layers
    index = layer_save_index(t0, t1, layers, config.ts)
    steps = jnp.asarray(residual_steps(problem.residual, h, layers), dtype)
    x0, att, size = problem.x0, problem.attention, None
    sharding = batch_sharding() if config.shard and problem.batch_shape else None
    if sharding is not None:
        (x0, *batch_arrays), size = shard_batch([x0, *att.batch_arrays()], sharding)
        att = att.with_batch(*batch_arrays)
    start = time.perf_counter()
    norms = (problem.norm, problem.mlp_norm)
    saves = _scan_layers(
        x0, problem.scheme, att, norms, problem.mlp, jnp.asarray(t0, dtype), jnp.asarray(h, dtype), steps,
        jnp.asarray(index),
    )  # fmt: skip
    saves = jax.block_until_ready(saves)[:, :size] if size is not None else jax.block_until_ready(saves)
    wall = time.perf_counter() - start
    r = safe_norm(saves)
    status = status_of_saves(jnp.all(jnp.isfinite(saves), axis=(-1, -2)) & jnp.all(r > 0, axis=-1))
    if not problem.batch_shape and status != Status.OK:
        raise SimulationError(
            f"the state became non-finite within {layers} layers: lower beta or the residual step"
        )
    bad = (status != Status.OK)[None, ..., None]
    saves, r = jnp.where(bad[..., None], jnp.nan, saves), jnp.where(bad, jnp.nan, r)
    ts = jnp.asarray(t0 + index * h, dtype)
    stats = {"num_steps": layers, "num_accepted": layers, "num_rejected": 0, "wall_time": wall,
             "num_failed": int(np.sum(status != Status.OK))}  # fmt: skip
    return RawSolution(
        ts=ts, lift=saves, r=r, chart=AmbientChart(problem.x0.shape[-1]), stats=stats, status=status
    )


class LayerLimit(AbstractScheme):
    """The ODE of a scheme's layer map with a ``norm`` and an optional ``mlp``:
    dx/dt = ∂_h layer(t, x, h)|_{h=0} (pre-type layers: g_A(x) + g_F(x)); for post-type
    (sphere-bound) schemes projected onto the tangent space of the norm's manifold,
    ``norm.tangent``. Integrated in the lifted coordinates of every other scheme."""

    scheme: AbstractScheme
    norm: Norm
    mlp: AbstractMLP | None
    mlp_norm: Norm | None = None  # the MLP sublayer's own norm (a trained model's), pre-type only
    sphere_bound = False
    attends_to_tokens = False

    @property
    def name(self) -> str:
        return self.scheme.name

    def params(self) -> dict:
        return self.scheme.params()

    def jump_times(self):
        return self.scheme.jump_times()

    def velocity(self, t, theta, r, attention):
        x = r[..., None] * theta
        layer = jnp.clip(jnp.floor(t).astype(jnp.int32), 0, None)
        norm = self.norm.at_layer(layer)
        mlp = None if self.mlp is None else self.mlp.at_layer(layer)
        mlp_norm = None if self.mlp_norm is None else self.mlp_norm.at_layer(layer)

        def layer_map(h):
            return self.scheme.layer(t, x, h, lambda y: attention(t, y), mlp, norm, mlp_norm)

        _, v = jax.jvp(layer_map, (jnp.zeros((), x.dtype),), (jnp.ones((), x.dtype),))
        v = jnp.where(self.scheme.post_normalized(t), norm.tangent(x, v), v)  # post-type: on the manifold
        return tangent_projection(theta, v) / r[..., None], jnp.sum(theta * v, axis=-1)
