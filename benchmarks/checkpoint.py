"""(j) A trained model's layers: a GPT-2-shaped checkpoint (12 layers, d = 768, 12 heads,
MLP 3072; a 1024-token vocabulary instead of 50257, which changes only the file size),
written here as safetensors with random weights, loaded with `particles.from_checkpoint`
and run on 128 tokens, against the matmul rate measured alongside.

The flops counted are a real forward pass's matmuls per layer: the fused Q, K, V
projection 2n·d·3d, logits and mixing 2·2n²d (over the heads), the output projection
2nd², the MLP 2·2n·d·4d. Timed as `particles.integrate` of the problem (the compiled
scan) and as a whole `particles.simulate` call; the load as the best of three.
"""

import dataclasses
import json
import pathlib
import tempfile
import time

import jax.numpy as jnp
import numpy as np
import safetensors.numpy
from common import ForwardRates, MatmulClock, time_layer_stack

import particles


@dataclasses.dataclass(frozen=True)
class CheckpointResult(ForwardRates):
    layers: int
    d: int
    n: int
    megabytes: float
    load_s: float
    flops: float
    scan_s: float
    simulate_s: float
    matmul_rate: float


def forward_flops(layers, n, d, m):
    """Matmul flops of a forward pass (module docstring)."""
    return layers * (6 * n * d * d + 4 * n * n * d + 2 * n * d * d + 4 * n * d * m)


def write_gpt2(folder: pathlib.Path, layers: int, d: int, heads: int, vocab: int, positions: int) -> int:
    """A GPT-2-layout checkpoint with random weights (0.02 N(0, 1), as GPT-2's init);
    returns its size in bytes."""
    rng = np.random.default_rng(0)
    normal = lambda *shape: (0.02 * rng.standard_normal(shape)).astype(np.float32)  # noqa: E731
    tensors = {"wte.weight": normal(vocab, d), "wpe.weight": normal(positions, d)}
    for layer in range(layers):
        p = f"h.{layer}."
        tensors |= {
            p + "ln_1.weight": 1 + normal(d), p + "ln_1.bias": normal(d),
            p + "attn.c_attn.weight": normal(d, 3 * d), p + "attn.c_attn.bias": normal(3 * d),
            p + "attn.c_proj.weight": normal(d, d), p + "attn.c_proj.bias": normal(d),
            p + "ln_2.weight": 1 + normal(d), p + "ln_2.bias": normal(d),
            p + "mlp.c_fc.weight": normal(d, 4 * d), p + "mlp.c_fc.bias": normal(4 * d),
            p + "mlp.c_proj.weight": normal(4 * d, d), p + "mlp.c_proj.bias": normal(d),
        }  # fmt: skip
    tensors |= {"ln_f.weight": 1 + normal(d), "ln_f.bias": normal(d)}
    config = dict(model_type="gpt2", n_embd=d, n_layer=layers, n_head=heads, n_positions=positions,
                  vocab_size=vocab, layer_norm_epsilon=1e-5, activation_function="gelu_new")  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    safetensors.numpy.save_file(tensors, folder / "model.safetensors")
    return (folder / "model.safetensors").stat().st_size


def checkpoint_bench(clock: MatmulClock, layers=12, d=768, heads=12, n=128, vocab=1024) -> CheckpointResult:
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        size = write_gpt2(folder, layers, d, heads, vocab, max(n, 1024))
        loads = []
        for _ in range(3):
            start = time.perf_counter()
            tf = particles.from_checkpoint(folder, dtype=jnp.float32)
            loads.append(time.perf_counter() - start)
    x0 = tf.embed(np.arange(n) % vocab)
    scan_s, simulate_s, rate = time_layer_stack(clock, x0, tf, float(layers))
    flops = forward_flops(layers, n, d, 4 * d)
    return CheckpointResult(layers, d, n, size / 2**20, min(loads), flops, scan_s, simulate_s, rate)


# The report: its lines of RESULTS.md (report.py puts the sections together).


def target_lines(r: CheckpointResult) -> list[str]:
    """Its row of the table of targets in RESULTS.md."""
    return [
        f"| A GPT-2-shaped checkpoint ({r.layers} layers, d = {r.d}) loaded and run on {r.n} tokens | "
        f"load {r.load_s:.2f} s ({r.megabytes:.0f} MiB); the forward pass at {r.scan_fraction:.0%} of matmul "
        f"({r.simulate_fraction:.0%} for a whole simulate call) |"
    ]


def section_lines(r: CheckpointResult) -> list[str]:
    """Section (j): a trained model's layers."""
    return [
        f"## (j) A GPT-2-shaped checkpoint: {r.layers} layers, d = {r.d}, {r.n} tokens",
        "",
        "| measured | time | fraction of the matmul rate |",
        "|---|---|---|",
        f"| `particles.from_checkpoint` ({r.megabytes:.0f} MiB of safetensors) | {r.load_s:.2f} s | |",
        f"| the compiled layer scan (`particles.integrate`) | {r.scan_s * 1e3:.1f} ms | {r.scan_fraction:.0%} |",
        f"| a whole `particles.simulate` call (argument checks included) | {r.simulate_s * 1e3:.1f} ms | "
        f"{r.simulate_fraction:.0%} |",
        "",
        f"{r.flops / 1e9:.2f} GFLOP of matmuls (a forward pass's Q, K, V, logits, mixing, output, MLP); "
        f"matmul rate measured in alternation with the scan: {r.matmul_rate / 1e9:.0f} GFLOP/s.",
    ]
