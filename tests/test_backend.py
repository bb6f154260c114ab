"""The xarray backend (engine="particles") and `particles info`."""

import os
import shutil

import numpy as np
import pytest
import xarray as xr

import particles
from particles._backend import ParticlesBackendEntrypoint
from particles.cli import main


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("backend") / "s"
    particles.sweep(path, beta=[1.0, 2.0], n=4, d=3, t1=1.0, seeds=2, progress=False, chunk_size=1)
    return path


@pytest.fixture(scope="module")
def traj_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("backend") / "run.nc"
    x0 = particles.init.uniform_sphere(0, 4, 3, batch=2)
    traj = particles.simulate(x0, "mix", beta=np.array([1.0, 2.0]), t1=2.0, ts=[0.0, 1.0, 2.0], tau=0.5)
    traj.save(path)
    return path, traj


def test_engine_is_registered():
    assert isinstance(xr.backends.list_engines()["particles"], ParticlesBackendEntrypoint)


def test_open_sweep_store(store):
    expected = particles.open_sweep(store)
    assert dict(expected.sizes) == {"beta": 2, "seed": 2, "time": 101}
    xr.testing.assert_identical(xr.open_dataset(store, engine="particles"), expected)
    xr.testing.assert_identical(xr.open_dataset(str(store)), expected)  # the engine is guessed
    dropped = xr.open_dataset(store, engine="particles", drop_variables=["status"])
    assert "status" not in dropped and "mean_cosine" in dropped


def test_open_trajectory_file(traj_file):
    path, traj = traj_file
    with xr.open_dataset(path, engine="particles") as ds:
        xr.testing.assert_identical(ds, traj.to_xarray())
        assert ds["theta"].dtype == np.float64
    with xr.open_dataset(path, engine="particles", drop_variables="x") as ds:
        assert "x" not in ds and "theta" in ds


def test_guess_can_open(store, traj_file, tmp_path):
    backend = ParticlesBackendEntrypoint()
    plain = tmp_path / "plain.nc"
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_netcdf(plain, engine="h5netcdf")
    (tmp_path / "text.nc").write_text("not netcdf")
    assert backend.guess_can_open(store) and backend.guess_can_open(str(traj_file[0]))
    for other in (store / "chunk-00000.nc", plain, tmp_path / "text.nc", tmp_path, tmp_path / "nope.nc", 3):
        assert not backend.guess_can_open(other), other
    with pytest.raises(ValueError, match="neither a sweep store"):
        xr.open_dataset(plain, engine="particles")
    assert "sweep stores" in backend.description
    assert backend.open_dataset_parameters == ("filename_or_obj", "drop_variables")


def test_info_sweep_progress_and_axes(store, tmp_path, capsys):
    assert main(["info", str(store)]) == 0
    text = capsys.readouterr().out
    for part in (
        "swept        beta: 2 (1, 2); seed: 2 (0, 1)",
        "fixed        scheme=post, n=4, d=3",
        "t = 0 .. 1, 101 saves",
        "observables  mean_cosine",
        "progress     2 / 2 chunks done",
        "size ",
    ):
        assert part in text, (part, text)
    partial = tmp_path / "partial"
    shutil.copytree(store, partial)
    os.remove(partial / "chunk-00001.nc")
    assert "1 / 2 chunks done" in particles.info(partial) and "rerun" in particles.info(partial)


@pytest.mark.parametrize("case", ["missing", "plain_folder"])
def test_info_bad_path_is_one_line_exit_2(tmp_path, capsys, case):
    path = tmp_path / "nope" if case == "missing" else tmp_path
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("particles info: error:") and "Traceback" not in err
