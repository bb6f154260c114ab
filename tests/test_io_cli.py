"""Results files and the command line."""

import json

import numpy as np
import pytest
import xarray as xr

import particles
from particles.cli import main


def test_trajectory_roundtrip_through_netcdf(tmp_path):
    x0 = particles.init.uniform_sphere(0, 4, 3, batch=2)
    traj = particles.simulate(x0, "mix", beta=np.array([1.0, 2.0]), t1=2.0, ts=[0.0, 1.0, 2.0], tau=0.5)
    ds = traj.to_xarray()
    assert dict(ds.sizes) == {"sample": 2, "time": 3, "token": 4, "dim": 3}
    assert ds.attrs["scheme"] == "mix" and json.loads(ds.attrs["config"])["scheme_params"] == {"tau": 0.5}
    assert ds.attrs["particles_version"] == particles.__version__
    np.testing.assert_array_equal(ds["beta"].values, [1.0, 2.0])
    np.testing.assert_allclose(np.linalg.norm(ds["x"].values, axis=-1), ds["r"].values, rtol=1e-12)
    path = tmp_path / "run.nc"
    traj.save(path)
    back = particles.load(path)
    np.testing.assert_array_equal(back.theta, traj.theta)
    np.testing.assert_array_equal(back.r, traj.r)
    np.testing.assert_array_equal(back.ts, traj.ts)
    assert back.config == traj.config and back.stats == traj.stats
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.nc"]  # no temporary left behind
    with pytest.raises(ValueError, match="does not exist"):
        particles.load(tmp_path / "missing.nc")


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


def test_progress_bar(capfd):
    particles.simulate(particles.init.uniform_sphere(0, 4, 3), "post", beta=1.0, t1=1.0, progress=True)
    assert "100.00%" in capfd.readouterr().err
