"""Smoke test of `make bench`: every benchmark at a tiny size, and the report writer
(the numbers it prints, not its wording).

The benchmarks are scripts in benchmarks/, not part of the package: their folder goes
on sys.path here, as `python benchmarks/run.py` has it."""

import dataclasses
import math
import os
import re
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
sys.path.insert(0, BENCHMARKS)

import blocks  # noqa: E402
import checkpoint  # noqa: E402
import common  # noqa: E402
import ensemble  # noqa: E402
import large_n  # noqa: E402
import layers  # noqa: E402
import meanfield  # noqa: E402
import noise  # noqa: E402
import phase  # noqa: E402
import report  # noqa: E402
import sensitivity  # noqa: E402
import startup  # noqa: E402
import throughput  # noqa: E402


def numbers(result):
    """(name, value) of every number in a result, nested dataclasses and tuples included."""
    if dataclasses.is_dataclass(result):
        for field in dataclasses.fields(result):
            for name, value in numbers(getattr(result, field.name)):
                yield f"{field.name}.{name}" if name else field.name, value
    elif isinstance(result, tuple):
        for i, item in enumerate(result):
            for name, value in numbers(item):
                yield f"{i}.{name}" if name else str(i), value
    elif isinstance(result, int | float) and not isinstance(result, bool):
        yield "", result


def assert_sane(result):
    """Frozen, and every number finite and at least 0; times and rates above 0."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(result, dataclasses.fields(result)[0].name, None)
    for name, value in numbers(result):
        assert math.isfinite(value) and value >= 0, (name, value)
        if name.endswith(("time_s", "rate", "_s")):
            assert value > 0, (name, value)


def tables(lines):
    """[(header row, body rows)] of the markdown tables in ``lines``, in order."""
    out = []
    for i, line in enumerate(lines):
        if line.startswith("|---"):
            header, rows = lines[i - 1], []
            for row in lines[i + 1 :]:
                if not row.startswith("|"):
                    break
                rows.append(row)
            assert all(row.count("|") == header.count("|") for row in rows), (header, rows)
            out.append((header, rows))
    return out


def body(lines):
    """The body rows of the one table in ``lines``."""
    ((_, rows),) = tables(lines)
    return rows


# A number as the report prints it: 12, 0.25, 7.5e-07, 1e+04, 89% (a fraction), 20.0x.
NUMBER = re.compile(r"(?<![\w.^])(\d+)(?:\.(\d+))?(?:e([-+]?\d+))?(%?)")


def printed(text):
    """(value, half a unit of its last printed digit) of each number printed in ``text``;
    a percentage as a fraction."""
    out = []
    for m in NUMBER.finditer(text):
        whole, frac, exp, percent = m.groups()
        scale = 10.0 ** int(exp or 0) / (100 if percent else 1)
        value = float(f"{whole}.{frac or 0}") * scale
        out.append((value, 0.5 * 10.0 ** -len(frac or "") * scale))
    return out


def assert_prints(text, expected):
    """Each of the ``expected`` values is printed in ``text``, in this order (other numbers
    may come between): a printed number stands for a value when the value rounds to it."""
    found, i = printed(text), 0
    for want in expected:
        while i < len(found) and not abs(found[i][0] - want) <= found[i][1] * (1 + 1e-9):
            i += 1
        assert i < len(found), f"{want!r} not printed (in order) in {text!r}: {[v for v, _ in printed(text)]}"
        i += 1


def test_assert_prints_reads_what_the_report_prints():
    assert [v for v, _ in printed("a 12 | 0.25 | **20.0x** | 7.5e-07 | 89% | float32 | x16 | 1e+04")] == [
        12,
        0.25,
        20.0,
        7.5e-07,
        0.89,
        1e4,
    ]
    assert_prints("| 0.203 | **14.8x** | 2.9e-06 | 75% |", [0.2034, 2.0 / 0.135, 2.94e-6, 0.754])
    for wrong in (
        [0.21],
        [14.7],
        [2.96e-6],
        [0.756],
        [2.9e-6, 14.8],
    ):  # off by a printed digit, or out of order
        with pytest.raises(AssertionError):
            assert_prints("| 0.203 | **14.8x** | 2.9e-06 | 75% |", wrong)


def skeleton(text):
    """The headings (numbers masked) and the table headers of a report, in order."""
    lines = text.split("\n# Another machine")[0].splitlines()
    heads = [re.sub(r"\d+(\.\d+)?", "N", line) for line in lines if line.startswith("#")]
    return heads + [lines[i - 1] for i, line in enumerate(lines) if line.startswith("|---")]


@pytest.fixture(scope="module")
def clock():
    clock = common.MatmulClock(128)
    clock.measure()
    return clock


def test_matmul_clock(clock):
    t, rate = clock.side_by_side(lambda: 1.0, rounds=2)
    rates = clock.rates()
    assert t > 0 and rate > 0 and rates.count == 2 and rates.n == 128
    assert 0 < rates.worst <= rate <= rates.best


def ensemble_rows_print(r):
    """The ensemble section prints each solve's time, speed-up, errors and share as accurate."""
    rows = body(ensemble.section_lines(r))
    assert len(rows) == 2 + len(ensemble.CONFIGS)
    t_scipy = r.scipy.time_s
    assert_prints(rows[0], [t_scipy, 1.0, r.scipy.max_error, r.scipy.median_error, r.scipy_evaluations])
    assert_prints(rows[1], [r.euler.time_s, t_scipy / r.euler.time_s, r.euler.max_error, r.euler_steps])
    for row, s in zip(rows[2:], r.solves):
        expected = [s.time_s, t_scipy / s.time_s, s.max_error, s.median_error, s.as_accurate_fraction]
        assert_prints(row, [*expected, s.num_steps, s.num_rejected])


