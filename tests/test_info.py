"""`particles.info` (particles/_info.py): what a saved trajectory or a sweep store holds,
read from the file's metadata or the store's manifest."""

import os
import pathlib
import re
import shutil

import numpy as np
import pytest
import xarray as xr

import particles


def rows(text):
    """(title, {key: value}) of info's lines "title" and "  key  value"."""
    title, *lines = text.splitlines()
    out = {}
    for line in lines:
        key, value = re.fullmatch(r"  (\S+) +(.*)", line).groups()
        out[key] = value
    return title, out


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A batch of two trajectories."""
    folder = tmp_path_factory.mktemp("info")
    x0 = particles.init.uniform_sphere(0, 3, 5, batch=2)
    out = {}
    for name, traj in (
        ("ok", particles.simulate(x0, "post", beta=np.array([1.0, 2.5]), t1=1.0, ts=[0.5, 1.0])),
    ):
        path = str(folder / f"{name}.nc")
        traj.save(path)
        out[name] = (path, traj)
    return out


def test_trajectory_info(saved):
    path, traj = saved["ok"]
    title, info = rows(particles.info(path))
    assert title == f"trajectory {path} (particles {particles.__version__})"
    assert info["scheme"] == "post, beta 1, 2.5"
    assert info["tokens"] == "n=3, d=5"
    assert info["batch"] == "(2,): 2 samples"
    assert info["saves"] == "2, t = 0.5 .. 1"
    assert info["dtype"] == "float64"
    steps = f"{traj.stats['num_steps']} steps ({traj.stats['num_rejected']} rejected)"
    assert info["solver"].startswith(f"{traj.config['solver']}, attention softmax, ") and info[
        "solver"
    ].endswith(steps)
    assert info["status"] == "all ok"
    assert info["size"] == f"{os.path.getsize(path) / 1024:.1f} KiB"
    assert particles.info(pathlib.Path(path)) == particles.info(path)  # a path-like too


def test_layer_run_info_names_its_layers(tmp_path):
    """A discrete-layer run is described by its layers, not by the ODE solver it did not use."""
    x0 = particles.init.uniform_sphere(0, 3, 4, dtype=np.float64)
    path = str(tmp_path / "layers.nc")
    particles.simulate(x0, "pre", beta=1.0, t1=3.0, layers=3).save(path)
    _, info = rows(particles.info(path))
    assert info["solver"] == "3 discrete layers (constant residual steps), attention softmax"


@pytest.mark.parametrize(
    "status, line",
    [([0, 2], "1 of 2 failed (1 max_steps)"), ([1, 2], "2 of 2 failed (1 non-finite, 1 max_steps)")],
)
def test_trajectory_info_counts_the_failed(saved, tmp_path, status, line):
    """The status line counts each code of the file's status variable (written here
    into a copy of a saved file, as a failed solve would have it)."""
    path, _ = saved["ok"]
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        ds = ds.load()
    assert ds["status"].values.tolist() == [0, 0]
    ds["status"].values[:] = status
    failed = str(tmp_path / "failed.nc")
    ds.to_netcdf(failed, engine="h5netcdf")
    assert rows(particles.info(failed))[1]["status"] == line


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("info") / "s.sweep")
    betas = np.linspace(0.5, 3.5, 7)  # more than 6 values: shown as first .. last
    particles.sweep(
        out,
        beta=betas,
        n=3,
        d=3,
        t1=1.0,
        seeds=2,
        save_every=0.5,
        dtype="float64",
        chunk_size=4,
        progress=False,
    )
    return out


def test_sweep_info(store, tmp_path):
    title, info = rows(particles.info(store))
    assert re.fullmatch(rf"sweep store {re.escape(store)} \(particles-sweep/\d+\)", title)
    assert info["swept"] == "beta: 7 (0.5 .. 3.5); seed: 2 (0, 1)"
    assert info["fixed"] == "scheme=post, n=3, d=3"
    assert info["times"] == "t = 0 .. 1, 3 saves"
    assert info["observables"] == "mean_cosine (and collapse_time, t_stop, status)"
    assert info["settings"].startswith("float64, init uniform, delta 0.001, attention softmax, rtol 1e-06")
    assert info["progress"] == "2 / 2 chunks done (7 units, 4 per chunk)"
    names = os.listdir(store)
    nbytes = sum(os.path.getsize(os.path.join(store, f)) for f in names)
    assert info["size"] == f"{nbytes / 1024:.1f} KiB in {len(names)} files" and len(names) == 3
    # an unfinished store: one chunk missing
    part = str(tmp_path / "part.sweep")
    shutil.copytree(store, part)
    os.remove(os.path.join(part, sorted(f for f in names if f.endswith(".nc"))[-1]))
    _, info = rows(particles.info(part))
    assert info["progress"] == "1 / 2 chunks done (7 units, 4 per chunk); rerun the same sweep to finish it"
    assert info["size"].endswith(" in 2 files")


def test_info_errors(tmp_path):
    missing = str(tmp_path / "nope")
    with pytest.raises(ValueError, match=f"^path={re.escape(repr(missing))} does not exist$"):
        particles.info(missing)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    folder = tmp_path / "empty"
    folder.mkdir()
    for path in (str(text), str(folder)):
        with pytest.raises(
            ValueError,
            match=f"^path={re.escape(repr(path))} is neither a sweep store \\(a folder with manifest.json\\) "
            "nor a trajectory file written by Trajectory.save$",
        ):
            particles.info(path)
    broken = tmp_path / "broken.sweep"
    broken.mkdir()
    (broken / "manifest.json").write_text("{")
    with pytest.raises(
        ValueError, match=f"^path={re.escape(repr(str(broken)))}: cannot read its manifest.json "
    ):
        particles.info(str(broken))
