"""Random attention weights, one draw per layer and head (MODEL.md §1).

Ensembles:

- ``"kaiming"`` (alias ``"gaussian"``): i.i.d. entries N(0, 1/d), the Kaiming-like
  scaling used for random transformers in Karagodin et al., arXiv 2510.22026.
- ``"goe"``: the Gaussian orthogonal ensemble, (G + Gᵀ)/√(2d) with G i.i.d. N(0, 1),
  spectrum on [−2, 2] as d → ∞.

MLP weights (:func:`random_mlp`) are Kaiming: W1 ~ N(0, 1/d), W2 ~ N(0, 1/m); norm
gains and biases (:func:`random_norm`) γ = 1 + scale·N(0, 1), b = scale·N(0, 1).
"""

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._mlp import ACTIVATIONS, MLP
from ._validate import as_key, check_choice, check_float, check_int, default_dtype

ENSEMBLES = ("kaiming", "gaussian", "goe")


def _draw(key, shape, d, ensemble, dtype):
    g = jax.random.normal(key, shape, dtype)
    if ensemble == "goe":
        return (g + jnp.swapaxes(g, -1, -2)) / jnp.sqrt(2.0 * d)
    return g / jnp.sqrt(d)


def random_weights(
    key, d: int, *, heads: int = 1, layers: int = 1, ensemble: str = "kaiming", dtype=None
) -> tuple[Float[Array, "layers heads d d"], ...]:
    """Draw (Q, K, V), each of shape ``(layers, heads, d, d)``.

    With ``layers = L`` the weights are piecewise constant in time: layer ``l`` acts on
    ``l ≤ t < l + 1``, as in a transformer whose every layer has its own random weights.
    ``key`` is a ``jax.random`` key or an integer seed.
    """
    check_int("d", d, minimum=2)
    check_int("heads", heads, minimum=1)
    check_int("layers", layers, minimum=1)
    check_choice("ensemble", ensemble, ENSEMBLES)
    dtype = dtype or default_dtype()
    kq, kk, kv = jax.random.split(as_key(key), 3)
    shape = (layers, heads, d, d)
    return tuple(_draw(k, shape, d, ensemble, dtype) for k in (kq, kk, kv))


def random_mlp(
    key, d: int, m: int, *, layers: int = 1, bias_std: float = 0.0, activation: str = "gelu", dtype=None
) -> MLP:
    """Draw an :class:`MLP` of width ``m`` with one set of weights per layer: W1 of shape
    (layers, m, d) with entries N(0, 1/d), W2 (layers, d, m) with N(0, 1/m) (Kaiming),
    biases N(0, bias_std²) (zero by default). ``key`` is a ``jax.random`` key or an
    integer seed; draw it apart from the attention weights' key (``jax.random.split``)."""
    check_int("d", d, minimum=1)
    check_int("m", m, minimum=1)
    check_int("layers", layers, minimum=1)
    bias_std = check_float("bias_std", bias_std, nonnegative=True)
    check_choice("activation", activation, ACTIVATIONS)
    dtype = dtype or default_dtype()
    k1, k2, kb1, kb2 = jax.random.split(as_key(key), 4)
    W1 = jax.random.normal(k1, (layers, m, d), dtype) / math.sqrt(d)
    W2 = jax.random.normal(k2, (layers, d, m), dtype) / math.sqrt(m)
    b1 = bias_std * jax.random.normal(kb1, (layers, m), dtype)
    b2 = bias_std * jax.random.normal(kb2, (layers, d), dtype)
    return MLP(W1, W2, b1, b2, activation=activation)


def random_transformer(
    key,
    d: int,
    *,
    layers: int,
    heads: int = 1,
    ensemble: str = "kaiming",
    mlp_width: int | None = None,
    dtype=None,
) -> dict:
    """Random weights of a transformer of ``layers`` layers, as keyword arguments of
    :func:`particles.simulate`: ``Q``, ``K``, ``V`` from :func:`random_weights` and, with
    ``mlp_width`` m, an ``mlp`` from :func:`random_mlp` (Kaiming), from independent
    halves of ``key`` (a ``jax.random`` key or an integer seed)."""
    k_att, k_mlp = jax.random.split(as_key(key))
    Q, K, V = random_weights(k_att, d, heads=heads, layers=layers, ensemble=ensemble, dtype=dtype)
    out = {"Q": Q, "K": K, "V": V}
    if mlp_width is not None:
        out["mlp"] = random_mlp(k_mlp, d, mlp_width, layers=layers, dtype=dtype)
    return out


def random_transformer_arguments(
    d: int,
    *,
    t0: float,
    t1: float,
    layers=None,
    weights=None,
    mlp=None,
    heads: int = 1,
    weight_seed=0,
    dtype=None,
) -> dict:
    """The keyword arguments of :func:`particles.simulate` for a random transformer, as the
    command line and sweeps ask for one: Q, K, V from the ensemble ``weights`` (one draw
    per layer, or per unit of time in the ODE) and, with ``mlp`` a width, a Kaiming GELU
    MLP, both from ``weight_seed`` (:func:`random_transformer`); ``{}`` when neither is
    asked for."""
    if weights is None and mlp is None:
        return {}
    depth = layers or max(1, math.ceil(t1 - t0))
    drawn = random_transformer(
        weight_seed, d, layers=depth, heads=heads, ensemble=weights or "kaiming", mlp_width=mlp, dtype=dtype
    )
    return drawn if weights is not None else {"mlp": drawn["mlp"]}


def random_norm(key, d: int, *, layers: int | None = None, scale: float = 0.1, dtype=None) -> dict:
    """Random gains and biases of a LayerNorm or RMSNorm, as keyword arguments of
    :func:`particles.simulate`: ``gamma`` = 1 + scale·N(0, 1) and ``bias`` = scale·N(0, 1),
    i.i.d. per entry, of shape (layers, d) (one per layer) or (d,) with ``layers=None``
    (shared by every layer). ``scale=0.1`` is the draw of the README's layers figure
    (``particles figure layers_vs_ode``). ``key`` is a ``jax.random`` key or an integer
    seed; draw it apart from the attention and MLP weights' key."""
    check_int("d", d, minimum=1)
    if layers is not None:
        check_int("layers", layers, minimum=1)
    scale = check_float("scale", scale, nonnegative=True)
    dtype = dtype or default_dtype()
    shape = (d,) if layers is None else (layers, d)
    kg, kb = jax.random.split(as_key(key))
    gamma = 1 + scale * jax.random.normal(kg, shape, dtype)
    bias = scale * jax.random.normal(kb, shape, dtype)
    return {"gamma": gamma, "bias": bias}
