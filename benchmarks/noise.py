"""(f) The noisy flow at mean-field scale (MODEL.md §10): n = 8192 tokens in d = 3,
post, β = 1, noise D = 0.2, 20 constant Heun steps of h = 0.05, float32, one
trajectory. The n × n weights (2^26) exceed the dense limit, so the field runs in row
blocks of :func:`particles.auto_block_size` queries. Timed as a whole
`particles.simulate` call with noise (Brownian paths from a VirtualBrownianTree) and
with ``noise=0`` (the same Heun steps, no Brownian term), each the best of two calls
after a compiling one; time per step = call time / steps.
"""

import dataclasses

import diffrax
import jax.numpy as jnp
import numpy as np
from common import best_time

import particles


@dataclasses.dataclass(frozen=True)
class NoiseResult:
    n: int
    d: int
    beta: float
    noise: float
    step_size: float
    steps: int
    block_size: int
    sde_s: float  # one simulate call with noise
    ode_s: float  # the same call with noise=0
    sphere_error: float  # max over tokens of ||θ_i| − 1| at the end

    @property
    def sde_step_s(self) -> float:
        return self.sde_s / self.steps

    @property
    def ode_step_s(self) -> float:
        return self.ode_s / self.steps


def noise(n=8192, d=3, steps=20, beta=1.0, D=0.2, h=0.05) -> NoiseResult:
    x0 = particles.init.uniform_sphere(0, n, d, dtype=jnp.float32)
    t1 = steps * h
    kw = dict(beta=beta, t1=t1, ts=[t1], step_size=h, solver=diffrax.Heun(), dtype=jnp.float32)
    sde = lambda: particles.simulate(x0, "post", noise=D, key=0, **kw).theta
    sde_s = best_time(sde, repeat=2)
    ode_s = best_time(lambda: particles.simulate(x0, "post", **kw).theta, repeat=2)
    sphere_error = float(np.max(np.abs(np.linalg.norm(np.asarray(sde(), np.float64), axis=-1) - 1)))
    block = particles.auto_block_size(n)
    return NoiseResult(n, d, beta, D, h, steps, block, sde_s, ode_s, sphere_error)


# The report: its lines of RESULTS.md (report.py puts the sections together).


def target_lines(r: NoiseResult) -> list[str]:
    """Its row of the table of targets in RESULTS.md."""
    return [
        f"| noisy flow (SDE), n = {r.n} blockwise on the {'CPU' if r.block_size < r.n else 'device'} | "
        f"{r.sde_step_s:.3g} s per Heun step (blocks of {r.block_size}; {r.ode_step_s:.3g} s without noise) |"
    ]


def section_lines(r: NoiseResult) -> list[str]:
    """Section (f): the noisy flow at mean-field scale."""
    return [
        f"## (f) Noisy flow: n = {r.n}, d = {r.d}, post, beta = {r.beta:g}, D = {r.noise:g}, "
        f"{r.steps} Heun steps of h = {r.step_size:g}, float32",
        "",
        "| measured | time per step | whole call |",
        "|---|---|---|",
        f"| `particles.simulate` with noise (VirtualBrownianTree paths) | **{r.sde_step_s:.3g} s** | "
        f"{r.sde_s:.3g} s |",
        f"| the same with noise=0 (the ODE, same steps) | {r.ode_step_s:.3g} s | {r.ode_s:.3g} s |",
        "",
        f"The field runs in row blocks of {r.block_size} queries (`particles.auto_block_size`); after the "
        f"steps max ||θ_i| − 1| = {r.sphere_error:.1e}.",
    ]
