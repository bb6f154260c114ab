"""Schemes compared under random weights (MODEL.md §5.2; Karagodin, Ge, Polyanskiy,
Rigollet, arXiv 2510.22026): the mean cosine ρ̄(t) of n < d tokens uniform on the sphere,
moved by one attention head with random Kaiming weights (i.i.d. N(0, 1/d) entries),
a fresh draw of (Q, K, V) per unit time ("layer"), β = √d, t ∈ [0, 10].

Each draw is a new set of tokens and of weights; every scheme sees the same draws. The
line is the mean over draws and the band holds the central 90% (5% to 95% quantiles).
Mix-LN is post-LN for the first quarter of the depth (τ = 2.5) and pre-LN after.
The published shape: nGPT and Peri-LN rise fastest, Post-LN reaches 1 near t ≈ 5.5,
Pre-LN and Mix-LN are slower, LayerNorm scaling (sqrt) is the slowest. We find that
shape with random Q, K and V = I; with a random V as well Post-LN is much slower (the
figure shows both).
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
# The value matrix: the published shape appears with random Q, K and V = I; with a
# random Kaiming V as well, post-LN is much slower. We show both, side by side.
VALUES = ("identity", "kaiming")
CAPTION = (
    "Published (Karagodin et al., d = 512): ngpt and peri rise fastest, post reaches 1 near t ≈ 5.5, pre/mix slower,\n"
    "sqrt slowest. Left (random Q, K; V = I): that shape. Right (random V as well): the same ordering at mid-depth,\n"
    "but post reaches only ρ̄ ≈ 0.97 at t = 10 and peri levels off below 0.9 (also at d = 512, n = 128: checked)."
)
SIZES = {
    # tiny: only the schemes the test compares, so it runs in seconds
    "tiny": dict(d=16, n=8, draws=4, saves=21, schemes=("pre", "ngpt"), values=("kaiming",)),
    "quick": dict(d=128, n=64, draws=16, saves=101, schemes=SCHEMES, values=VALUES),
    "full": dict(d=512, n=256, draws=64, saves=201, schemes=SCHEMES, values=VALUES),
}


def mean_cosines(scheme, d, n, draws, ts, value="kaiming", seed=0):
    """ρ̄(t) for each draw of tokens and weights: array (draws, len(ts)). One solve per
    draw (the weights are shared across a batch); equal shapes reuse the compiled solve.
    ``value="identity"`` keeps V = I (Q and K random)."""
    out = []
    for key in jax.random.split(jax.random.key(seed), draws):
        kw, kx = jax.random.split(key)
        Q, K, V = particles.random_weights(kw, d, heads=1, layers=LAYERS, ensemble="kaiming")
        V = None if value == "identity" else V
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
    values = cfg["values"]
    rho = np.stack([np.stack([mean_cosines(s, d, n, draws, ts, value=v) for s in schemes]) for v in values])
    data = xr.Dataset(
        {"mean_cosine": (("value", "scheme", "draw", "t"), rho)},
        coords={"value": list(values), "scheme": list(schemes), "draw": np.arange(draws), "t": ts},
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
    fig, axes = plt.subplots(1, len(values), figsize=(6.2 * len(values), 4.4), sharey=True, squeeze=False)
    for ax, value, rho_v in zip(axes[0], values, rho):
        for s, r in zip(schemes, rho_v):
            color = scheme_color(s)
            label = f"mix (τ = {TAU:g})" if s == "mix" else s
            ax.fill_between(
                ts, np.quantile(r, 0.05, 0), np.quantile(r, 0.95, 0), color=color, alpha=0.2, lw=0
            )
            ax.plot(ts, r.mean(0), color=color, lw=1.8, label=label)
        ax.set(
            xlabel="t (depth; one random weight draw per unit time)",
            title="random Q, K; V = I" if value == "identity" else "random Q, K and V",
            xlim=(0, T1),
            ylim=(min(-0.02, float(rho.min()) - 0.02), 1.02),
        )
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("mean cosine ρ̄(t)")
    axes[0, -1].legend(fontsize=9, loc="lower right")
    fig.suptitle(
        f"Random Kaiming weights, 1 head, d = {d}, n = {n}, β = √d, {draws} draws "
        "(line: mean over draws; band: 90% of draws)",
        fontsize=11,
    )
    if size != "tiny":
        fig.text(0.01, -0.04, CAPTION, fontsize=8, ha="left", va="top", wrap=True)
    return write_outputs("schemes_random_weights", out_dir, fig, data)
