"""Noisy transformers (MODEL.md §10; Rigollet, arXiv 2512.01868, and Mun and Rosenzweig,
arXiv 2606.05140): the clustered/spread transition of the Stratonovich SDE
dθ_i = (the scheme's drift) dt + √(2D) P_θ_i ∘ dW_i on the sphere.

(a) β = 0, post (the noisy Kuramoto model in d = 2): the stationary order parameter
r = |(1/n) Σ_i θ_i| against D for d = 2, 3 and 8, with the mean-field curve: r = 0
for D ≥ 1/d, and below it the root of r = I_{d/2}(r/D)/I_{d/2−1}(r/D). Above 1/d the
finite-n tokens are an Ornstein-Uhlenbeck cloud, E r² = 1/(n(1 − 1/(dD))) (dotted).

(b, c) β > 0, post, d = 2: r over (β, D/D_1(β)) from spread (uniform) tokens and from
a single cluster (all tokens at one point), where D_1(β) = I_{d/2}(β)/(β I_{d/2−1}(β))
is the linear instability threshold of the uniform state (Funk-Hecke: linearised at the
uniform measure, the softmax drift is the USA one divided by Z = ∫ e^{β⟨θ,y⟩} dσ(y), and
the first harmonic grows at rate (d − 1)(D_1(β) − D); 1/d at β = 0). A cluster that
survives above D_1(β) while spread tokens stay spread would be the hysteresis of a
discontinuous transition (Mun and Rosenzweig predict it above some β_*).

(d) pre and peri, whose directions slow down like 1/r with radii r ~ t: in the
time τ = ∫ dt/r their noise is D r(t), so any D > 0 eventually exceeds the threshold
and the polynomial collapse of the ODE is undone: the tokens gather, then spread
again. The marks show where D r(t) (pre; D r|A| for peri, with |A| ≈ 1 in a cluster)
crosses D_1(β).

Every curve is the median over seeds with the 10–90% band; each panel is one
:func:`particles.sweep` with the ``noise`` axis (Heun, constant steps; seed s has the
Brownian paths of ``jax.random.key(s)``), in a hidden store that is removed afterwards.
"""

import os

import numpy as np
import xarray as xr

import particles

from .._io import atomic_path
from ._common import pyplot, sweep_store, write_outputs

SIZES = {
    "tiny": dict(
        ds=(2,), noises=(0.1, 0.3, 0.7), n=32, seeds=2, t1=10.0, step=0.2,
        betas=(0.0, 4.0), ratios=(0.5, 1.5), phase_n=16, phase_seeds=2, phase_t1=10.0,
        slow_noises=(0.0, 0.03), slow_n=8, slow_d=4, slow_t1=20.0, slow_seeds=2, slow_schemes=("pre",),
    ),
    "quick": dict(
        ds=(2, 3, 8), noises=(0.04, 0.08, 0.12, 0.16, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6),
        n=128, seeds=4, t1=40.0, step=0.1,
        betas=(0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0), ratios=(0.5, 0.7, 0.85, 0.95, 1.05, 1.15, 1.3, 1.6),
        phase_n=64, phase_seeds=3, phase_t1=60.0, slow_noises=(0.0, 0.003, 0.03), slow_n=32, slow_d=8, slow_t1=300.0,
        slow_seeds=8,
    ),
    "full": dict(
        ds=(2, 3, 8, 32), noises=tuple(np.round(np.arange(0.02, 0.801, 0.02), 2)),
        n=1024, seeds=16, t1=80.0, step=0.05,
        betas=tuple(np.arange(0.0, 12.1, 1.0)), ratios=tuple(np.round(np.arange(0.5, 1.61, 0.05), 2)),
        phase_n=256, phase_seeds=8, phase_t1=200.0, slow_noises=(0.0, 0.001, 0.003, 0.01, 0.03), slow_n=64, slow_d=32,
        slow_t1=1000.0, slow_seeds=32,
    ),
}  # fmt: skip
SLOW_BETA = 1.0
SLOW_SCHEMES = ("pre", "peri")  # tiny: pre only


