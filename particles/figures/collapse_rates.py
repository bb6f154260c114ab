"""Collapse times of every scheme from random starts: τ_δ against β and against n.

τ_δ is the first time every pair of tokens has ⟨θ_i, θ_j⟩ ≥ 1 − δ (MODEL.md §4), here
with δ = 1e−3 (the threshold of the phase diagram), from i.i.d. uniform tokens on
S^{d−1}, Q = K = V = I, d = 32, several seeds; the figure shows the median and the
10–90% spread over seeds. Post and nGPT collapse exponentially fast, √-scaling like
e^{−4√t}, Pre/Peri/Mix only polynomially (1 − ρ ~ C t^{−2}, so τ_δ ~ √(C/δ): tens to
hundreds of time units), SpanNorm not at all (MODEL.md §3). The runs go to t1 = 1000 so
that the polynomial schemes collapse within reach at moderate β; a median that has not
collapsed by t1 is drawn as a triangle above the dashed line t = t1.

"none" (no normalization) is left out: the radii grow without bound, the effective
temperature β r² with them, and the solve runs out of steps near t ≈ 45 (the collapse
time is then undefined rather than long).

The grid (scheme × n × β × seed) is one :func:`particles.sweep`, kept in a hidden store
in ``out_dir`` while it runs (an interrupted run resumes) and removed afterwards. The
full grid is stored in ``collapse_rates.nc``; the figure shows two slices of it.
"""

import numpy as np
import xarray as xr

import particles

from ._common import pyplot, scheme_color, sweep_store, write_outputs

SCHEMES = ("post", "ngpt", "sqrt", "mix", "pre", "peri", "spannorm")
DELTA = 1e-3
D = 32
SIZES = {
    "tiny": dict(
        schemes=("post", "pre"), ns=(16,), betas=(1.0, 4.0), seeds=3, t1=300.0, saves=120, n0=16, beta0=1.0
    ),
    "quick": dict(
        schemes=SCHEMES,
        ns=(8, 32, 128),
        betas=(0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0),
        seeds=16,
        t1=1000.0,
        saves=400,
        n0=32,
        beta0=1.0,
    ),
    "full": dict(
        schemes=SCHEMES,
        ns=(4, 8, 16, 32, 64, 128, 256, 512),
        betas=(0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0),
        seeds=128,
        t1=1000.0,
        saves=1000,
        n0=32,
        beta0=1.0,
    ),
}


def save_times(t1, count):
    """t = 0, then ``count`` geometrically spaced saves from 0.02 to t1: the same relative
    resolution (and interpolation error of τ) for fast and slow schemes."""
    return np.concatenate([[0.0], np.geomspace(0.02, t1, count)])


def summarize(tau):
    """Median, 10% and 90% quantiles over the last axis (seeds), inf where not collapsed
    by t1, and the fraction of seeds that collapsed."""
    tau = np.asarray(tau, dtype=float)
    q = np.quantile(tau, [0.5, 0.1, 0.9], axis=-1, method="nearest")
    return q[0], q[1], q[2], np.mean(np.isfinite(tau), axis=-1)


def format_table(median, schemes, labels, header, t1):
    """A plain-text table: one row per scheme, one column per label."""
    cells = [[(f"{v:8.2f}" if np.isfinite(v) else f">{t1:g}".rjust(8)) for v in row] for row in median]
    lines = [f"{header:<9}" + "".join(f"{lab:>9}" for lab in labels)]
    lines += [f"{s:<9}" + "".join(f"{c:>9}" for c in row) for s, row in zip(schemes, cells)]
    return "\n".join(lines)


def _panel(ax, x, tau_median, tau_lo, tau_hi, schemes, t1, logx):
    top = t1 * 1.8  # where "not collapsed by t1" is drawn
    width = np.log(x[-1] / x[0]) if logx else x[-1] - x[0]
    for k, scheme in enumerate(schemes):
        color = scheme_color(scheme)
        med, lo, hi = tau_median[k], tau_lo[k], np.minimum(tau_hi[k], top)
        ok = np.isfinite(med)
        ax.plot(x[ok], med[ok], "o-", color=color, lw=1.6, ms=4, label=scheme)
        ax.fill_between(
            x, np.where(np.isfinite(lo), lo, np.nan), hi, where=np.isfinite(lo), color=color, alpha=0.15
        )
        if np.any(~ok):  # medians that did not collapse by t1: triangles, spread a little sideways
            shift = (k - (len(schemes) - 1) / 2) * 0.012 * width
            xs = x[~ok] * np.exp(shift) if logx else x[~ok] + shift
            ax.plot(xs, np.full(xs.shape, top), "^", color=color, ms=7, mec="k", mew=0.5)
    ax.axhline(t1, color="k", ls="--", lw=1)
    ax.annotate(
        f"t1 = {t1:g}",
        (0.01, t1),
        xycoords=("axes fraction", "data"),
        xytext=(0, -11),
        textcoords="offset points",
        fontsize=8,
    )
    ax.set_yscale("log")
    ax.set_ylim(top=top * 1.6)
    ax.grid(alpha=0.3, which="both")


