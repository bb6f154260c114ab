"""Backward stability and curvature per placement (MODEL.md §9; issue 15): a random deep
transformer (Kaiming Q, K, V and GELU MLP per layer, one head, LayerNorm with γ = 1,
b = 0; nGPT with its own projection), tokens with i.i.d. N(0, 1) entries (|x_i| ≈ √d),
β = 1/√d, the loss a fixed random linear read-out of the output
(:func:`particles.sensitivity.random_readout`), residual steps h = 1 and h = 0.1:

(a) the hidden-state norm mean_i |x_l,i| against the layer l;
(b) the gradient norm |∂ℓ/∂x_l| (:func:`particles.sensitivity.layer_gradients`);
(c) the top Hessian eigenvalue of ℓ with respect to each sublayer's weights (Q, K, V,
    MLP, all layers), h = 1, on a shallower stack (:func:`particles.sensitivity.hessian_spectrum`);
(d) the top finite-time Lyapunov exponent of the ODE (identity weights, projection)
    against β (:func:`particles.sensitivity.lyapunov`).

Lines: the median over seeds (a fresh draw of tokens and weights each); bands: 10% to
90%. Mix-LN is post-LN for the first quarter of the depth. The claims checked (printed
on the figure, measured): Zhang et al. (arXiv 2510.09904) that Peri-LN keeps the
hidden-state growth linear or quadratic and the gradients stable where Pre-LN can grow
without bound; Petrov et al. (arXiv 2510.16927) that the V block of the Hessian is the
largest and the K, V blocks are far larger than the Q and MLP ones.
"""

import jax
import numpy as np
import xarray as xr

import particles
from particles import sensitivity

from ._common import pyplot, scheme_color, write_outputs

SCHEMES = ("post", "pre", "peri", "mix", "ngpt", "sqrt", "spannorm")
STEPS = (1.0, 0.1)
SUBLAYERS = ("Q", "K", "V", "mlp")
SIZES = {
    "tiny": dict(n=4, d=8, layers=4, seeds=2, schemes=("peri",), steps=(1.0,), h_layers=2, h_n=3, h_d=4,
                 ly_n=3, ly_d=3, ly_T=2.0, betas=(0.5, 2.0), ly_schemes=("post",), sublayers=("V",)),
    "quick": dict(n=16, d=32, layers=64, seeds=4, schemes=SCHEMES, steps=STEPS, h_layers=6, h_n=8, h_d=16,
                  ly_n=6, ly_d=6, ly_T=10.0, betas=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0), ly_schemes=SCHEMES, sublayers=SUBLAYERS),
    "full": dict(n=64, d=128, layers=512, seeds=16, schemes=SCHEMES, steps=STEPS, h_layers=16, h_n=32, h_d=64,
                 ly_n=16, ly_d=16, ly_T=20.0, betas=tuple(np.geomspace(0.1, 9, 10)), ly_schemes=SCHEMES, sublayers=SUBLAYERS),
}  # fmt: skip


def _transformer(scheme, seed, n, d, layers, h):
    """(x0, keyword arguments) of one draw: tokens N(0, 1) entries, Kaiming weights."""
    kx, kw = jax.random.split(jax.random.key(seed))
    w = particles.random_transformer(kw, d, layers=layers, mlp_width=2 * d)
    x0 = np.asarray(particles.init.gaussian(kx, n, d, scale=float(np.sqrt(d))))
    kw = dict(beta=1 / np.sqrt(d), t1=layers * h, layers=layers, **w)
    kw["norm"] = None if scheme == "ngpt" else "layernorm"
    if scheme == "mix":
        kw["tau"] = 0.25 * layers * h
    return x0, kw


def depth_profiles(scheme, h, cfg, loss):
    """(hidden norms, gradient norms), each (seeds, L + 1)."""
    hidden, grads = [], []
    for seed in range(cfg["seeds"]):
        x0, kw = _transformer(scheme, seed, cfg["n"], cfg["d"], cfg["layers"], h)
        hidden.append(np.mean(np.asarray(particles.simulate(x0, scheme, **kw).r), axis=-1))
        g = np.asarray(sensitivity.layer_gradients(x0, scheme, loss=loss, **kw))
        grads.append(np.sqrt(np.sum(g**2, axis=(-1, -2))))
    return np.stack(hidden), np.stack(grads)