def test_ensemble(clock):
    r = ensemble.ensemble(clock, batch=4, subset=2, euler_h=0.1, n=16, d=32, t1=5.0)
    assert_sane(r)
    assert [(s.dtype, s.reduce_span) for s in r.solves] == list(ensemble.CONFIGS)
    assert [f.dtype for f in r.floors] == ["float32", "float64"]
    assert r.euler_steps == 50 and all(s.num_steps > 0 for s in r.solves)
    assert r.scipy.max_error < 1e-4 and all(s.max_error < 1e-4 for s in r.solves)
    assert r.euler.max_error > r.scipy.max_error  # first order at h = 0.1
    ensemble_rows_print(r)


def throughput_rows_print(r):
    for row, t in zip(body(throughput.section_lines(r)), r.timings, strict=True):
        effective = t.nominal_flops / t.time_s
        assert_prints(
            row,
            [
                t.n,
                t.block_size,
                t.time_s * 1e3,
                effective / 1e9,
                t.matmul_rate / 1e9,
                effective / t.matmul_rate,
                t.executed_flops / t.nominal_flops,
                t.executed_flops / t.time_s / t.matmul_rate,
            ],
        )


def test_throughput(clock):
    r = throughput.throughput(clock, throughput.cases([64]), d=32, rounds=2)
    assert_sane(r)
    assert [(t.n, t.automatic) for t in r.timings] == [(64, True), (64, False)]
    assert r.min_automatic_fraction > 0
    throughput_rows_print(r)


def test_throughput_with_positions(clock):
    cases = [
        throughput.Case(64, None, "auto"),
        *(throughput.Case(64, None, "auto", p) for p in throughput.POSITIONS),
    ]
    r = throughput.throughput(clock, cases, d=32, rounds=2)
    ratios = r.position_ratios()
    assert sorted(ratios) == [(64, "alibi"), (64, "rope")] and all(v > 0 for v in ratios.values())
    (line,) = [x for x in throughput.target_lines(r) if "ALiBi or RoPE" in x]
    assert f"alibi {ratios[(64, 'alibi')]:.0%}" in line and f"rope {ratios[(64, 'rope')]:.0%}" in line
    assert any(", rope |" in row for row in throughput.section_lines(r))


def layers_rows_print(r):
    scan, whole = body(layers.section_lines(r))
    assert_prints(scan, [r.scan_s * 1e3, r.flops / r.scan_s / r.matmul_rate])
    assert_prints(whole, [r.simulate_s * 1e3, r.flops / r.simulate_s / r.matmul_rate])
    assert_prints(layers.section_lines(r)[-1], [r.flops / 1e9, r.matmul_rate / 1e9])


def test_layers(clock):
    r = layers.layers(clock, layers=4, n=8, d=8)
    assert_sane(r)
    assert r.flops == layers.transformer_flops(4, 8, 8, 32) and r.scan_fraction > 0
    layers_rows_print(r)


