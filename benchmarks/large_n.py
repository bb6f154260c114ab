"""(c) Large n: one Tsit5 step in a subprocess, its peak resident memory (ru_maxrss)."""

import dataclasses
import os
import subprocess
import sys

import jax

import particles

SCRIPT = """
import resource, time, numpy as np, jax, jax.numpy as jnp, particles
x0 = particles.init.uniform_sphere(0, {n}, {d}, dtype=jnp.float32)
start = time.perf_counter()
traj = particles.simulate(x0, "post", beta=4.0, t1={h}, ts=[{h}], step_size={h})
total = time.perf_counter() - start
start = time.perf_counter()
particles.simulate(x0, "post", beta=4.0, t1={h}, ts=[{h}], step_size={h})
again = time.perf_counter() - start
stats = jax.local_devices()[0].memory_stats() or {{}}
print(total, traj.stats["wall_time"], again, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
      stats.get("peak_bytes_in_use", -1))
"""


@dataclasses.dataclass(frozen=True)
class LargeNResult:
    n: int
    d: int
    h: float
    block_size: int  # the automatic block of the symmetric pairs
    peak_rss_gb: float  # the subprocess's ru_maxrss
    peak_device_gb: float | None  # memory_stats' peak on an accelerator, else None
    solve_s: float  # the solve including its compilation (the trajectory's wall_time)
    call_s: float  # the whole first simulate call
    second_s: float  # the second simulate call
    flops: int  # matmul flops of the step: 6 field evaluations of 4n²d

    @property
    def peak_gb(self) -> float:
        """The peak that counts against the target: the device's where there is one."""
        return self.peak_rss_gb if self.peak_device_gb is None else self.peak_device_gb


def large_n(n=32768, d=64, h=0.01) -> LargeNResult:
    script = SCRIPT.format(n=n, d=d, h=h)
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false")  # a GPU's peak, not its pool
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    total, solve, again, maxrss_kb, device_peak = (float(v) for v in out.stdout.split()[-5:])
    on_device = jax.default_backend() != "cpu" and device_peak >= 0
    return LargeNResult(
        n=n,
        d=d,
        h=h,
        block_size=particles.auto_block_size(n, symmetric=True),
        peak_rss_gb=maxrss_kb * 1024 / 1e9,
        peak_device_gb=device_peak / 1e9 if on_device else None,
        solve_s=solve,
        call_s=total,
        second_s=again,
        flops=6 * 4 * n * n * d,
    )


# The report: its lines of RESULTS.md (report.py puts the sections together).


def section_lines(r: LargeNResult) -> list[str]:
    on_device = r.peak_device_gb is not None
    device_col = f"| {r.peak_device_gb:.2f} GB " if on_device else ""
    return [
        f"## (c) Large n: n={r.n}, d={r.d}, one Tsit5 step h={r.h} (6 field evaluations), float32",
        "",
        f"Blockwise attention, symmetric pairs of blocks of {r.block_size} tokens (automatic). A dense n x n "
        f"float32 matrix alone would be {r.n * r.n * 4 / 1e9:.1f} GB.",
        "",
        "| peak resident memory (subprocess ru_maxrss) "
        + ("| peak device memory (memory_stats) " if on_device else "")
        + "| solve incl. compile (s) | simulate call (s) | second call (s) | effective GFLOP/s, second call |",
        "|---|---|---|---|---|" + ("---|" if on_device else ""),
        f"| **{r.peak_rss_gb:.2f} GB** {device_col}| {r.solve_s:.1f} | {r.call_s:.1f} | {r.second_s:.2f} | "
        f"{r.flops / r.second_s / 1e9:.0f} |",
    ]


def target_lines(r: LargeNResult) -> list[str]:
    """Its row of the table of targets in RESULTS.md."""
    return [f"| n=32768, d=64 under 6 GB | {r.peak_gb:.2f} GB at n={r.n}, d={r.d} |"]
