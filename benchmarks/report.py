"""The markdown of RESULTS.md, from the results of the benchmarks (and nothing else)."""

import os

from blocks import BlockScan
from common import Machine, MatmulRates
from ensemble import EnsembleResult, Solve
from large_n import LargeNResult
from layers import LayersResult
from noise import NoiseResult
from phase import PhaseResult
from sensitivity import SensitivityResult
from startup import StartupResult
from throughput import FieldTiming, ThroughputResult


def solve_label(s: Solve) -> str:
    label = f"{s.dtype}, rtol=atol={s.tol:g}"
    return label if s.reduce_span else label + ", solved in R^d (reduce_span=False)"


def ensemble_lines(r: EnsembleResult) -> list[str]:
    t_scipy = r.scipy.time_s

    def row(method, t, max_error, median_error, note, fraction=None):
        per_traj = "" if fraction is None else f"{fraction:.0%}"
        return (
            f"| {method} | {t:.3g} | **{t_scipy / t:.1f}x** | {max_error:.1e} | {median_error:.1e} | "
            f"{per_traj} | {note} |"
        )

    lines = [
        f"## (a) Ensemble: {r.batch} trajectories, n={r.n}, d={r.d}, beta={r.beta:g}, T={r.t1:g}, "
        "i.i.d. uniform tokens",
        "",
        f"Reference: float64 `particles.simulate` at rtol=atol=1e-10 ({r.reference_time_s:.1f} s). Error of a "
        "trajectory: the largest distance |θ_i(T) − θ_i^ref(T)| over its tokens. scipy ran every "
        f"trajectory; the Euler loop ran the first {r.subset} and its time is scaled linearly to {r.batch}. "
        "particles: the whole batch as one state, each timing the best of 3 calls after a "
        "compiling one.",
        "",
        "| method | time (s) | scipy time / time | max error | median error | trajectories at most "
        "as far off as scipy's | notes |",
        "|---|---|---|---|---|---|---|",
        row(
            f"scipy solve_ivp RK45 per trajectory, numpy float64, rtol=atol={r.tol:g}",
            t_scipy,
            r.scipy.max_error,
            r.scipy.median_error,
            f"{r.scipy_evaluations:.0f} field evaluations per trajectory",
        ),
        row(
            f"Euler + renormalise, h={r.euler_h:g}, numpy float64 batched ({r.subset} run, "
            f"x{r.batch // r.subset})",
            r.euler.time_s,
            r.euler.max_error,
            r.euler.median_error,
            f"{r.euler_steps} steps; first order, error ~ h",
        ),
    ]
    for s in r.solves:
        steps = f"{s.num_steps} steps ({s.num_rejected} rejected)"
        where = "in the span of the tokens (n x n per trajectory)" if s.reduce_span else "in R^d"
        lines.append(
            row(
                f"particles.simulate, {solve_label(s)}",
                s.time_s,
                s.max_error,
                s.median_error,
                f"{steps}, {where}",
                s.as_accurate_fraction,
            )
        )
    lines.append("")
    lines.append(f"One float32 trajectory alone takes {r.single_steps} steps at rtol=atol={r.tol:g}.")

    f32 = r.solve("float32")
    full32 = r.solve("float32", reduce_span=False)
    evals = 6 * full32.num_steps + 1  # Tsit5: 6 new stages per step (first same as last)
    flops = evals * r.batch * 4 * r.n * r.n * r.d
    limit = flops / full32.matmul_rate
    lines += [
        "",
        f"Flop limit in R^d: {evals} field evaluations x {r.batch} trajectories x 4n²d = {flops / 1e9:.1f} "
        f"GFLOP, {limit * 1e3:.0f} ms at the matmul rate measured alongside ({full32.matmul_rate / 1e9:.0f} "
        f"GFLOP/s); the solve in R^d reaches **{limit / full32.time_s:.0%}** of it. In the span of the "
        f"tokens (n = {r.n} < d = {r.d}) a field evaluation costs 4n³ flops, {r.d // r.n}x fewer.",
        "",
        f"At the same tolerance (float32): **{t_scipy / f32.time_s:.1f}x** faster than scipy, but float32 is "
        f"not as accurate: max error {f32.max_error:.1e} against scipy's {r.scipy.max_error:.1e}. "
        "float32 rounds the attention vector A_i to ~6e-8 of its length; once the tokens cluster, "
        "the tangent velocity P_θ A_i is small and that rounding is a systematic drift of ~1e-7 per "
        "unit time, a floor that tighter tolerances do not lower (a float64 state with the field "
        "evaluated in float32 has the same floor).",
        "",
        "Field alone (the least the solve can cost): the field the span solve integrates, called as "
        "many times as that solve called it, chained by one y + 10⁻³f(y) each and nothing else: "
        + "; ".join(
            f"{f.dtype}: {f.evaluations} evaluations in {f.time_s * 1e3:.0f} ms ({f.time_s / f.solve_time_s:.0%} "
            f"of its solve), so at most **{t_scipy / f.time_s:.1f}x** scipy even with every other cost of "
            "the solver removed"
            for f in r.floors
        )
        + ".",
    ]
    best = r.accurate
    if best is not None:
        lines.append(
            f"At scipy's accuracy (max error at most scipy's): **{t_scipy / best.time_s:.1f}x**, "
            f"particles in {solve_label(best)}."
        )
    else:
        lines.append("No particles configuration here was as accurate as scipy on every trajectory.")
    return lines


