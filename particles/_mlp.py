"""The MLP sublayer of a transformer layer (MODEL.md §7): one abstract part, two kinds.

    MLP:       F(y) = W2 σ(W1 y + b1) + b2                     W1 ∈ R^{m×d}, W2 ∈ R^{d×m}
    GatedMLP:  F(y) = W2 (σ(W_g y + b_g) ⊙ (W1 y + b1)) + b2   (GLU family; SwiGLU with σ = SiLU)

applied to each token. σ: "gelu" (the exact erf form u Φ(u), PyTorch's default
``nn.GELU()``), "gelu_tanh" (the tanh approximation of GPT-2 and ALBERT, Hugging Face's
"gelu_new"), "relu", or "silu" (u σ(u), LLaMA's SwiGLU: Shazeer, arXiv 2002.05202).
"""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._validate import check_choice
from .kernels import PRECISION as _PRECISION

ACTIVATIONS = ("gelu", "gelu_tanh", "relu", "silu")


def activation(name: str, u):
    """σ(u) for an activation name of :data:`ACTIVATIONS`."""
    if name == "gelu":
        return jax.nn.gelu(u, approximate=False)  # the exact erf form
    if name == "gelu_tanh":
        return jax.nn.gelu(u, approximate=True)
    if name == "silu":
        return jax.nn.silu(u)
    return jax.nn.relu(u)


def _first_weight(W1):
    W1 = jnp.asarray(W1)
    if W1.ndim not in (2, 3):
        raise ValueError(f"W1 has shape {W1.shape}; expected (layers, m, d) or (m, d)")
    return W1


def _matvec(W, y):
    return jnp.einsum("md,...d->...m", W.astype(y.dtype), y, precision=_PRECISION)


class AbstractMLP(eqx.Module):
    """A per-token MLP with one set of weights per layer: every weight and bias has the
    same optional leading layer axis; ``at_layer(l)`` (``l`` may be traced) gives the MLP
    of layer ``l``; one with several layers cannot be applied directly."""

    #: (name, shape from (m, d)) of every array, the first one W1 of shape (m, d)
    shapes: eqx.AbstractClassVar[tuple[tuple[str, str], ...]]
    activation: eqx.AbstractVar[str]

    def _arrays(self):
        return {name: getattr(self, name) for name, _ in self.shapes}

    def _check(self):
        check_choice("activation", self.activation, ACTIVATIONS)
        W1 = self.W1
        *lead, m, d = W1.shape
        sizes = {"m": m, "d": d}
        for name, dims in self.shapes:
            want = (*lead, *(sizes[c] for c in dims))
            if getattr(self, name).shape != want:
                raise ValueError(
                    f"{name} has shape {getattr(self, name).shape}; expected {want} (from W1 of shape {W1.shape})"
                )

    @property
    def num_layers(self) -> int | None:
        """The leading layer axis; None for a one-layer MLP given without it."""
        return self.W1.shape[0] if self.W1.ndim == 3 else None

    @property
    def width(self) -> int:
        return self.W1.shape[-2]

    def validate(self, d: int, layers: int | None = None):
        """Check against the token dimension ``d`` and the number of layers (``None``:
        any), raising one-line ``ValueError``; returns ``self``."""
        if self.W1.shape[-1] != d:
            raise ValueError(f"W1 has shape {self.W1.shape}; its last axis must be d={d}")
        if layers is not None and self.num_layers not in (None, 1, layers):
            raise ValueError(f"W1 has shape {self.W1.shape}; expected {layers} layers (layers, m, d)")
        return self

    def at_layer(self, layer):
        """The MLP of layer ``layer`` (an int or a traced integer; past the last, the last)."""
        if self.num_layers is None:
            return self
        index = jnp.clip(layer, 0, self.num_layers - 1)
        return eqx.tree_at(
            lambda m: tuple(getattr(m, name) for name, _ in m.shapes),
            self,
            tuple(jax.lax.dynamic_index_in_dim(w, index, keepdims=False) for w in self._arrays().values()),
        )

    def _one_layer(self, d: int) -> dict:
        """The arrays of a one-layer MLP applied to tokens of dimension ``d``."""
        self.validate(d)
        if (self.num_layers or 1) > 1:
            raise ValueError(f"this MLP has {self.num_layers} layers; apply mlp.at_layer(l) to one layer")
        arrays = self._arrays()
        return arrays if self.num_layers is None else {k: w[0] for k, w in arrays.items()}


