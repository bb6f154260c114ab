"""Attention kernels: Σ_j w_ij v_j from the logits β⟨q_i, k_j⟩, dense or in blocks.

    w_ij = exp(β ⟨q_i, k_j⟩) / Σ_k exp(β ⟨q_i, k_k⟩)      (softmax)
    w_ij = exp(β ⟨q_i, k_j⟩) / n                          (USA)

Three ways to compute the same numbers, chosen by :func:`identity_mix` / :func:`mix`:
dense (all n × n weights at once), row blocks (``block`` queries at a time, so at most
block × n weights exist), and for Q = K = I without a causal mask symmetric pairs of
blocks (each pair of blocks computed once for both its rows and its columns). The
block size comes from :func:`auto_block_size` and the measurements in :data:`BLOCKING`.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np

from ._model import AbstractKernel, AbstractPosition, as_kernel, as_position

# Above ``dense_max`` weights (batch × n × n) the field works in blocks. Measured with
# benchmarks/blocks.py, d = 128, float32:
# - 2-core CPU (2^21 float32 weights are 8 MiB): row blocks of 512-1024 queries ran at
#   ~80% of the 2048² matmul rate for n = 2048-8192 (the dense n = 4096 field at ~65%:
#   its weights fall out of cache), and the symmetric pairs of blocks (Q = K = V = I)
#   ran 1.3-1.5x faster than those with blocks of 512-1024, but slower than row blocks
#   with blocks of 256.
# - H100 (2026-11-23): pairs of 1024-blocks ran at 33-37% of the 8192² matmul rate (at
#   full float32 precision) for n = 8192-65536, launch-bound; pairs of 8192-blocks at
#   69-84%, dense n ≤ 8192 at 58%.
# - 2-core CPU (2026-12-07, benchmarks/throughput.py, timed in alternation with a matmul):
#   the field with ALiBi at n = 2048 (row blocks, being causal) took 13.0 ms dense and 7.5 ms
#   in row blocks of 512 (the plain symmetric field 6.1-7.1 ms): row blocks of
#   ``row_entries`` = 2^20 weights, not 2^22 (which made n = 2048 one dense block of
#   16 MiB of weights).
BLOCKING = {
    "cpu": dict(dense_max=1 << 21, block_entries=1 << 22, row_entries=1 << 20, min_rows=256, pair_block=1024),
    "gpu": dict(
        dense_max=1 << 26, block_entries=1 << 26, row_entries=1 << 26, min_rows=1024, pair_block=8192
    ),
}

# float32 matmuls at full precision: on GPUs JAX's default may use TF32 (10-bit
# mantissa), far too coarse for error control at rtol 1e-6. No effect on CPU.
PRECISION = jax.lax.Precision.HIGHEST
"""Matmul precision of the attention field: full float32, not TF32 (too coarse for rtol 1e-6)."""


def auto_block_size(n: int, batch_size: int = 1, symmetric: bool = False, backend: str | None = None) -> int:
    """Tokens per block, from :data:`BLOCKING` for ``backend`` (default: JAX's default
    backend; any accelerator counts as "gpu"): dense (``n``) while the batch of n × n
    weights holds at most ``dense_max`` numbers; else row blocks of
    ``row_entries // (batch n)`` queries, or for ``symmetric`` pairs of blocks
    (:func:`symmetric_mix`) blocks of √(``block_entries // batch``) tokens,
    at most ``pair_block``; a power of two, at least ``min_rows``."""
    backend = backend or jax.default_backend()
    cfg = BLOCKING["cpu" if backend == "cpu" else "gpu"]
    if batch_size * n * n <= cfg["dense_max"]:
        return n
    if symmetric:
        rows = min(cfg["pair_block"], math.isqrt(cfg["block_entries"] // batch_size))
    else:
        rows = cfg["row_entries"] // (n * batch_size)
    rows = max(cfg["min_rows"], rows)
    return min(n, 1 << (rows.bit_length() - 1))


def _weights(
    logits, index, num_keys: int, kernel: AbstractKernel, position: AbstractPosition, positions=None
):
    """The weights of the query rows ``index`` (positions ``positions`` (…, n) of every
    token, None: the indices). A prior carries its own normalisation (USA's 1/n is the
    uniform prior); a query whose keys are all masked gets weights 0."""
    keys = jnp.arange(logits.shape[-1])
    query_pos = None if positions is None else jnp.take(positions, jnp.minimum(index, num_keys - 1), axis=-1)
    logits = position.logits(logits, index, keys, query_pos, positions)
    count = 1 if position.normalizes else num_keys
    if not position.empty_rows:
        return kernel.weights(logits, count)
    empty = jnp.all(logits == -jnp.inf, axis=-1, keepdims=True)
    return jnp.where(empty, 0, kernel.weights(jnp.where(empty, 0, logits), count))


@jax.custom_jvp
def _self_gram(x):
    """⟨x_i, x_j⟩ (Q = K = I, dense): its tangent ⟨dx_i, x_j⟩ + ⟨x_i, dx_j⟩ is one
    product and its transpose, not two products."""
    return jnp.einsum("...ie,...je->...ij", x, x, precision=PRECISION)


@_self_gram.defjvp
def _self_gram_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    half = jnp.einsum("...ie,...je->...ij", dx, x, precision=PRECISION)
    return _self_gram(x), half + jnp.swapaxes(half, -1, -2)


def mix(beta, query, key, value, *, kernel="softmax", position=None, block=None, positions=None):
    """Σ_j w_ij value_j with w from the logits β ⟨query_i, key_j⟩ by the ``kernel`` (a
    name or :class:`~particles.AbstractKernel`) after the ``position`` part (default none;
    the tokens at ``positions`` (…, n), default 0..n−1; queries and keys already rotated),
    in row blocks of ``block`` queries (default :func:`auto_block_size`) so that at most
    ``block × n`` weights exist at once; ``block >= n`` is the dense computation."""
    kernel, position = as_kernel(kernel), as_position(position)
    *batch, n, _ = query.shape
    block = block or auto_block_size(n, math.prod(batch))

    def rows(q, start):
        gram = _self_gram(q) if q is key else jnp.einsum("...ie,...je->...ij", q, key, precision=PRECISION)
        logits = beta * gram
        index = start + jnp.arange(q.shape[-2])
        return jnp.matmul(_weights(logits, index, n, kernel, position, positions), value, precision=PRECISION)

    if block >= n:
        return rows(query, 0)
    num_blocks = -(-n // block)
    padded = jnp.pad(query, [(0, 0)] * len(batch) + [(0, num_blocks * block - n), (0, 0)])
    blocks = jnp.moveaxis(padded.reshape(*batch, num_blocks, block, -1), -3, 0)
    starts = block * jnp.arange(num_blocks)
    out = jax.lax.map(jax.checkpoint(lambda a: rows(*a)), (blocks, starts))
    out = jnp.moveaxis(out, 0, -3)
    return out.reshape(*out.shape[:-3], num_blocks * block, -1)[..., :n, :]


def symmetric_mix(beta, x, values, block, *, kernel="softmax"):
    """Σ_j w_ij v_j with w from the logits β ⟨x_i, x_j⟩ (Q = K = I), in pairs of
    blocks, each pair once.

    E_ij = exp(β ⟨x_i, x_j⟩) is symmetric, so the block E_IJ (I < J) gives both
    the rows of I (E_IJ V_J) and those of J (E_IJᵀ V_I): half the logits and the
    exponentials, 3/4 of the flops. The weights are E_ij / Σ_k E_ik (softmax) or
    E_ij / n (USA), without the row-max shift (that would break the symmetry), so
    it is taken only while |β| max_k |x_k|² keeps every e^{logit} and every row sum
    finite and normal; otherwise :func:`mix` (row blocks, shifted) runs instead.
    """
    kernel = as_kernel(kernel)
    *batch, n, _ = x.shape
    num_blocks = -(-n // block)
    size = num_blocks * block
    pad = [(0, 0)] * len(batch) + [(0, size - n), (0, 0)]
    xp, vp = jnp.pad(x, pad), jnp.pad(values, pad)
    real = (jnp.arange(size) < n).astype(x.dtype)  # padded keys weigh nothing

    axis = len(batch)  # the token axis

    def block_of(a, i, axis=axis):  # rows (or columns) i*block ... i*block + block - 1
        return jax.lax.dynamic_slice_in_dim(a, i * block, block, axis=axis)

    def add(acc, i, part, axis=axis):
        return jax.lax.dynamic_update_slice_in_dim(acc, block_of(acc, i, axis) + part, i * block, axis=axis)

    def weights(i, j):
        logits = beta * jnp.einsum(
            "...ie,...je->...ij", block_of(xp, i), block_of(xp, j), precision=PRECISION
        )
        e = jnp.exp(logits)
        if size > n:
            e = e * block_of(real, i, 0)[:, None] * block_of(real, j, 0)[None, :]
        return e

    def diagonal(carry, i):
        out, out_t, total = carry
        e = weights(i, i)
        out = add(out, i, jnp.matmul(e, block_of(vp, i), precision=PRECISION))
        return (out, out_t, add(total, i, jnp.sum(e, axis=-1))), None

    # E_IJᵀ V_I is accumulated transposed, as V_Iᵀ E_IJ into columns of out_t: XLA
    # on CPU multiplies by a transposed E at half speed or less.
    v_t = jnp.swapaxes(vp, -1, -2)

    def off_diagonal(carry, ij):
        out, out_t, total = carry
        i, j = ij[0], ij[1]
        e = weights(i, j)
        out = add(out, i, jnp.matmul(e, block_of(vp, j), precision=PRECISION))
        out_t = add(out_t, j, jnp.matmul(block_of(v_t, i, -1), e, precision=PRECISION), axis=-1)
        total = add(add(total, i, jnp.sum(e, axis=-1)), j, jnp.sum(e, axis=-2))
        return (out, out_t, total), None

    carry = (jnp.zeros_like(vp), jnp.zeros_like(v_t), jnp.zeros(xp.shape[:-1], x.dtype))
    carry, _ = jax.lax.scan(diagonal, carry, jnp.arange(num_blocks))
    pairs = np.array(np.triu_indices(num_blocks, k=1)).T
    if len(pairs):
        carry, _ = jax.lax.scan(off_diagonal, carry, jnp.asarray(pairs))
    out, out_t, total = carry
    out = kernel.from_sums(out + jnp.swapaxes(out_t, -1, -2), total, n, real)
    return out[..., :n, :]


def identity_mix(beta, x, values, *, kernel="softmax", position=None, block=None, positions=None):
    """Σ_j w_ij v_j with w from the logits β ⟨x_i, x_j⟩ (queries and keys the same
    ``x``, e.g. the tokens, or the tokens turned by RoPE): dense, or in blocks (pairs of
    blocks while unshifted exponentials are safe and the position part keeps the
    logits symmetric, ``symmetric_logits``, else row blocks). ``block=None`` picks each computation's own
    size (:func:`auto_block_size`)."""
    kernel, position = as_kernel(kernel), as_position(position)
    *batch, n, _ = x.shape
    symmetric = position.symmetric_logits
    pair = block or auto_block_size(n, math.prod(batch), symmetric=symmetric)
    if pair >= n or not symmetric:
        return mix(beta, x, x, values, kernel=kernel, position=position, block=block, positions=positions)
    # unshifted e^{logit} stays finite and normal, row sums included
    finfo = jnp.finfo(x.dtype)
    limit = min(-math.log(float(finfo.tiny)), math.log(float(finfo.max))) - math.log(n) - 1
    safe = jnp.all(jnp.abs(beta) * jnp.max(jnp.sum(x * x, -1), -1)[..., None, None] <= limit)
    return jax.lax.cond(
        safe,
        lambda: symmetric_mix(beta, x, values, pair, kernel=kernel),
        lambda: mix(beta, x, x, values, kernel=kernel, position=position, block=block),
    )
