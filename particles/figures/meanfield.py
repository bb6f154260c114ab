"""The mean-field limit (MODEL.md §12): the density flow ∂_t ρ + ∇·(ρ v[ρ]) = D Δρ
solved by :mod:`particles.meanfield`, against particles.

(a) The noisy transition: r = |∫ x ρ| of the stationary states of post against
D/threshold (D_1(β) for SA, D_#(β) for USA), d = 2 (top) and 3 (bottom), for USA
below β_* (left), USA above β_* (middle) and SA (right). PDE branches continued up in D
from a cluster and back down (:func:`particles.meanfield.branch`; filled marks stable,
open unstable): above β_* (Mun and Rosenzweig, arXiv 2606.05140) the cluster outlives
the threshold while the uniform state is stable there, a hysteresis loop; below β_*
and for SA the two directions agree (continuous). Particles (n tokens, the Stratonovich
SDE, Heun; t ≤ 20, 4, 100 for the three columns) from one cluster and from spread
tokens: r averaged over the second half of the run. Just above a continuous threshold
the cluster's r decays at the small rate ∝ D − D_c (critical slowing down): tokens from
a cluster there are still relaxing at the end of the run, not on another branch.

(b) SA, β = 5, D = 0, n tokens from the uniform distribution and the PDE from their
empirical measure smoothed by the heat kernel (e^{−0.01 k²}: the sampling noise of the
high modes removed, the growing modes 2-4 kept within 4-15%): the density against the
tokens' histogram over time, up to the time when the clusters are too sharp for the
modes (with D = 0 they keep contracting). (c) The metastable cluster count: the number
of peaks of the PDE density, from 1 + 10⁻⁴ Σ_k cos(kθ + φ_k) (random phases), when
max ρ first reaches 4, against k* = argmax_k k² I_k(β), the fastest linear mode
(β = 1..36).
"""

import os

import numpy as np
import xarray as xr

import particles
from particles import meanfield

from .._io import atomic_path
from ._common import pyplot, sweep_store, write_outputs
from .noise_transition import order_parameter

# (d, attention, beta, particle time t1, Heun step h) per panel of (a)
PANELS = (
    (2, "usa", 1.0, 20.0, 0.01), (2, "usa", 6.0, 4.0, 1e-3), (2, "softmax", 8.0, 100.0, 0.02),
    (3, "usa", 1.0, 20.0, 0.01), (3, "usa", 5.0, 4.0, 2e-3), (3, "softmax", 8.0, 100.0, 0.02),
)  # fmt: skip
SIZES = {
    "tiny": dict(ratios=(0.8, 1.2), panels=(0, 1), n=16, time_scale=0.1, modes=24, tokens=256,
                 snapshots=(0.0, 2.0), betas=(1, 5), count_modes=64, snapshot_modes=64),
    "quick": dict(ratios=(0.6, 0.8, 0.9, 0.95, 1.02, 1.05, 1.1, 1.15, 1.2, 1.3, 1.5), panels=range(6), n=256,
                  time_scale=1.0, modes=64, tokens=4096, snapshots=(0.0, 4.0, 5.5, 6.5), betas=range(1, 37),
                  count_modes=512, snapshot_modes=256),
    "full": dict(ratios=tuple(np.round(np.arange(0.6, 1.61, 0.025), 3)), panels=range(6), n=1024,
                 time_scale=2.0, modes=128, tokens=16384, snapshots=(0.0, 4.0, 5.5, 6.5, 7.0),
                 betas=range(1, 37), count_modes=1024, snapshot_modes=512),
}  # fmt: skip


def branches(cfg):
    """The PDE branches (panel, direction, ratio): order and stability."""
    order, stable = [], []
    for i in cfg["panels"]:
        d, attention, beta, _, _ = PANELS[i]
        D = np.asarray(cfg["ratios"]) * meanfield.threshold(beta=beta, d=d, attention=attention)
        with particles.precision("float64"):
            ds = meanfield.branch(beta=beta, noise=D, d=d, attention=attention, modes=cfg["modes"])
        order.append(ds["order"].values)
        stable.append(ds["stable"].values)
    return np.asarray(order), np.asarray(stable)


def tokens_r(out_dir, size, cfg):
    """Particles' r (panel, start, ratio): one sweep per panel and start."""
    n, out = cfg["n"], []
    for i in cfg["panels"]:
        d, attention, beta, t1, h = PANELS[i]
        t1 = max(t1 * cfg["time_scale"], 20 * h)
        D = [
            float(v)
            for v in np.asarray(cfg["ratios"]) * meanfield.threshold(beta=beta, d=d, attention=attention)
        ]
        cluster = os.path.join(out_dir, f".meanfield-{size}-cluster-{d}.npy")
        os.makedirs(out_dir, exist_ok=True)
        with atomic_path(cluster, ".npy") as tmp:
            np.save(tmp, np.tile(np.eye(d)[:1], (n, 1)))  # every token at e_1
        rows = []
        try:
            for start, init in (("cluster", cluster), ("spread", "uniform")):
                with sweep_store(out_dir, "meanfield", size, f"{i}-{start}") as store:
                    sw = particles.sweep(
                        store, schemes="post", beta=beta, n=n, d=d, t1=t1, ts=np.linspace(t1 / 2, t1, 11),
                        step_size=h, noise=D, attention=attention, init=init, observables=["mean_cosine"],
                        dtype="float32", progress=False,
                    )  # fmt: skip
                    r = order_parameter(sw["mean_cosine"], n).mean("time").squeeze(drop=True)
                    rows.append(np.asarray(r.transpose("noise", ...).values).reshape(len(D)))
        finally:
            os.remove(cluster)
        out.append(rows)
    return np.asarray(out)


