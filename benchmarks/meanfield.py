"""(i) The mean-field PDE (MODEL.md §12) against particles on the same problem: the
circle, SA (post), β = 10, D = 0.01, t ∈ [0, 50], n = 4096 tokens drawn from
ρ0 = 1 + 0.5 cos θ, float64; the PDE starts from their (heat-smoothed) empirical measure.

- `particles.meanfield.solve` with 512 Fourier modes, integrating-factor Dormand–Prince
  (the diffusion exact), rtol = 1e-6, atol = 1e-8 in the density's L² norm: wall time
  (best of two calls after a compiling one) and accepted steps; the same with
  ``method="explicit"`` (Dormand–Prince on the whole right-hand side), which the
  diffusion D K² makes stiff: the reason for the integrating factor, measured.
- `particles.simulate` with the tokens, the Stratonovich SDE with noise D, Heun with
  constant steps h = 0.05 (one Brownian path): wall time of the second call.
- Agreement: max over the 11 saves of |r_PDE − r_particles| (r = |mean θ_i|), next to
  the finite-n scale 1/√n; and r at t = 50 of the PDE from the smooth ρ0 itself, which
  lacks the tokens' sampling fluctuations (they seed the faster modes k ≈ √(2β): several
  clusters instead of one).
"""

import dataclasses
import time

import diffrax
import jax
import numpy as np
from common import best_time

import particles
from particles import meanfield


@dataclasses.dataclass(frozen=True)
class MeanFieldResult:
    modes: int
    n: int
    beta: float
    noise: float
    t1: float
    pde_s: float
    pde_steps: int
    explicit_s: float
    explicit_steps: int
    particles_s: float
    step_size: float
    order_gap: float  # max_t |r_PDE − r_particles|
    final_order: tuple[float, float, float]  # (PDE, particles, PDE from the smooth ρ0) at t1


def _tokens(n, seed=0):
    """n angles from ρ0 = 1 + 0.5 cos θ (rejection sampling) as (n, 2) tokens."""
    rng, out = np.random.default_rng(seed), np.empty(0)
    while out.size < n:
        th, u = rng.uniform(0, 2 * np.pi, n), rng.uniform(0, 1.5, n)
        out = np.concatenate([out, th[u < 1 + 0.5 * np.cos(th)]])
    return np.stack([np.cos(out[:n]), np.sin(out[:n])], 1)


def meanfield_bench(modes=512, n=4096, beta=10.0, D=0.01, t1=50.0, h=0.05) -> MeanFieldResult:
    ts = np.linspace(0, t1, 11)
    with particles.precision("float64"):
        kw = dict(beta=beta, t1=t1, ts=ts, noise=D, modes=modes, rtol=1e-6, atol=1e-8)
        x0 = _tokens(n)
        pde = meanfield.solve(x0, **kw)
        pde_s = best_time(lambda: meanfield.solve(x0, **kw).rho, repeat=2)
        explicit = meanfield.solve(x0, method="explicit", **kw)
        start = time.perf_counter()
        jax.block_until_ready(meanfield.solve(x0, method="explicit", **kw).rho)
        explicit_s = time.perf_counter() - start
        smooth = meanfield.solve(lambda th: 1 + 0.5 * np.cos(th), **kw).order[-1]
        run = lambda: (
            particles.simulate(
                x0, "post", beta=beta, t1=t1, ts=ts, noise=D, key=0, step_size=h, solver=diffrax.Heun()
            ).theta
        )
        theta = np.asarray(run())  # compiles
        start = time.perf_counter()
        jax.block_until_ready(run())
        particles_s = time.perf_counter() - start
    r = np.linalg.norm(theta.mean(axis=1), axis=-1)
    gap = float(np.max(np.abs(r - pde.order)))
    return MeanFieldResult(
        modes, n, beta, D, t1, pde_s, pde.steps, explicit_s, explicit.steps, particles_s, h, gap,
        (float(pde.order[-1]), float(r[-1]), float(smooth)),
    )  # fmt: skip


# The report: its lines of RESULTS.md (report.py puts the sections together).


def target_lines(r: MeanFieldResult) -> list[str]:
    """Its row of the table of targets in RESULTS.md."""
    return [
        f"| mean-field PDE, {r.modes} modes, SA β = {r.beta:g}, D = {r.noise:g}, t ≤ {r.t1:g} | "
        f"{r.pde_s:.3g} s, {r.pde_steps} steps (explicit: {r.explicit_steps} steps); particles n = {r.n}: "
        f"{r.particles_s:.3g} s; max Δr = {r.order_gap:.3g} |"
    ]


def section_lines(r: MeanFieldResult) -> list[str]:
    """Section (i): the mean-field PDE against particles."""
    return [
        f"## (i) Mean field: the circle, SA (post), β = {r.beta:g}, D = {r.noise:g}, t ∈ [0, {r.t1:g}], "
        f"n = {r.n} tokens from 1 + 0.5 cos θ (the PDE from their empirical measure), float64",
        "",
        "| solve | wall time | steps |",
        "|---|---|---|",
        f"| `meanfield.solve`, {r.modes} modes, integrating factor | **{r.pde_s:.3g} s** | {r.pde_steps} |",
        f'| the same, `method="explicit"` (diffusion in the explicit step) | {r.explicit_s:.3g} s | '
        f"{r.explicit_steps} |",
        f"| `particles.simulate`, n = {r.n}, SDE, Heun h = {r.step_size:g} | {r.particles_s:.3g} s | "
        f"{round(r.t1 / r.step_size)} |",
        "",
        f"Order parameter r: max over the saves |r_PDE − r_particles| = {r.order_gap:.3g} "
        f"(1/√n = {1 / np.sqrt(r.n):.3g}); at t = {r.t1:g}: PDE {r.final_order[0]:.4f}, "
        f"particles {r.final_order[1]:.4f}; the PDE from the smooth 1 + 0.5 cos θ instead: "
        f"{r.final_order[2]:.4f} (one cluster: the tokens' sampling noise seeds several).",
    ]
