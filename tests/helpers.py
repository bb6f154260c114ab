"""Helpers shared by test files (not collected: the name does not start with test_)."""

import os

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