def bessel_ratio(nu, x):
    """I_ν(x)/I_{ν−1}(x) for x > 0 by Gauss's continued fraction
    I_ν/I_{ν−1} = 1/(2ν/x + 1/(2(ν+1)/x + ...)), evaluated backwards (300 terms: converged
    to rounding for x ≤ 10³); numpy only (scipy is not a dependency)."""
    x = np.asarray(x, dtype=float)
    tail = np.zeros_like(x)
    for k in range(300, -1, -1):
        tail = 1.0 / (2 * (nu + k) / x + tail)
    return tail


def mean_field_order_parameter(d, D):
    """The mean-field r at β = 0 (MODEL.md §10): 0 for D ≥ 1/d, else the root r > 0 of
    r = I_{d/2}(r/D)/I_{d/2−1}(r/D) (von Mises-Fisher stationary states), by bisection."""
    D = np.atleast_1d(np.asarray(D, dtype=float))
    lo, hi = np.full(D.shape, 1e-12), np.ones(D.shape)
    for _ in range(200):
        mid = (lo + hi) / 2
        below = mid - bessel_ratio(d / 2, mid / D) < 0  # the root lies above mid
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return np.where(D < 1 / d, (lo + hi) / 2, 0.0)


def linear_threshold(d, beta):
    """D_1(β) = I_{d/2}(β)/(β I_{d/2−1}(β)): below it the uniform state of the softmax
    (post, Q = K = V = I) flow is linearly unstable; 1/d at β = 0."""
    beta = np.asarray(beta, dtype=float)
    safe = np.where(beta > 0, beta, 1.0)
    return np.where(beta > 0, bessel_ratio(d / 2, safe) / safe, 1.0 / d)


def incoherent_rms(d, D, n):
    """rms of r for n tokens in the incoherent state, D > 1/d: the mean token is an
    Ornstein-Uhlenbeck process with E r² = 1/(n(1 − 1/(dD))) (NaN for D ≤ 1/d)."""
    D = np.asarray(D, dtype=float)
    return np.where(D > 1 / d, np.sqrt(1 / (n * np.clip(1 - 1 / (d * D), 1e-12, None))), np.nan)


def order_parameter(mean_cosine, n):
    """r = |(1/n) Σ θ_i| from the mean cosine: r² = 1/n + (n − 1)/n · ρ̄."""
    return np.sqrt((1 / n + (n - 1) / n * mean_cosine.astype(float)).clip(0))


def band(x, axis=-1):
    """(median, 10%, 90%) over ``axis`` (the seeds)."""
    q = np.quantile(np.asarray(x, dtype=float), [0.5, 0.1, 0.9], axis=axis)
    return q[0], q[1], q[2]


def _stationary_sweep(store, cfg, **kw):
    """A β = 0 or (β, D) sweep of post; r per grid point and seed, averaged over the
    saves of the second half of [0, t1]."""
    t1 = cfg["t1"]
    sw = particles.sweep(
        store, schemes="post", t1=t1, ts=np.linspace(t1 / 2, t1, 11), step_size=cfg["step"],
        observables=["mean_cosine"], dtype="float32", progress=False, **kw,
    )  # fmt: skip
    return order_parameter(sw["mean_cosine"], kw["n"]).mean("time").reset_coords(drop=True)


def transition(out_dir, size, cfg):
    """Panel (a): r (d, noise, seed) at β = 0."""
    with sweep_store(out_dir, "noise_transition", size, "beta0") as store:
        r = _stationary_sweep(store, cfg, beta=0.0, d=list(cfg["ds"]), n=cfg["n"], noise=list(cfg["noises"]),
                              seeds=cfg["seeds"])  # fmt: skip
    return r.transpose("d", "noise", "seed")


