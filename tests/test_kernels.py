"""Blockwise attention (row blocks of queries) equals the dense n × n computation."""

import functools

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import particles
from particles import Attention, auto_block_size


def _naive(theta, beta, Q, K, V, kind, causal, heads):
    """MODEL.md §1 written out directly, one head at a time."""
    n = theta.shape[-2]
    outs = []
    for h in range(Q.shape[0]):
        logits = beta[..., None, None] * jnp.einsum("...id,...jd->...ij", theta @ Q[h].T, theta @ K[h].T)
        if causal:
            logits = jnp.where(jnp.tril(jnp.ones((n, n), bool)), logits, -jnp.inf)
        w = jnp.exp(logits)
        w = w / n if kind == "usa" else w / jnp.sum(w, -1, keepdims=True)
        outs.append((w @ theta) @ V[h].T)
    out = sum(outs)
    return out / len(outs) if heads == "mean" else out


@pytest.mark.parametrize("kind", ["softmax", "usa"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("weights", ["identity", "heads"])
def test_blockwise_equals_dense(getkey, kind, causal, weights):
    batch, n, d = 3, 50, 6  # 50 rows: the last block of 16 is padded
    theta = particles.init.uniform_sphere(getkey(), n, d, batch=batch)
    beta = jnp.array([0.5, 2.0, 4.0])
    if weights == "identity":
        Q = K = V = None
        QKV = (jnp.eye(d)[None],) * 3
    else:
        Q, K, V = particles.random_weights(getkey(), d, heads=3, layers=1)
        QKV = (Q[0], K[0], V[0])
    heads = "mean" if weights == "heads" else "sum"
    make = lambda block: Attention(
        beta=beta, Q=Q, K=K, V=V, kind=kind, causal=causal, heads=heads, block_size=block
    )
    dense = make(n)(0.0, theta)
    expected = _naive(theta, beta, *QKV, kind, causal, heads)
    np.testing.assert_allclose(dense, expected, rtol=1e-12, atol=1e-13)
    for block in (1, 16):
        np.testing.assert_allclose(make(block)(0.0, theta), dense, rtol=1e-12, atol=1e-13)


def test_blockwise_under_jit_and_grad(getkey):
    """Gradients through the symmetric pairs of blocks, the last block padded (41 = 5 x 8 + 1)."""
    theta = particles.init.uniform_sphere(getkey(), 41, 5)
    loss = lambda block: jax.jit(
        jax.grad(
            lambda th: jnp.sum(
                Attention(beta=jnp.array(3.0), Q=None, K=None, V=None, block_size=block)(0.0, th) ** 2
            )
        )
    )(theta)
    np.testing.assert_allclose(loss(8), loss(41), rtol=1e-12, atol=1e-13)


@pytest.mark.slow
def test_simulate_block_size_matches_dense(getkey):
    x0 = particles.init.uniform_sphere(getkey(), 24, 4, batch=2)
    kw = dict(beta=3.0, t1=1.0, ts=[0.5, 1.0], solver=diffrax.Heun(), step_size=0.25)
    dense = particles.simulate(x0, "pre", block_size=24, **kw)
    blocks = particles.simulate(x0, "pre", block_size=8, **kw)
    np.testing.assert_allclose(blocks.theta, dense.theta, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["softmax", "usa"])
def test_symmetric_pairs_of_blocks_and_their_fallback(getkey, kind):
    """Q = K = V = I: pairs of blocks (unshifted exponentials, each pair once) equal
    the dense field, also for tokens off the sphere and negative beta; a beta too large
    for unshifted exponentials (softmax) falls back to the shifted row blocks."""
    n, d = 70, 5  # blocks of 16: the last one padded
    x = particles.init.gaussian(getkey(), n, d, batch=2)
    cases = [jnp.array([0.5, -3.0])] + ([jnp.array([2.0, 900.0])] if kind == "softmax" else [])
    for beta in cases:
        make = lambda block: Attention(beta=beta, Q=None, K=None, V=None, kind=kind, block_size=block)
        dense = make(n)(0.0, x)
        assert bool(jnp.all(jnp.isfinite(dense)))
        for block in (16, 35):
            np.testing.assert_allclose(make(block)(0.0, x), dense, rtol=1e-11, atol=1e-12)


def test_auto_block_size():
    cpu = functools.partial(auto_block_size, backend="cpu")
    assert cpu(32, 256) == 32  # small ensembles stay dense
    assert cpu(32, 256, symmetric=True) == 32
    assert cpu(2048) == 512  # row blocks of 2^20 weights (kernels.BLOCKING: measured 2026-12-07)
    assert cpu(2048, symmetric=True) == 1024
    assert cpu(32768, symmetric=True) == 1024
    assert cpu(4096, 16, symmetric=True) == 512
    for n in (4096, 32768):
        block = cpu(n)
        assert 256 <= block < n and block & (block - 1) == 0 and (block * n <= 1 << 22 or block == 256)
    gpu = functools.partial(auto_block_size, backend="cuda")
    assert gpu(8192) == gpu(8192, symmetric=True) == 8192  # 2^26 weights: still dense
    assert gpu(65536, symmetric=True) == 8192
    assert gpu(65536) == 1024 and gpu(65536, 4) == 1024  # row blocks: at least 1024 queries
    assert gpu(32, 256) == 32


def test_block_size_is_validated():
    with pytest.raises(ValueError, match="block_size"):
        particles.simulate(np.eye(3), "post", beta=1.0, t1=1.0, block_size=0)
