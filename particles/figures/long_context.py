"""Long context (MODEL.md §5.5; Rigollet, arXiv 2512.01868): one attention layer on
equiangular tokens (⟨θ_i, θ_j⟩ = ρ) at β = γ log n.

The self-weight is n^γ against (n−1) n^{γρ} for the others, so as n → ∞ the attention
outputs A_i of the layer (the Pre-LN update x ← x + A(N(x))) have pairwise cosine

    → 1                for γ < 1/(1−ρ)   (the others dominate: A_i → the common mean),
    → 4ρ/(1+3ρ)        at  γ = 1/(1−ρ)   (self-weight 1/2: A_i = (θ_i + mean)/2),
    → ρ                for γ > 1/(1−ρ)   (self dominates: A_i → θ_i).

The cosines are computed with the package's attention field on actual tokens.
"""

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

import particles

from ._common import pyplot, write_outputs

RHO = 0.5
SIZES = {
    "tiny": dict(ns=(16, 64), gammas=np.linspace(0.5, 4, 8)),
    "quick": dict(ns=(16, 64, 256, 1024, 2048), gammas=np.linspace(0.25, 4.5, 35)),
    "full": dict(ns=(16, 64, 256, 1024, 4096, 16384), gammas=np.linspace(0.25, 4.5, 69)),
}


def output_cosine(n: int, rho: float, betas) -> np.ndarray:
    """Mean pairwise cosine of the attention outputs A_i(Θ) for each β (one β at a time,
    so memory stays at one n × n weight matrix)."""
    theta = particles.init.equiangular(n, n + 1, rho)

    @jax.jit
    def cosines(theta, betas):
        def one(beta):
            A = particles.Attention(beta=beta, Q=None, K=None, V=None)(0.0, theta)
            return particles.analysis.mean_cosine(A / jnp.linalg.norm(A, axis=-1, keepdims=True))

        return jax.lax.map(one, betas)

    return np.asarray(cosines(theta, jnp.asarray(betas, theta.dtype)))


def run(out_dir, size):
    cfg = SIZES[size]
    ns, gammas = cfg["ns"], cfg["gammas"]
    cos = np.stack([output_cosine(n, RHO, gammas * np.log(n)) for n in ns])
    gamma_c = 1 / (1 - RHO)
    data = xr.Dataset(
        {"output_cosine": (("n", "gamma"), cos)},
        coords={"n": list(ns), "gamma": gammas},
        attrs={"rho": RHO, "gamma_critical": gamma_c, "limit_at_critical": 4 * RHO / (1 + 3 * RHO)},
    )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colors = plt.cm.viridis(np.linspace(0.1, 0.9, len(ns)))
    for n, c, color in zip(ns, cos, colors):
        ax.plot(gammas, c, color=color, lw=1.6, label=f"n = {n}")
    ax.hlines(1, gammas[0], gamma_c, colors="k", linestyles="--", lw=1.2, label="n → ∞ limit")
    ax.hlines(RHO, gamma_c, gammas[-1], colors="k", linestyles="--", lw=1.2)
    ax.plot([gamma_c], [4 * RHO / (1 + 3 * RHO)], "ko", ms=6, label=f"4ρ/(1+3ρ) at γ = 1/(1−ρ) = {gamma_c:g}")
    ax.set(
        xlabel="γ   (β = γ log n)",
        ylabel="cosine of attention outputs ⟨A_i, A_j⟩/|A|²",
        title=f"Long context: one attention layer, equiangular input ρ = {RHO:g}",
        ylim=(RHO - 0.05, 1.02),
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    return write_outputs("long_context", out_dir, fig, data)