def phase(out_dir, size, cfg):
    """Panels (b, c): r (start, beta, ratio, seed) of post in d = 2 from spread and from
    clustered tokens, at D = ratio · D_1(β): one sweep per (start, β)."""
    n, out = cfg["phase_n"], []
    cluster = os.path.join(out_dir, f".noise_transition-{size}-cluster.npy")
    os.makedirs(out_dir, exist_ok=True)
    with atomic_path(cluster, ".npy") as tmp:
        np.save(tmp, np.tile(np.eye(2)[:1], (n, 1)))  # every token at e_1
    ratios = np.asarray(cfg["ratios"])
    try:
        for start, init in (("spread", "uniform"), ("clustered", cluster)):
            rows = []
            for beta in cfg["betas"]:
                noises = [float(v) for v in ratios * linear_threshold(2, beta)]
                with sweep_store(out_dir, "noise_transition", size, f"phase-{start}-{beta:g}") as store:
                    r = _stationary_sweep(store, {**cfg, "t1": cfg["phase_t1"]}, beta=beta, d=2, n=n,
                                          seeds=cfg["phase_seeds"], noise=noises, init=init)  # fmt: skip
                rows.append(r.transpose("noise", "seed").values)
            out.append(rows)
    finally:
        os.remove(cluster)
    coords = {"start": ["spread", "clustered"], "beta": list(cfg["betas"]), "ratio": ratios}
    return xr.DataArray(np.asarray(out), dims=("start", "beta", "ratio", "seed"), coords=coords)


def slowdown(out_dir, size, cfg):
    """Panel (d): mean cosine and mean radius (scheme, noise, seed, time) of pre and peri."""
    t1 = cfg["slow_t1"]
    ts = np.concatenate([[0.0], np.geomspace(0.1, t1, 40)])
    with sweep_store(out_dir, "noise_transition", size, "slowdown") as store:
        sw = particles.sweep(
            store, schemes=list(cfg.get("slow_schemes", SLOW_SCHEMES)), beta=SLOW_BETA, n=cfg["slow_n"], d=cfg["slow_d"],
            noise=list(cfg["slow_noises"]), seeds=cfg["slow_seeds"], t1=t1, ts=ts, step_size=cfg["step"],
            observables=["mean_cosine", "radius_mean"], dtype="float32", progress=False,
        )  # fmt: skip
        return (
            sw[["mean_cosine", "radius_mean"]]
            .transpose("scheme", "noise", "seed", "time")
            .reset_coords(drop=True)
            .load()
        )


def measured_threshold(noises, r, level):
    """The smallest D of the grid from which on the median r stays below ``level`` (the
    spread state), per leading index; NaN if it never does."""
    spread = np.asarray(r) < level
    tail = np.flip(np.cumprod(np.flip(spread, -1), -1), -1).astype(bool)  # spread from here on
    first = np.argmax(tail, axis=-1)
    return np.where(tail.any(-1), np.asarray(noises)[first], np.nan)


def _panel_transition(ax, r, n):
    noises = r["noise"].values
    fine = np.linspace(noises[0] / 2, noises[-1], 400)
    colors = pyplot().cm.plasma(np.linspace(0.05, 0.75, r.sizes["d"]))
    for d, color in zip(r["d"].values, colors):
        med, lo, hi = band(r.sel(d=d).values)
        ax.plot(noises, med, "o", color=color, ms=4, label=f"d = {d}: simulated (n = {n})")
        ax.fill_between(noises, lo, hi, color=color, alpha=0.2)
        ax.plot(fine, mean_field_order_parameter(d, fine), "-", color=color, lw=1.4)
        ax.plot(fine, incoherent_rms(d, fine, n), ":", color=color, lw=1.2)
        ax.axvline(1 / d, color=color, ls="--", lw=0.8)
    ax.plot([], [], "k-", lw=1.4, label="mean field: r = I_{d/2}(r/D)/I_{d/2−1}(r/D)")
    ax.plot([], [], "k:", lw=1.2, label="incoherent, finite n: (n(1 − 1/(dD)))^{−1/2}")
    ax.set(xlabel="noise D", ylabel="order parameter r = |mean θ_i|", ylim=(0, 1.3),
           title="(a) β = 0 (post): threshold D = 1/d (dashed)")  # fmt: skip
    ax.legend(fontsize=7, loc="upper right", ncol=2)
    ax.grid(alpha=0.3)


