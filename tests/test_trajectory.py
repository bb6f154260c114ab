"""Trajectory and its NetCDF files."""

import json

import numpy as np
import pytest

import particles


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
