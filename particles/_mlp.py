"""The MLP sublayer of a transformer layer (MODEL.md §7).

    F(y) = W2 σ(W1 y + b1) + b2,     W1 ∈ R^{m×d}, b1 ∈ R^m, W2 ∈ R^{d×m}, b2 ∈ R^d

applied to each token, with σ the GELU (exact erf form, σ(u) = u Φ(u) =
u (1 + erf(u/√2))/2, PyTorch's default ``nn.GELU()``, not the tanh approximation) or
the ReLU.
"""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._validate import check_choice
from .kernels import PRECISION as _PRECISION

ACTIVATIONS = ("gelu", "relu")


def _activation(name, u):
    if name == "gelu":
        return jax.nn.gelu(u, approximate=False)  # the exact erf form
    return jax.nn.relu(u)


class MLP(eqx.Module):
    """F(y) = W2 σ(W1 y + b1) + b2 per token, one set of weights per layer.

    ``W1`` (layers, m, d), ``b1`` (layers, m), ``W2`` (layers, d, m), ``b2`` (layers, d);
    the leading layer axis may be omitted (one layer), ``b1``/``b2`` ``None`` are zero.
    ``activation`` is "gelu" (the exact erf form, as PyTorch's default ``nn.GELU()``) or
    "relu". ``mlp.at_layer(l)`` (``l`` may be traced) gives the MLP of layer ``l``; an
    MLP with several layers cannot be applied directly.
    """

    W1: Float[Array, "*layers m d"]
    b1: Float[Array, "*layers m"]
    W2: Float[Array, "*layers d m"]
    b2: Float[Array, "*layers d"]
    activation: Literal["gelu", "relu"] = eqx.field(static=True)

    def __init__(self, W1, W2, b1=None, b2=None, *, activation: str = "gelu"):
        check_choice("activation", activation, ACTIVATIONS)
        W1, W2 = jnp.asarray(W1), jnp.asarray(W2)
        if W1.ndim not in (2, 3):
            raise ValueError(f"W1 has shape {W1.shape}; expected (layers, m, d) or (m, d)")
        *lead, m, d = W1.shape
        want = {"W2": (*lead, d, m), "b1": (*lead, m), "b2": (*lead, d)}
        b1 = jnp.zeros(want["b1"], W1.dtype) if b1 is None else jnp.asarray(b1)
        b2 = jnp.zeros(want["b2"], W1.dtype) if b2 is None else jnp.asarray(b2)
        for name, w in (("W2", W2), ("b1", b1), ("b2", b2)):
            if w.shape != want[name]:
                raise ValueError(
                    f"{name} has shape {w.shape}; expected {want[name]} (from W1 of shape {W1.shape})"
                )
        self.W1, self.b1, self.W2, self.b2 = W1, b1, W2, b2
        self.activation = activation

    @property
    def num_layers(self) -> int | None:
        """The leading layer axis; None for a one-layer MLP given without it."""
        return self.W1.shape[0] if self.W1.ndim == 3 else None

    @property
    def width(self) -> int:
        return self.W1.shape[-2]

    def validate(self, d: int, layers: int | None = None) -> "MLP":
        """Check against the token dimension ``d`` and the number of layers (``None``:
        any), raising one-line ``ValueError``; returns ``self``."""
        if self.W1.shape[-1] != d:
            raise ValueError(f"W1 has shape {self.W1.shape}; its last axis must be d={d}")
        if layers is not None and self.num_layers not in (None, 1, layers):
            raise ValueError(f"W1 has shape {self.W1.shape}; expected {layers} layers (layers, m, d)")
        return self

    def at_layer(self, layer) -> "MLP":
        """The MLP of layer ``layer`` (an int or a traced integer)."""
        if self.num_layers is None:
            return self
        index = jnp.clip(layer, 0, self.num_layers - 1)
        pick = lambda w: jax.lax.dynamic_index_in_dim(w, index, keepdims=False)
        return MLP(pick(self.W1), pick(self.W2), pick(self.b1), pick(self.b2), activation=self.activation)

    def __call__(self, y: Float[Array, "*b d"]) -> Float[Array, "*b d"]:
        self.validate(y.shape[-1])
        if (self.num_layers or 1) > 1:
            raise ValueError(f"this MLP has {self.num_layers} layers; apply mlp.at_layer(l) to one layer")
        W1, b1, W2, b2 = self.W1, self.b1, self.W2, self.b2
        if self.num_layers is not None:  # one layer, given with its layer axis
            W1, b1, W2, b2 = W1[0], b1[0], W2[0], b2[0]
        dt = y.dtype
        u = jnp.einsum("md,...d->...m", W1.astype(dt), y, precision=_PRECISION) + b1.astype(dt)
        u = _activation(self.activation, u)
        return jnp.einsum("dm,...m->...d", W2.astype(dt), u, precision=_PRECISION) + b2.astype(dt)
