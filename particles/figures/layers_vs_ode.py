"""Discrete layers against their ODE (MODEL.md §7).

(a) Projection norm, attention only: the error at t = T of L layers against the ODE
    solved at tight tolerance, for every scheme; first order means a slope of −1.
(b) A random deep transformer (L = 48 layers, h = 1; Kaiming Q, K, V per layer, LayerNorm
    with γ ~ 1 + 0.1 N(0, 1), b ~ 0.1 N(0, 1) per layer, a Kaiming GELU MLP of width 4d):
    the mean cosine of its tokens after each layer, for pre, post and peri, against the
    idealised ODE with the same attention weights (one draw per unit time, projection
    norm, no MLP) run on x/√d at β·d (LayerNorm keeps tokens at norm ≈ √d, so in those
    units a layer is a unit step of the idealised flow). Median and 10-90% band over seeds.
(c) Pre-LN hidden-state growth: mean |x_l| against depth, for the transformer of (b)
    and for the ODE (which predicts r ~ t); Karagodin et al. (arXiv 2510.22026) report
    growth closer to √t in trained models.
"""

import numpy as np
import xarray as xr

import particles

from ._common import pyplot, scheme_color, write_outputs

SCHEMES = ("post", "pre", "peri", "mix", "ngpt", "sqrt", "none", "spannorm")
DEEP = ("pre", "post", "peri")
SIZES = {
    "tiny": dict(Ls=(8, 16, 32), n=6, d=4, seeds=3, depth=12, deep_n=8, deep_d=16),
    "quick": dict(Ls=(8, 16, 32, 64, 128, 256), n=8, d=6, seeds=16, depth=48, deep_n=32, deep_d=64),
    "full": dict(
        Ls=(8, 16, 32, 64, 128, 256, 512, 1024), n=16, d=8, seeds=64, depth=48, deep_n=128, deep_d=256
    ),
}
BETA, T = 1.5, 2.0


def convergence(Ls, n, d):
    """Max error at t = T of L layers against the ODE (projection norm, attention only),
    (scheme, L); the start is Gaussian tokens (on the sphere for post-type schemes)."""
    x0 = np.asarray(particles.init.gaussian(3, n, d, scale=1.5, dtype=np.float64))
    errors = np.empty((len(SCHEMES), len(Ls)))
    for i, scheme in enumerate(SCHEMES):
        x = (
            x0 / np.linalg.norm(x0, axis=-1, keepdims=True)
            if scheme in ("post", "ngpt", "sqrt", "mix")
            else x0
        )
        kw = dict(beta=BETA, t1=T, ts=[T], dtype=np.float64, **({"tau": 0.75} if scheme == "mix" else {}))
        ode = np.asarray(particles.simulate(x, scheme, rtol=1e-12, atol=1e-12, **kw).x[-1])
        for j, L in enumerate(Ls):
            errors[i, j] = np.max(
                np.abs(np.asarray(particles.simulate(x, scheme, layers=L, **kw).x[-1]) - ode)
            )
    return errors


def deep_transformer(depth, n, d, seeds):
    """Mean cosine and mean radius after each layer (scheme, kind, seed, layer) for the
    random transformer ("layers") and the idealised ODE with the same attention ("ode")."""
    rng = np.random.default_rng(7)
    weights = particles.random_transformer(11, d, layers=depth, heads=1, mlp_width=4 * d)
    gamma = 1 + 0.1 * rng.normal(size=(depth, d))
    bias = 0.1 * rng.normal(size=(depth, d))
    x0 = particles.init.gaussian(0, n, d, scale=float(np.sqrt(d)), batch=seeds)  # embeddings of norm ≈ √d
    beta = 1 / np.sqrt(d)  # logits of order 1 for tokens of norm √d after LayerNorm
    ts = np.arange(depth + 1.0)
    cos = np.empty((len(DEEP), 2, seeds, depth + 1))
    radius = np.empty_like(cos)
    att = {k: weights[k] for k in ("Q", "K", "V")}
    for i, scheme in enumerate(DEEP):
        real = particles.simulate(
            x0, scheme, beta=beta, t1=float(depth), layers=depth, norm="layernorm", gamma=gamma, bias=bias,
            mlp=weights["mlp"], **att,
        )  # fmt: skip
        # LayerNorm puts tokens at norm ≈ √d: in units of √d the layers are steps of the
        # idealised flow of x/√d at β d (module docstring), so the ODE runs on x0/√d
        ode = particles.simulate(x0 / np.sqrt(d), scheme, beta=beta * d, t1=float(depth), ts=ts, **att)
        for k, (traj, unit) in enumerate(((real, 1.0), (ode, np.sqrt(d)))):
            cos[i, k] = np.asarray(particles.analysis.mean_cosine(traj.theta))
            radius[i, k] = unit * np.asarray(traj.r).mean(-1)
    return cos, radius


