"""Block-size scan of the attention field: the data behind the automatic block sizes.

    python benchmarks/blocks.py [--n 2048 4096 ...] [--blocks 256 512 ...] [--matmul-n N]

For each n (d = 128, float32, one trajectory, Q = K = V = I) it times one field
evaluation on the symmetric pairs of blocks and on row blocks at each block size, and
the dense field where it fits, and prints the effective rate 4n²d / time against the
jnp.dot rate at full float32 precision (what the field uses) and at JAX's default
precision (TF32 on recent NVIDIA GPUs).
"""

import argparse

import jax
import jax.numpy as jnp
from run import best_time, field_evaluation

from particles import PRECISION, auto_block_size


def matmul(n, precision):
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    dot = jax.jit(lambda x: jnp.dot(x, x, precision=precision))
    return 2 * n**3 / best_time(lambda: dot(a), repeat=5)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[2048, 4096, 8192])
    p.add_argument("--d", type=int, default=128)
    p.add_argument("--blocks", type=int, nargs="+", default=[256, 512, 1024, 2048])
    p.add_argument("--dense-max", type=int, default=8192, help="largest n timed dense")
    p.add_argument("--matmul-n", type=int, default=2048)
    args = p.parse_args()
    full = matmul(args.matmul_n, PRECISION)
    default = matmul(args.matmul_n, None)
    print(
        f"{jax.devices()[0].device_kind}: jnp.dot {args.matmul_n}² float32 {full / 1e9:.0f} GFLOP/s at "
        f"HIGHEST precision, {default / 1e9:.0f} at the default"
    )
    print("| n | path | block | automatic | ms per evaluation | effective GFLOP/s | / matmul (HIGHEST) |")
    print("|---|---|---|---|---|---|---|")
    for n in args.n:
        flops = 4 * n * n * args.d
        runs = [("dense", n, False)] if n <= args.dense_max else []
        runs += [(path, b, path == "pairs") for b in args.blocks if b < n for path in ("pairs", "rows")]
        for path, block, symmetric in runs:
            auto = auto_block_size(n, symmetric=True) == block and path in ("pairs", "dense")
            t = best_time(field_evaluation(n, args.d, block, symmetric), repeat=5)
            print(
                f"| {n} | {path} | {block} | {'yes' if auto else ''} | {t * 1e3:.2f} | {flops / t / 1e9:.0f} | "
                f"{flops / t / full:.0%} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
