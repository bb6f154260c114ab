"""(f) Sensitivity: the cost of differentiating through the solve, as ratios.

- `particles.sensitivity.lyapunov` with k = 8 (Benettin QR, 101 save times) on one
  trajectory of the ensemble's problem (SA/post, n = 32, d = 128, beta = 4, T = 30,
  float32) against the plain `particles.simulate` of that trajectory: as called by
  default (which solves in the span of the initial tokens, n x n numbers) and with
  reduce_span=False (R^{n x d}, the space the tangents live in).
- `particles.sensitivity.layer_gradients` (every ∂ℓ/∂x_l, one reverse pass, each layer
  checkpointed) of the (e) transformer (Pre-LN, L = 256, n = 256, d = 128, LayerNorm,
  GELU MLP m = 4d) against its forward pass (`particles.simulate` of the layers), the
  peak resident memory (ru_maxrss) of a subprocess running each, and the temporary
  buffers XLA assigns to the compiled programs (`memory_analysis`): the chain of layers
  alone, its gradients with every layer checkpointed, and without checkpoints.
"""

import dataclasses
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
from common import best_time

import particles
from particles import sensitivity

SCRIPT = """
import resource, numpy as np, jax, jax.numpy as jnp, particles
from particles import sensitivity
L, n, d = {layers}, {n}, {d}
w = particles.random_transformer(0, d, layers=L, mlp_width=4 * d, dtype=jnp.float32)
x0 = np.asarray(particles.init.gaussian(0, n, d, scale=float(np.sqrt(d)), dtype=jnp.float32))
kw = dict(beta=1 / np.sqrt(d), t1=float(L), layers=L, norm="layernorm", **w)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if {gradients}:
    loss = sensitivity.random_readout(1, n, d, dtype=jnp.float32)
    jax.block_until_ready(sensitivity.layer_gradients(x0, "pre", loss=loss, **kw))
else:
    jax.block_until_ready(particles.simulate(x0, "pre", **kw).theta)
print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@dataclasses.dataclass(frozen=True)
class SensitivityResult:
    n: int
    d: int
    T: float
    k: int
    solve_s: float  # simulate, default (span-reduced)
    solve_ambient_s: float  # simulate, reduce_span=False
    lyapunov_s: float
    layers: int
    layers_n: int
    layers_d: int
    forward_s: float
    gradients_s: float
    forward_peak_gb: float
    gradients_peak_gb: float
    baseline_gb: float  # the processes' peak before the call (imports, weights)
    forward_temp_mb: float  # XLA's temporary buffers: the chain of layers
    gradients_temp_mb: float  # ... layer_gradients, every layer checkpointed
    unchecked_temp_mb: float  # ... layer_gradients(checkpoint=False)

    @property
    def lyapunov_ratio(self) -> float:
        return self.lyapunov_s / self.solve_s

    @property
    def lyapunov_ambient_ratio(self) -> float:
        return self.lyapunov_s / self.solve_ambient_s

    @property
    def gradients_ratio(self) -> float:
        return self.gradients_s / self.forward_s


def _peak_gb(layers, n, d, gradients) -> tuple[float, float]:
    """(peak before the call, peak after it) of a process running it, in GB."""
    script = SCRIPT.format(layers=layers, n=n, d=d, gradients=gradients)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=os.environ
    )
    before, after = (float(v) * 1024 / 1e9 for v in out.stdout.split()[-2:])
    return before, after


def compiled_memory(x, lkw, loss) -> tuple[float, float, float]:
    """XLA's temporary buffers (MB) for the forward chain of layers, layer_gradients
    with every layer checkpointed, and without checkpoints."""
    b = sensitivity.layer_gradients_memory(x, "pre", loss=loss, **lkw)
    return b["forward"] / 1e6, b["checkpointed"] / 1e6, b["stored"] / 1e6


def sensitivity_costs(n=32, d=128, T=30.0, k=8, layers=256, layers_n=256, layers_d=128) -> SensitivityResult:
    x0 = np.asarray(particles.init.uniform_sphere(0, n, d, dtype=jnp.float32))
    kw = dict(beta=4.0, t1=T)
    solve_s = best_time(lambda: particles.simulate(x0, "post", **kw).theta)
    ambient_s = best_time(lambda: particles.simulate(x0, "post", reduce_span=False, **kw).theta)
    lyapunov_s = best_time(lambda: sensitivity.lyapunov(x0, "post", k=k, method="qr", **kw).exponents)
    w = particles.random_transformer(0, layers_d, layers=layers, mlp_width=4 * layers_d, dtype=jnp.float32)
    x = np.asarray(
        particles.init.gaussian(0, layers_n, layers_d, scale=float(np.sqrt(layers_d)), dtype=jnp.float32)
    )
    lkw = dict(beta=1 / np.sqrt(layers_d), t1=float(layers), layers=layers, norm="layernorm", **w)
    loss = sensitivity.random_readout(1, layers_n, layers_d, dtype=jnp.float32)
    forward_s = best_time(lambda: particles.simulate(x, "pre", **lkw).theta)
    gradients_s = best_time(lambda: sensitivity.layer_gradients(x, "pre", loss=loss, **lkw))
    base, forward_peak = _peak_gb(layers, layers_n, layers_d, False)
    base_g, gradients_peak = _peak_gb(layers, layers_n, layers_d, True)
    temps = compiled_memory(x, lkw, loss)
    return SensitivityResult(
        n, d, T, k, solve_s, ambient_s, lyapunov_s, layers, layers_n, layers_d, forward_s, gradients_s,
        forward_peak, gradients_peak, max(base, base_g), *temps,
    )  # fmt: skip


# The report: its lines of RESULTS.md (report.py puts the sections together).


def target_lines(r: SensitivityResult) -> list[str]:
    return [
        f"| lyapunov k = {r.k} (n = {r.n}, d = {r.d}, T = {r.T:g}) <= 10x the plain solve | "
        f"{r.lyapunov_ratio:.1f}x the default solve, {r.lyapunov_ambient_ratio:.1f}x the solve in R^(n x d) |",
        f"| layer_gradients of {r.layers} layers (n = {r.layers_n}) <= 4x the forward pass | "
        f"{r.gradients_ratio:.1f}x; XLA temporaries {r.gradients_temp_mb:.0f} MB checkpointed, "
        f"{r.unchecked_temp_mb:.0f} MB without (forward {r.forward_temp_mb:.0f} MB) |",
    ]


def section_lines(r: SensitivityResult) -> list[str]:
    """Section (g): the cost of differentiating through the solve."""
    return [
        f"## (g) Sensitivity: Lyapunov exponents (n = {r.n}, d = {r.d}, T = {r.T:g}, k = {r.k}) and layer "
        f"gradients ({r.layers} layers, n = {r.layers_n}, d = {r.layers_d})",
        "",
        "| measured | time | ratio |",
        "|---|---|---|",
        f"| plain `particles.simulate` (solved in the span of the tokens) | {r.solve_s * 1e3:.1f} ms | 1 |",
        f"| `particles.simulate(reduce_span=False)` (in R^(n x d)) | {r.solve_ambient_s * 1e3:.1f} ms | "
        f"{r.solve_ambient_s / r.solve_s:.1f}x |",
        f"| `sensitivity.lyapunov(k={r.k}, method='qr')` | {r.lyapunov_s * 1e3:.1f} ms | {r.lyapunov_ratio:.1f}x |",
        f"| forward pass of the layers (`particles.simulate`) | {r.forward_s * 1e3:.1f} ms | 1 |",
        f"| `sensitivity.layer_gradients` (every layer checkpointed) | {r.gradients_s * 1e3:.1f} ms | "
        f"{r.gradients_ratio:.1f}x |",
        "",
        f"Peak resident memory of a process running each (ru_maxrss): forward {r.forward_peak_gb:.2f} GB, "
        f"layer_gradients {r.gradients_peak_gb:.2f} GB ({r.baseline_gb:.2f} GB before the call: imports, weights). "
        f"Temporary buffers XLA assigns to the compiled programs (`memory_analysis`): the forward chain "
        f"{r.forward_temp_mb:.1f} MB, layer_gradients {r.gradients_temp_mb:.1f} MB with every layer checkpointed, "
        f"{r.unchecked_temp_mb:.1f} MB without checkpoints.",
    ]