def _timing_row(t: FieldTiming) -> str:
    label = "dense" if t.block_size >= t.n else ("symmetric pairs" if t.symmetric else "row blocks")
    auto = " (automatic)" if t.automatic else ""
    effective = t.nominal_flops / t.time_s
    return (
        f"| {t.n} | {label} | {t.block_size}{auto} | {t.time_s * 1e3:.1f} | {effective / 1e9:.0f} | "
        f"{t.matmul_rate / 1e9:.0f} | **{t.fraction:.0%}** | {t.executed_flops / t.nominal_flops:.0%} | "
        f"{t.executed_flops / t.time_s / t.matmul_rate:.0%} |"
    )


def throughput_lines(r: ThroughputResult) -> list[str]:
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


def large_n_lines(r: LargeNResult) -> list[str]:
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


def startup_lines(r: StartupResult) -> list[str]:
    return [
        "## (d) Start-up: `particles simulate` (n=32, d=64, T=20, 101 saves), end to end",
        "",
        "| `import particles` | first invocation (empty cache) | second invocation (warm cache) | without cache |",
        "|---|---|---|---|",
        f"| {r.import_s:.2f} s | {r.first_s:.2f} s | **{r.second_s:.2f} s** | {r.nocache_s:.2f} s |",
    ]


def summary_lines(
    ensemble: EnsembleResult, throughput: ThroughputResult, large_n: LargeNResult, startup: StartupResult
) -> list[str]:
    """The table of targets against what was measured."""
    f32 = ensemble.solve("float32")
    t_scipy = ensemble.scipy.time_s
    best = ensemble.accurate
    return [
        "| target | measured |",
        "|---|---|",
        f"| ensemble >= 20x faster than the scipy loop, as accurate | {t_scipy / f32.time_s:.1f}x "
        f"at the same tolerance (float32; max error {f32.max_error:.1e}, scipy's "
        f"{ensemble.scipy.max_error:.1e}); "
        + (
            f"{t_scipy / best.time_s:.1f}x at scipy's accuracy ({solve_label(best)})"
            if best is not None
            else "none as accurate"
        )
        + "; the field evaluations alone, at most "
        + ", ".join(f"{t_scipy / f.time_s:.1f}x ({f.dtype})" for f in ensemble.floors)
        + " |",
        f"| field >= 85% of matmul for n >= 2048 | min {throughput.min_automatic_fraction:.0%} "
        "(effective rate, automatic blocks; executed flops in (b)) |",
        f"| n=32768, d=64 under 6 GB | {large_n.peak_gb:.2f} GB at n={large_n.n}, d={large_n.d} |",
        f"| start-up under 3 s (warm cache) | {startup.second_s:.2f} s |",
    ]


