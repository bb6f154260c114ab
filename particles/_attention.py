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
    V: Float[ArrayLike, "layers heads d_v d"] | None
    kernel: AbstractKernel = eqx.field(static=True)
    position: AbstractPosition
    heads: Literal["sum", "mean"] = eqx.field(static=True)
    block_size: int | None = eqx.field(static=True)
    positions: Float[ArrayLike, "..."] | None = None  # p_i (…, n); None: 0..n−1
    # the affine parts of a trained layer (None: absent): q_i = Q θ_i + q_bias, k_j = K θ_j +
    # k_bias, head h's output O_h V_h Σ_j w_ij θ_j, plus out_bias once (a value bias b_v folds
    # into it as Σ_h O_h b_v,h, the weights of a row summing to 1)
    O: Float[ArrayLike, "layers heads d d_v"] | None = None
    q_bias: Float[ArrayLike, "layers heads d_k"] | None = None
    k_bias: Float[ArrayLike, "layers heads d_k"] | None = None
    out_bias: Float[ArrayLike, "layers d"] | None = None

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
        O=None,
        q_bias=None,
        k_bias=None,
        out_bias=None,
    ):
        """``kind``: the attention kernel, a name ("softmax", "usa") or an
        :class:`~particles.AbstractKernel`; ``position`` a position part
        (:class:`~particles.Causal`, :class:`~particles.RoPE`, ..., or a tuple of them),
        or the ``causal`` shortcut; ``positions`` the tokens' positions p_i (…, n).
        ``O`` (layers, heads, d, d_v) with V (layers, heads, d_v, d): each head's output
        O_h V_h in factors (a trained model's value and output projections; None: V is
        d × d, O_h V_h already); ``q_bias``, ``k_bias`` (layers, heads, d_k) and
        ``out_bias`` (layers, d): a trained layer's biases."""
        self.beta, self.Q, self.K, self.V = beta, Q, K, V
        self.O, self.q_bias, self.k_bias, self.out_bias = O, q_bias, k_bias, out_bias
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
    def _layered(self) -> tuple:
        """Every per-layer array (Q, K, V, O, q_bias, k_bias, out_bias), None where absent."""
        return (self.Q, self.K, self.V, self.O, self.q_bias, self.k_bias, self.out_bias)

    @property
    def identity_weights(self) -> bool:
        """Q = K = V = I: no weights, no biases."""
        return all(w is None for w in self._layered)

    @property
    def num_layers(self) -> int:
        return max((w.shape[0] for w in self._layered if w is not None), default=1)

    def layer_jumps(self, t0: float, t1: float) -> list[float]:
        """Integer times inside (t0, t1) at which piecewise-constant weights change."""
        return [float(k) for k in range(1, self.num_layers) if t0 < k < t1]

    def layer_weights(self, t):
        """(Q, K, V, O, q_bias, k_bias, out_bias) acting at time t, each without its layer
        axis, or None (absent: the identity, or no bias)."""

        def select(w):
            if w is None:
                return None
            index = jnp.clip(jnp.floor(t).astype(jnp.int32), 0, w.shape[0] - 1)
            return jax.lax.dynamic_index_in_dim(w, index, axis=0, keepdims=False)

        return tuple(select(w) for w in self._layered)

    def with_beta(self, beta) -> "Attention":
        """The same attention at inverse temperature ``beta`` (a batch's slice, or its
        padded copy across devices)."""
        return eqx.tree_at(lambda a: a.beta, self, beta)

    @property
    def batch_positions(self):
        """The positions if they differ across the batch, (*batch, n); else None (one
        set for every trajectory, or the default 0..n−1)."""
        return self.positions if self.positions is not None and jnp.ndim(self.positions) > 1 else None

    def with_batch(self, beta, positions=None) -> "Attention":
        """The same attention for a slice of the batch (or its padded copy across
        devices): ``beta`` and, where they differ across the batch, its ``positions``."""
        att = self.with_beta(beta)
        return att if positions is None else eqx.tree_at(lambda a: a.positions, att, positions)

    def batch_arrays(self) -> list:
        """The arrays with the batch's leading axes: beta, and the positions if batched."""
        return [self.beta, *([] if self.batch_positions is None else [self.batch_positions])]

    def at_layer(self, layer) -> "Attention":
        """The attention of layer ``layer`` (an int or a traced integer; past the last
        layer of weights, the last one), with that layer's weights alone."""

        def pick(w):
            if w is None:
                return None
            index = jnp.clip(layer, 0, w.shape[0] - 1)
            return jax.lax.dynamic_index_in_dim(w, index, axis=0, keepdims=True)

        return eqx.tree_at(
            lambda a: a._layered, self, tuple(pick(w) for w in self._layered), is_leaf=lambda w: w is None
        )

    def __call__(self, t, theta: Float[Array, "*batch n d"]) -> Float[Array, "*batch n d"]:
        beta = jnp.asarray(self.beta, theta.dtype)[..., None, None]
        p = None if self.positions is None else jnp.asarray(self.positions, theta.dtype)
        options = dict(kernel=self.kernel, position=self.position, block=self.block_size)
        if self.identity_weights:  # queries = keys (turned by RoPE where it applies), values θ
            turned, _ = self.position.rotate(theta, theta, p)
            return identity_mix(beta, turned, theta, positions=p, **options)
        d = theta.shape[-1]
        Q, K, V, O, q_bias, k_bias, out_bias = self.layer_weights(t)
        num_heads = max(w.shape[0] for w in (Q, K, V, O, q_bias, k_bias) if w is not None)
        eye = jnp.broadcast_to(jnp.eye(d, dtype=theta.dtype), (num_heads, d, d))
        Q, K, V = (eye if w is None else w.astype(theta.dtype) for w in (Q, K, V))
        query = jnp.einsum("hed,...nd->...hne", Q, theta, precision=PRECISION)
        key = jnp.einsum("hed,...nd->...hne", K, theta, precision=PRECISION)
        if q_bias is not None:
            query = query + q_bias.astype(theta.dtype)[:, None, :]
        if k_bias is not None:
            key = key + k_bias.astype(theta.dtype)[:, None, :]
        p = None if p is None else p[..., None, :]  # the head axis
        query, key = self.position.rotate(query, key, p)
        if O is None:  # V (d × d) applied to the mixed tokens: one mix of θ shared by the heads' logits
            mixed = mix(beta[..., None, :, :], query, key, theta[..., None, :, :], positions=p, **options)
            out = jnp.einsum("hed,...hnd->...hne", V, mixed, precision=PRECISION)
        else:  # a trained model's values V θ (d_v each) mixed, then its output factor O
            value = jnp.einsum("hvd,...nd->...hnv", V, theta, precision=PRECISION)
            mixed = mix(beta[..., None, :, :], query, key, value, positions=p, **options)
            out = jnp.einsum("hev,...hnv->...hne", O.astype(theta.dtype), mixed, precision=PRECISION)
        out = out.mean(axis=-3) if self.heads == "mean" else out.sum(axis=-3)
        return out if out_bias is None else out + out_bias.astype(theta.dtype)
