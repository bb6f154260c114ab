"""Gradients of a loss with respect to every depth and every layer's weights, and the
stability profile of a layer stack (Zhang et al., arXiv 2510.09904)."""

import dataclasses
import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._config import save_times
from .._problem import Problem
from .._validate import as_key, default_dtype
from ._chain import batched, chain, check_loss, over_batch, segments, setup, start_state, unflatten

# -- gradients --------------------------------------------------------------------------


def offset_gradients(problem, config, segs, loss, x0, checkpoint):
    """∂ℓ/∂x_s (S + 1, n, d) for ℓ = loss(x_S): the gradient with respect to an offset
    added to each state of the chain (one reverse pass)."""

    def f(offsets):
        return loss(chain(problem, config, segs, x0, offsets=offsets, checkpoint=checkpoint)[0])

    return jax.grad(f)(jnp.zeros((segs.count + 1, *x0.shape), x0.dtype))


def gradients_at(p, x, config, segs, loss, checkpoint, index):
    return offset_gradients(p, config, segs, loss, x, checkpoint)[np.asarray(index)]


def layer_gradients(
    x0: Float[ArrayLike, "*batch n d"],
    scheme,
    *,
    loss,
    beta,
    t1,
    layers: int,
    checkpoint: bool = True,
    **simulate_options,
) -> Float[Array, "layers_plus_1 *batch n d"]:
    """∂ℓ/∂x_l, l = 0..L, for ℓ = ``loss``(x_L) (a JAX function of the output tokens
    (n, d) returning a scalar): x_l is the input of layer l + 1 (x_0 = x0), through the
    layer maps of :func:`particles.simulate` with ``layers=L``. Shape (L + 1, *batch, n,
    d). One reverse pass: DΦ_lᵀ applied from the top, ``checkpoint``: each layer
    recomputed in the backward pass (``jax.checkpoint``), so only the L + 1 states are
    kept. The backward-stability profile |∂ℓ/∂x_l| of Zhang et al., arXiv 2510.09904."""
    problem, config = setup(x0, scheme, beta, t1, {**simulate_options, "layers": layers})
    loss = check_loss(loss, problem)
    segs = segments(problem, config)
    index = tuple(range(segs.count + 1))
    out = batched(problem, gradients_at, config, segs, loss, checkpoint, index)
    return unflatten(problem, out, lead=1)


def layer_gradients_memory(
    x0: Float[ArrayLike, "*batch n d"], scheme, *, loss, beta, t1, layers: int, **simulate_options
) -> dict:
    """The temporary buffers (bytes) that XLA allots to the compiled programs of a layer
    stack (``memory_analysis().temp_size_in_bytes``): ``forward`` the chain of layers,
    ``checkpointed`` :func:`layer_gradients` with every layer recomputed in the backward
    pass, ``stored`` without checkpoints. Arguments as for :func:`layer_gradients`."""
    problem, config = setup(x0, scheme, beta, t1, {**simulate_options, "layers": layers})
    loss = check_loss(loss, problem)
    segs = segments(problem, config)
    index = tuple(range(segs.count + 1))

    def temp_bytes(fn):
        return int(jax.jit(fn).lower(problem).compile().memory_analysis().temp_size_in_bytes)

    forward = lambda p, x: chain(p, config, segs, x)[0]  # noqa: E731
    return {
        "forward": temp_bytes(lambda p: over_batch(forward, p)),
        "checkpointed": temp_bytes(lambda p: over_batch(gradients_at, p, config, segs, loss, True, index)),
        "stored": temp_bytes(lambda p: over_batch(gradients_at, p, config, segs, loss, False, index)),
    }