#: panel (b): the PDE starts from the tokens' empirical measure smoothed by e^{−SMOOTH k²}
SMOOTH = 0.01


def smoothed_empirical(theta, tau=SMOOTH, kmax=96):
    """The density 1 + 2 Σ_{k≤kmax} e^{−τk²} Re(ĉ_k e^{−ikθ}) of angles ``theta``: their
    empirical measure under the heat kernel at time τ, as a callable of the angle."""
    k = np.arange(1, kmax + 1)
    damp = np.exp(-tau * k * k)
    a, b = damp * np.cos(np.outer(theta, k)).mean(0), damp * np.sin(np.outer(theta, k)).mean(0)
    return lambda th: 1 + 2 * (np.cos(np.outer(th, k)) @ a + np.sin(np.outer(th, k)) @ b)


def snapshots(cfg):
    """(ts, PDE ρ (time, angle), angle, tokens' angles (time, n)) for SA, β = 5, D = 0."""
    import jax

    ts = np.asarray(cfg["snapshots"])
    with particles.precision("float64"):
        x0 = np.asarray(particles.init.uniform_sphere(jax.random.key(0), cfg["tokens"], 2, dtype=np.float64))
        traj = particles.simulate(
            x0, "post", beta=5.0, t1=ts[-1], ts=ts, rtol=1e-7, atol=1e-9, block_size=1024
        )
        rho0 = smoothed_empirical(np.arctan2(x0[:, 1], x0[:, 0]))
        sol = meanfield.solve(
            rho0, beta=5.0, t1=ts[-1], ts=ts, modes=cfg["snapshot_modes"], rtol=1e-7, atol=1e-9
        )
    th = np.asarray(traj.theta)
    return ts, sol.rho, sol.angle, np.mod(np.arctan2(th[..., 1], th[..., 0]), 2 * np.pi)


def fastest_mode(beta, kmax=64):
    """k* = argmax_k k² I_k(β) (MODEL.md §12), from the closed-form rates at D = 0."""
    return int(np.argmax(meanfield.linear_rates(beta=beta, kmax=kmax)))


def _peaks_when_formed(beta, rho0, modes, level=4.0):
    """The number of peaks (local maxima above 2) of the SA density from ``rho0`` when
    max ρ first reaches ``level``, solving in stretches of 1/(2 λ_max) (D = 0: past that
    the clusters keep sharpening and would need ever more modes)."""
    stretch = 0.5 / np.max(meanfield.linear_rates(beta=beta, kmax=64))
    rho = rho0
    for _ in range(200):
        sol = meanfield.solve(rho, beta=beta, t1=stretch, ts=np.linspace(0, stretch, 11), modes=modes,
                              rtol=1e-6, atol=1e-9)  # fmt: skip
        formed = np.nonzero(sol.rho.max(axis=1) >= level)[0]
        if formed.size:
            r = sol.rho[formed[0]]
            return int(np.sum((r > np.roll(r, 1)) & (r >= np.roll(r, -1)) & (r > 2)))
        rho = np.maximum(sol.rho[-1], 0)  # the next stretch from the last save (rounding: > −1e−15)
    return -1


def cluster_counts(cfg):
    """(k*, peaks of ρ when max ρ first reaches 4) per β."""
    K = 24
    phases = np.random.default_rng(0).uniform(0, 2 * np.pi, K)
    rho0 = lambda th: 1 + 1e-4 * sum(np.cos((k + 1) * th + phases[k]) for k in range(K))
    with particles.precision("float64"):
        counts = [_peaks_when_formed(float(beta), rho0, cfg["count_modes"]) for beta in cfg["betas"]]
    return np.asarray([fastest_mode(float(beta)) for beta in cfg["betas"]]), np.asarray(counts)


