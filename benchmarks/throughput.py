"""(b) Field throughput for large n as a fraction of the jnp.dot rate."""

import dataclasses

import jax
import jax.numpy as jnp
from common import MatmulClock

import particles
from particles.sphere import tangent_projection

# Rounds of the throughput timings: the best of 5 has come out ~15% slow when another
# tenant's load hit a whole round (2026-11-23, n = 2048: 78% against 92-94% in other runs).
ROUNDS = 9


@dataclasses.dataclass(frozen=True)
class Case:
    """A field to time: ``n`` tokens, ``block`` tokens per block (None: automatic), and
    the path: "auto" (what simulate does for Q = K = V = I) or "rows" (row blocks, the
    path for general Q, K, V, forced here on identity weights)."""

    n: int
    block: int | None
    path: str
    position: str | None = None  # "alibi", "rope": the same field with that position part


POSITIONS = {"alibi": lambda: particles.ALiBi(), "rope": lambda: particles.RoPE()}


@dataclasses.dataclass(frozen=True)
class FieldTiming:
    n: int
    block_size: int  # tokens per block as computed (n or more: dense)
    automatic: bool  # block size chosen by `particles.auto_block_size`
    symmetric: bool  # symmetric pairs of blocks (else row blocks, or dense)
    time_s: float  # per evaluation
    matmul_rate: float  # FLOP/s, measured in alternation with the field
    nominal_flops: int  # 4n²d
    executed_flops: int
    position: str | None = None

    @property
    def fraction(self) -> float:
        """Effective rate (nominal flops / time) over the matmul rate."""
        return self.nominal_flops / self.time_s / self.matmul_rate


@dataclasses.dataclass(frozen=True)
class ThroughputResult:
    d: int
    beta: float
    matmul_n: int
    rounds: int
    timings: tuple[FieldTiming, ...]

    @property
    def min_automatic_fraction(self) -> float:
        """The least effective / matmul over the automatic symmetric fields (NaN if none)."""
        fractions = [t.fraction for t in self.timings if t.automatic and t.symmetric and t.position is None]
        return min(fractions) if fractions else float("nan")

    def position_ratios(self) -> dict:
        """(n, position) -> its field's rate over the plain automatic field's at that n."""
        plain = {t.n: t for t in self.timings if t.automatic and t.position is None}
        return {
            (t.n, t.position): t.fraction / plain[t.n].fraction
            for t in self.timings
            if t.position is not None and t.n in plain
        }


def field_evaluation(n, d, block, symmetric, beta=4.0, position=None):
    """A call of the jitted post field P_θ A(θ) on n uniform tokens (float32, one
    trajectory, Q = K = V = I): with ``symmetric`` as `simulate` computes it (dense or
    pairs of blocks), else forced onto row blocks (the path for general Q, K, V); with a
    ``position`` part (:data:`POSITIONS`) as `simulate` computes that field."""
    theta = particles.init.uniform_sphere(1, n, d, dtype=jnp.float32)
    part = None if position is None else POSITIONS[position]()
    att = particles.Attention(beta=jnp.float32(beta), Q=None, K=None, V=None, block_size=block, position=part)
    if symmetric:
        f = jax.jit(lambda th: tangent_projection(th, att(0.0, th)))
    else:
        b = jnp.float32(beta)[None, None]
        f = jax.jit(lambda th: tangent_projection(th, particles.kernels.mix(b, th, th, th, block=block)))
    return lambda: f(theta)