def gradients(
    x0: Float[ArrayLike, "*batch n d"],
    scheme,
    *,
    loss,
    beta,
    t1,
    ts=None,
    **simulate_options,
) -> Float[Array, "T *batch n d"]:
    """The adjoint ∂ℓ/∂x(t) at the save times ``ts`` (default: those of
    :func:`particles.simulate`) for ℓ = ``loss``(x(t1)), in the ODE mode: one reverse
    pass through the solves between save times (diffrax's recursive checkpointing).
    Shape (T, *batch, n, d); on the spheres the component along each θ_i is that of
    the lifted coordinates (the flow divides by |x_i| first)."""
    if simulate_options.get("layers") is not None:
        raise ValueError("gradients() is the ODE mode; with layers=L use layer_gradients()")
    problem, config = setup(x0, scheme, beta, t1, simulate_options)
    loss = check_loss(loss, problem)
    segs = segments(problem, config, ts)
    wanted = save_times(problem.t0, problem.t1, ts)
    index = tuple(np.searchsorted(np.asarray(segs.times), wanted).tolist())
    out = batched(problem, gradients_at, config, segs, loss, False, index)
    return unflatten(problem, out, lead=1)


# -- weights ----------------------------------------------------------------------------

MLP_NAMES = ("W1", "b1", "W2", "b2")


def weight_tree(problem: Problem, names, materialize=False) -> dict:
    """The problem's weights by name (Q, K, V, W1, b1, W2, b2, gamma, bias); absent
    ones left out, or with ``materialize`` given their default value (identity
    attention weights (1, 1, d, d), γ = 1, b = 0)."""
    d, dtype = problem.x0.shape[-1], problem.dtype
    att, mlp, norm = problem.attention, problem.mlp, problem.norm
    out = {}
    for name in names:
        if name in ("Q", "K", "V"):
            w = getattr(att, name)
            if w is None and materialize:
                w = jnp.eye(d, dtype=dtype)[None, None]
        elif name in MLP_NAMES:
            w = None if mlp is None else getattr(mlp, name)
        else:
            w = getattr(norm, name)
            if (
                w is None
                and materialize
                and norm.kind != "projection"
                and not (name == "bias" and norm.kind == "rmsnorm")
            ):
                w = (jnp.ones if name == "gamma" else jnp.zeros)(d, dtype)
        if w is not None:
            out[name] = jnp.asarray(w)
    return out


def with_weights(problem: Problem, weights: dict) -> Problem:
    """The problem with some weights replaced (identity attention weights given
    explicitly where the problem had None)."""
    where = {"Q": lambda p: p.attention.Q, "K": lambda p: p.attention.K, "V": lambda p: p.attention.V,
             "gamma": lambda p: p.norm.gamma, "bias": lambda p: p.norm.bias}  # fmt: skip
    for name in MLP_NAMES:
        where[name] = lambda p, name=name: getattr(p.mlp, name)
    for name, w in weights.items():
        problem = eqx.tree_at(where[name], problem, w, is_leaf=lambda v: v is None)
    return problem


def layer_axis(problem: Problem, name: str, w) -> bool:
    """Whether weight ``name`` has a leading axis of one entry per layer."""
    if name in ("Q", "K", "V"):
        return w.shape[0] > 1 or problem.layers == 1
    base = {"gamma": 1, "bias": 1}.get(name, {"W1": 2, "b1": 1, "W2": 2, "b2": 1}.get(name))
    return w.ndim > base


WEIGHT_NAMES = ("Q", "K", "V", *MLP_NAMES, "gamma", "bias")


def _weight_grads(p, x, config, segs, loss):
    f = lambda w: loss(chain(with_weights(p, w), config, segs, start_state(p, x), checkpoint=segs.layered)[0])
    return jax.grad(f)(weight_tree(p, WEIGHT_NAMES))


@dataclasses.dataclass(frozen=True)
class WeightGradients:
    """∂ℓ/∂w for every weight w of the layers (``grads``: name ↦ array of shape (*batch,
    *w.shape)) and the per-layer profile ``norms``: sublayer ↦ (*batch, L) Frobenius
    norms, "Q", "K", "V" (attention), "mlp" (W1, b1, W2, b2 together), "gamma",
    "bias" (the norm's), for the weights that have one entry per layer."""

    grads: dict
    norms: dict