def _panel_branch(ax, i, ratios, order, stable, r_tokens, n):
    d, attention, beta, _, _ = PANELS[i]
    above = attention == "usa" and beta > meanfield.critical_beta(d)
    for k, (direction, color, ls) in enumerate((("up", "C0", "-"), ("down", "C3", "--"))):
        ax.plot(
            ratios,
            order[k],
            ls,
            color=color,
            lw=1.4,
            label=f"PDE, D {direction}" + (" (from a cluster)" if k == 0 else ""),
        )
        ax.scatter(ratios[stable[k]], order[k][stable[k]], color=color, s=16, zorder=3)
        ax.scatter(
            ratios[~stable[k]], order[k][~stable[k]], facecolor="none", edgecolor=color, s=16, zorder=3
        )
    if r_tokens is not None:
        ax.plot(
            ratios, r_tokens[0], "s", color="k", ms=4, mfc="none", label=f"tokens n = {n}: from one cluster"
        )
        ax.plot(ratios, r_tokens[1], "x", color="0.4", ms=5, label="tokens: from spread")
    ax.axvline(1.0, color="0.5", lw=0.8, ls=":")
    name = "D_#" if attention == "usa" else "D_1"
    kind = (
        ("above" if above else "below") + f" β_* = {meanfield.critical_beta(d):.3f}"
        if attention == "usa"
        else ""
    )
    ax.set(xlabel=f"D / {name}(β)", ylabel="r", ylim=(-0.03, 1.0),
           title=f"({'USA' if attention == 'usa' else 'SA'}) d = {d}, β = {beta:g} {kind}")  # fmt: skip
    ax.grid(alpha=0.3)


def _panel_snapshots(ax, ts, rho, angle, tokens):
    colors = pyplot().cm.viridis(np.linspace(0, 0.85, len(ts)))
    bins = np.linspace(0, 2 * np.pi, 121)
    for j, (t, color) in enumerate(zip(ts, colors)):
        hist, _ = np.histogram(tokens[j], bins=bins, density=True)
        ax.stairs(hist * 2 * np.pi, bins, color=color, alpha=0.5, lw=1)
        ax.plot(angle, rho[j], color=color, lw=1.6, label=f"t = {t:g}")
    ax.set(xlabel="θ", ylabel="density against dθ/2π", ylim=(0, None),
           title=f"(b) SA, β = 5, D = 0: PDE (lines) vs n = {tokens.shape[1]} tokens (histograms)")  # fmt: skip
    ax.legend(fontsize=7, loc="upper right")


def _panel_counts(ax, betas, kstar, counts):
    ax.plot(betas, kstar, "-", color="C1", lw=1.5, label="k* = argmax_k k² I_k(β)")
    ax.plot(betas, counts, "o", color="C0", ms=4, label="PDE: peaks when max ρ reaches 4")
    ax.set(xlabel="β", ylabel="clusters", title="(c) metastable cluster count (SA, D = 0)")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)


def run(out_dir, size):
    cfg = SIZES[size]
    panels, ratios = list(cfg["panels"]), np.asarray(cfg["ratios"])
    order, stable = branches(cfg)
    r_tokens = tokens_r(out_dir, size, cfg)
    ts, rho, angle, tokens = snapshots(cfg)
    kstar, counts = cluster_counts(cfg)
    betas = np.asarray(list(cfg["betas"]), float)
    data = xr.Dataset(
        {
            "order_pde": (("panel", "direction", "ratio"), order),
            "stable_pde": (("panel", "direction", "ratio"), stable),
            "order_tokens": (("panel", "start", "ratio"), r_tokens),
            "rho_pde": (("time", "angle"), rho),
            "tokens_angle": (("time", "token"), tokens),
            "fastest_mode": ("beta", kstar),
            "cluster_count": ("beta", counts),
        },
        coords={"panel": [f"d={PANELS[i][0]} {PANELS[i][1]} beta={PANELS[i][2]:g}" for i in panels],
                "direction": ["up", "down"], "start": ["cluster", "spread"], "ratio": ratios, "time": ts,
                "angle": angle, "beta": betas},
        attrs={"n": cfg["n"], "tokens": cfg["tokens"], "modes": cfg["modes"],
               "critical_beta_2": meanfield.critical_beta(2), "critical_beta_3": meanfield.critical_beta(3),
               "r": "|mean_i theta_i| (tokens: averaged over the second half of the run); PDE |∫ x rho|"},
    )  # fmt: skip
    plt = pyplot()
    fig = plt.figure(figsize=(15, 12))
    grid = fig.add_gridspec(3, 3, height_ratios=(1, 1, 1.1))
    for j, i in enumerate(panels):
        ax = fig.add_subplot(grid[j // 3, j % 3])
        _panel_branch(ax, i, ratios, order[j], stable[j], r_tokens[j], cfg["n"])
        if j == 0:
            ax.legend(fontsize=7, loc="upper right")
    _panel_snapshots(fig.add_subplot(grid[2, :2]), ts, rho, angle, tokens)
    _panel_counts(fig.add_subplot(grid[2, 2]), betas, kstar, counts)
    fig.suptitle("(a) Mean field (PDE) and tokens: stationary r of post against D/threshold; "
                 "filled: stable, open: unstable; a loop above β_* only (USA)")  # fmt: skip
    fig.tight_layout()
    return write_outputs("meanfield", out_dir, fig, data)
