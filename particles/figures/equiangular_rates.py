"""Equiangular collapse rates (MODEL.md §3 and §5.3; Karagodin et al., arXiv 2510.22026):
the reduced model ρ(t) of n = 256 equiangular tokens at β = 5 from ρ0 = 0, for every
scheme, drawn as 1 − ρ(t), with the late-time rates fitted and set against the theory:

    post     1 − ρ ~ C e^{−2t}            (rate 2)
    pre      1 − ρ ~ C t^{−2}             (exponent 2; also peri and mix)
    ngpt     1 − ρ ~ C e^{−2αt}, α = 1    (rate 2)
    sqrt     1 − ρ ~ C e^{−4√(t+1)}       (rate 4 in the variable √(t+1))
    spannorm 1 − ρ → a positive limit     (no collapse)

Computed in float64 (1 − ρ reaches 1e-10). Each fit uses the saves where
1e-10 < 1 − ρ < 1e-3 (late time, above the integrator's error), its later half.
"""

import numpy as np
import xarray as xr

import particles

from ._common import pyplot, scheme_color, write_outputs

N, BETA, RHO0 = 256, 5.0, 0.0
TAU = 2.5  # Mix-LN switches from post to pre at t = τ (as in schemes_random_weights)
ALPHA = 1.0  # nGPT step scale
PARAMS = {"mix": {"tau": TAU}, "ngpt": {"alpha": ALPHA}}
GAP_HI, GAP_LO = 1e-3, 1e-10  # fit window on 1 − ρ
SCHEMES = ("post", "pre", "peri", "mix", "ngpt", "sqrt", "spannorm")
# scheme -> (law, quantity fitted, theory value); LAW_TEX: the law as drawn in the table
THEORY = {
    "post": ("C exp(-2t)", "rate", 2.0),
    "pre": ("C t^-2", "exponent", 2.0),
    "peri": ("C t^-2", "exponent", 2.0),
    "mix": ("C t^-2", "exponent", 2.0),
    "ngpt": (f"C exp(-2 alpha t), alpha = {ALPHA:g}", "rate", 2 * ALPHA),
    "sqrt": ("C exp(-4 sqrt(t+1))", "rate in √(t+1)", 4.0),
    "spannorm": ("positive limit", "limit of 1 − ρ", np.nan),
}
LAW_TEX = {
    "post": r"$C\,e^{-2t}$",
    "pre": r"$C\,t^{-2}$",
    "peri": r"$C\,t^{-2}$",
    "mix": r"$C\,t^{-2}$",
    "ngpt": rf"$C\,e^{{-2\alpha t}}$, $\alpha = {ALPHA:g}$",
    "sqrt": r"$C\,e^{-4\sqrt{t+1}}$",
    "spannorm": "positive limit",
}
SIZES = {
    "tiny": dict(t1=3e3, saves=240, schemes=("post", "pre")),
    "quick": dict(t1=2e4, saves=600, schemes=SCHEMES),
    "full": dict(t1=1e5, saves=1500, schemes=SCHEMES),
}


def fit(scheme, ts, rho):
    """(fitted value, R² exponential, R² power, best, t window) of one scheme's tail."""
    gap = 1 - rho
    quantity = THEORY[scheme][1]
    if quantity.startswith("limit"):
        return float(gap[-1]), np.nan, np.nan, "limit", (float(ts[-1]), float(ts[-1]))
    w = (gap < GAP_HI) & (gap > GAP_LO) & (ts > 0)
    if w.sum() < 4:
        return np.nan, np.nan, np.nan, "too few points", (np.nan, np.nan)
    t_fit, rho_fit = ts[w], rho[w]
    x = np.sqrt(t_fit + 1) if quantity == "rate in √(t+1)" else t_fit
    res = particles.analysis.fit_collapse_rate(x, rho_fit, tail=0.5)
    value = float(res.exponent if quantity == "exponent" else res.rate)
    half = t_fit[len(t_fit) - max(round(0.5 * len(t_fit)), 2) :]
    return value, float(res.r2_exponential), float(res.r2_power), res.best, (float(half[0]), float(half[-1]))


def _num(x):
    return f"{x:.0f}" if x >= 100 else f"{x:.3g}"