def checkpoint_rows_print(r):
    load, scan, whole = body(checkpoint.section_lines(r))
    assert_prints(load, [r.megabytes, r.load_s])
    assert_prints(scan, [r.scan_s * 1e3, r.flops / r.scan_s / r.matmul_rate])
    assert_prints(whole, [r.simulate_s * 1e3, r.flops / r.simulate_s / r.matmul_rate])


def test_checkpoint(clock):
    r = checkpoint.checkpoint_bench(clock, layers=2, d=16, heads=2, n=8, vocab=32)
    assert_sane(r)
    assert r.flops == checkpoint.forward_flops(2, 8, 16, 64) and r.scan_fraction > 0
    checkpoint_rows_print(r)


def noise_rows_print(r):
    sde, ode = body(noise.section_lines(r))
    assert_prints(sde, [r.sde_s / r.steps, r.sde_s])
    assert_prints(ode, [r.ode_s / r.steps, r.ode_s])
    assert_prints(noise.section_lines(r)[-1], [r.block_size, r.sphere_error])


def meanfield_rows_print(r):
    pde, explicit, tokens = body(meanfield.section_lines(r))
    assert_prints(pde, [r.modes, r.pde_s, r.pde_steps])
    assert_prints(explicit, [r.explicit_s, r.explicit_steps])
    assert_prints(tokens, [r.n, r.step_size, r.particles_s, r.t1 / r.step_size])
    assert_prints(meanfield.section_lines(r)[-1], [r.order_gap, *r.final_order])


def test_meanfield():
    r = meanfield.meanfield_bench(modes=32, n=64, t1=0.5, h=0.05)
    assert_sane(r)
    assert r.pde_steps > 0 and r.explicit_steps > 0 and r.order_gap < 0.5
    meanfield_rows_print(r)


def test_noise():
    r = noise.noise(n=64, d=3, steps=2)
    assert_sane(r)
    assert r.block_size == 64 and r.sde_step_s > 0 and r.sphere_error < 1e-5
    noise_rows_print(r)


def phase_rows_print(r):
    (_, cold), *full = tables(phase.section_lines(r))
    euler = r.cold[0]
    for row, c in zip(cold, r.cold, strict=True):
        parts = [] if c.import_s is None else [c.import_s, c.first_s - c.again_s, c.again_s]
        assert_prints(row, [c.wall_s, euler.wall_s / c.wall_s, c.max_error, *parts])
    if r.full:
        ((_, rows),) = full
        for row, f in zip(rows, r.full, strict=True):
            assert_prints(row, [f.wall_s, f.pair_densities_differing])


SMALL_PHASE = dict(ds=(3, 5), betas=2, seeds=2, save_every=1.0, euler_h=0.5, checks=((1, 1),))


def test_phase():
    """One cold particles process (--gram, whose extra argument goes through), no full
    diagram: test_phase_full_resolution (slow) runs both processes and the full diagram."""
    r = phase.phase(small=dict(SMALL_PHASE, variants=phase.VARIANTS[1:]), full_size=False)
    assert_sane(r)
    assert [c.label.split()[0] for c in r.cold] == ["numpy", "particles"] and "--gram" in r.cold[1].label
    assert all(c.wall_s > 0 for c in r.cold) and r.cold[0].max_error > r.cold[1].max_error
    assert r.cold[0].import_s is None and r.cold[1].import_s > 0 and r.cold[1].first_s > r.cold[1].again_s > 0
    assert r.full == () and r.checked == 2
    phase_rows_print(r)
    assert len(phase.target_lines(r)) == 1


@pytest.mark.slow
def test_phase_full_resolution():
    r = phase.phase(small=SMALL_PHASE, full_size=dict(ds=(3,), betas=2, seeds=2, save_every=1.0))
    assert_sane(r)
    assert [c.label.split()[0] for c in r.cold] == ["numpy", "particles", "particles"]
    assert all(c.wall_s > 0 for c in r.cold) and r.cold[0].max_error > r.cold[1].max_error
    assert r.cold[0].import_s is None and all(
        c.import_s > 0 and c.first_s > c.again_s > 0 for c in r.cold[1:]
    )
    assert r.full[0].pair_densities_differing == 0 and r.checked == 2
    phase_rows_print(r)
    assert len(phase.target_lines(r)) == 2


