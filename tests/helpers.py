"""Helpers shared by test files (not collected: the name does not start with test_)."""

import math
import os

import numpy as np
import xarray as xr

import particles

# The sweeps of tests/test_sweep.py and tests/test_cli.py solve post with n=4, d=4 and
# the same save times, so they pay for two compiles (with and without the collapse event).
BASE = dict(schemes="post", n=4, d=4, t1=6.0, save_every=0.5, dtype="float64", progress=False)
OBS = ["mean_cosine", "pair_density", "cluster_count"]


def run(out, **kw):
    return particles.sweep(out, **{**BASE, "beta": [0.5, 1.0, 3.0], "seeds": 2, "observables": OBS, **kw})


def files(out):
    return {f: open(os.path.join(out, f), "rb").read() for f in sorted(os.listdir(out))}


def same(a, b):
    a, b = a.copy(), b.copy()
    for key in ("chunks_resumed", "chunk_size"):
        a.attrs.pop(key, None), b.attrs.pop(key, None)
    xr.testing.assert_identical(a, b)


def random_layer_stack(L, heads, n, d, m, gain_spread, bias_spread):
    """A random transformer stack from seed 0: per-layer Q, K, V (``heads``), a GELU MLP
    (W1, b1, W2, b2) of width m, LayerNorm gains 1 + gain_spread·N(0, 1) and biases
    bias_spread·N(0, 1), and tokens x0 (n, d)."""
    rng = np.random.default_rng(0)
    Q, K, V = (np.asarray(w) for w in particles.random_weights(1, d, heads=heads, layers=L))
    mlp = (
        rng.normal(size=(L, m, d)) / math.sqrt(d),
        0.1 * rng.normal(size=(L, m)),
        rng.normal(size=(L, d, m)) / math.sqrt(m),
        0.1 * rng.normal(size=(L, d)),
    )
    gamma = 1 + gain_spread * rng.normal(size=(L, d))
    bias = bias_spread * rng.normal(size=(L, d))
    return dict(Q=Q, K=K, V=V, mlp=mlp, gamma=gamma, bias=bias, x0=rng.normal(size=(n, d)))
