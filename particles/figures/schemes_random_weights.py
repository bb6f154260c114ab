"""Schemes compared under random weights (MODEL.md §5.2; Karagodin, Ge, Polyanskiy,
Rigollet, arXiv 2510.22026): the mean cosine ρ̄(t) of n < d tokens uniform on the sphere,
moved by one attention head with random Kaiming weights (i.i.d. N(0, 1/d) entries),
a fresh draw of (Q, K, V) per unit time ("layer"), β = √d, t ∈ [0, 10].

Each draw is a new set of tokens and of weights; every scheme sees the same draws. The
line is the mean over draws and the band holds the central 90% (5% to 95% quantiles).
Mix-LN is post-LN for the first quarter of the depth (τ = 2.5) and pre-LN after.
The published shape: nGPT and Peri-LN rise fastest, Post-LN reaches 1 near t ≈ 5.5,
Pre-LN and Mix-LN are slower, LayerNorm scaling (sqrt) is the slowest.
"""

import jax
import numpy as np
import xarray as xr

import particles

from ._common import pyplot, scheme_color, write_outputs

T1 = 10.0
LAYERS = 10  # one weight draw per unit time on [0, T1]
TAU = 2.5  # Mix-LN: post-LN for the first 25% of the depth
SCHEMES = ("post", "pre", "mix", "peri", "ngpt", "sqrt")
PARAMS = {"mix": {"tau": TAU}}
# What we see at quick size (d = 128) against the published figure (d = 512).
CAPTION = (
    "Published (d = 512): ngpt and peri rise fastest, post reaches 1 near t ≈ 5.5, pre/mix slower, sqrt slowest.\n"
    "Here: the ordering ngpt > peri > post > mix > pre > sqrt at mid-depth matches, but post is slower (ρ̄ ≈ 0.97\n"
    "only at t = 10) and peri rises fast then levels off below 0.9 within t ≤ 10."
)
SIZES = {
    # tiny: only the schemes the test compares, so it runs in seconds
    "tiny": dict(d=16, n=8, draws=4, saves=21, schemes=("pre", "ngpt")),
    "quick": dict(d=128, n=64, draws=32, saves=101, schemes=SCHEMES),
    "full": dict(d=512, n=256, draws=64, saves=201, schemes=SCHEMES),
}


def mean_cosines(scheme, d, n, draws, ts, seed=0):
    """ρ̄(t) for each draw of tokens and weights: array (draws, len(ts)). One solve per
    draw (the weights are shared across a batch); equal shapes reuse the compiled solve."""
    out = []
    for key in jax.random.split(jax.random.key(seed), draws):
        kw, kx = jax.random.split(key)
        Q, K, V = particles.random_weights(kw, d, heads=1, layers=LAYERS, ensemble="kaiming")
        x0 = particles.init.uniform_sphere(kx, n, d)
        traj = particles.simulate(
            x0, scheme, beta=np.sqrt(d), t1=T1, ts=ts, Q=Q, K=K, V=V, **PARAMS.get(scheme, {})
        )
        out.append(np.asarray(particles.analysis.mean_cosine(traj.theta)))
    return np.stack(out)


def run(out_dir, size):
    cfg = SIZES[size]
    d, n, draws, schemes = cfg["d"], cfg["n"], cfg["draws"], cfg["schemes"]
    ts = np.linspace(0.0, T1, cfg["saves"])
    rho = np.stack([mean_cosines(s, d, n, draws, ts) for s in schemes])
    data = xr.Dataset(
        {"mean_cosine": (("scheme", "draw", "t"), rho)},
        coords={"scheme": list(schemes), "draw": np.arange(draws), "t": ts},
        attrs={
            "d": d,
            "n": n,
            "beta": float(np.sqrt(d)),
            "heads": 1,
            "layers": LAYERS,
            "ensemble": "kaiming",
            "mix_tau": TAU,
            "band": "5% to 95% quantiles over draws of tokens and weights",
        },
    )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.8, 4.4))
    for s, r in zip(schemes, rho):
        color = scheme_color(s)
        label = f"mix (τ = {TAU:g})" if s == "mix" else s
        ax.fill_between(ts, np.quantile(r, 0.05, 0), np.quantile(r, 0.95, 0), color=color, alpha=0.2, lw=0)
        ax.plot(ts, r.mean(0), color=color, lw=1.8, label=label)
    ax.set(
        xlabel="t (depth; one random weight draw per unit time)",
        ylabel="mean cosine ρ̄(t)",
        title=f"Random Kaiming weights, 1 head, d = {d}, n = {n}, β = √d, {draws} draws\n"
        "line: mean over draws; band: 90% of draws",
        xlim=(0, T1),
        ylim=(min(-0.02, float(rho.min()) - 0.02), 1.02),
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="lower right")
    if size != "tiny":
        fig.text(0.01, -0.04, CAPTION, fontsize=8, ha="left", va="top", wrap=True)
    return write_outputs("schemes_random_weights", out_dir, fig, data)