def sensitivity_rows_print(r):
    rows = body(sensitivity.section_lines(r))
    expected = [
        [r.solve_s * 1e3, 1],
        [r.solve_ambient_s * 1e3, r.solve_ambient_s / r.solve_s],
        [r.k, r.lyapunov_s * 1e3, r.lyapunov_s / r.solve_s],
        [r.forward_s * 1e3, 1],
        [r.gradients_s * 1e3, r.gradients_s / r.forward_s],
    ]
    for row, values in zip(rows, expected, strict=True):
        assert_prints(row, values)


def test_sensitivity():
    r = sensitivity.sensitivity_costs(n=4, d=6, T=2.0, k=2, layers=3, layers_n=4, layers_d=6)
    assert_sane(r)
    assert r.lyapunov_ratio > 0 and r.gradients_ratio > 0 and r.gradients_peak_gb >= r.baseline_gb > 0
    assert 0 < r.forward_temp_mb and 0 < r.gradients_temp_mb
    sensitivity_rows_print(r)


def large_n_rows_print(r):
    (row,) = body(large_n.section_lines(r))
    device = [] if r.peak_device_gb is None else [r.peak_device_gb]
    assert_prints(row, [r.peak_rss_gb, *device, r.solve_s, r.call_s, r.second_s, r.flops / r.second_s / 1e9])


def test_large_n():
    r = large_n.large_n(n=256, d=16)
    assert_sane(r)
    assert r.peak_device_gb is None and r.peak_gb == r.peak_rss_gb > 0  # on a CPU
    large_n_rows_print(r)


def startup_rows_print(r):
    (row,) = body(startup.section_lines(r))
    assert_prints(row, [r.import_s, r.first_s, r.second_s, r.nocache_s])


def test_startup():
    # The plumbing only (fresh processes, the cache folder, the timings); the real
    # `particles simulate` is test_startup_cli's, behind `slow`.
    r = startup.startup(repeat=1, command=[sys.executable, "-c", "pass"])
    assert_sane(r)
    startup_rows_print(r)


@pytest.mark.slow
def test_startup_cli():
    r = startup.startup(repeat=1)
    assert_sane(r)
    assert r.import_s < r.second_s


def test_blocks():
    r = blocks.scan(ns=[64], d=32, blocks=[32], dense_max=64, matmul_n=128)
    assert_sane(r)
    assert [(t.path, t.block) for t in r.timings] == [("dense", 64), ("pairs", 32), ("rows", 32)]
    lines = blocks.block_scan_lines(r)
    assert_prints(lines[0], [r.matmul_n, r.full_rate / 1e9, r.default_rate / 1e9])
    for row, t in zip(body(lines), r.timings, strict=True):
        rate = t.flops / t.time_s
        assert_prints(row, [t.n, t.block, t.time_s * 1e3, rate / 1e9, rate / r.full_rate])


