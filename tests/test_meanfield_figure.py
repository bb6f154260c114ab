"""``particles figure meanfield``: k* against scipy; the tiny run (slow: about a minute)."""

import numpy as np
import pytest
import xarray as xr
from scipy import special

from particles.cli import main
from particles.figures import meanfield as fig


def test_fastest_mode_is_argmax_k2_Ik():
    for beta in (1.0, 5.0, 12.0, 36.0):
        k = np.arange(1, 65)
        assert fig.fastest_mode(beta) == k[np.argmax(k * k * special.ive(k, beta))]
    assert fig.fastest_mode(5.0) == 3  # MODEL.md §12


@pytest.mark.slow
def test_meanfield_figure_tiny(tmp_path):
    assert main(["figure", "meanfield", "--tiny", "--out-dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meanfield.nc", "meanfield.png"]
    assert (tmp_path / "meanfield.png").stat().st_size > 10_000
    with xr.open_dataset(tmp_path / "meanfield.nc", engine="h5netcdf") as ds:
        order = ds["order_pde"].load()
        assert order.sel(ratio=0.8).min() > 0.3 and order.sel(ratio=1.2).max() < 1e-3
        np.testing.assert_allclose(ds["rho_pde"].isel(time=0).mean(), 1, atol=1e-6)
        assert list(ds["cluster_count"].values) == list(ds["fastest_mode"].values)
