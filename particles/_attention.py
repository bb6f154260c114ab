"""The attention vector field A_i(Θ) of MODEL.md §1.

    A_i(Θ) = Σ_j w_ij V θ_j,    w_ij = exp(β ⟨Q θ_i, K θ_j⟩) / Σ_k exp(β ⟨Q θ_i, K θ_k⟩)

(Geshkovski, Letrouit, Polyanskiy, Rigollet, *A mathematical perspective on
Transformers*, arXiv 2312.10794.) Variants: unnormalized self-attention ("usa",
w_ij = exp(β⟨Qθ_i, Kθ_j⟩)/n), a causal mask (j ≤ i), several heads whose outputs are
summed or averaged, and weights that are piecewise constant in time, one draw per
unit of time ("one draw per layer").
"""

import math
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

ATTENTION_KINDS = ("softmax", "usa")
HEAD_REDUCTIONS = ("sum", "mean")

# Above this many weights (batch × n × n; 2^22 float32 weights are 16 MiB) the field
# works in row blocks of about BLOCK_ENTRIES weights, at least MIN_BLOCK_ROWS rows.
# Measured on a 2-core CPU (benchmarks/run.py): blocks of 512-1024 rows ran the field
# at 90-100% of the matmul rate for n = 2048-4096, the dense n = 4096 field at ~70%
# (its weights fall out of cache); 256 rows keep the matmuls of a block efficient.
DENSE_MAX_ENTRIES = 1 << 22
BLOCK_ENTRIES = 1 << 22
MIN_BLOCK_ROWS = 256
# float32 matmuls at full precision: on GPUs JAX's default may use TF32 (10-bit
# mantissa), far too coarse for error control at rtol 1e-6. No effect on CPU.
_PRECISION = jax.lax.Precision.HIGHEST


class Attention(eqx.Module):
    """The attention map Θ ↦ A(Θ) at inverse temperature β.

    ``Q``, ``K``, ``V`` are ``None`` (the identity, one head) or arrays of shape
    ``(layers, heads, d, d)``; layer ``l`` acts for ``l ≤ t < l + 1`` (the last layer
    acts for all later times). ``beta`` has the batch shape of the state (or is a
    scalar) and multiplies the logits of each trajectory. ``block_size`` rows of
    queries are attended at a time, so the n × n weights are never stored whole;
    ``None`` picks it from n and the batch size (:func:`auto_block_size`: dense up to
    2^22 weights); ``block_size >= n`` is the dense computation.
    """

    beta: Float[Array, "*batch"]
    Q: Float[Array, "layers heads d d"] | None
    K: Float[Array, "layers heads d d"] | None
    V: Float[Array, "layers heads d d"] | None
    kind: Literal["softmax", "usa"] = eqx.field(static=True, default="softmax")
    causal: bool = eqx.field(static=True, default=False)
    heads: Literal["sum", "mean"] = eqx.field(static=True, default="sum")
    block_size: int | None = eqx.field(static=True, default=None)

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

    def _weights(self, logits, index, num_keys: int):
        if self.causal:
            cols = jnp.arange(logits.shape[-1])
            logits = jnp.where(cols <= index[:, None], logits, -jnp.inf)
        if self.kind == "usa":
            return jnp.exp(logits) / num_keys
        return jax.nn.softmax(logits, axis=-1)

    def _mix(self, beta, query, key, value):
        """Σ_j w_ij value_j with w from the logits β ⟨query_i, key_j⟩, in row blocks
        above the size threshold so that at most ``block × n`` weights exist at once."""
        *batch, n, _ = query.shape
        block = self.block_size or auto_block_size(n, math.prod(batch))

        def rows(q, start):
            logits = beta * jnp.einsum("...ie,...je->...ij", q, key, precision=_PRECISION)
            index = start + jnp.arange(q.shape[-2])
            return jnp.matmul(self._weights(logits, index, n), value, precision=_PRECISION)

        if block >= n:
            return rows(query, 0)
        num_blocks = -(-n // block)
        padded = jnp.pad(query, [(0, 0)] * len(batch) + [(0, num_blocks * block - n), (0, 0)])
        blocks = jnp.moveaxis(padded.reshape(*batch, num_blocks, block, -1), -3, 0)
        starts = block * jnp.arange(num_blocks)
        out = jax.lax.map(jax.checkpoint(lambda a: rows(*a)), (blocks, starts))
        out = jnp.moveaxis(out, 0, -3)
        return out.reshape(*out.shape[:-3], num_blocks * block, -1)[..., :n, :]

    def __call__(self, t, theta: Float[Array, "*batch n d"]) -> Float[Array, "*batch n d"]:
        beta = jnp.asarray(self.beta, theta.dtype)[..., None, None]
        if self.identity_weights:
            return self._mix(beta, theta, theta, theta)
        d = theta.shape[-1]
        layer = [self._layer(w, t) for w in (self.Q, self.K, self.V)]
        num_heads = max(w.shape[0] for w in layer if w is not None)
        eye = jnp.broadcast_to(jnp.eye(d, dtype=theta.dtype), (num_heads, d, d))
        Q, K, V = (eye if w is None else w.astype(theta.dtype) for w in layer)
        query = jnp.einsum("hed,...nd->...hne", Q, theta, precision=_PRECISION)
        key = jnp.einsum("hed,...nd->...hne", K, theta, precision=_PRECISION)
        mixed = self._mix(beta[..., None, :, :], query, key, theta[..., None, :, :])
        out = jnp.einsum("hed,...hnd->...hne", V, mixed, precision=_PRECISION)
        return out.mean(axis=-3) if self.heads == "mean" else out.sum(axis=-3)


def auto_block_size(n: int, batch_size: int = 1) -> int:
    """Rows per block: dense (``n``) while the batch of n × n weights holds at most
    ``DENSE_MAX_ENTRIES`` numbers, else blocks of ``BLOCK_ENTRIES // (batch n)`` rows
    (a power of two, at least ``MIN_BLOCK_ROWS``)."""
    if batch_size * n * n <= DENSE_MAX_ENTRIES:
        return n
    rows = max(MIN_BLOCK_ROWS, BLOCK_ENTRIES // (n * batch_size))
    return min(n, 1 << (rows.bit_length() - 1))