def sample_results():
    """Results with made-up numbers, each printed figure distinct, for the report alone."""
    times = {
        ("float32", True): 0.16,
        ("float32", False): 0.4,
        ("float64", True): 0.25,
        ("float64", False): 0.8,
    }
    solves = tuple(
        ensemble.Solve(
            dtype=dtype,
            tol=1e-6,
            reduce_span=span,
            time_s=times[dtype, span],
            matmul_rate=1.1e11,
            num_steps=38,
            num_rejected=3,
            max_error=2e-6 if dtype == "float32" else 3e-7,
            median_error=1e-6 if dtype == "float32" else 2e-7,
            as_accurate_fraction=0.0 if dtype == "float32" else 0.75,
        )
        for dtype, span in ensemble.CONFIGS
    )
    floor_times = {"float32": 0.05, "float64": 0.0625}
    floors = tuple(
        ensemble.FieldFloor(s.dtype, 229, floor_times[s.dtype], s.time_s) for s in solves if s.reduce_span
    )
    baseline = ensemble.Baseline(time_s=2.0, max_error=7.5e-7, median_error=3.6e-7)
    return dict(
        ensemble=ensemble.EnsembleResult(
            batch=256,
            subset=16,
            euler_h=0.01,
            n=32,
            d=128,
            beta=4.0,
            t1=30.0,
            tol=1e-6,
            reference_time_s=3.2,
            scipy=baseline,
            scipy_evaluations=231.0,
            euler=dataclasses.replace(baseline, time_s=40.0, max_error=5e-5),
            euler_steps=3000,
            solves=solves,
            single_steps=36,
            floors=floors,
        ),
        throughput=throughput.ThroughputResult(
            d=128,
            beta=4.0,
            matmul_n=2048,
            rounds=9,
            timings=(
                throughput.FieldTiming(2048, 1024, True, True, 0.012, 2e11, 4 * 2048**2 * 128, 10**9),
                throughput.FieldTiming(4096, 1024, True, True, 0.05, 2e11, 4 * 4096**2 * 128, 10**9),
                throughput.FieldTiming(4096, 4096, False, False, 0.06, 2e11, 4 * 4096**2 * 128, 10**9),
            ),
        ),
        large_n=large_n.LargeNResult(
            32768, 64, 0.01, 1024, 0.85, None, 13.0, 13.3, 9.5, 6 * 4 * 32768**2 * 64
        ),
        startup=startup.StartupResult(1.2, 4.7, 2.6, 4.5),
        layers=layers.LayersResult(
            256, 256, 128, 512, layers.transformer_flops(256, 256, 128, 512), 0.3, 0.38, 2.6e11
        ),
        noise=noise.NoiseResult(8192, 3, 1.0, 0.2, 0.05, 4, 512, 4.0, 3.0, 2e-7),
        sensitivity=sensitivity.SensitivityResult(
            32, 128, 30.0, 8, 0.005, 0.007, 0.5, 256, 256, 128, 0.3, 0.9, 1.0, 1.5, 0.8, 40.0, 80.0, 900.0
        ),
        phase=phase.PhaseResult(
            (8, 128),
            12,
            16,
            301,
            0.1,
            (
                phase.ColdRun("numpy Euler", 3.0, 0.04),
                phase.ColdRun("particles sweep", 6.0, 4e-7, 1.5, 4.0, 1.5),
                phase.ColdRun("particles sweep --gram", 5.0, 5e-7, 1.5, 3.0, 1.0),
            ),
            (phase.FullRun("token solve", 80.0, 0.0), phase.FullRun("Gram solve", 120.0, 0.001)),
            (3, 90, 64, 301),
            6,
        ),  # fmt: skip
        meanfield=meanfield.MeanFieldResult(
            512, 4096, 10.0, 0.01, 50.0, 0.24, 943, 9.5, 38688, 30.0, 0.05, 0.031, (0.547, 0.47, 0.937)
        ),  # fmt: skip
        checkpoint=checkpoint.CheckpointResult(12, 768, 128, 330.5, 0.33, 2.2e10, 0.155, 0.26, 4.3e11),
    )


def test_each_section_prints_its_numbers():
    r = sample_results()
    ensemble_rows_print(r["ensemble"])
    throughput_rows_print(r["throughput"])
    large_n_rows_print(r["large_n"])
    startup_rows_print(r["startup"])
    layers_rows_print(r["layers"])
    noise_rows_print(r["noise"])
    sensitivity_rows_print(r["sensitivity"])
    checkpoint_rows_print(r["checkpoint"])
    phase_rows_print(r["phase"])
    meanfield_rows_print(r["meanfield"])