def _panel_phase(ax, r, n):
    betas, ratios = r["beta"].values, r["ratio"].values
    spread = band(r.sel(start="spread").values)[0]
    clustered = band(r.sel(start="clustered").values)[0]
    mesh = ax.pcolormesh(betas, ratios, spread.T, shading="nearest", cmap="viridis", vmin=0, vmax=1)
    pyplot().colorbar(mesh, ax=ax, label="r from spread tokens (median)")
    hyst = (clustered - spread) > 0.25
    bb, rr = np.meshgrid(betas, ratios, indexing="ij")
    ax.plot(bb[hyst], rr[hyst], "x", color="w", ms=6, mew=1.5, label="from one cluster: r higher by > 0.25")
    ax.axhline(1.0, color="r", lw=1.6, label="D = D_1(β): uniform state unstable below")
    ax.set(xlabel="β", ylabel="D / D_1(β),  D_1(β) = I_1(β)/(β I_0(β))",
           title=f"(b) post, d = 2, n = {n}: spread start", xlim=(betas[0] - 0.5, betas[-1] + 0.5))  # fmt: skip
    ax.legend(fontsize=7, loc="upper right")


def _panel_hysteresis(ax, r):
    betas, ratios = r["beta"].values, r["ratio"].values
    picks = sorted({0, len(betas) // 2, len(betas) - 1})
    colors = pyplot().cm.viridis(np.linspace(0.0, 0.8, len(picks)))
    for i, color in zip(picks, colors):
        for start, ls, mk in (("spread", "-", "o"), ("clustered", "--", "s")):
            med, lo, hi = band(r.sel(start=start).isel(beta=i).values)
            ax.plot(ratios, med, ls, marker=mk, color=color, ms=3.5, lw=1.3)
            ax.fill_between(ratios, lo, hi, color=color, alpha=0.15)
        ax.plot(
            [],
            [],
            "-",
            color=color,
            label=f"β = {betas[i]:g} (D_1 = {float(linear_threshold(2, betas[i])):.3f})",
        )
    ax.axvline(1.0, color="r", ls=":", lw=1.2)
    ax.plot([], [], "k-o", ms=3.5, label="from spread")
    ax.plot([], [], "k--s", ms=3.5, label="from one cluster")
    ax.set(
        xlabel="D / D_1(β)", ylabel="order parameter r", ylim=(0, 1.02), title="(c) post, d = 2: both starts"
    )
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(alpha=0.3)


def _panel_slowdown(ax, sw, d):
    t = sw["time"].values
    noises = sw["noise"].values
    colors = pyplot().cm.cividis(np.linspace(0.0, 0.8, len(noises)))
    d1 = float(linear_threshold(d, SLOW_BETA))
    for scheme, ls in zip(sw["scheme"].values, ("-", "--")):
        for D, color in zip(noises, colors):
            med, lo, hi = band(sw["mean_cosine"].sel(scheme=scheme, noise=D).values, axis=0)
            ax.plot(t[1:], med[1:], ls, color=color, lw=1.5)
            ax.fill_between(t[1:], lo[1:], hi[1:], color=color, alpha=0.15)
            radius = np.median(sw["radius_mean"].sel(scheme=scheme, noise=D).values, axis=0)
            cross = np.flatnonzero(D * radius > d1)
            if D > 0 and cross.size:
                k = cross[0]
                ax.plot(t[k], med[k], "v", color=color, mec="k", ms=8)
    for D, color in zip(noises, colors):
        ax.plot([], [], "-", color=color, lw=3, label=f"D = {D:g}")
    ax.plot([], [], "k-", label="pre")
    ax.plot([], [], "k--", label="peri")
    ax.plot([], [], "v", color="0.6", mec="k", ms=8, label="D r(t) = D_1(β)")
    ax.set(xscale="log", xlabel="t (log scale)", ylabel="mean cosine ρ̄", ylim=(-0.05, 1.02),
           title=f"(d) pre, peri: β = {SLOW_BETA:g}, d = {d}, n = {sw.attrs.get('n', '')}")  # fmt: skip
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)


def summary(r0, rp, cfg):
    """The measured transitions against the theory, as text (also stored in the .nc)."""
    n, n_phase = cfg["n"], cfg["phase_n"]
    lines = [f"beta = 0, n = {n}: measured threshold (median r < 3/sqrt(n) from there on) vs 1/d; "
             "max |r - r_mf| for D <= 0.6/d"]  # fmt: skip
    noises = r0["noise"].values
    for d in r0["d"].values:
        med = band(r0.sel(d=d).values)[0]
        below = noises <= 0.6 / d
        dev = np.max(np.abs(med - mean_field_order_parameter(d, noises))[below]) if below.any() else np.nan
        lines.append(f"  d = {d}: {measured_threshold(noises, med, 3 / np.sqrt(n)):.3g} vs {1 / d:.3g}; "
                     f"max |r - r_mf| = {dev:.3f}")  # fmt: skip
    lines.append(
        f"post, d = 2, n = {n_phase}: D/D_1(beta) where the order is lost, from spread / from one cluster"
    )
    level = 3 / np.sqrt(n_phase)
    for i, beta in enumerate(rp["beta"].values):
        ratios = rp["ratio"].values
        spread = measured_threshold(ratios, band(rp.sel(start="spread").isel(beta=i).values)[0], level)
        clus = measured_threshold(ratios, band(rp.sel(start="clustered").isel(beta=i).values)[0], level)
        lines.append(
            f"  beta = {beta:g} (D_1 = {float(linear_threshold(2, beta)):.3f}): {spread:.3g} / {clus:.3g}"
        )
    return "\n".join(lines)


def run(out_dir, size):
    cfg = SIZES[size]
    r0 = transition(out_dir, size, cfg)
    rp = phase(out_dir, size, cfg)
    sw = slowdown(out_dir, size, cfg)
    text = summary(r0, rp, cfg)
    print(text)
    data = xr.Dataset(
        {
            "r_beta0": r0.rename(noise="noise_beta0"),
            "r_mean_field": (("d", "noise_beta0"), np.stack([mean_field_order_parameter(d, r0["noise"].values)
                                                            for d in r0["d"].values])),
            "r_phase": rp.rename(seed="seed_phase"),
            "linear_threshold": ("beta", linear_threshold(2, rp["beta"].values)),
            "slow_mean_cosine": sw["mean_cosine"].rename(noise="noise_slow", seed="seed_slow"),
            "slow_radius_mean": sw["radius_mean"].rename(noise="noise_slow", seed="seed_slow"),
        },
        attrs={"summary": text, "n_beta0": cfg["n"], "n_phase": cfg["phase_n"], "n_slow": cfg["slow_n"],
               "d_slow": cfg["slow_d"], "beta_slow": SLOW_BETA, "t1": cfg["t1"], "t1_phase": cfg["phase_t1"],
               "step_size": cfg["step"],
               "r": "|mean_i theta_i|, averaged over the saves in [t1/2, t1] per seed",
               "init_clustered": "every token at e_1", "solver": "diffrax.Heun, constant steps"},
    )  # fmt: skip
    sw.attrs["n"] = cfg["slow_n"]
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(12.5, 9.5))
    _panel_transition(axes[0, 0], r0, cfg["n"])
    _panel_phase(axes[0, 1], rp, cfg["phase_n"])
    _panel_hysteresis(axes[1, 0], rp)
    _panel_slowdown(axes[1, 1], sw, cfg["slow_d"])
    fig.suptitle(
        "Noisy transformers: dθ = drift dt + √(2D) P_θ ∘ dW; r averaged over the second half of "
        f"t ≤ {cfg['t1']:g} (a), t ≤ {cfg['phase_t1']:g} (b, c); median and 10–90% over seeds"
    )
    fig.tight_layout()
    return write_outputs("noise_transition", out_dir, fig, data)
