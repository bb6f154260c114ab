"""The command line: argument parsing only, on top of the public API. A result, or one
line on stderr with exit code 2 (1 for a failed solve), never a traceback."""

import numpy as np
import pytest
import xarray as xr
from helpers import files, run, same
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import particles
from particles.cli import main

# particles simulate


def test_cli_simulate_writes_file_and_summary(tmp_path, capsys):
    out = tmp_path / "run.nc"
    code = main(
        [
            "simulate",
            "--scheme",
            "pre",
            "--n",
            "6",
            "--d",
            "4",
            "--beta",
            "2",
            "--t1",
            "3",
            "--save-every",
            "0.5",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "final mean cosine" in text and "steps" in text and "wall time" in text
    ds = xr.open_dataset(out, engine="h5netcdf")
    np.testing.assert_allclose(ds["time"].values, np.arange(0, 3.01, 0.5), atol=1e-6)
    assert ds.sizes["token"] == 6 and ds.attrs["scheme"] == "pre"
    ds.close()


def test_cli_init_from_file_and_equiangular(tmp_path, capsys):
    x0 = np.asarray(particles.init.equiangular(3, 5, 0.5))
    f = tmp_path / "x0.npy"
    np.save(f, x0)
    assert main(["simulate", "--init", str(f), "--t1", "1", "--x64"]) == 0
    assert "n=3 d=5" in capsys.readouterr().out
    assert main(["simulate", "--init", "equiangular:0.5", "--n", "3", "--d", "5", "--t1", "1"]) == 0


def _exit_code(argv):
    try:
        return main(argv)
    except SystemExit as e:  # argparse's own errors
        return e.code


@pytest.mark.parametrize(
    "argv,match",
    [
        (["simulate", "--scheme", "layernorm"], "scheme='layernorm'"),
        (["simulate", "--n", "0"], "n=0"),
        (["simulate", "--d", "1"], "d=1"),
        (["simulate", "--beta", "nan"], "beta"),
        (["simulate", "--t1", "-1"], "t1"),
        (["simulate", "--attention", "linear"], "attention"),
        (["simulate", "--init", "nothere.npy"], "does not exist"),
        (["simulate", "--init", "equiangular:x"], "RHO"),
        (["simulate", "--save-every", "0"], "save_every"),
        (["simulate", "--n", "abc"], "invalid int"),
        (["simulate", "--out", "/no/such/folder/run.nc"], "does not exist"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(argv, match, capsys):
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err, err


def test_cli_failed_solve_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run.nc"
    code = main(["simulate", "--n", "4", "--d", "3", "--t1", "50", "--max-steps", "5", "--out", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert "max_steps=5" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


# particles sweep

CLI = [
    "sweep",
    "--schemes",
    "post",
    "--n",
    "4",
    "--d",
    "4",
    "--seeds",
    "2",
    "--t1",
    "6",
    "--save-every",
    "0.5",
]


CLI += ["--x64", "--no-progress", "--observables", "mean_cosine,pair_density,cluster_count"]


def test_cli_sweep_resumes_and_matches_api(tmp_path, capsys):
    out = str(tmp_path / "cli.zarr")
    assert main([*CLI, "--beta", "0.5,1,3", "--chunk-size", "1", "--out", out]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main([*CLI, "--beta", "0.5,1,3", "--chunk-size", "1", "--out", out]) == 0
    assert "resumed" in capsys.readouterr().out
    same(particles.open_sweep(out).assign_attrs(chunks_resumed=0), run(tmp_path / "api", chunk_size=1))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--beta", "0.5:8"], "expected START:STOP:COUNT"),
        (["--beta", "0.5:8:0"], "empty range"),
        (["--beta", "1,,2"], "expected START:STOP:COUNT"),
        (["--beta", "x"], "expected START:STOP:COUNT"),
        (["--beta", "1", "--n", "2:5:3"], "does not fall on integers"),
        (["--beta", "1", "--observables", "cosine"], "unknown observable 'cosine'"),
        (["--beta", "1", "--schemes", "post:pre:2"], "expected START:STOP:COUNT"),
        (["--beta", "1", "--noise", "0,0.2"], "noise > 0 needs constant steps: give step_size"),
        (["--beta", "1", "--noise", "0.1,x", "--step-size", "0.1"], "expected START:STOP:COUNT"),
    ],
)
def test_cli_bad_input(tmp_path, capsys, args, message):
    out = tmp_path / "s"
    assert main([*CLI, *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("particles sweep: error:")
    assert not out.exists()


def test_cli_refuses_mismatched_store(tmp_path, capsys):
    out = tmp_path / "s"
    run(out, chunk_size=1)
    before = files(out)
    assert main([*CLI, "--beta", "0.5,1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "different configuration" in err and "start fresh" in err
    assert files(out) == before


# Fuzzing: a result, or one line on stderr with exit code 2 (1: a failed solve).

GARBAGE = st.sampled_from(
    ["", "-", "--", "x", "nan", "inf", "-inf", "1e999", "-1", "0", "--bogus", "é", "1,2"]
)


NUMBER = st.sampled_from(["0", "0.5", "1", "-1", "2", "1e3", "nan", "inf", "x", ""])


def _flag(name, values):
    return st.lists(st.tuples(st.just(name), values), max_size=1).map(
        lambda p: [t for pair in p for t in pair]
    )


def _argv(command, *flags, base=()):
    """[command, *base, fuzzed flags..., maybe a garbage token]; a later flag overrides
    base, so base holds the tiny sizes that keep a valid run short."""
    parts = st.tuples(*flags, st.lists(GARBAGE, max_size=1))
    return parts.map(lambda ps: [command, *base] + [t for p in ps for t in p])


SIMULATE = _argv(
    "simulate",
    _flag("--scheme", st.sampled_from(["post", "layernorm", ""])),
    _flag("--n", st.sampled_from(["3", "0", "-2", "x"])),
    _flag("--d", st.sampled_from(["2", "1", "x"])),
    _flag("--beta", NUMBER),
    _flag("--t1", st.sampled_from(["0.5", "0", "-1", "nan", "x"])),
    _flag("--attention", st.sampled_from(["softmax", "usa", "linear"])),
    _flag("--init", st.sampled_from(["uniform", "gaussian", "equiangular:0.3", "equiangular:", "a.npy"])),
    _flag("--save-every", st.sampled_from(["0", "-1", "x"])),
    _flag("--max-steps", st.sampled_from(["0", "-5", "x"])),
    _flag("--tau", NUMBER),
    _flag("--alpha", NUMBER),
    base=("--n", "3", "--d", "2", "--t1", "0.5"),
)


SWEEP = _argv(
    "sweep",
    _flag("--schemes", st.sampled_from(["post", "post,pre", "bad", "post,post", ""])),
    _flag("--beta", st.sampled_from(["0:1:2", "1:0:0", "x", "-1,1"])),
    _flag("--n", st.sampled_from(["3", "1", "2.5", "3:3:0"])),
    _flag("--d", st.sampled_from(["2", "0", "x"])),
    _flag("--seeds", st.sampled_from(["2", "0", "-1", "x"])),
    _flag("--t1", st.sampled_from(["0.5", "0", "-1", "inf"])),
    _flag("--observables", st.sampled_from(["energy", "min_cosine,energy", "bogus", ","])),
    _flag("--init", st.sampled_from(["uniform", "equiangular:2", "file.npy"])),
    _flag("--chunk-size", st.sampled_from(["1", "0", "x"])),
    _flag("--tau", st.sampled_from(["1", "1,2", "x"])),
    _flag("--delta", NUMBER),
    base=("--n", "3", "--d", "2", "--t1", "0.5", "--seeds", "2", "--beta", "1"),
)


FIGURE = _argv(
    "figure",
    st.sampled_from([["long_context", "--tiny"], ["phase_diagram", "--tiny"], ["nope"], ["--tiny"], []]),
    st.sampled_from([[], ["--full", "--tiny"], ["--out-dir"], ["--out-dir", "/proc/no/such"]]),
)


DEMO = _argv("demo", st.sampled_from([["--out-dir"], ["--bogus"], ["extra"], ["--out-dir", "x", "y"]]))


def _one_result_or_one_line(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as e:  # argparse
        code = e.code
    out, err = capsys.readouterr()
    assert code in (0, 1, 2), (argv, code, err)
    if code == 0:
        assert err.count("\n") <= 1 or "%" in err, (argv, err)  # at most a progress bar
    else:
        assert err.count("\n") == 1 and "Traceback" not in err, (argv, err)
        assert code == 2 or "failed" in err, (argv, err)
    return code


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(argv=st.one_of(SIMULATE, FIGURE, DEMO))
@example(argv=["figure", "phase_diagram", "--tiny"])  # listed, not yet implemented
@example(argv=["simulate", "--n", "3", "--d", "2", "--t1", "0.5", "--attention", "usa", "--beta", "1e3"])
def test_cli_fuzz_simulate_figure_demo(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a fuzzed relative --out-dir must not land in the repository
    if argv[0] == "figure" and "--out-dir" not in argv:
        argv = argv + ["--out-dir", str(tmp_path / "fig")]
    if argv[0] == "demo" and argv[-1] != "--bogus":
        argv = argv + ["--bogus"]  # a valid demo is a 30 s run: fuzz its argument errors only
    _one_result_or_one_line(argv, capsys)


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(argv=SWEEP, k=st.integers(0, 10**9))
def test_cli_fuzz_sweep(argv, k, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / f"store-{k}"
    code = _one_result_or_one_line(argv + ["--no-progress", "--out", str(out)], capsys)
    if code == 0:
        assert particles.open_sweep(out).sizes["seed"] >= 1


# particles lyapunov / stability


def test_cli_lyapunov_prints_a_table_and_writes_netcdf(tmp_path, capsys):
    out = tmp_path / "ly.nc"
    argv = ["lyapunov", "--scheme", "post", "--n", "3", "--d", "3", "--beta", "1,2", "--t1", "2", "--k", "3"]
    assert main([*argv, "--x64", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "lambda_3" in text and "(jacobian)" in text
    ds = xr.open_dataset(out, engine="h5netcdf")
    assert ds["exponents"].shape == (2, 3)
    want = particles.sensitivity.lyapunov(
        np.asarray(particles.init.from_spec("uniform", 0, 3, 3, dtype=np.float64)),
        "post", beta=np.array([1.0, 2.0]), t1=2.0, k=3,
    ).exponents  # fmt: skip
    np.testing.assert_allclose(ds["exponents"].values, want, rtol=1e-9)
    for line, row in zip(text.splitlines()[2:4], want):  # the table rows are those exponents
        np.testing.assert_allclose([float(v) for v in line.split()[1:]], row, rtol=1e-4, atol=1e-9)
    ds.close()


def test_cli_stability_prints_per_layer_norms(tmp_path, capsys):
    out = tmp_path / "st.nc"
    argv = ["stability", "--scheme", "pre", "--layers", "3", "--n", "3", "--d", "4", "--mlp", "8"]
    assert main([*argv, "--out", str(out)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert "|dl/dx_l|" in text[1] and "|dl/dmlp|" in text[1]
    assert len(text) == 2 + 4 + 2  # header, layers 0..3, wrote, wall time
    ds = xr.open_dataset(out, engine="h5netcdf")
    assert ds["gradient_norm"].shape == (4,) and ds["grad_V"].shape == (3,)
    np.testing.assert_allclose(float(text[2].split()[1]), 1.0, rtol=1e-6)  # uniform tokens: |x_0| = 1
    ds.close()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["lyapunov", "--n", "2", "--d", "3", "--k", "5"], "k=5 is out of range"),
        (["lyapunov", "--method", "svd"], "method='svd'"),
        (["lyapunov", "--beta", "1,,2"], "--beta"),
        (["stability", "--beta", "1,2"], "stability takes one value"),
        (["lyapunov", "--out", "/no/such/folder/x.nc"], "does not exist"),
    ],
)
def test_cli_sensitivity_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
