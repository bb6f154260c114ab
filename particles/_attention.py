"""The attention vector field A_i(Θ) of MODEL.md §1.

    A_i(Θ) = Σ_j w_ij V θ_j,    w_ij = exp(β ⟨Q θ_i, K θ_j⟩) / Σ_k exp(β ⟨Q θ_i, K θ_k⟩)

(Geshkovski, Letrouit, Polyanskiy, Rigollet, *A mathematical perspective on
Transformers*, arXiv 2312.10794.) Variants: unnormalized self-attention ("usa",
w_ij = exp(β⟨Qθ_i, Kθ_j⟩)/n), a causal mask (j ≤ i), several heads whose outputs are
summed or averaged, and weights that are piecewise constant in time, one draw per
unit of time ("one draw per layer").
"""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

ATTENTION_KINDS = ("softmax", "usa")
HEAD_REDUCTIONS = ("sum", "mean")


class Attention(eqx.Module):
    """The attention map Θ ↦ A(Θ) at inverse temperature β.

    ``Q``, ``K``, ``V`` are ``None`` (the identity, one head) or arrays of shape
    ``(layers, heads, d, d)``; layer ``l`` acts for ``l ≤ t < l + 1`` (the last layer
    acts for all later times). ``beta`` has the batch shape of the state (or is a
    scalar) and multiplies the logits of each trajectory.
    """

    beta: Float[Array, "*batch"]
    Q: Float[Array, "layers heads d d"] | None
    K: Float[Array, "layers heads d d"] | None
    V: Float[Array, "layers heads d d"] | None
    kind: Literal["softmax", "usa"] = eqx.field(static=True, default="softmax")
    causal: bool = eqx.field(static=True, default=False)
    heads: Literal["sum", "mean"] = eqx.field(static=True, default="sum")

    @property
    def identity_weights(self) -> bool:
        return self.Q is None and self.K is None and self.V is None

    @property
    def num_layers(self) -> int:
        return max((w.shape[0] for w in (self.Q, self.K, self.V) if w is not None), default=1)

    def layer_jumps(self, t0: float, t1: float) -> list[float]:
        """Integer times inside (t0, t1) at which piecewise-constant weights change."""
        return [float(k) for k in range(1, self.num_layers) if t0 < k < t1]

    def _layer(self, w, t):
        if w is None:
            return None
        index = jnp.clip(jnp.floor(t).astype(jnp.int32), 0, w.shape[0] - 1)
        return jax.lax.dynamic_index_in_dim(w, index, axis=0, keepdims=False)

    def _weights(self, logits: Float[Array, "... n n"]) -> Float[Array, "... n n"]:
        n = logits.shape[-1]
        if self.causal:
            mask = jnp.tril(jnp.ones((n, n), dtype=bool))
            logits = jnp.where(mask, logits, -jnp.inf)
        if self.kind == "usa":
            return jnp.exp(logits) / n
        return jax.nn.softmax(logits, axis=-1)

    def __call__(self, t, theta: Float[Array, "*batch n d"]) -> Float[Array, "*batch n d"]:
        beta = jnp.asarray(self.beta, theta.dtype)[..., None, None]
        if self.identity_weights:
            logits = beta * jnp.einsum("...id,...jd->...ij", theta, theta)
            return self._weights(logits) @ theta
        d = theta.shape[-1]
        layer = [self._layer(w, t) for w in (self.Q, self.K, self.V)]
        num_heads = max(w.shape[0] for w in layer if w is not None)
        eye = jnp.broadcast_to(jnp.eye(d, dtype=theta.dtype), (num_heads, d, d))
        Q, K, V = (eye if w is None else w.astype(theta.dtype) for w in layer)
        query = jnp.einsum("hed,...nd->...hne", Q, theta)
        key = jnp.einsum("hed,...nd->...hne", K, theta)
        logits = beta[..., None, :, :] * jnp.einsum("...hie,...hje->...hij", query, key)
        mixed = self._weights(logits) @ theta[..., None, :, :]
        out = jnp.einsum("hed,...hnd->...hne", V, mixed)
        return out.mean(axis=-3) if self.heads == "mean" else out.sum(axis=-3)
