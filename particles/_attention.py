"""The attention vector field A_i(Θ) of MODEL.md §1.

    A_i(Θ) = Σ_j w_ij V θ_j,    w_ij = exp(β ⟨Q θ_i, K θ_j⟩) / Σ_k exp(β ⟨Q θ_i, K θ_k⟩)

(Geshkovski, Letrouit, Polyanskiy, Rigollet, *A mathematical perspective on
Transformers*, arXiv 2312.10794.) Variants: unnormalized self-attention ("usa",
w_ij = exp(β⟨Qθ_i, Kθ_j⟩)/n), a causal mask (j ≤ i), several heads whose outputs are
summed or averaged, and weights that are piecewise constant in time, one draw per
unit of time ("one draw per layer"). The kernels that compute Σ_j w_ij v_j (dense,
row blocks, symmetric pairs of blocks) are in :mod:`particles.kernels`.
"""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ._model import AbstractKernel, AbstractPosition, ALiBi, Causal, Positions, as_kernel, as_position
from .kernels import PRECISION, identity_mix, mix

HEAD_REDUCTIONS = ("sum", "mean")


class Attention(eqx.Module):
    """The attention map Θ ↦ A(Θ) at inverse temperature β.

    ``Q``, ``K``, ``V`` are ``None`` (the identity, one head) or arrays of shape
    ``(layers, heads, d, d)``; layer ``l`` acts for ``l ≤ t < l + 1`` (the last layer
    acts for all later times). ``beta`` has the batch shape of the state (or is a
    scalar) and multiplies the logits of each trajectory. ``block_size`` tokens of
    queries are attended at a time, so the n × n weights are never stored whole: row
    blocks of block_size × n weights, or, with Q = K = V = I and no causal mask, pairs
    of blocks of block_size × block_size (the weights are symmetric, each pair is
    computed once: :func:`particles.kernels.symmetric_mix`). ``None`` picks it from n
    and the batch size (:func:`particles.auto_block_size`: dense up to 2^21 weights on
    CPU, 2^26 on a GPU); ``block_size >= n`` is the dense computation.
    """

    beta: Float[ArrayLike, "*batch"]
    Q: Float[ArrayLike, "layers heads d_k d"] | None
    K: Float[ArrayLike, "layers heads d_k d"] | None
    V: Float[ArrayLike, "layers heads d d"] | None
    kernel: AbstractKernel = eqx.field(static=True)
    position: AbstractPosition
    heads: Literal["sum", "mean"] = eqx.field(static=True)
    block_size: int | None = eqx.field(static=True)
    positions: Float[ArrayLike, "..."] | None = None  # p_i (…, n); None: 0..n−1

    def __init__(
        self,
        beta,
        Q=None,
        K=None,
        V=None,
        kind="softmax",
        causal: bool = False,
        heads: str = "sum",
        block_size: int | None = None,
        *,
        position=None,
        positions=None,
    ):
        """``kind``: the attention kernel, a name ("softmax", "usa") or an
        :class:`~particles.AbstractKernel`; ``position`` a position part
        (:class:`~particles.Causal`, :class:`~particles.RoPE`, ..., or a tuple of them),
        or the ``causal`` shortcut; ``positions`` the tokens' positions p_i (…, n)."""
        self.beta, self.Q, self.K, self.V = beta, Q, K, V
        self.kernel = as_kernel(kind)
        num_heads = max((w.shape[-3] if w.ndim >= 3 else 1 for w in (Q, K, V) if w is not None), default=1)
        self.position = as_position(position, causal).with_heads(num_heads)
        self.heads, self.block_size = heads, block_size
        self.positions = positions

    @property
    def kind(self) -> str:
        """The kernel's name (``"softmax"``, ``"usa"``)."""
        return self.kernel.name

    @property
    def causal(self) -> bool:
        """Whether the position part is the causal mask (for the record)."""
        parts = self.position.parts if isinstance(self.position, Positions) else (self.position,)
        return any(isinstance(p, (Causal, ALiBi)) for p in parts)

    @property
    def identity_weights(self) -> bool:
        return self.Q is None and self.K is None and self.V is None

    @property
    def num_layers(self) -> int:
        return max((w.shape[0] for w in (self.Q, self.K, self.V) if w is not None), default=1)

    def layer_jumps(self, t0: float, t1: float) -> list[float]:
        """Integer times inside (t0, t1) at which piecewise-constant weights change."""
        return [float(k) for k in range(1, self.num_layers) if t0 < k < t1]

    def layer_weights(self, t):
        """(Q, K, V) acting at time t, each (heads, d, d) or None (the identity)."""

        def select(w):
            if w is None:
                return None
            index = jnp.clip(jnp.floor(t).astype(jnp.int32), 0, w.shape[0] - 1)
            return jax.lax.dynamic_index_in_dim(w, index, axis=0, keepdims=False)

        return tuple(select(w) for w in (self.Q, self.K, self.V))

    def with_beta(self, beta) -> "Attention":
        """The same attention at inverse temperature ``beta`` (a batch's slice, or its
        padded copy across devices)."""
        return eqx.tree_at(lambda a: a.beta, self, beta)

    def at_layer(self, layer) -> "Attention":
        """The attention of layer ``layer`` (an int or a traced integer; past the last
        layer of weights, the last one), with that layer's weights alone."""

        def pick(w):
            if w is None:
                return None
            index = jnp.clip(layer, 0, w.shape[0] - 1)
            return jax.lax.dynamic_index_in_dim(w, index, axis=0, keepdims=True)

        return eqx.tree_at(
            lambda a: (a.Q, a.K, a.V),
            self,
            tuple(pick(w) for w in (self.Q, self.K, self.V)),
            is_leaf=lambda w: w is None,
        )

    def __call__(self, t, theta: Float[Array, "*batch n d"]) -> Float[Array, "*batch n d"]:
        beta = jnp.asarray(self.beta, theta.dtype)[..., None, None]
        p = None if self.positions is None else jnp.asarray(self.positions, theta.dtype)
        options = dict(kernel=self.kernel, position=self.position, block=self.block_size)
        if self.identity_weights and self.position.inner_products_only:
            return identity_mix(beta, theta, theta, positions=p, **options)
        if self.identity_weights:
            query, key = self.position.rotate(theta, theta, p)
            return mix(beta, query, key, theta, positions=p, **options)
        d = theta.shape[-1]
        layer = self.layer_weights(t)
        num_heads = max(w.shape[0] for w in layer if w is not None)
        eye = jnp.broadcast_to(jnp.eye(d, dtype=theta.dtype), (num_heads, d, d))
        Q, K, V = (eye if w is None else w.astype(theta.dtype) for w in layer)
        query = jnp.einsum("hed,...nd->...hne", Q, theta, precision=PRECISION)
        key = jnp.einsum("hed,...nd->...hne", K, theta, precision=PRECISION)
        p = None if p is None else p[..., None, :]  # the head axis
        query, key = self.position.rotate(query, key, p)
        mixed = mix(beta[..., None, :, :], query, key, theta[..., None, :, :], positions=p, **options)
        out = jnp.einsum("hed,...hnd->...hne", V, mixed, precision=PRECISION)
        return out.mean(axis=-3) if self.heads == "mean" else out.sum(axis=-3)
