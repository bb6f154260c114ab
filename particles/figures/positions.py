"""What positions do to clustering (MODEL.md §11): the mean cosine and the effective rank
against time of a random-weight attention flow (post, heads of real shape d_k = d/H, one
draw of Kaiming Q, K, V, heads averaged) with no positions, the causal mask, ALiBi and
RoPE at bases 10, 10², 10⁴ (averaged over starts); and, with causal softmax attention and
V = I, how token k approaches the merged tokens 0..k−1: at the merged point its own
weight is 1/(k+1), so the distance to their direction decays at the linearised rate
k/(k+1) (Karagodin, Polyanskiy, Rigollet, arXiv 2411.04990).
"""

import numpy as np
import xarray as xr

import particles
from particles import analysis

from ._common import pyplot, write_outputs

BETA = 4.0
VARIANTS = {
    "none": None,
    "causal": (particles.Causal(),),
    "ALiBi": (particles.ALiBi(),),
    "RoPE 10": (particles.RoPE(base=10.0),),
    "RoPE 1e2": (particles.RoPE(base=100.0),),
    "RoPE 1e4": (particles.RoPE(base=1e4),),
}
SIZES = {
    "tiny": dict(n=16, d=16, heads=4, seeds=2, t1=10.0, causal_n=6),
    "quick": dict(n=64, d=64, heads=4, seeds=8, t1=40.0, causal_n=8),
    "full": dict(n=64, d=64, heads=4, seeds=64, t1=60.0, causal_n=12),
}


def clustering(n, d, heads, seeds, t1, ts):
    """(variant, time) mean cosine and effective rank, averaged over ``seeds`` starts."""
    Q, K, V = particles.random_weights(0, d, heads=heads)
    d_k = d // heads
    x0 = particles.init.uniform_sphere(1, n, d, batch=seeds, dtype=np.float64)
    cos, rank = [], []
    for position in VARIANTS.values():
        traj = particles.simulate(
            x0, "post", beta=BETA, t1=t1, ts=ts, Q=Q[..., :d_k, :], K=K[..., :d_k, :], V=V, heads="mean",
            position=position, dtype="float64",
        )  # fmt: skip
        theta = np.asarray(traj.theta)
        cos.append(np.asarray(analysis.mean_cosine(theta)).mean(axis=0))
        rank.append(np.asarray(analysis.effective_rank(theta)).mean(axis=0))
    return np.stack(cos), np.stack(rank)


def causal_approach(n, t1, ts):
    """(token k = 1..n−1, time): |θ_k − P(θ_0..θ_{k−1})|, P the direction of their mean,
    causal softmax attention, V = I, d = 3."""
    x0 = particles.init.uniform_sphere(2, n, 3, dtype=np.float64)
    traj = particles.simulate(
        x0, "post", beta=1.0, t1=t1, ts=ts, causal=True, dtype="float64", rtol=1e-10, atol=1e-12
    )
    theta = np.asarray(traj.theta)
    out = []
    for k in range(1, n):
        merged = theta[:, :k].mean(axis=1)
        merged /= np.linalg.norm(merged, axis=-1, keepdims=True)
        out.append(np.linalg.norm(theta[:, k] - merged, axis=-1))
    return np.stack(out)


def _decay_rate(t, dist, hi=1e-3, lo=1e-9):
    """−d log(dist)/dt fitted where 1e-9 < dist < 1e-3 (NaN with fewer than 3 points)."""
    keep = (dist < hi) & (dist > lo)
    if keep.sum() < 3:
        return np.nan
    return float(-np.polyfit(t[keep], np.log(dist[keep]), 1)[0])


def run(out_dir, size):
    cfg = SIZES[size]
    ts = np.linspace(0, cfg["t1"], 81)
    cos, rank = clustering(cfg["n"], cfg["d"], cfg["heads"], cfg["seeds"], cfg["t1"], ts)
    approach = causal_approach(cfg["causal_n"], 2 * cfg["t1"], 2 * ts)
    rates = [_decay_rate(2 * ts, dist) for dist in approach]
    data = xr.Dataset(
        {
            "mean_cosine": (("variant", "time"), cos),
            "effective_rank": (("variant", "time"), rank),
            "causal_distance": (("token", "causal_time"), approach),
            "linearised_rate": (("token",), np.array([k / (k + 1) for k in range(1, cfg["causal_n"])])),
            "measured_rate": (("token",), np.array(rates)),
        },
        coords={"variant": list(VARIANTS), "time": ts, "token": np.arange(1, cfg["causal_n"]), "causal_time": 2 * ts},
        attrs={"beta": BETA, "n": cfg["n"], "d": cfg["d"], "heads": cfg["heads"], "seeds": cfg["seeds"]},
    )  # fmt: skip
    return write_outputs("positions", out_dir, _figure(data), data)


def _figure(data):
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    colors = dict(
        zip(data.variant.values, ["k", "tab:blue", "tab:green", "tab:orange", "tab:red", "tab:purple"])
    )
    for name in data.variant.values:
        axes[0].plot(data.time, data.mean_cosine.sel(variant=name), color=colors[name], label=name)
        axes[1].plot(data.time, data.effective_rank.sel(variant=name), color=colors[name], label=name)
    head = f"post, β = {data.beta:g}, n = {data.n}, d = {data.d}, {data.heads} heads of d_k = {data.d // data.heads}"
    axes[0].set(xlabel="t", ylabel="mean cosine")
    axes[0].set_title(f"Mean cosine ({data.seeds} starts)\n{head}", fontsize=10)
    axes[1].set(xlabel="t", ylabel="effective rank", yscale="log")
    axes[1].set_title("Effective rank of the tokens", fontsize=10)
    axes[0].legend(fontsize=8)
    ax = axes[2]
    shades = plt.cm.viridis(np.linspace(0, 0.9, data.sizes["token"]))
    t = data.causal_time.values
    for k, color in zip(data.token.values, shades):
        dist = data.causal_distance.sel(token=k).values
        rate = float(data.measured_rate.sel(token=k))
        ax.plot(t, dist, color=color, label=f"k = {k}: rate {rate:.2f} ({k}/{k + 1} = {k / (k + 1):.2f})")
        i = len(t) // 2  # the linearised rate k/(k+1), drawn through the curve at mid-run
        ax.plot(t, dist[i] * np.exp(-(k / (k + 1)) * (t - t[i])), ":", color=color, lw=1)
    ax.set(xlabel="t", ylabel="|θ_k − direction of θ_0..θ_(k−1)|", yscale="log", ylim=(1e-12, 3))
    ax.set_title(
        "Causal, V = I, β = 1, d = 3: token k against the merged ones\n(dotted: rate k/(k+1))", fontsize=10
    )
    ax.legend(fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
