"""Dynamic metastability (MODEL.md §5.4; Geshkovski, Koubbi, Polyanskiy, Rigollet,
arXiv 2410.06833): post-LN (SA) flow with Q = K = V = I, large β, few tokens on the
circle (d = 2). The tokens first gather into a few tight clusters within t = O(1), then
the clusters sit still for times that grow like e^{β·gap} before merging pairwise: the
interaction energy E_β = (1/(2βn²)) Σ_ij e^{β⟨θ_i, θ_j⟩} (which SA never decreases)
rises as a staircase on a log time axis and the number of clusters (components of
⟨θ_i, θ_j⟩ ≥ 1 − δ) drops in steps. Energy is shown as E_β / E_max with
E_max = e^β/(2β), the energy of a single cluster; with k clusters of masses m_c it
is ≈ Σ_c m_c², so its plateaus sit near 1/k for equal clusters.
"""

import jax
import numpy as np
import xarray as xr

import particles

from ._common import pyplot, write_outputs

SCHEME = "post"
DELTA = 1e-3  # cluster threshold: ⟨θ_i, θ_j⟩ ≥ 1 − δ
SIZES = {
    "tiny": dict(n=8, d=2, beta=10.0, t1=1e3, saves=160, seeds=(0,)),
    "quick": dict(n=24, d=2, beta=10.0, t1=1e6, saves=600, seeds=(0, 1, 2, 3)),
    "full": dict(n=32, d=2, beta=12.0, t1=1e7, saves=1000, seeds=tuple(range(8))),
}


def trajectories(n, d, beta, t1, ts, seeds):
    """(energy, cluster count), each (seed, time), of the SA flow from uniform tokens."""
    energy, count = [], []
    with particles.precision("float64"):
        for seed in seeds:
            x0 = particles.init.uniform_sphere(jax.random.key(seed), n, d, dtype=np.float64)
            traj = particles.simulate(
                x0,
                SCHEME,
                beta=beta,
                t1=t1,
                ts=ts,
                dtype="float64",
                rtol=1e-8,
                atol=1e-10,
                max_steps=2_000_000,
            )
            energy.append(np.asarray(particles.analysis.energy(traj.theta, beta)))
            count.append(np.asarray(particles.analysis.cluster_count(traj.theta, DELTA)))
    return np.stack(energy), np.stack(count)


def run(out_dir, size):
    cfg = SIZES[size]
    n, d, beta, t1, seeds = cfg["n"], cfg["d"], cfg["beta"], cfg["t1"], cfg["seeds"]
    ts = np.concatenate([[0.0], np.geomspace(1e-2, t1, cfg["saves"] - 1)])
    energy, count = trajectories(n, d, beta, t1, ts, seeds)
    e_max = np.exp(beta) / (2 * beta)
    data = xr.Dataset(
        {
            "energy": (("seed", "t"), energy),
            "energy_normalized": (("seed", "t"), energy / e_max),
            "cluster_count": (("seed", "t"), count),
        },
        coords={"seed": list(seeds), "t": ts},
        attrs={"scheme": SCHEME, "n": n, "d": d, "beta": beta, "delta": DELTA, "weights": "Q = K = V = I"},
    )
    plt = pyplot()
    fig, (ax_e, ax_c) = plt.subplots(2, 1, figsize=(7.2, 6.4), sharex=True)
    colors = plt.cm.viridis(np.linspace(0.05, 0.85, len(seeds)))
    t_plot = ts[1:]  # log time axis: leave out t = 0
    for seed, e, c, color in zip(seeds, energy, count, colors):
        ax_e.plot(t_plot, e[1:] / e_max, color=color, lw=1.6, label=f"seed {seed}")
        ax_c.step(t_plot, c[1:], where="post", color=color, lw=1.6, label=f"seed {seed}")
    ax_e.set(
        xscale="log",
        ylabel=r"energy $E_\beta\,/\,E_{max}$,  $E_{max} = e^\beta/(2\beta)$",
        ylim=(0, 1.04),
        title=f"Metastability: post-LN (SA), Q = K = V = I, n = {n}, d = {d}, β = {beta:g}",
    )
    ax_c.set(
        xscale="log",
        yscale="log",
        xlabel="t (log scale)",
        ylabel=f"clusters (⟨θ_i, θ_j⟩ ≥ 1 − {DELTA:g})",
        xlim=(t_plot[0], t1),
    )
    ticks = [k for k in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32) if k <= n]
    ax_c.set_yticks(ticks, [str(k) for k in ticks])
    ax_c.minorticks_off()
    ax_c.set_xscale("log")
    for ax in (ax_e, ax_c):
        ax.grid(alpha=0.3)
    ax_e.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return write_outputs("metastability", out_dir, fig, data)