def layers_target_line(r: LayersResult) -> str:
    return (
        f"| {r.layers}-layer Pre-LN transformer (n = {r.n}, d = {r.d}, LayerNorm, MLP m = {r.mlp_width}) "
        f">= 70% of matmul | {r.scan_fraction:.0%} (the compiled scan; {r.simulate_fraction:.0%} for a whole "
        "simulate call) |"
    )


def layers_lines(r: LayersResult) -> list[str]:
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


def noise_target_line(r: NoiseResult) -> str:
    return (
        f"| noisy flow (SDE), n = {r.n} blockwise on the {'CPU' if r.block_size < r.n else 'device'} | "
        f"{r.sde_step_s:.3g} s per Heun step (blocks of {r.block_size}; {r.ode_step_s:.3g} s without noise) |"
    )


def noise_lines(r: NoiseResult) -> list[str]:
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


def sensitivity_target_lines(r: SensitivityResult) -> list[str]:
    return [
        f"| lyapunov k = {r.k} (n = {r.n}, d = {r.d}, T = {r.T:g}) <= 10x the plain solve | "
        f"{r.lyapunov_ratio:.1f}x the default solve, {r.lyapunov_ambient_ratio:.1f}x the solve in R^(n x d) |",
        f"| layer_gradients of {r.layers} layers (n = {r.layers_n}) <= 4x the forward pass | "
        f"{r.gradients_ratio:.1f}x; XLA temporaries {r.gradients_temp_mb:.0f} MB checkpointed, "
        f"{r.unchecked_temp_mb:.0f} MB without (forward {r.forward_temp_mb:.0f} MB) |",
    ]


def sensitivity_lines(r: SensitivityResult) -> list[str]:
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


def phase_target_lines(r: PhaseResult) -> list[str]:
    euler, *ours = r.cold
    best = min(ours, key=lambda c: c.wall_s)
    lines = [
        f"| cold small phase diagram: a fresh particles process no slower than the numpy Euler one, at >= 100x "
        f"smaller error | {euler.wall_s / best.wall_s:.2f}x ({best.label}: {best.wall_s:.1f} s against "
        f"{euler.wall_s:.1f} s), error {best.max_error:.1e} against {euler.max_error:.1e} "
        f"({euler.max_error / best.max_error:.0f}x smaller) |",
    ]
    if r.full:
        runs = "; ".join(f"{f.label} {f.wall_s:.1f} s" for f in r.full)
        lines.append(f"| full-resolution phase diagram <= 40 s | {runs} |")
    return lines