def test_the_targets_are_measured_as_their_definitions_say():
    """Each target row prints the figures it is judged on, recomputed here from the
    raw results (the sample's are chosen so that no two coincide)."""
    r = sample_results()
    e, t, ln, st, la, no, se, ph, mf, ck = (r[k] for k in report.SECTIONS)
    t_scipy = e.scipy.time_s
    f32 = e.solve("float32")
    (row,) = ensemble.target_lines(e)
    # float32 at the same tolerance; the fastest solve at most as far off as scipy
    # (float64 in the span, 0.25 s: 8x); the field-only floors
    assert_prints(row, [t_scipy / f32.time_s, f32.max_error, e.scipy.max_error, t_scipy / 0.25, 40.0, 32.0])
    assert e.accurate == e.solve("float64")
    (row,) = throughput.target_lines(t)
    automatic = [x.nominal_flops / x.time_s / x.matmul_rate for x in t.timings if x.automatic]
    assert_prints(row, [min(automatic)])
    (row,) = large_n.target_lines(ln)
    assert_prints(row, [ln.peak_rss_gb, ln.n, ln.d])
    (row,) = startup.target_lines(st)
    assert_prints(row, [st.second_s])
    (row,) = layers.target_lines(la)
    assert_prints(row, [la.flops / la.scan_s / la.matmul_rate, la.flops / la.simulate_s / la.matmul_rate])
    (row,) = noise.target_lines(no)
    assert_prints(row, [no.n, no.sde_s / no.steps, no.block_size, no.ode_s / no.steps])
    assert "CPU" in row  # blocks smaller than n: the CPU's
    lyapunov, gradients = sensitivity.target_lines(se)
    assert_prints(lyapunov, [se.k, se.lyapunov_s / se.solve_s, se.lyapunov_s / se.solve_ambient_s])
    assert_prints(
        gradients,
        [se.gradients_s / se.forward_s, se.gradients_temp_mb, se.unchecked_temp_mb, se.forward_temp_mb],
    )
    cold, full = phase.target_lines(ph)
    euler, fastest = ph.cold[0], ph.cold[2]  # --gram: 5 s
    assert_prints(
        cold,
        [
            euler.wall_s / fastest.wall_s,
            fastest.wall_s,
            euler.wall_s,
            fastest.max_error,
            euler.max_error,
            euler.max_error / fastest.max_error,
        ],
    )
    assert_prints(full, [f.wall_s for f in ph.full])
    (row,) = meanfield.target_lines(mf)
    assert_prints(row, [mf.modes, mf.beta, mf.noise, mf.t1, mf.pde_s, mf.pde_steps, mf.explicit_steps, mf.n])
    assert_prints(row, [mf.particles_s, mf.order_gap])
    (row,) = checkpoint.target_lines(ck)
    assert_prints(
        row, [ck.layers, ck.d, ck.n, ck.load_s, ck.megabytes, ck.scan_fraction, ck.simulate_fraction]
    )


def test_report_puts_the_sections_together():
    machine = common.Machine("2026-11-23", "x86_64", "", 2, "cpu", "cpu", "0.10.2", 1.5)
    rates = common.MatmulRates(n=2048, best=2.07e11, worst=1.85e11, count=13)
    appendix = report.other_machines(BENCHMARKS)
    results = sample_results()
    text = report.render("make bench", machine, rates, appendix=appendix, **results)
    here = text.split("\n# Another machine")[0]  # this machine's part
    lines = here.splitlines()
    assert lines[2].startswith("`make bench` on 2026-11-23:")
    assert_prints(lines[2], [machine.cores, machine.load_average])
    assert_prints(lines[4], [rates.n, rates.n, rates.best / 1e9, rates.worst / 1e9, rates.count])
    # the targets, then the sections, each module's lines in the order of report.SECTIONS
    (_, targets), *_ = tables(lines)
    assert targets == [line for k, m in report.SECTIONS.items() for line in m.target_lines(results[k])]
    sections = ["\n".join(m.section_lines(results[k])) for k, m in report.SECTIONS.items()]
    starts = [here.index(s) for s in sections]
    assert starts == sorted(starts)
    # without the optional results, their rows and sections are left out
    short = report.render("make bench", machine, rates, **{k: results[k] for k in list(report.SECTIONS)[:4]})
    assert len(tables(short.splitlines())[0][1]) == 4 and short.count("\n## ") == 4
    # the other machines' results come last, their headings one level down
    assert text.endswith(appendix[-1] + "\n")
    headings = [line for line in text[len(here) :].splitlines() if line.startswith("#")]
    assert headings and all(h.startswith(("# Another machine: ", "##")) for h in headings), headings


def test_report_has_the_shape_of_results_md():
    """The committed RESULTS.md is what the report writer writes: the same headings and
    table headers (the numbers aside)."""
    machine = common.Machine("2026-11-23", "x86_64", "", 2, "cpu", "cpu", "0.10.2", 1.5)
    rates = common.MatmulRates(n=2048, best=2.07e11, worst=1.85e11, count=13)
    appendix = report.other_machines(BENCHMARKS)
    text = report.render("make bench", machine, rates, appendix=appendix, **sample_results())
    with open(os.path.join(BENCHMARKS, "RESULTS.md")) as f:
        committed = f.read()
    assert skeleton(text) == skeleton(committed)