def top_curvature(scheme, cfg, loss):
    """The top Hessian eigenvalue per sublayer: (seeds, len(sublayers))."""
    out = np.zeros((cfg["seeds"], len(cfg["sublayers"])))
    for seed in range(cfg["seeds"]):
        x0, kw = _transformer(scheme, 100 + seed, cfg["h_n"], cfg["h_d"], cfg["h_layers"], 1.0)
        for j, wrt in enumerate(cfg["sublayers"]):
            res = sensitivity.hessian_spectrum(x0, scheme, loss=loss, wrt=wrt, k=1, method="lanczos", **kw)
            out[seed, j] = float(res.eigenvalues[0])
    return out


def top_lyapunov(scheme, cfg):
    """The top exponent of the ODE (identity weights), (len(betas), seeds)."""
    n, d, T = cfg["ly_n"], cfg["ly_d"], cfg["ly_T"]
    x0 = np.asarray(particles.init.uniform_sphere(7, n, d, batch=(cfg["seeds"],)))
    beta = np.asarray(cfg["betas"])[:, None]
    params = {"tau": 0.25 * T} if scheme == "mix" else {}
    res = sensitivity.lyapunov(x0, scheme, beta=beta, t1=T, k=1, ts=np.arange(1.0, T), **params)
    return np.asarray(res.exponents)[..., 0]


def _band(ax, x, y, color, style="-", label=None):
    lo, mid, hi = np.quantile(y, [0.1, 0.5, 0.9], axis=0)
    ax.fill_between(x, lo, hi, color=color, alpha=0.15, lw=0)
    ax.plot(x, mid, style, color=color, lw=1.6, label=label)


def growth_exponent(hidden):
    """The slope p of log(median |x_l|) against log l over the deeper half (|x_l| ~ l^p)."""
    mid = np.median(hidden, axis=0)
    l = np.arange(len(mid))
    keep = l >= len(mid) // 2
    return float(np.polyfit(np.log(l[keep]), np.log(mid[keep]), 1)[0])


def findings(data) -> str:
    """The claims, measured."""
    lines = []
    for h in data.step.values:
        p = {s: growth_exponent(data.hidden_norm.sel(scheme=s, step=h).values) for s in data.scheme.values}
        ratio = {
            s: float(np.median(data.gradient_norm.sel(scheme=s, step=h).values[:, 0]))
            / float(np.median(data.gradient_norm.sel(scheme=s, step=h).values[:, -1]))
            for s in data.scheme.values
        }
        lines.append(
            f"h = {h:g}: |x_l| ~ l^p, p = " + ", ".join(f"{s} {p[s]:.2f}" for s in p)
            + ";  |dl/dx_0| / |dl/dx_L| = " + ", ".join(f"{s} {ratio[s]:.3g}" for s in ratio)
        )  # fmt: skip
    top = np.median(data.hessian_top.values, axis=1)  # (scheme, sublayer)
    order = [" > ".join(data.sublayer.values[np.argsort(-row)]) for row in top]
    lines.append(
        "top Hessian eigenvalue, median: " + "; ".join(f"{s} {o}" for s, o in zip(data.scheme.values, order))
    )
    return "\n".join(lines)