def phase_lines(r: PhaseResult) -> list[str]:
    """Section (h): phase diagrams, the cold first result and the full resolution."""
    out = [
        f"## (h) Phase diagrams (post, n = 32, T = 30): cold small diagram (d = {', '.join(map(str, r.ds))}, "
        f"{r.betas} beta, {r.seeds} seeds, {r.saves} saves) and the full resolution",
        "",
        "Each cold run is a fresh process with an empty compilation cache; error: the largest "
        f"|mean cosine − reference| over the saves of {r.checked} (d, beta, seed) runs, the reference a "
        "float64 `particles.simulate` at rtol = atol = 1e-12 from the same tokens.",
        "",
        "| cold process | wall time (s) | Euler time / time | max error | import (s) | compilation (s) | "
        "the sweep, compiled (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    euler = r.cold[0]
    part = lambda v: "" if v is None else f"{v:.2f}"  # noqa: E731
    out += [
        f"| {c.label} | {c.wall_s:.2f} | **{euler.wall_s / c.wall_s:.2f}x** | {c.max_error:.1e} | "
        f"{part(c.import_s)} | {part(c.compile_s)} | {part(c.again_s)} |"
        for c in r.cold
    ]
    timed = [c for c in r.cold[1:] if c.import_s is not None]
    if timed:
        best = min(timed, key=lambda c: c.wall_s)
        fixed = best.import_s + best.compile_s
        out += [
            "",
            "The last three columns come from a second fresh process per row that imports particles and runs "
            "the same sweep twice: compilation is the first sweep's time less the second's (which finds "
            f"every program compiled). What bounds the cold ratio: for {best.label}, import and compilation "
            f"alone take {fixed:.2f} s, {fixed / euler.wall_s:.0%} of the whole Euler process "
            f"({euler.wall_s:.2f} s), before any solving.",
        ]
    if r.full:
        d, b, s, t = r.full_shape
        out += [
            "",
            f"Full resolution ({d} d x {b} beta x {s} seeds, {t} saves, float32 results), in this process:",
            "",
            "| solve | wall time (s) | pair densities differing from the token solve's |",
            "|---|---|---|",
        ]
        out += [f"| {f.label} | {f.wall_s:.1f} | {f.pair_densities_differing:.2%} |" for f in r.full]
    return out


def other_machines(folder) -> list[str]:
    """The RESULTS-*.md files in ``folder`` (runs on other machines, e.g. a GPU), with
    their headings one level down, to be appended to RESULTS.md."""
    lines = []
    for name in sorted(os.listdir(folder)):
        if name.startswith("RESULTS-") and name.endswith(".md"):
            with open(os.path.join(folder, name)) as f:
                body = f.read().rstrip().splitlines()
            lines += ["", f"# Another machine: [{name}]({name})", ""]
            lines += ["#" + line if line.startswith("#") else line for line in body]
    return lines


def render(
    command: str,
    machine: Machine,
    matmul: MatmulRates,
    ensemble: EnsembleResult,
    throughput: ThroughputResult,
    large_n: LargeNResult,
    startup: StartupResult,
    layers: LayersResult | None = None,
    noise: NoiseResult | None = None,
    sensitivity: SensitivityResult | None = None,
    phase: PhaseResult | None = None,
    appendix: list[str] = (),
) -> str:
    """The whole of RESULTS.md; ``appendix``: lines after the sections (other machines)."""
    head = [
        "# Benchmarks",
        "",
        f"`{command}` on {machine.date}: {machine.machine} {machine.processor}, {machine.cores} cores, "
        f"{machine.backend} backend ({machine.device_kind}), jax {machine.jax_version}, load average at "
        f"the end {machine.load_average:.1f} (the machine is shared: take ratios, not absolute times).",
        "",
        f"Matmul rate (jnp.dot, {matmul.n} x {matmul.n}, float32 at full precision as in the field): best "
        f"{matmul.best / 1e9:.0f} GFLOP/s, worst {matmul.worst / 1e9:.0f}, over {matmul.count} measurements "
        "through the run; the ensemble flop limit uses the best; each throughput figure uses the rate "
        "measured alongside it.",
        "",
        *summary_lines(ensemble, throughput, large_n, startup),
        *([] if layers is None else [layers_target_line(layers)]),
        *([] if noise is None else [noise_target_line(noise)]),
        *([] if sensitivity is None else sensitivity_target_lines(sensitivity)),
        *([] if phase is None else phase_target_lines(phase)),
        "",
    ]
    sections = [
        ensemble_lines(ensemble),
        throughput_lines(throughput),
        large_n_lines(large_n),
        startup_lines(startup),
        *([] if layers is None else [layers_lines(layers)]),
        *([] if noise is None else [noise_lines(noise)]),
        *([] if sensitivity is None else [sensitivity_lines(sensitivity)]),
        *([] if phase is None else [phase_lines(phase)]),
    ]
    body = [line for lines in sections for line in [*lines, ""]]
    return "\n".join(head + body + list(appendix)) + "\n"


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
