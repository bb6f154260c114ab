"""Each figure runs in its tiny configuration and writes a PNG and its data."""

import numpy as np
import pytest
import xarray as xr

from particles.cli import main
from particles.figures.long_context import RHO


def test_long_context_limits(tmp_path):
    assert main(["figure", "long_context", "--tiny", "--out-dir", str(tmp_path)]) == 0
    assert (tmp_path / "long_context.png").stat().st_size > 10_000
    with xr.open_dataset(tmp_path / "long_context.nc", engine="h5netcdf") as ds:
        cos = ds["output_cosine"]
        # small gamma: the outputs align; large gamma: they keep the input cosine rho
        assert float(cos.sel(gamma=0.5).max()) > 0.97
        assert abs(float(cos.sel(gamma=4.0).isel(n=-1)) - RHO) < 0.05
        # the curves cross near the critical gamma, at 4 rho / (1 + 3 rho)
        crit = cos.interp(gamma=1 / (1 - RHO)).values
        np.testing.assert_allclose(crit, 4 * RHO / (1 + 3 * RHO), atol=0.03)


@pytest.mark.slow
def test_layers_vs_ode_figure_shows_first_order(tmp_path):
    """The figure's convergence panel: every scheme's fitted slope is about 1 (first order)."""
    assert main(["figure", "layers_vs_ode", "--tiny", "--out-dir", str(tmp_path)]) == 0
    assert (tmp_path / "layers_vs_ode.png").stat().st_size > 10_000
    with xr.open_dataset(tmp_path / "layers_vs_ode.nc", engine="h5netcdf") as ds:
        assert np.all((ds["slope"].values > 0.8) & (ds["slope"].values < 1.25)), ds["slope"].values
        assert np.all(np.isfinite(ds["mean_cosine"].values))


def test_stability_figure_tiny(tmp_path):
    import jax
    import jax.numpy as jnp

    from particles import sensitivity
    from particles.figures.stability import SIZES

    assert main(["figure", "stability", "--tiny", "--out-dir", str(tmp_path)]) == 0
    assert (tmp_path / "stability.png").stat().st_size > 10_000
    cfg = SIZES["tiny"]
    loss = sensitivity.random_readout(1, cfg["n"], cfg["d"])
    top = float(jnp.linalg.norm(jax.grad(loss)(jnp.zeros((cfg["n"], cfg["d"])))))  # ∂ℓ/∂x_L of a linear ℓ
    with xr.open_dataset(tmp_path / "stability.nc", engine="h5netcdf") as ds:
        np.testing.assert_allclose(ds["gradient_norm"].values[..., -1], top, rtol=1e-5)
        np.testing.assert_allclose(
            ds["hidden_norm"].values[..., 0], np.sqrt(cfg["d"]), rtol=0.5
        )  # |x_0| ≈ √d
        assert np.all(np.isfinite(ds["hessian_top"].values)) and np.all(
            np.isfinite(ds["lyapunov_top"].values)
        )
        assert "p = peri" in ds.attrs["findings"]