def weight_gradients(
    x0: Float[ArrayLike, "*batch n d"], scheme, *, loss, beta, t1, **simulate_options
) -> WeightGradients:
    """The gradient of ℓ = ``loss``(x(t1)) with respect to each layer's weights (Q, K,
    V, the MLP's, γ, b), per trajectory, grouped by layer and sublayer: the "gradient
    norm per layer" profile of Zhang et al., arXiv 2510.09904. Discrete layers
    (``layers=L``) or the ODE (weights per unit time)."""
    problem, config = setup(x0, scheme, beta, t1, simulate_options)
    loss = check_loss(loss, problem)
    segs = segments(problem, config)
    weights = weight_tree(problem, WEIGHT_NAMES)

    grads = {
        name: unflatten(problem, g) for name, g in batched(problem, _weight_grads, config, segs, loss).items()
    }
    b = len(problem.batch_shape)
    per_layer = lambda g: jnp.sqrt(jnp.sum(g.reshape(*g.shape[: b + 1], -1) ** 2, axis=-1))
    norms = {name: per_layer(g) for name, g in grads.items() if layer_axis(problem, name, weights[name])}
    mlp = [norms.pop(name) for name in MLP_NAMES if name in norms]
    if mlp:
        norms["mlp"] = jnp.sqrt(sum(m**2 for m in mlp))
    return WeightGradients(grads, norms)


# -- the stability profile of a layer stack ---------------------------------------------


def random_readout(key, n: int, d: int, dtype=None) -> Callable:
    """ℓ(x) = Σ_i ⟨g_i, x_i⟩/(n√d) with g fixed i.i.d. N(0, 1) (``key``: a jax.random key
    or an int seed): a random linear read-out of the output tokens, the loss of the
    stability profiles (its gradient at the output has norm ≈ 1/√n)."""

    g = jax.random.normal(as_key(key), (n, d), dtype or default_dtype())
    return lambda x: jnp.sum(g.astype(x.dtype) * x) / (n * math.sqrt(d))


def stability_profile(
    x0: Float[ArrayLike, "*batch n d"], scheme, *, loss, beta, t1, layers: int, **simulate_options
):
    """The depth profile of a layer stack (Zhang et al., arXiv 2510.09904) as an
    ``xarray.Dataset`` over ``layer`` = 0..L (the input of layer l + 1; L the output):
    ``hidden_norm`` the mean token norm mean_i |x_l,i|, ``gradient_norm`` |∂ℓ/∂x_l|
    (Frobenius, :func:`layer_gradients`) and, per layer (``block`` = 1..L),
    ``grad_Q``, ``grad_K``, ``grad_V``, ``grad_mlp``, ``grad_gamma``, ``grad_bias``:
    the norms of the gradient with respect to that layer's weights
    (:func:`weight_gradients`). Leading batch dimensions are flattened into ``sample``."""
    import xarray as xr

    from .._simulate import simulate

    options = {**simulate_options, "layers": layers}
    traj = simulate(x0, scheme, beta=beta, t1=t1, **options)
    hidden = np.moveaxis(np.mean(np.asarray(traj.r), axis=-1), -1, 0)  # (L + 1, *batch)
    grads = np.asarray(layer_gradients(x0, scheme, loss=loss, beta=beta, t1=t1, **options))
    gnorm = np.sqrt(np.sum(grads**2, axis=(-1, -2)))
    weights = weight_gradients(x0, scheme, loss=loss, beta=beta, t1=t1, **options).norms
    batch = hidden.shape[1:]
    lead, flat = (("sample",), (-1,)) if batch else ((), ())
    per_depth = lambda a: (("layer", *lead), np.asarray(a).reshape(a.shape[0], *flat))
    data = {"hidden_norm": per_depth(hidden), "gradient_norm": per_depth(gnorm)}
    for name, w in weights.items():
        w = np.moveaxis(np.asarray(w), -1, 0)
        data[f"grad_{name}"] = (("block", *lead), w.reshape(w.shape[0], *flat))
    coords = {"layer": np.arange(layers + 1), "block": np.arange(1, layers + 1)}
    return xr.Dataset(data, coords=coords, attrs={"scheme": str(scheme), "layers": layers})
