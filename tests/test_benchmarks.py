"""Smoke test of `make bench`: every benchmark at a tiny size, and the report writer.

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
import common  # noqa: E402
import ensemble  # noqa: E402
import large_n  # noqa: E402
import layers  # noqa: E402
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
    """{header row: body rows} of the markdown tables in ``lines``."""
    out = {}
    for i, line in enumerate(lines):
        if line.startswith("|---"):
            header, rows = lines[i - 1], []
            for row in lines[i + 1 :]:
                if not row.startswith("|"):
                    break
                rows.append(row)
            assert all(row.count("|") == header.count("|") for row in rows), (header, rows)
            out[header] = rows
    return out


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


def test_ensemble(clock):
    r = ensemble.ensemble(clock, batch=4, subset=2, euler_h=0.1, n=16, d=32, t1=5.0)
    assert_sane(r)
    assert [(s.dtype, s.reduce_span) for s in r.solves] == list(ensemble.CONFIGS)
    assert [f.dtype for f in r.floors] == ["float32", "float64"]
    assert r.euler_steps == 50 and all(s.num_steps > 0 for s in r.solves)
    assert r.scipy.max_error < 1e-4 and all(s.max_error < 1e-4 for s in r.solves)
    assert r.euler.max_error > r.scipy.max_error  # first order at h = 0.1
    rows = tables(report.ensemble_lines(r))
    (body,) = rows.values()
    assert len(body) == 2 + len(ensemble.CONFIGS)
    assert body[2].startswith("| particles.simulate, float32, rtol=atol=1e-06 |")


def test_throughput(clock):
    r = throughput.throughput(clock, throughput.cases([64]), d=32, rounds=2)
    assert_sane(r)
    assert [(t.n, t.automatic) for t in r.timings] == [(64, True), (64, False)]
    assert r.min_automatic_fraction > 0
    (body,) = tables(report.throughput_lines(r)).values()
    assert body[0].startswith("| 64 | dense | 64 (automatic) |")


def test_layers(clock):
    r = layers.layers(clock, layers=4, n=8, d=8)
    assert_sane(r)
    assert r.flops == layers.transformer_flops(4, 8, 8, 32) and r.scan_fraction > 0
    (body,) = tables(report.layers_lines(r)).values()
    assert body[0].startswith("| the compiled layer scan (`particles.integrate`) |")


def test_noise():
    r = noise.noise(n=64, d=3, steps=2)
    assert_sane(r)
    assert r.block_size == 64 and r.sde_step_s > 0 and r.sphere_error < 1e-5
    (body,) = tables(report.noise_lines(r)).values()
    assert body[0].startswith("| `particles.simulate` with noise (VirtualBrownianTree paths) | **")


def test_phase():
    r = phase.phase(
        small=dict(ds=(3, 5), betas=2, seeds=2, save_every=1.0, euler_h=0.5, checks=((1, 1),)),
        full_size=dict(ds=(3,), betas=2, seeds=2, save_every=1.0),
    )
    assert_sane(r)
    assert [c.label.split()[0] for c in r.cold] == ["numpy", "particles", "particles"]
    assert all(c.wall_s > 0 for c in r.cold) and r.cold[0].max_error > r.cold[1].max_error
    assert r.cold[0].import_s is None and all(
        c.import_s > 0 and c.first_s > c.again_s > 0 for c in r.cold[1:]
    )
    assert r.full[0].pair_densities_differing == 0 and r.checked == 2
    (body,) = tables(report.phase_lines(r)[:-6]).values()
    assert (
        body[0].startswith("| numpy Euler + renormalise, dt = 0.5")
        and body[0].split("|")[3].strip() == "**1.00x**"
    )
    assert len(report.phase_target_lines(r)) == 2


def test_sensitivity():
    r = sensitivity.sensitivity_costs(n=4, d=6, T=2.0, k=2, layers=3, layers_n=4, layers_d=6)
    assert_sane(r)
    assert r.lyapunov_ratio > 0 and r.gradients_ratio > 0 and r.gradients_peak_gb >= r.baseline_gb > 0
    assert 0 < r.forward_temp_mb and 0 < r.gradients_temp_mb
    (body,) = tables(report.sensitivity_lines(r)).values()
    assert body[2].startswith("| `sensitivity.lyapunov(k=2, method='qr')` |")
    assert body[-1].endswith(f"| {r.gradients_ratio:.1f}x |")


def test_large_n():
    r = large_n.large_n(n=256, d=16)
    assert_sane(r)
    assert r.peak_device_gb is None and r.peak_gb == r.peak_rss_gb > 0  # on a CPU
    (body,) = tables(report.large_n_lines(r)).values()
    assert body[0].startswith(f"| **{r.peak_rss_gb:.2f} GB** |")


def test_startup():
    # The plumbing only (fresh processes, the cache folder, the timings); the real
    # `particles simulate` is test_startup_cli's, behind `slow`.
    r = startup.startup(repeat=1, command=[sys.executable, "-c", "pass"])
    assert_sane(r)
    (body,) = tables(report.startup_lines(r)).values()
    assert len(body) == 1 and len(re.findall(r"\| \**\d+\.\d\d s\**", body[0])) == 4


@pytest.mark.slow
def test_startup_cli():
    r = startup.startup(repeat=1)
    assert_sane(r)
    assert r.import_s < r.second_s


def test_blocks():
    r = blocks.scan(ns=[64], d=32, blocks=[32], dense_max=64, matmul_n=128)
    assert_sane(r)
    assert [(t.path, t.block) for t in r.timings] == [("dense", 64), ("pairs", 32), ("rows", 32)]
    (body,) = tables(report.block_scan_lines(r)).values()
    assert len(body) == 3


def sample_results():
    """Results with round numbers, for the report writer alone."""
    solves = tuple(
        ensemble.Solve(
            dtype=dtype,
            tol=1e-6,
            reduce_span=span,
            time_s=0.1 if span else 0.4,
            matmul_rate=1e11,
            num_steps=38,
            num_rejected=0,
            max_error=2e-6 if dtype == "float32" else 3e-7,
            median_error=1e-6 if dtype == "float32" else 2e-7,
            as_accurate_fraction=0.0 if dtype == "float32" else 1.0,
        )
        for dtype, span in ensemble.CONFIGS
    )
    floors = tuple(ensemble.FieldFloor(s.dtype, 229, 0.08, s.time_s) for s in solves if s.reduce_span)
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
                throughput.FieldTiming(4096, 1024, False, False, 0.05, 2e11, 4 * 4096**2 * 128, 10**9),
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
    )


def test_report_has_the_shape_of_results_md():
    machine = common.Machine("2026-11-23", "x86_64", "", 2, "cpu", "cpu", "0.10.2", 1.5)
    rates = common.MatmulRates(n=2048, best=2.07e11, worst=1.85e11, count=13)
    appendix = report.other_machines(BENCHMARKS)
    text = report.render("make bench", machine, rates, appendix=appendix, **sample_results())
    with open(os.path.join(BENCHMARKS, "RESULTS.md")) as f:
        committed = f.read()
    assert skeleton(text) == skeleton(committed)
    lines = text.split("\n# Another machine")[0].splitlines()  # this machine's part
    assert lines[2].startswith("`make bench` on 2026-11-23: x86_64 , 2 cores, cpu backend (cpu), jax 0.10.2")
    body = tables(lines)
    assert body["| target | measured |"] == [
        "| ensemble >= 20x faster than the scipy loop, as accurate | 20.0x at the same tolerance (float32; "
        "max error 2.0e-06, scipy's 7.5e-07); 20.0x at scipy's accuracy (float64, rtol=atol=1e-06); the "
        "field evaluations alone, at most 25.0x (float32), 25.0x (float64) |",
        "| field >= 85% of matmul for n >= 2048 | min 89% (effective rate, automatic blocks; executed flops "
        "in (b)) |",
        "| n=32768, d=64 under 6 GB | 0.85 GB at n=32768, d=64 |",
        "| start-up under 3 s (warm cache) | 2.60 s |",
        "| 256-layer Pre-LN transformer (n = 256, d = 128, LayerNorm, MLP m = 512) >= 70% of matmul | 41% "
        "(the compiled scan; 33% for a whole simulate call) |",
        "| noisy flow (SDE), n = 8192 blockwise on the CPU | 1 s per Heun step (blocks of 512; 0.75 s without "
        "noise) |",
        "| lyapunov k = 8 (n = 32, d = 128, T = 30) <= 10x the plain solve | 100.0x the default solve, 71.4x the "
        "solve in R^(n x d) |",
        "| layer_gradients of 256 layers (n = 256) <= 4x the forward pass | 3.0x; XLA temporaries 80 MB "
        "checkpointed, 900 MB without (forward 40 MB) |",
        "| cold small phase diagram: a fresh particles process no slower than the numpy Euler one, at >= 100x "
        "smaller error | 0.60x (particles sweep --gram: 5.0 s against 3.0 s), error 5.0e-07 against 4.0e-02 "
        "(80000x smaller) |",
        "| full-resolution phase diagram <= 40 s | token solve 80.0 s; Gram solve 120.0 s |",
    ]
    particles_rows = [row for rows in body.values() for row in rows if row.startswith("| particles.")]
    assert particles_rows[0].startswith("| particles.simulate, float32, rtol=atol=1e-06 | 0.1 | **20.0x** |")
    assert "\n# Another machine: [RESULTS-gpu-h100.md](RESULTS-gpu-h100.md)\n\n## Benchmarks\n" in text
    assert text.endswith(appendix[-1] + "\n")
