"""(e) Discrete layers: a deep Pre-LN transformer with LayerNorm and an MLP, as a
fraction of the matmul rate measured alongside it.

L layers (default 256) on n = 256 tokens in d = 128, one head, Kaiming Q, K, V per
layer, LayerNorm with per-layer γ, b, a GELU MLP of width m = 4d, float32. The flops
counted are those of the matmuls: Q, K, V projections 3·2nd², logits 2n²d, mixing
2n²d, MLP 2·2ndm per layer. Timed as `particles.integrate` of the problem (the
compiled scan alone) and as a whole `particles.simulate` call (with its checks).
"""

import dataclasses

import jax.numpy as jnp
import numpy as np
from common import ForwardRates, MatmulClock, time_layer_stack

import particles


@dataclasses.dataclass(frozen=True)
class LayersResult(ForwardRates):
    layers: int
    n: int
    d: int
    mlp_width: int
    flops: float
    scan_s: float
    simulate_s: float
    matmul_rate: float


def transformer_flops(layers, n, d, m):
    """Matmul flops of the stack (module docstring)."""
    return layers * (6 * n * d * d + 4 * n * n * d + 4 * n * d * m)


def layers(clock: MatmulClock, layers=256, n=256, d=128) -> LayersResult:
    m = 4 * d
    rng = np.random.default_rng(0)
    weights = particles.random_transformer(0, d, layers=layers, mlp_width=m, dtype=jnp.float32)
    gamma = (1 + 0.1 * rng.normal(size=(layers, d))).astype(np.float32)
    bias = (0.1 * rng.normal(size=(layers, d))).astype(np.float32)
    x0 = np.asarray(particles.init.gaussian(0, n, d, scale=float(np.sqrt(d)), dtype=jnp.float32))
    kw = dict(
        beta=1 / np.sqrt(d),
        t1=float(layers),
        layers=layers,
        norm="layernorm",
        gamma=gamma,
        bias=bias,
        **weights,
    )
    scan_s, simulate_s, rate = time_layer_stack(clock, x0, "pre", float(layers), **kw)
    return LayersResult(layers, n, d, m, transformer_flops(layers, n, d, m), scan_s, simulate_s, rate)


# The report: its lines of RESULTS.md (report.py puts the sections together).


def target_lines(r: LayersResult) -> list[str]:
    """Its row of the table of targets in RESULTS.md."""
    return [
        f"| {r.layers}-layer Pre-LN transformer (n = {r.n}, d = {r.d}, LayerNorm, MLP m = {r.mlp_width}) "
        f">= 70% of matmul | {r.scan_fraction:.0%} (the compiled scan; {r.simulate_fraction:.0%} for a whole "
        "simulate call) |"
    ]


def section_lines(r: LayersResult) -> list[str]:
    """Section (e): the discrete-layer transformer."""
    return [
        f"## (e) Discrete layers: Pre-LN transformer, {r.layers} layers, n = {r.n}, d = {r.d}, "
        f"LayerNorm, GELU MLP m = {r.mlp_width}",
        "",
        "| measured | time | fraction of the matmul rate |",
        "|---|---|---|",
        f"| the compiled layer scan (`particles.integrate`) | {r.scan_s * 1e3:.1f} ms | {r.scan_fraction:.0%} |",
        f"| a whole `particles.simulate` call (argument checks included) | {r.simulate_s * 1e3:.1f} ms | "
        f"{r.simulate_fraction:.0%} |",
        "",
        f"{r.flops / 1e9:.1f} GFLOP of matmuls (Q, K, V, logits, mixing, MLP); matmul rate measured in "
        f"alternation with the scan: {r.matmul_rate / 1e9:.0f} GFLOP/s.",
    ]