def executed_flops(n, d, block, symmetric):
    """Matmul flops of one field evaluation: 4n²d for the dense field and row blocks;
    for the symmetric pairs of blocks, 2 b²d per block of logits and per product with
    a block of tokens (each diagonal block: one of each; each pair: one and two)."""
    if block >= n or not symmetric:
        return 4 * n * n * d
    blocks = -(-n // block)
    pairs = blocks * (blocks - 1) // 2
    return 2 * block * block * d * (2 * blocks + 3 * pairs)


def cases(sizes) -> list[Case]:
    """Automatic blocks at every n; at most 4096 also the dense field (one block), and the
    row blocks of general Q, K, V (4096 x 1024 tokens / n per block, at least 512); at
    n = 2048 also the field with ALiBi and with RoPE."""
    out = []
    for n in sizes:
        out.append(Case(n, None, "auto"))
        if n == 2048:
            out += [Case(n, None, "auto", position) for position in POSITIONS]
        if n <= 4096:
            out.append(Case(n, n, "auto"))
        if n >= 4096:
            out.append(Case(n, max(512, 2**22 // n), "rows"))
    return out


def throughput(clock: MatmulClock, cases, *, d=128, beta=4.0, rounds=ROUNDS) -> ThroughputResult:
    """Time each field of ``cases`` in alternation with the matmul of ``clock``."""
    timings = []
    for case in cases:
        # pairs of blocks where the logits stay symmetric (RoPE's do), else row blocks (ALiBi: causal)
        part = None if case.position is None else POSITIONS[case.position]()
        symmetric = case.path == "auto" and (part is None or part.symmetric_logits)
        size = case.block or particles.auto_block_size(case.n, symmetric=symmetric)
        fn = field_evaluation(case.n, d, case.block, case.path == "auto", beta, case.position)
        t, rate = clock.side_by_side(fn, rounds=rounds)
        timings.append(
            FieldTiming(
                n=case.n,
                block_size=size,
                automatic=case.block is None,
                symmetric=symmetric,
                time_s=t,
                matmul_rate=rate,
                nominal_flops=4 * case.n * case.n * d,
                executed_flops=executed_flops(case.n, d, size, symmetric),
                position=case.position,
            )
        )
    return ThroughputResult(d=d, beta=beta, matmul_n=clock.n, rounds=rounds, timings=tuple(timings))


# The report: its lines of RESULTS.md (report.py puts the sections together).


def _timing_row(t: FieldTiming) -> str:
    label = "dense" if t.block_size >= t.n else ("symmetric pairs" if t.symmetric else "row blocks")
    label += f", {t.position}" if t.position else ""
    auto = " (automatic)" if t.automatic else ""
    effective = t.nominal_flops / t.time_s
    return (
        f"| {t.n} | {label} | {t.block_size}{auto} | {t.time_s * 1e3:.1f} | {effective / 1e9:.0f} | "
        f"{t.matmul_rate / 1e9:.0f} | **{t.fraction:.0%}** | {t.executed_flops / t.nominal_flops:.0%} | "
        f"{t.executed_flops / t.time_s / t.matmul_rate:.0%} |"
    )


def section_lines(r: ThroughputResult) -> list[str]:
    return [
        f"## (b) Field throughput, d={r.d} (float32, post scheme: attention + tangent projection)",
        "",
        "Nominal flops: 4n²d per evaluation, the two matmuls of the plain field; effective rate = "
        "nominal flops / time. With Q = K = V = I the weights exp(β⟨θ_i, θ_j⟩) are symmetric and "
        "`simulate` computes each pair of blocks once, so it executes fewer flops (last columns). "
        f"Each field is timed in alternation with the {r.matmul_n} x {r.matmul_n} jnp.dot (best of "
        f"{r.rounds} each) and compared with that rate.",
        "",
        "| n | path | tokens per block | time per evaluation (ms) | effective GFLOP/s | matmul GFLOP/s "
        "alongside | effective / matmul | executed flops / nominal | executed / matmul |",
        "|---|---|---|---|---|---|---|---|---|",
        *(_timing_row(t) for t in r.timings),
    ]


def target_lines(r: ThroughputResult) -> list[str]:
    """Its row of the table of targets in RESULTS.md."""
    lines = [
        f"| field >= 85% of matmul for n >= 2048 | min {r.min_automatic_fraction:.0%} "
        "(effective rate, automatic blocks; executed flops in (b)) |"
    ]
    ratios = r.position_ratios()
    if ratios:
        lines.append(
            "| field with ALiBi or RoPE >= 80% of the plain field's rate (n = 2048) | "
            + ", ".join(f"{p} {v:.0%}" for (n, p), v in sorted(ratios.items()))
            + " |"
        )
    return lines
