"""The sweep-based figures (phase_diagram, collapse_rates) in their tiny configuration:
the files are written, nothing else is left behind, and the data show the physics."""

import numpy as np
import xarray as xr

import particles
from particles.cli import main
from particles.figures.phase_diagram import DELTA, N, equiangular_curve


def open_nc(path):
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


def test_phase_diagram_tiny(tmp_path):
    assert main(["figure", "phase_diagram", "--tiny", "--out-dir", str(tmp_path)]) == 0
    # only the figure and its data: the sweep store is removed once they are written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["phase_diagram.nc", "phase_diagram.png"]
    assert (tmp_path / "phase_diagram.png").stat().st_size > 10_000
    ds = open_nc(tmp_path / "phase_diagram.nc")
    p = ds["pair_probability"]  # (d, beta, time)
    assert set(p.dims) == {"d", "beta", "time"} and float(p.min()) >= 0 and float(p.max()) <= 1
    # uniform random tokens are spread at t = 0; at the smallest beta all pairs have met by t = 30,
    # at the largest beta only a few close pairs have met by t = 5 (none in d = 128)
    np.testing.assert_array_equal(p.isel(time=0).values, 0)
    np.testing.assert_array_equal(p.isel(beta=0, time=-1).values, 1)
    assert float(p.isel(beta=-1).sel(time=slice(0, 5)).max()) < 0.05
    assert float(p.sel(d=128).isel(beta=-1).sel(time=slice(0, 5)).max()) == 0
    # pairs that met stay together: the probability grows with t at every (d, beta)
    assert np.all(np.diff(p.values, axis=-1) >= -1e-6)

    # the equiangular curve rises with t and starts near the post collapse time (~5 for n = 32)
    curve = ds["equiangular_beta"].values
    t_curve = ds["t_curve"].values
    finite = np.isfinite(curve)
    assert np.all(np.diff(curve[finite]) >= 0)
    assert 3 < t_curve[finite][0] < 8 and curve[finite][-1] > 5

    # for d = 128 the grid follows the curve: well below it collapsed, well above it not
    big = p.sel(d=128)
    beta_star = np.interp(big["time"].values, t_curve[finite], curve[finite], left=-np.inf)
    betas = big["beta"].values[:, None]
    assert np.all(big.values[betas < beta_star - 1] >= 0.9)
    assert np.all(big.values[betas > beta_star + 1] <= 0.1)
    assert np.sum(betas < beta_star - 1) > 0 and np.sum(betas > beta_star + 1) > 0

    # and the transition is sharper in higher dimension: fewer cells strictly between 0 and 1
    def fuzz(d):
        q = p.sel(d=d).values
        return float(np.mean(np.minimum(q, 1 - q)))

    assert fuzz(128) < fuzz(8)


def test_equiangular_curve_inverts_the_reduced_model():
    """β*(t) is the largest β that has collapsed by t: a little below it the reduced
    model is past 1 − δ at t, a little above it is not."""
    ts = np.linspace(0, 30, 61)
    curve = equiangular_curve(ts)
    k = np.flatnonzero(np.isfinite(curve) & (curve < 8.5))[::6]
    assert k.size >= 4
    betas = np.stack([curve[k] - 0.05, curve[k] + 0.05])  # one solve (one compile) for both
    rho, _ = particles.equiangular.solve("post", n=N, beta=betas, rho0=0.0, ts=ts)
    at_t = np.asarray(rho)[:, np.arange(k.size), k]
    assert np.all(at_t[0] >= 1 - DELTA)
    assert np.all(at_t[1] < 1 - DELTA)


def test_collapse_rates_tiny(tmp_path, capsys):
    assert main(["figure", "collapse_rates", "--tiny", "--out-dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["collapse_rates.nc", "collapse_rates.png"]
    assert (tmp_path / "collapse_rates.png").stat().st_size > 10_000
    ds = open_nc(tmp_path / "collapse_rates.nc")
    tau = ds["collapse_time"]  # (scheme, n, beta, seed), inf where not collapsed by t1
    assert not np.any(np.isnan(tau.values)) and float(tau.min()) > 0
    post, pre = tau.sel(scheme="post"), tau.sel(scheme="pre")
    # post collapses exponentially: 1 - rho ~ e^{-2t} reaches 1e-3 after a few time units
    assert np.all(np.isfinite(post.values))
    assert 2 < float(post.sel(beta=1.0).median()) < 12
    # pre only polynomially (1 - rho ~ t^-2): every seed later than post, by a wide margin
    assert np.all(pre.values > 3 * post.values)
    # a lower temperature (larger beta) slows the collapse down
    med = ds["tau_median"]
    assert np.all(med.sel(scheme="post", beta=4.0) > med.sel(scheme="post", beta=1.0))
    # the table (printed, and stored with the data) has a row per scheme
    table = ds.attrs["table"]
    assert table in capsys.readouterr().out
    for scheme in ("post", "pre"):  # one row against beta, one against n
        assert sum(line.split()[0] == scheme for line in table.splitlines() if line.strip()) == 2


def test_noise_transition_tiny(tmp_path):
    """The figure's files, nothing left behind; its exact curves against scipy; the
    data: coherent below the β = 0 threshold, incoherent above, and pre collapses
    without noise but not with it."""
    import scipy.optimize
    import scipy.special

    from particles.figures import noise_transition as nt

    assert main(["figure", "noise_transition", "--tiny", "--out-dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noise_transition.nc", "noise_transition.png"]
    assert (tmp_path / "noise_transition.png").stat().st_size > 10_000
    ds = open_nc(tmp_path / "noise_transition.nc")

    for nu, x in [(1.0, 0.3), (1.5, 2.0), (4.0, 40.0), (16.0, 700.0)]:
        exact = scipy.special.ive(nu, x) / scipy.special.ive(nu - 1, x)
        np.testing.assert_allclose(nt.bessel_ratio(nu, x), exact, rtol=1e-12)
    for d, D in [(2, 0.25), (3, 0.2), (8, 0.08)]:
        f = lambda r: r - scipy.special.ive(d / 2, r / D) / scipy.special.ive(d / 2 - 1, r / D)
        np.testing.assert_allclose(
            nt.mean_field_order_parameter(d, D), scipy.optimize.brentq(f, 1e-9, 1), rtol=1e-9
        )
    assert nt.mean_field_order_parameter(3, 0.34)[0] == 0
    np.testing.assert_allclose(nt.linear_threshold(3, [0.0, 1e-4]), 1 / 3, rtol=1e-8)  # β → 0: 1/d
    np.testing.assert_allclose(nt.linear_threshold(2, 1.0), scipy.special.i1(1.0) / scipy.special.i0(1.0))

    r = ds["r_beta0"].sel(d=2)  # n = 32: above 1/2 the rms is 1/√(n(1 − 1/(2D)))
    assert float(r.sel(noise_beta0=0.1).min()) > 0.8 and float(r.sel(noise_beta0=0.7).max()) < 0.5
    np.testing.assert_allclose(ds["r_mean_field"].sel(d=2, noise_beta0=0.7), 0)
    final = ds["slow_mean_cosine"].sel(scheme="pre").isel(time=-1)
    assert float(final.sel(noise_slow=0.0).min()) > 0.9 > float(final.sel(noise_slow=0.03).max()) + 0.3
