"""``particles meanfield solve|branch``: NetCDF out, one-line errors (exit 2)."""

import numpy as np
import pytest
import xarray as xr

from particles.cli import main


def test_solve_writes_netcdf(tmp_path, capsys):
    out = tmp_path / "mf.nc"
    argv = ["meanfield", "solve", "--beta", "2", "--t1", "1", "--saves", "11", "--modes", "24", "--x64",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds["rho"].shape == (11, 75)  # N = 75 = 3·5², the least 2^a 3^b 5^c ≥ 3·24 + 1
        np.testing.assert_allclose(ds["mass"], 1, atol=1e-12)
        assert ds.attrs["beta"] == 2.0 and ds.attrs["modes"] == 24
    assert "wrote" in capsys.readouterr().out


def test_branch_writes_netcdf(tmp_path, capsys):
    out = tmp_path / "branch.nc"
    argv = ["meanfield", "branch", "--beta", "1", "--attention", "usa", "--ratio", "0.8,1.2", "--modes", "24",
            "--x64", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        up = ds["order"].sel(direction="up").values
        assert up[0] > 0.1 and up[1] < 1e-3  # clustered below D_#, uniform above (β = 1 < β_*)
    assert "threshold" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["meanfield", "solve", "--noise", "-1"], "noise=-1.0 must be non-negative"),
        (["meanfield", "solve", "--scheme", "pre"], "scheme='pre' moves the radii"),
        (["meanfield", "solve", "--rho0", "nope"], "--rho0 'nope': expected"),
        (
            ["meanfield", "branch", "--ratio", "1,2", "--start", "cluster", "--d", "1"],
            "d=1 must be at least 2",
        ),
    ],
)
def test_bad_input_exit_2(argv, match, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1
