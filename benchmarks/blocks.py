"""Block-size scan of the attention field: the data behind the automatic block sizes.

    python benchmarks/blocks.py [--n 2048 4096 ...] [--blocks 256 512 ...] [--matmul-n N]

For each n (d = 128, float32, one trajectory, Q = K = V = I) it times one field
evaluation on the symmetric pairs of blocks and on row blocks at each block size, and
the dense field where it fits, and prints the effective rate 4n²d / time against the
jnp.dot rate at full float32 precision (what the field uses) and at JAX's default
precision (TF32 on recent NVIDIA GPUs).
"""

import argparse
import dataclasses

import jax
import jax.numpy as jnp
from common import best_time
from throughput import field_evaluation

from particles import PRECISION, auto_block_size


@dataclasses.dataclass(frozen=True)
class BlockTiming:
    n: int
    path: str  # "dense", "pairs" (symmetric pairs of blocks) or "rows" (row blocks)
    block: int
    automatic: bool  # the block size simulate picks for this n
    time_s: float  # per evaluation
    flops: int  # nominal, 4n²d


@dataclasses.dataclass(frozen=True)
class BlockScan:
    device_kind: str
    d: int
    matmul_n: int
    full_rate: float  # jnp.dot FLOP/s at full float32 precision (particles.PRECISION)
    default_rate: float  # jnp.dot FLOP/s at JAX's default precision
    timings: tuple[BlockTiming, ...]


def matmul(n, precision):
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    dot = jax.jit(lambda x: jnp.dot(x, x, precision=precision))
    return 2 * n**3 / best_time(lambda: dot(a), repeat=5)


def scan(ns=(2048, 4096, 8192), d=128, blocks=(256, 512, 1024, 2048), dense_max=8192, matmul_n=2048):
    full = matmul(matmul_n, PRECISION)
    default = matmul(matmul_n, None)
    timings = []
    for n in ns:
        runs = [("dense", n, False)] if n <= dense_max else []
        runs += [(path, b, path == "pairs") for b in blocks if b < n for path in ("pairs", "rows")]
        for path, block, symmetric in runs:
            auto = auto_block_size(n, symmetric=True) == block and path in ("pairs", "dense")
            t = best_time(field_evaluation(n, d, block, symmetric), repeat=5)
            timings.append(BlockTiming(n, path, block, auto, t, 4 * n * n * d))
    return BlockScan(jax.devices()[0].device_kind, d, matmul_n, full, default, tuple(timings))


def block_scan_lines(r: BlockScan) -> list[str]:
    """What `python benchmarks/blocks.py` prints (not part of RESULTS.md)."""
    return [
        f"{r.device_kind}: jnp.dot {r.matmul_n}² float32 {r.full_rate / 1e9:.0f} GFLOP/s at "
        f"HIGHEST precision, {r.default_rate / 1e9:.0f} at the default",
        "| n | path | block | automatic | ms per evaluation | effective GFLOP/s | / matmul (HIGHEST) |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {t.n} | {t.path} | {t.block} | {'yes' if t.automatic else ''} | {t.time_s * 1e3:.2f} | "
            f"{t.flops / t.time_s / 1e9:.0f} | {t.flops / t.time_s / r.full_rate:.0%} |"
            for t in r.timings
        ),
    ]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[2048, 4096, 8192])
    p.add_argument("--d", type=int, default=128)
    p.add_argument("--blocks", type=int, nargs="+", default=[256, 512, 1024, 2048])
    p.add_argument("--dense-max", type=int, default=8192, help="largest n timed dense")
    p.add_argument("--matmul-n", type=int, default=2048)
    args = p.parse_args()
    result = scan(args.n, args.d, args.blocks, args.dense_max, args.matmul_n)
    print("\n".join(block_scan_lines(result)))


if __name__ == "__main__":
    main()