def _figure(cfg, schemes, ns, betas, t1, med, lo, hi):
    """Collapse time against β (at n0) and against n (at β0): median and 10–90% bands."""
    n0, beta0 = cfg["n0"], cfg["beta0"]
    i0, j0 = ns.index(n0), betas.index(beta0)
    plt = pyplot()
    fig, (ax_b, ax_n) = plt.subplots(1, 2, figsize=(11.5, 4.6), sharey=True)
    _panel(ax_b, np.asarray(betas), med[:, i0], lo[:, i0], hi[:, i0], schemes, t1, logx=False)
    ax_b.set(
        xlabel="inverse temperature β",
        ylabel=f"collapse time τ_δ (δ = {DELTA:g})",
        title=f"against β (n = {n0})",
    )
    _panel(ax_n, np.asarray(ns, float), med[:, :, j0], lo[:, :, j0], hi[:, :, j0], schemes, t1, logx=True)
    ax_n.set_xscale("log", base=2)
    ax_n.set_xticks(ns, [str(n) for n in ns])
    ax_n.minorticks_off()
    ax_n.set(xlabel="number of tokens n", title=f"against n (β = {beta0:g})")
    handles, labels = ax_b.get_legend_handles_labels()
    handles.append(plt.Line2D([], [], ls="", marker="^", color="0.6", mec="k", mew=0.5, ms=7))
    labels.append(f"median not collapsed by t1 = {t1:g}")
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=9)
    fig.suptitle(
        f"Collapse time from uniform random tokens (d = {D}, Q = K = V = I): median and 10–90% over "
        f"{cfg['seeds']} seeds",
        y=1.0,
    )
    fig.tight_layout()
    return fig


def run(out_dir, size):
    cfg = SIZES[size]
    schemes, ns, betas, t1 = list(cfg["schemes"]), list(cfg["ns"]), list(cfg["betas"]), cfg["t1"]
    with sweep_store(out_dir, "collapse_rates", size) as store:
        sw = particles.sweep(
            store,
            schemes=schemes,
            n=ns,
            d=D,
            beta=betas,
            seeds=cfg["seeds"],
            t1=t1,
            ts=save_times(t1, cfg["saves"]),
            observables=["min_cosine"],
            delta=DELTA,
            init="uniform",
            dtype="float32",
            progress=size != "tiny",
        )
        tau = sw["collapse_time"].astype(float).transpose("scheme", "n", "beta", "seed")
        med, lo, hi, frac = summarize(tau.values)
        dims = ("scheme", "n", "beta")
        n0, beta0 = cfg["n0"], cfg["beta0"]
        i0, j0 = ns.index(n0), betas.index(beta0)
        table_beta = format_table(med[:, i0, :], schemes, [f"{b:g}" for b in betas], "β →", t1)
        table_n = format_table(med[:, :, j0], schemes, [str(n) for n in ns], "n →", t1)
        table = (
            f"median collapse time tau_delta (delta = {DELTA:g}, d = {D}, uniform starts, {cfg['seeds']} seeds; "
            f">{t1:g}: most seeds not collapsed by t1)\n"
            f"n = {n0}, against beta:\n{table_beta}\n\nbeta = {beta0:g}, against n:\n{table_n}"
        )
        print(table)
        data = xr.Dataset(
            {
                "collapse_time": tau,
                "tau_median": (dims, med),
                "tau_q10": (dims, lo),
                "tau_q90": (dims, hi),
                "collapsed_fraction": (dims, frac),
            },
            coords={"scheme": schemes, "n": ns, "beta": betas, "seed": tau["seed"].values},
            attrs={
                "delta": DELTA,
                "d": D,
                "t1": t1,
                "init": "uniform on the sphere",
                "weights": "Q = K = V = I",
                "table": table,
                "note": "collapse_time is inf where the run did not collapse by t1; quantiles over seeds "
                "use the nearest sample (inf when more than that fraction did not collapse). The scheme "
                "'none' is left out: its radii grow without bound and the solve runs out of steps.",
            },
        )

        fig = _figure(cfg, schemes, ns, betas, t1, med, lo, hi)
        return write_outputs("collapse_rates", out_dir, fig, data)