def _plot(data, cfg):
    plt = pyplot()
    fig, ax = plt.subplots(2, 2, figsize=(13, 9.5))
    l = data.layer.values
    for s in data.scheme.values:
        c = scheme_color(s)
        for h, style in zip(data.step.values, ("-", "--")):
            label = s if h == data.step.values[0] else None
            _band(ax[0, 0], l, data.hidden_norm.sel(scheme=s, step=h).values, c, style, label)
            _band(ax[0, 1], l, data.gradient_norm.sel(scheme=s, step=h).values, c, style, label)
    for a, name in ((ax[0, 0], "mean |x_l|"), (ax[0, 1], "|∂ℓ/∂x_l|")):
        a.set(yscale="log", xlabel="layer l", ylabel=name)
        a.grid(alpha=0.3)
    ax[0, 0].set_title(
        f"(a) hidden-state norm; solid h = {data.step.values[0]:g}, dashed h = {data.step.values[-1]:g}"
    )
    ax[0, 1].set_title("(b) gradient norm (random linear read-out)")
    ax[0, 0].legend(fontsize=8, ncol=2)
    schemes = list(data.scheme.values)
    sublayers = list(data.sublayer.values)
    width = 0.8 / len(sublayers)
    for j, wrt in enumerate(sublayers):
        vals = data.hessian_top.sel(sublayer=wrt).values  # (scheme, seed)
        mid = np.median(vals, axis=1)
        lo, hi = np.quantile(vals, 0.1, axis=1), np.quantile(vals, 0.9, axis=1)
        x = np.arange(len(schemes)) + (j - (len(sublayers) - 1) / 2) * width
        ax[1, 0].bar(x, np.abs(mid), width, label=wrt, yerr=[np.abs(mid) - np.minimum(np.abs(lo), np.abs(mid)), np.maximum(np.abs(hi), np.abs(mid)) - np.abs(mid)], capsize=2)  # fmt: skip
    ax[1, 0].set(yscale="log", xticks=np.arange(len(schemes)), xticklabels=schemes, ylabel="|top eigenvalue|")
    ax[1, 0].set_title(f"(c) top Hessian eigenvalue per sublayer (L = {cfg['h_layers']}, h = 1)")
    ax[1, 0].legend(fontsize=8)
    ax[1, 0].grid(alpha=0.3, axis="y")
    for s in data.ly_scheme.values:
        _band(
            ax[1, 1], data.beta.values, data.lyapunov_top.sel(ly_scheme=s).values.T, scheme_color(s), label=s
        )
    ax[1, 1].set(xscale="log", xlabel="β", ylabel="λ_1")
    ax[1, 1].set_xticks(data.beta.values, [f"{b:.3g}" for b in data.beta.values])
    ax[1, 1].minorticks_off()
    ax[1, 1].set_title(
        f"(d) top Lyapunov exponent of the ODE, n = {cfg['ly_n']}, d = {cfg['ly_d']}, T = {cfg['ly_T']:g}"
    )
    ax[1, 1].legend(fontsize=8, ncol=2)
    ax[1, 1].grid(alpha=0.3)
    fig.suptitle(
        f"Random deep transformer: n = {cfg['n']}, d = {cfg['d']}, L = {cfg['layers']}, Kaiming weights, "
        f"LayerNorm, GELU MLP; median and 10-90% band over {cfg['seeds']} seeds",
        fontsize=11,
    )
    fig.text(0.01, 0.005, findings(data), fontsize=7, ha="left", va="bottom", family="monospace")
    fig.tight_layout(rect=(0, 0.08, 1, 0.97))
    return fig


def run(out_dir, size):
    cfg = SIZES[size]
    schemes, steps = cfg["schemes"], cfg["steps"]
    loss = sensitivity.random_readout(1, cfg["n"], cfg["d"])
    h_loss = sensitivity.random_readout(2, cfg["h_n"], cfg["h_d"])
    profiles = [[depth_profiles(s, h, cfg, loss) for h in steps] for s in schemes]
    hidden = np.stack([[p[0] for p in row] for row in profiles])  # (scheme, step, seed, layer)
    grads = np.stack([[p[1] for p in row] for row in profiles])
    curvature = np.stack([top_curvature(s, cfg, h_loss) for s in schemes])  # (scheme, seed, sublayer)
    ly = np.stack([top_lyapunov(s, cfg) for s in cfg["ly_schemes"]])  # (ly_scheme, beta, seed)
    data = xr.Dataset(
        {
            "hidden_norm": (("scheme", "step", "seed", "layer"), hidden),
            "gradient_norm": (("scheme", "step", "seed", "layer"), grads),
            "hessian_top": (("scheme", "seed", "sublayer"), curvature),
            "lyapunov_top": (("ly_scheme", "beta", "seed"), ly),
        },
        coords={
            "scheme": list(schemes),
            "step": list(steps),
            "seed": np.arange(cfg["seeds"]),
            "layer": np.arange(cfg["layers"] + 1),
            "sublayer": list(cfg["sublayers"]),
            "ly_scheme": list(cfg["ly_schemes"]),
            "beta": np.asarray(cfg["betas"], float),
        },  # fmt: skip
        attrs={k: v for k, v in cfg.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
    )
    data.attrs["findings"] = findings(data)
    return write_outputs("stability", out_dir, _plot(data, cfg), data)