def run(out_dir, size):
    cfg = SIZES[size]
    with particles.precision("float64"):
        errors = convergence(cfg["Ls"], cfg["n"], cfg["d"])
    cos, radius = deep_transformer(cfg["depth"], cfg["deep_n"], cfg["deep_d"], cfg["seeds"])
    Ls = np.asarray(cfg["Ls"])
    slopes = -np.polyfit(np.log(Ls), np.log(errors.T), 1)[0]
    data = xr.Dataset(
        {
            "error": (("scheme", "L"), errors),
            "slope": ("scheme", slopes),
            "mean_cosine": (("deep_scheme", "kind", "seed", "layer"), cos),
            "mean_radius": (("deep_scheme", "kind", "seed", "layer"), radius),
        },
        coords={
            "scheme": list(SCHEMES),
            "L": Ls,
            "deep_scheme": list(DEEP),
            "kind": ["layers", "ode"],
            "layer": np.arange(cfg["depth"] + 1),
        },  # fmt: skip
        attrs={"beta": BETA, "T": T, "depth": cfg["depth"], "n": cfg["deep_n"], "d": cfg["deep_d"]},
    )
    return write_outputs("layers_vs_ode", out_dir, _plot(data), data)


def _band(ax, x, values, color, label, style="-"):
    lo, mid, hi = np.percentile(values, [10, 50, 90], axis=0)
    ax.plot(x, mid, style, color=color, lw=1.8, label=label)
    ax.fill_between(x, lo, hi, color=color, alpha=0.15, lw=0)


def _cosine_panel(ax_cos, data, layer):
    """(b) mean cosine against depth: LayerNorm + MLP layers against the idealised ODE."""
    for s in data["deep_scheme"].values:
        c = scheme_color(s)
        _band(
            ax_cos,
            layer,
            data["mean_cosine"].sel(deep_scheme=s, kind="layers").values,
            c,
            f"{s}: LayerNorm + MLP layers",
        )
        _band(
            ax_cos,
            layer,
            data["mean_cosine"].sel(deep_scheme=s, kind="ode").values,
            c,
            f"{s}: idealised ODE",
            "--",
        )
    ax_cos.set(xlabel="layer l (t = l)", ylabel="mean cosine ρ̄", ylim=(-0.05, 1.05))
    ax_cos.set_title(
        f"(b) random {data.attrs['depth']}-layer transformer, n = {data.attrs['n']}, d = {data.attrs['d']}",
        fontsize=10,
    )
    ax_cos.legend(fontsize=7.5)


def _radius_panel(ax_r, data, layer):
    """(c) the Pre-LN hidden-state norm against depth, with t and √t guides."""
    c = scheme_color("pre")
    _band(
        ax_r,
        layer[1:],
        data["mean_radius"].sel(deep_scheme="pre", kind="layers").values[:, 1:],
        c,
        "Pre-LN layers (LayerNorm + MLP)",
    )
    _band(
        ax_r,
        layer[1:],
        data["mean_radius"].sel(deep_scheme="pre", kind="ode").values[:, 1:],
        "gray",
        "idealised ODE",
        "--",
    )
    r_end = float(np.median(data["mean_radius"].sel(deep_scheme="pre", kind="layers").values[:, -1]))
    tt = layer[1:].astype(float)
    ax_r.loglog(tt, r_end * tt / tt[-1], "k:", lw=1.2, label="∝ t")
    ax_r.loglog(tt, r_end * np.sqrt(tt / tt[-1]), "k-.", lw=1.2, label="∝ √t")
    ax_r.set(xlabel="layer l", ylabel="mean |x_l|")
    ax_r.set_title("(c) Pre-LN hidden-state norm against depth", fontsize=10)
    ax_r.legend(fontsize=7.5)


def _plot(data):
    plt = pyplot()
    fig, (ax_err, ax_cos, ax_r) = plt.subplots(1, 3, figsize=(16, 4.8))
    Ls = data["L"].values
    for s in data["scheme"].values:
        e = data["error"].sel(scheme=s).values
        ax_err.loglog(
            Ls, e, "o-", color=scheme_color(s), label=f"{s} (slope {float(data['slope'].sel(scheme=s)):.2f})"
        )
    ref = data["error"].values.max() * (Ls / Ls[0]) ** -1.0
    ax_err.loglog(Ls, ref, "k:", lw=1.5, label="slope −1 (first order)")
    ax_err.set(xlabel="layers L (step h = T/L)", ylabel="max |x_L − x_ODE(T)|")
    ax_err.set_title(
        f"(a) layers → ODE, projection norm, attention only (T = {data.attrs['T']:g})", fontsize=10
    )
    ax_err.legend(fontsize=7.5, ncol=2)
    layer = data["layer"].values
    _cosine_panel(ax_cos, data, layer)
    _radius_panel(ax_r, data, layer)
    for ax in (ax_err, ax_cos, ax_r):
        ax.grid(alpha=0.3, which="both")
    fig.suptitle(
        "Discrete transformer layers and the ODE (MODEL.md §7); bands: 10-90% over seeds", fontsize=12
    )
    fig.tight_layout()
    return fig
