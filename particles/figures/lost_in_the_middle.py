"""Lost in the middle (MODEL.md §11; Duerinckx, Geshkovski, Rossi, arXiv 2605.09213): n
tokens on the circle under USA attention with the positional prior
π_jk ∝ e^{−λ(j−k)/n}, k < j (:func:`particles.analysis.lost_in_the_middle_prior`),

    θ̇_j = β Σ_{k<j} π_jk e^{β cos(θ_k − θ_j)} sin(θ_k − θ_j)

(``particles.simulate(..., attention="usa", position=particles.PositionalPrior(π))`` at
time β t). How much the last token remembers the source at position k,
c_1(k, t) = E cos(θ_{n−1}(t) − θ_k(0)), from Monte Carlo over uniform starts against the
linear response [exp(a_1 t Π)]_{n−1,k}, a_1 = I_1(β) (leading order in 1/n); the paper's
continuum profile S_t(s) around its t_crit, where the right end's slope changes sign
(recency lost); and the trajectories of one run of n = 64 tokens at β = λ = 1.
"""

import numpy as np
import xarray as xr

import particles
from particles import analysis

from ._common import pyplot, write_outputs

BETA, LAM = 1.0, 1.0
SIZES = {
    "tiny": dict(n=16, runs=200, times=(0.5, 2.0), trajectory_n=16),
    "quick": dict(n=32, runs=20000, times=(0.25, 0.5, 1.0, 2.0), trajectory_n=64),
    "full": dict(n=64, runs=100000, times=(0.25, 0.5, 1.0, 2.0), trajectory_n=64),
}


def _uniform_starts(seed, runs, n):
    angles = np.random.default_rng(seed).uniform(0, 2 * np.pi, size=(runs, n))
    return np.stack([np.cos(angles), np.sin(angles)], axis=-1)


def monte_carlo(n, runs, times, seed=0):
    """c_1(k, t) over ``runs`` uniform starts (mean, standard error), shape (T, n)."""
    prior = analysis.lost_in_the_middle_prior(n, LAM)
    x0 = _uniform_starts(seed, runs, n)
    traj = particles.simulate(
        x0, "post", beta=BETA, t1=BETA * max(times), ts=[BETA * t for t in times], attention="usa",
        position=particles.PositionalPrior(prior), dtype="float64", rtol=1e-8, atol=1e-8,
    )  # fmt: skip
    return analysis.retrieval_profile(x0, np.asarray(traj.theta))


def trajectory(n, t1=4.0, seed=1):
    """The angles (T, n) of one run from uniform starts, unwrapped in time."""
    prior = analysis.lost_in_the_middle_prior(n, LAM)
    ts = np.linspace(0, t1, 161)
    traj = particles.simulate(
        _uniform_starts(seed, 1, n)[0], "post", beta=BETA, t1=BETA * t1, ts=BETA * ts, attention="usa",
        position=particles.PositionalPrior(prior), dtype="float64",
    )  # fmt: skip
    theta = np.asarray(traj.theta)
    return ts, np.unwrap(np.arctan2(theta[..., 1], theta[..., 0]), axis=0)


def run(out_dir, size):
    cfg = SIZES[size]
    n, times = cfg["n"], cfg["times"]
    profile = monte_carlo(n, cfg["runs"], times)
    prior = analysis.lost_in_the_middle_prior(n, LAM)
    linear = analysis.linear_response_profile(prior, np.asarray(times), BETA)
    t_crit = analysis.critical_time(beta=BETA, lam=LAM)
    s = np.linspace(0.02, 1.0, 99)
    t_cont = t_crit * np.array([0.5, 1.0, 1.5])
    continuum = analysis.continuum_profile(s, t_cont, beta=BETA, lam=LAM)
    ts, angles = trajectory(cfg["trajectory_n"])
    data = xr.Dataset(
        {
            "profile": (("time", "position"), profile.mean),
            "profile_stderr": (("time", "position"), profile.stderr),
            "linear_response": (("time", "position"), linear),
            "continuum": (("continuum_time", "s"), continuum),
            "angle": (("trajectory_time", "token"), angles),
        },
        coords={
            "time": list(times), "position": np.arange(n), "continuum_time": t_cont, "s": s,
            "trajectory_time": ts, "token": np.arange(angles.shape[1]),
        },
        attrs={"beta": BETA, "lam": LAM, "runs": cfg["runs"], "t_crit": t_crit, "model": "USA, positional prior, circle"},
    )  # fmt: skip
    return write_outputs("lost_in_the_middle", out_dir, _figure(data), data)


def _figure(data):
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    ax = axes[0]
    colors = plt.cm.viridis(np.linspace(0.1, 0.85, data.sizes["time"]))
    sources = data.isel(position=slice(None, -1))  # the last token's own start: c ≈ 1, off the scale
    k = sources.position.values
    for t, color in zip(data.time.values, colors):
        mc, err = sources.profile.sel(time=t), 2 * sources.profile_stderr.sel(time=t)
        ax.errorbar(k, mc, yerr=err, fmt="o", ms=3, color=color, label=f"t = {t:g}")
        ax.plot(k, sources.linear_response.sel(time=t), "-", color=color, lw=1.2)
    ax.set(xlabel=f"source position k (< n − 1 = {data.sizes['position'] - 1})", ylabel="c₁(k, t)")
    ax.set_title(
        f"E cos(θ_(n−1)(t) − θ_k(0)): Monte Carlo ({data.runs} runs, ±2 s.e.)\n"
        "and the linear response [exp(I₁(β) t Π)]_(n−1,k) (lines)",
        fontsize=10,
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax = axes[1]
    for t, color in zip(data.continuum_time.values, ("tab:blue", "k", "tab:red")):
        ax.plot(
            data.s,
            data.continuum.sel(continuum_time=t),
            color=color,
            label=f"t = {t / data.t_crit:.1f} t_crit",
        )
    ax.set(xlabel="relative position s", ylabel="S_t(s)", yscale="log")
    ax.set_title(
        f"The paper's continuum profile S_t(s)\nt_crit = {data.t_crit:.4f}: recency lost past it", fontsize=10
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax = axes[2]
    tokens = data.sizes["token"]
    colors = plt.cm.plasma(np.linspace(0, 0.9, tokens))
    for j in range(tokens):
        ax.plot(data.trajectory_time, data.angle.isel(token=j), color=colors[j], lw=0.8)
    ax.set(xlabel="t", ylabel="θ_j(t) (unwrapped)")
    ax.set_title(
        f"One run, n = {tokens}, β = λ = {BETA:g}\n(dark: first tokens; token 0 attends to no one)",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