class MLP(AbstractMLP):
    """F(y) = W2 σ(W1 y + b1) + b2 per token.

    ``W1`` (layers, m, d), ``b1`` (layers, m), ``W2`` (layers, d, m), ``b2`` (layers, d);
    the leading layer axis may be omitted (one layer), ``b1``/``b2`` ``None`` are zero.
    ``activation`` one of :data:`ACTIVATIONS` (default "gelu", the exact erf form).
    """

    shapes: ClassVar = (("W1", "md"), ("b1", "m"), ("W2", "dm"), ("b2", "d"))
    W1: Float[Array, "*layers m d"]
    b1: Float[Array, "*layers m"]
    W2: Float[Array, "*layers d m"]
    b2: Float[Array, "*layers d"]
    activation: str = eqx.field(static=True)

    def __init__(self, W1, W2, b1=None, b2=None, *, activation: str = "gelu"):
        W1, W2 = _first_weight(W1), jnp.asarray(W2)
        lead = W1.shape[:-2]
        self.W1, self.W2 = W1, W2
        self.b1 = jnp.zeros((*lead, W1.shape[-2]), W1.dtype) if b1 is None else jnp.asarray(b1)
        self.b2 = jnp.zeros((*lead, W1.shape[-1]), W1.dtype) if b2 is None else jnp.asarray(b2)
        self.activation = activation
        self._check()

    def __call__(self, y: Float[Array, "*b d"]) -> Float[Array, "*b d"]:
        w = self._one_layer(y.shape[-1])
        u = activation(self.activation, _matvec(w["W1"], y) + w["b1"].astype(y.dtype))
        return _matvec(w["W2"], u) + w["b2"].astype(y.dtype)


class GatedMLP(AbstractMLP):
    """F(y) = W2 (σ(W_gate y + b_gate) ⊙ (W1 y + b1)) + b2 per token: the gated linear
    unit MLP (Shazeer, arXiv 2002.05202; LLaMA's SwiGLU is σ = SiLU without biases, with
    Hugging Face's ``gate_proj`` = W_gate, ``up_proj`` = W1, ``down_proj`` = W2).

    ``W_gate``, ``W1`` (layers, m, d), ``W2`` (layers, d, m), biases (layers, m) and
    (layers, d), ``None`` zero; the layer axis may be omitted. ``activation`` default "silu".
    """

    shapes: ClassVar = (
        ("W1", "md"), ("b1", "m"), ("W_gate", "md"), ("b_gate", "m"), ("W2", "dm"), ("b2", "d"),
    )  # fmt: skip
    W1: Float[Array, "*layers m d"]
    b1: Float[Array, "*layers m"]
    W_gate: Float[Array, "*layers m d"]
    b_gate: Float[Array, "*layers m"]
    W2: Float[Array, "*layers d m"]
    b2: Float[Array, "*layers d"]
    activation: str = eqx.field(static=True)

    def __init__(self, W_gate, W1, W2, b_gate=None, b1=None, b2=None, *, activation: str = "silu"):
        W1, W_gate, W2 = _first_weight(W1), jnp.asarray(W_gate), jnp.asarray(W2)
        lead, (m, d) = W1.shape[:-2], W1.shape[-2:]
        zeros = lambda *shape: jnp.zeros((*lead, *shape), W1.dtype)
        self.W1, self.W_gate, self.W2 = W1, W_gate, W2
        self.b1 = zeros(m) if b1 is None else jnp.asarray(b1)
        self.b_gate = zeros(m) if b_gate is None else jnp.asarray(b_gate)
        self.b2 = zeros(d) if b2 is None else jnp.asarray(b2)
        self.activation = activation
        self._check()

    def __call__(self, y: Float[Array, "*b d"]) -> Float[Array, "*b d"]:
        w = self._one_layer(y.shape[-1])
        gate = activation(self.activation, _matvec(w["W_gate"], y) + w["b_gate"].astype(y.dtype))
        up = _matvec(w["W1"], y) + w["b1"].astype(y.dtype)
        return _matvec(w["W2"], gate * up) + w["b2"].astype(y.dtype)
