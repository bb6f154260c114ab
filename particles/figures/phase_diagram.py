"""Phase diagram (MODEL.md §5.1; Geshkovski et al., arXiv 2312.10794): SA (post), n = 32
i.i.d. uniform tokens on S^{d−1}, d ∈ {8, 128, 1024}.

Colour: the probability that a pair of tokens is within δ = 1e−3 at time t,
P(⟨x_i(t), x_j(t)⟩ ≥ 1 − δ), estimated by the pair density averaged over the pairs of
each run and over seeds, on a (t, β) grid. Overlaid: the equiangular curve β*(t), the
largest β for which the reduced model of §3 started from ρ0 = 0 has ρ(t) ≥ 1 − δ.
Tokens drawn in high dimension are nearly orthogonal, so as d grows the random runs
behave like the equiangular one and the transition sharpens onto the curve.

The grid is one :func:`particles.sweep` over (d, β, seed), kept in a hidden store in
``out_dir`` while it runs (an interrupted run resumes) and removed afterwards.
"""

import numpy as np
import xarray as xr

import particles

from ._common import pyplot, sweep_store, write_outputs

N = 32
DELTA = 1e-3
T1 = 30.0
BETA_RANGE = (0.1, 9.0)
SIZES = {
    "tiny": dict(ds=(8, 128), betas=4, seeds=2, save_every=1.0),
    "quick": dict(ds=(8, 128, 1024), betas=24, seeds=16, save_every=0.5),
    "full": dict(ds=(8, 128, 1024), betas=90, seeds=64, save_every=0.1),
}


def equiangular_curve(ts, betas=np.linspace(*BETA_RANGE, 400), delta=DELTA, n=N):
    """β*(t): for each t the largest β with ρ(t) ≥ 1 − δ in the reduced post model from
    ρ0 = 0 (linearly interpolated between the β grid points); NaN where no β of the grid
    has collapsed yet, the top of the grid where all have."""
    rho, _ = particles.equiangular.solve("post", n=n, beta=np.asarray(betas), rho0=0.0, ts=ts)
    rho = np.asarray(rho)  # (beta, time)
    level = 1 - delta
    out = np.full(len(ts), np.nan)
    for k in range(len(ts)):
        above = np.flatnonzero(rho[:, k] >= level)
        if above.size == 0:
            continue
        i = above[-1]
        if i == len(betas) - 1:
            out[k] = betas[-1]
            continue
        # rho(beta) decreases through the level between betas[i] and betas[i + 1]
        lo, hi = rho[i, k], rho[i + 1, k]
        frac = (lo - level) / (lo - hi) if lo > hi else 0.0
        out[k] = betas[i] + frac * (betas[i + 1] - betas[i])
    return out


def _figure(data, ts, betas, t_fine, curve, seeds):
    """One panel per d: P(pair within δ) over (t, β), the equiangular curve on top."""
    plt = pyplot()
    ds_ = data["d"].values
    fig, axes = plt.subplots(1, len(ds_), figsize=(4.2 * len(ds_) + 1.2, 4.2), sharey=True, squeeze=False)
    axes = axes[0]
    for ax, d in zip(axes, ds_):
        prob = data["pair_probability"].sel(d=d).values  # (beta, time)
        mesh = ax.pcolormesh(ts, betas, prob, vmin=0, vmax=1, cmap="viridis", shading="nearest")
        ax.plot(t_fine, curve, color="white", lw=2.2)
        ax.plot(t_fine, curve, color="#d62728", lw=1.3, ls="--", label="equiangular model (ρ0 = 0)")
        ax.set(title=f"d = {d}", xlabel="time t", xlim=(0, T1), ylim=BETA_RANGE)
    axes[0].set_ylabel("inverse temperature β")
    axes[0].legend(loc="upper left", fontsize=8, framealpha=0.9)
    bar = fig.colorbar(mesh, ax=list(axes), fraction=0.025, pad=0.02)
    bar.set_label(f"P(⟨x_i(t), x_j(t)⟩ ≥ {1 - DELTA:g})")
    fig.suptitle(
        f"Phase diagram of SA (post-LN), n = {N} uniform tokens, {seeds} seeds per β",
        y=1.02,
    )
    return fig


def run(out_dir, size):
    cfg = SIZES[size]
    betas = np.linspace(*BETA_RANGE, cfg["betas"])
    with sweep_store(out_dir, "phase_diagram", size) as store:
        sw = particles.sweep(
            store,
            schemes="post",
            n=N,
            d=list(cfg["ds"]),
            beta=betas,
            seeds=cfg["seeds"],
            t1=T1,
            save_every=cfg["save_every"],
            observables=["pair_density"],
            delta=DELTA,
            init="uniform",
            dtype="float32",
            progress=size != "tiny",
        )
        density = sw["pair_density"].astype(float)  # (d, beta, seed, time)
        ts = sw["time"].values.astype(float)
        t_fine = np.linspace(0, T1, 601)
        curve = equiangular_curve(t_fine)
        data = xr.Dataset(
            {
                "pair_probability": density.mean("seed"),
                "pair_density": density,
                "equiangular_beta": (("t_curve",), curve),
            },
            coords={"d": sw["d"].values, "beta": betas, "time": ts, "t_curve": t_fine},
            attrs={
                "scheme": "post",
                "n": N,
                "delta": DELTA,
                "init": "uniform on the sphere",
                "seeds": cfg["seeds"],
                "description": "pair_probability: fraction of pairs (and seeds) with <x_i, x_j> >= 1 - delta; "
                "equiangular_beta: largest beta with rho(t) >= 1 - delta in the reduced model, rho0 = 0",
            },
        )
        data["pair_probability"].attrs["long_name"] = "P(<x_i(t), x_j(t)> >= 1 - delta)"
        prob = data["pair_probability"]
        data["transition_width"] = np.minimum(prob, 1 - prob).mean(("beta", "time"))
        data["transition_width"].attrs["long_name"] = (
            "mean of min(P, 1 - P) over the grid (0: a sharp transition)"
        )
        print(
            "transition width mean min(P, 1-P) by d:",
            dict(zip(sw["d"].values.tolist(), data["transition_width"].values.round(4).tolist())),
        )

        fig = _figure(data, ts, betas, t_fine, curve, cfg["seeds"])
        return write_outputs("phase_diagram", out_dir, fig, data)
