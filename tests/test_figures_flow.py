"""The flow figures (schemes_random_weights, equiangular_rates, metastability) run in
their tiny configuration and show what MODEL.md §3 and §5.2-5.4 say they should."""

import numpy as np
import xarray as xr

from particles.cli import main


def _run(name, tmp_path):
    assert main(["figure", name, "--tiny", "--out-dir", str(tmp_path)]) == 0
    assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    return xr.open_dataset(tmp_path / f"{name}.nc", engine="h5netcdf")


def test_schemes_random_weights_ngpt_faster_than_pre(tmp_path):
    with _run("schemes_random_weights", tmp_path) as ds:
        rho = ds["mean_cosine"].sel(value="kaiming")
        assert set(ds["scheme"].values) >= {"pre", "ngpt"}
        np.testing.assert_allclose(rho.isel(t=0), 0, atol=0.2)  # n i.i.d. uniform tokens in d = 16
        mid = rho.sel(t=5.0)
        # nGPT (speed |A|/α) collapses much faster than Pre-LN (slowed by the growing radius)
        assert float(mid.sel(scheme="ngpt").mean()) > float(mid.sel(scheme="pre").mean()) + 0.2
        assert float(mid.sel(scheme="ngpt").quantile(0.05)) > float(mid.sel(scheme="pre").quantile(0.5))


def test_equiangular_rates_match_theory(tmp_path):
    with _run("equiangular_rates", tmp_path) as ds:
        fitted = ds["fitted"]
        # MODEL.md §3: post 1 - rho ~ e^{-2t}; pre 1 - rho ~ t^{-2}
        assert abs(float(fitted.sel(scheme="post")) - 2) < 0.2
        assert abs(float(fitted.sel(scheme="pre")) - 2) < 0.1
        assert str(ds["best"].sel(scheme="post").values) == "exponential"
        assert str(ds["best"].sel(scheme="pre").values) == "power"
        rho = ds["rho"]
        assert float(rho.isel(t=0).max()) == 0.0 and bool((rho.diff("t") >= -1e-12).all())


def test_metastability_staircase(tmp_path):
    with _run("metastability", tmp_path) as ds:
        energy, count, t = ds["energy"].values, ds["cluster_count"].values, ds["t"].values
        # SA is a gradient flow of E_beta: it never decreases (up to round-off)
        assert np.all(np.diff(energy, axis=-1) >= -1e-9 * energy[..., 1:])
        assert np.all(np.diff(count, axis=-1) <= 0)
        n = ds.attrs["n"]
        assert np.all(count[:, 0] > count[:, -1]) and np.all(count[:, 0] <= n)
        # metastable: after the fast clustering there is still a merge at t > 10,
        # preceded by a plateau during which the energy hardly moves
        for e, c in zip(energy, count):
            late = np.flatnonzero((np.diff(c) < 0) & (t[1:] > 10))
            assert late.size >= 1
            k = late[0]
            plateau = (t >= 10) & (t <= 0.5 * t[k + 1])
            assert plateau.sum() >= 5
            jump = e[k + 1] - e[plateau][-1]  # the merge: energy jumps as two clusters join
            assert jump > 0 and np.ptp(e[plateau]) < 0.1 * jump