def run(out_dir, size):
    cfg = SIZES[size]
    schemes = cfg["schemes"]
    ts = np.concatenate([[0.0], np.geomspace(1e-2, cfg["t1"], cfg["saves"] - 1)])
    with particles.precision("float64"):
        sols = [
            particles.equiangular.solve(s, n=N, beta=BETA, rho0=RHO0, ts=ts, **PARAMS.get(s, {}))
            for s in schemes
        ]
        rho = np.stack([np.asarray(s[0], np.float64) for s in sols])
        r = np.stack([np.asarray(s[1], np.float64) for s in sols])
        fits = [fit(s, ts, rh) for s, rh in zip(schemes, rho)]

    value, r2e, r2p, best, window = (np.array(col) for col in zip(*fits))
    data = xr.Dataset(
        {
            "rho": (("scheme", "t"), rho),
            "r": (("scheme", "t"), r),
            "fitted": ("scheme", value.astype(float)),
            "theory": ("scheme", np.array([THEORY[s][2] for s in schemes])),
            "quantity": ("scheme", np.array([THEORY[s][1] for s in schemes], dtype=str)),
            "law": ("scheme", np.array([THEORY[s][0] for s in schemes], dtype=str)),
            "r2_exponential": ("scheme", r2e.astype(float)),
            "r2_power": ("scheme", r2p.astype(float)),
            "best": ("scheme", best.astype(str)),
            "fit_t_start": ("scheme", window[:, 0].astype(float)),
            "fit_t_end": ("scheme", window[:, 1].astype(float)),
        },
        coords={"scheme": list(schemes), "t": ts},
        attrs={"n": N, "beta": BETA, "rho0": RHO0, "mix_tau": TAU, "ngpt_alpha": ALPHA, "dtype": "float64"},
    )

    plt = pyplot()
    fig = plt.figure(figsize=(12, 7.6))
    grid = fig.add_gridspec(2, 2, height_ratios=(3, 1.25), hspace=0.25, wspace=0.22)
    _plot_curves(fig, grid, schemes, ts, rho, window)
    _fit_table(fig, grid, schemes, value, window, r2e, r2p, best)
    return write_outputs("equiangular_rates", out_dir, fig, data)


def _plot_curves(fig, grid, schemes, ts, rho, window):
    """1 − ρ(t) of every scheme on log-linear and log-log axes, with each theoretical
    law drawn over its fit window."""
    ax_lin, ax_log = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    gap = np.where(1 - rho > 1e-13, 1 - rho, np.nan)
    for s, g in zip(schemes, gap):
        label = {"mix": f"mix (τ = {TAU:g})", "ngpt": f"ngpt (α = {ALPHA:g})"}.get(s, s)
        for ax in (ax_lin, ax_log):
            ax.plot(ts, g, color=scheme_color(s), lw=1.8, label=label)
    for i, s in enumerate(schemes):  # the theoretical law through the fit window's midpoint
        t_a, t_b = window[i]
        if not np.isfinite(t_a) or t_a == t_b:
            continue
        tt = np.geomspace(t_a, t_b, 50)
        t_m = np.sqrt(t_a * t_b)
        g_m = np.interp(t_m, ts, gap[i])
        quantity, k = THEORY[s][1], THEORY[s][2]
        if quantity == "exponent":
            law = g_m * (tt / t_m) ** -k
        elif quantity == "rate":
            law = g_m * np.exp(-k * (tt - t_m))
        else:
            law = g_m * np.exp(-k * (np.sqrt(tt + 1) - np.sqrt(t_m + 1)))
        for ax in (ax_lin, ax_log):
            ax.plot(tt, law, "k:", lw=2.2, label="theory law over the fit window" if i == 0 else None)
    t_lin = min(40.0, float(ts[-1]))
    ax_lin.set(xlim=(0, t_lin), yscale="log", ylim=(1e-12, 2), xlabel="t", ylabel="1 − ρ(t)")
    ax_lin.set_title("log-linear: exponential collapse is a straight line", fontsize=10)
    ax_log.set(xscale="log", yscale="log", xlim=(1e-2, ts[-1]), ylim=(1e-12, 2), xlabel="t (log scale)")
    ax_log.set_title("log-log: power-law collapse is a straight line", fontsize=10)
    for ax in (ax_lin, ax_log):
        ax.grid(alpha=0.3, which="both")
    ax_lin.legend(fontsize=8, loc="lower left")
    fig.suptitle(
        f"Equiangular reduced model (MODEL.md §3): n = {N}, β = {BETA:g}, ρ0 = {RHO0:g}, float64", fontsize=12
    )


def _fit_table(fig, grid, schemes, value, window, r2e, r2p, best):
    """The table of theoretical and fitted late-time laws under the curves."""
    ax_tab = fig.add_subplot(grid[1, :])
    ax_tab.axis("off")
    rows = []
    for i, s in enumerate(schemes):
        law, quantity, k = THEORY[s]
        fitted = f"{value[i]:.3g}" if np.isfinite(value[i]) else "—"
        span = f"[{_num(window[i][0])}, {_num(window[i][1])}]" if np.isfinite(window[i][0]) else "—"
        r2 = f"{r2e[i]:.4f} / {r2p[i]:.4f}" if np.isfinite(r2e[i]) else "—"
        rows.append([s, LAW_TEX[s], quantity, "> 0" if np.isnan(k) else f"{k:g}", fitted, span, r2, best[i]])
    table = ax_tab.table(
        cellText=rows,
        colLabels=[
            "scheme",
            "theory 1 − ρ ~",
            "quantity",
            "theory",
            "fitted",
            "fit window t",
            "R² exp / pow",
            "best fit",
        ],
        loc="center",
        cellLoc="center",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8.5)
    table.scale(1, 1.25)
    for (row, col), cell in table.get_celld().items():
        if row > 0 and col == 0:
            cell.get_text().set_color(scheme_color(schemes[row - 1]))
