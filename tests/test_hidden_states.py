"""Hidden states of real models in (issue 27): particles.load_hidden_states reads every
format to the same Trajectory and never unpickles; analysis.fit_depth_profile names
the scheme and recovers the time scale; ``particles analyze`` on the command line."""

import os
import pathlib
import pickle

import ml_dtypes
import numpy as np
import pytest
import safetensors.numpy
import xarray as xr
from scipy.integrate import solve_ivp

import particles
from particles.analysis import fit_depth_profile
from particles.cli import main

L, N, D = 4, 5, 7


@pytest.fixture
def hidden():
    """Hidden states (L+1, n, d), not on the sphere."""
    return np.random.default_rng(0).normal(size=(L + 1, N, D)) * np.linspace(1, 3, L + 1)[:, None, None]


def _same(a, b):
    for field in ("ts", "theta", "r"):
        x, y = np.asarray(getattr(a, field)), np.asarray(getattr(b, field))
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


# -- reading ------------------------------------------------------------------------


def _write(fmt, path, x):
    """Write ``x`` in format ``fmt`` (with a second array where keyed); the key to read."""
    other = np.zeros((2, 3, 4))
    if fmt == "npy":
        np.save(path, x)
    elif fmt == "npz":
        np.savez(path, hidden_states=x)
    elif fmt == "npz-keyed":
        np.savez(path, hidden_states=x, other=other)
    elif fmt == "safetensors":
        safetensors.numpy.save_file({"hidden_states": x}, path)
    elif fmt == "safetensors-keyed":
        safetensors.numpy.save_file({"hidden_states": x, "other": other}, path)
    elif fmt in ("nc", "nc-keyed"):
        data = {"hidden_states": (("layer", "token", "feature"), x)}
        if fmt == "nc-keyed":
            data["other"] = (("a", "b", "c"), other)
        xr.Dataset(data).to_netcdf(path, engine="h5netcdf")
    return "hidden_states" if fmt.endswith("keyed") else None


FORMATS = {
    "npy": ".npy",
    "npz": ".npz",
    "npz-keyed": ".npz",
    "safetensors": ".safetensors",
    "safetensors-keyed": ".safetensors",
    "nc": ".nc",
    "nc-keyed": ".nc",
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reads_the_same_trajectory(tmp_path, hidden, fmt):
    path = tmp_path / f"h{FORMATS[fmt]}"
    key = _write(fmt, path, hidden)
    traj = particles.load_hidden_states(path, key)
    np.save(tmp_path / "ref.npy", hidden)
    _same(traj, particles.load_hidden_states(tmp_path / "ref.npy"))
    np.testing.assert_allclose(np.asarray(traj.x), hidden, rtol=1e-15, atol=0)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(traj.theta), axis=-1), 1, rtol=1e-15)


def test_it_looks_like_a_layer_run(tmp_path, hidden):
    np.save(tmp_path / "h.npy", hidden)
    traj = particles.load_hidden_states(tmp_path / "h.npy")
    assert isinstance(traj, particles.Trajectory) and traj.batch_shape == ()
    np.testing.assert_array_equal(traj.ts, np.arange(L + 1.0))
    assert traj.config["layers"] == L and traj.config["n"] == N and traj.config["d"] == D
    ds = traj.to_xarray()
    np.testing.assert_array_equal(ds["layer"].values, np.arange(L + 1))
    rho = particles.analysis.observe(
        ["mean_cosine", "effective_rank", "radius_mean"], traj.theta, traj.r, 1.0
    )
    assert all(v.shape == (L + 1,) for v in rho.values())
    # saved and read back (a trajectory file is read as it was written), and described
    traj.save(tmp_path / "h.nc")
    _same(particles.load_hidden_states(tmp_path / "h.nc"), traj)
    assert "hidden states" in particles.info(tmp_path / "h.nc") and f"n={N}, d={D}" in repr(traj)


def test_batch_and_layer_axis(tmp_path, hidden):
    batch = np.stack([hidden, 2 * hidden[:, ::-1], hidden + 1])  # (batch, L+1, n, d)
    np.save(tmp_path / "b.npy", batch)
    traj = particles.load_hidden_states(tmp_path / "b.npy")
    assert traj.batch_shape == (3,) and traj.theta.shape == (3, L + 1, N, D) and traj.r.shape == (3, L + 1, N)
    for k in range(3):
        np.save(tmp_path / "one.npy", batch[k])
        one = particles.load_hidden_states(tmp_path / "one.npy")
        np.testing.assert_array_equal(traj.theta[k], one.theta)
        np.testing.assert_array_equal(traj.r[k], one.r)
    # (L+1, batch, n, d), as a stack of HuggingFace's hidden_states: layer_axis=0
    safetensors.numpy.save_file(
        {"h": np.ascontiguousarray(batch.swapaxes(0, 1))}, tmp_path / "hf.safetensors"
    )
    _same(particles.load_hidden_states(tmp_path / "hf.safetensors", layer_axis=0), traj)
    assert traj.to_xarray().sizes["sample"] == 3


def test_dtypes(tmp_path, hidden):
    for stored, read in (
        (np.float32, np.float32),
        (np.float64, np.float64),
        (np.float16, np.float32),
        (ml_dtypes.bfloat16, np.float32),
        (np.int32, np.float64),  # JAX's default float (the tests run in 64-bit mode)
    ):
        safetensors.numpy.save_file({"h": hidden.astype(stored)}, tmp_path / "h.safetensors")
        traj = particles.load_hidden_states(tmp_path / "h.safetensors")
        assert traj.theta.dtype == read and traj.r.dtype == read and traj.ts.dtype == read


@pytest.mark.parametrize(
    "make, kw, match",
    [
        (lambda h: h[0], {}, r"shape \(5, 7\) \(rank 2\); hidden states have rank 3"),
        (lambda h: h[None, None], {}, r"rank 5"),
        (lambda h: np.where(np.isin(np.arange(h.size), [9, 40]).reshape(h.shape), np.nan, h), {},
         r"holds 2 non-finite values \(NaN or inf\), the first at index \(0, 1, 2\)"),
        (lambda h: np.where(np.arange(h.size).reshape(h.shape) == 60, np.inf, h), {},
         r"holds 1 non-finite value \(NaN or inf\), the first at index \(1, 3, 4\)"),
        (lambda h: h, {"key": "x"}, r"key='x' was given, but .* holds one unnamed array"),
        (lambda h: h, {"layer_axis": -2}, r"layer_axis=-2 must be one of the leading axes"),
        (lambda h: h[:1], {}, r"need the input and at least one layer's output"),
        (lambda h: h[:, :0], {}, r"empty array of shape \(5, 0, 7\)"),
        (lambda h: np.where(np.arange(h.size).reshape(h.shape) // D == 7, 0, h), {},
         r"holds 1 token equal to the zero vector .* layer 1, token 2"),
        (lambda h: h.astype(complex), {}, r"holds complex128 values"),
    ],
)  # fmt: skip
def test_bad_arrays(tmp_path, hidden, make, kw, match):
    """Each a one-line ValueError naming the problem."""
    path = tmp_path / "h.npy"
    np.save(path, make(hidden))
    with pytest.raises(ValueError, match=match) as e:
        particles.load_hidden_states(path, **kw)
    assert "\n" not in str(e.value)


def test_bad_files(tmp_path, hidden):
    def refused(path, match, **kw):
        with pytest.raises(ValueError, match=match) as e:
            particles.load_hidden_states(path, **kw)
        assert "\n" not in str(e.value)

    refused(tmp_path / "h.txt", r"unknown extension '\.txt'; read: \.npy, \.npz, \.safetensors, \.nc")
    refused(tmp_path / "missing.npy", r"does not exist")
    (tmp_path / "empty.safetensors").write_bytes(b"")
    refused(tmp_path / "empty.safetensors", r"is empty \(0 bytes\)")
    (tmp_path / "junk.npy").write_bytes(b"not numpy at all")
    refused(tmp_path / "junk.npy", r"is not a \.npy file")
    (tmp_path / "junk.safetensors").write_bytes(b"\x01" * 32)
    refused(tmp_path / "junk.safetensors", r"not a readable \.safetensors file")
    np.savez(tmp_path / "none.npz")
    refused(tmp_path / "none.npz", r"holds no arrays")
    np.savez(tmp_path / "two.npz", a=hidden, b=hidden)
    refused(tmp_path / "two.npz", r"holds 2 arrays \('a', 'b'\): pass key= to pick one")
    refused(tmp_path / "two.npz", r"key='c' is not in .* it holds 'a', 'b'", key="c")
    safetensors.numpy.save_file({"a": hidden, "b": hidden}, tmp_path / "two.safetensors")
    refused(tmp_path / "two.safetensors", r"holds 2 tensors \('a', 'b'\)")
    xr.Dataset({"a": (("l", "n", "d"), hidden), "b": ("l", np.arange(L + 1))}).to_netcdf(tmp_path / "two.nc")
    refused(tmp_path / "two.nc", r"holds 2 data variables \('a', 'b'\)")
    refused(tmp_path / "two.nc", r"key='c' is not in", key="c")
    os.mkdir(tmp_path / "folder.npy")
    refused(tmp_path / "folder.npy", r"is a folder")


# -- nothing is ever unpickled --------------------------------------------------------


class _Payload:
    """Unpickling this writes ``marker``: the side effect a malicious file would have."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.write_text, (pathlib.Path(self.marker), "unpickled")


def test_pickles_are_refused_and_never_run(tmp_path):
    # the payload is live: unpickled, it leaves its marker
    pickle.loads(pickle.dumps(_Payload(tmp_path / "control")))
    assert (tmp_path / "control").read_text() == "unpickled"

    marker = tmp_path / "marker"
    payload = _Payload(marker)
    np.save(tmp_path / "objects.npy", np.array([payload, 1.0], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "objects.npz", hidden_states=np.array([payload], dtype=object))
    for name in ("raw.npy", "model.pt", "model.pth", "pytorch_model.bin", "h.pkl"):
        (tmp_path / name).write_bytes(pickle.dumps(payload))
    for name in (
        "objects.npy",
        "objects.npz",
        "raw.npy",
        "model.pt",
        "model.pth",
        "pytorch_model.bin",
        "h.pkl",
    ):
        with pytest.raises(ValueError, match=r"never read \(unpickling can run code\).*safetensors") as e:
            particles.load_hidden_states(tmp_path / name)
        assert "\n" not in str(e.value) and "safetensors.numpy.save_file" in str(e.value)
    assert not marker.exists()


# -- which scheme explains the depth profile ---------------------------------------------


def _equiangular_rates(scheme, n, beta):
    """d(ρ, r)/dt of the equiangular model, written out from MODEL.md §3 (independent of
    particles.equiangular)."""

    def rates(t, y):
        rho, r = y
        Z = np.exp(beta) + (n - 1) * np.exp(beta * rho)
        g = 2 * np.exp(beta * rho) * (1 - rho) * (1 + (n - 1) * rho) / Z
        a = (np.exp(beta) + (n - 1) * rho * np.exp(beta * rho)) / Z
        A = np.sqrt(
            np.exp(2 * beta) + 2 * (n - 1) * rho * np.exp(beta * (1 + rho))
            + (n - 1) * (1 + (n - 2) * rho) * np.exp(2 * beta * rho)
        ) / Z  # fmt: skip
        return {
            "post": (g, 0), "pre": (g / r, a), "peri": (g / (r * A), a / A), "ngpt": (g / A, 0),
            "sqrt": (g / np.sqrt(t + 1), 0),
        }[scheme]  # fmt: skip

    return rates


@pytest.mark.parametrize("scheme", ["post", "pre", "peri", "ngpt", "sqrt"])
def test_fit_recovers_a_schemes_own_curve(tmp_path, scheme):
    """Hidden states whose mean cosine is exactly ρ_S(c·l) (equiangular tokens) give back
    S and c."""
    n, c, rho0, beta = 5, 0.37, 0.1, 1.0
    depth = np.arange(13.0)
    sol = solve_ivp(
        _equiangular_rates(scheme, n, beta), (0, c * depth[-1]), [rho0, 1.0], t_eval=c * depth,
        rtol=1e-13, atol=1e-14, method="DOP853",
    )  # fmt: skip
    rho = sol.y[0]
    theta = np.sqrt(rho)[:, None, None] * np.eye(1, n + 1) + np.sqrt(1 - rho)[:, None, None] * np.eye(
        n, n + 1, 1
    )
    np.save(tmp_path / "h.npy", 3.0 * theta)
    fit = fit_depth_profile(particles.load_hidden_states(tmp_path / "h.npy"))
    assert fit.scheme == scheme and fit.at_bound == ()
    assert fit.params["c"] == pytest.approx(c, rel=1e-6)
    assert fit.residual_norms[scheme] < 1e-7 and np.max(np.abs(fit.residuals)) < 1e-7
    np.testing.assert_allclose(fit.measured, rho, atol=1e-14)
    runner_up = list(fit.residual_norms.values())[1]
    assert runner_up > 1e-3  # the other schemes' curves have other shapes


@pytest.mark.parametrize("scheme, T", [("post", 3.0), ("pre", 6.0)])
def test_fit_recovers_the_scheme_and_time_scale_of_layers(tmp_path, scheme, T):
    """Hidden states of the package's own layers (identity weights, equiangular start):
    the scheme is named, and c tends to T/L at first order in h = T/L, as the layers
    tend to the flow (MODEL.md §7)."""
    x0 = particles.init.equiangular(4, 6, 0.0)
    errors = []
    for layers in (6, 12):
        traj = particles.simulate(x0, scheme, beta=1.0, t1=T, layers=layers)
        np.save(tmp_path / "h.npy", np.asarray(traj.x))
        fit = fit_depth_profile(particles.load_hidden_states(tmp_path / "h.npy"))
        assert fit.scheme == scheme and fit.at_bound == ()
        errors.append(1 - fit.params["c"] / (T / layers))
    norms = list(fit.residual_norms.values())
    assert (
        norms[0] < norms[1] / 3
    )  # at h = T/12, clearly the best (post 8e-3 against 0.11, pre 0.019 against 0.090)
    assert 0 < errors[1] < 0.2  # h = T/12: c within 20% of T/L (15% for post, 17% for pre)
    assert 1.5 < errors[0] / errors[1] < 2.5  # halving h halves the error: first order


def test_fit_flags_a_profile_no_scheme_explains(tmp_path, hidden):
    """Tokens that do not move (a flat profile): every scheme's best c is the lower bound."""
    np.save(tmp_path / "h.npy", np.broadcast_to(hidden[:1], hidden.shape))
    fit = fit_depth_profile(particles.load_hidden_states(tmp_path / "h.npy"), ["post", "pre"])
    assert set(fit.at_bound) == {"post", "pre"} and fit.params["c"] == pytest.approx(1e-4)
    assert "(c at a bound)" in str(fit) and np.max(np.abs(fit.residuals)) < 1e-3


def test_fit_arguments(tmp_path, hidden):
    np.save(tmp_path / "h.npy", hidden)
    traj = particles.load_hidden_states(tmp_path / "h.npy")
    for kw, match in (
        ({"schemes": []}, r"schemes is empty"),
        ({"schemes": ["post", "post"]}, r"name 'post' twice"),
        ({"schemes": ["bogus"]}, r"scheme='bogus' is not one of"),
        ({"c_range": (1.0, 0.5)}, r"0 < lo < hi"),
    ):
        with pytest.raises(ValueError, match=match):
            fit_depth_profile(traj, **kw)
    np.save(tmp_path / "short.npy", hidden[:2])
    with pytest.raises(ValueError, match=r"need at least 3 saves"):
        fit_depth_profile(particles.load_hidden_states(tmp_path / "short.npy"))
    mix = particles.get_scheme("mix", tau=2.0)  # an instance is labelled with its parameters
    with pytest.raises(ValueError, match=r"name 'mix\(tau=2\)' twice"):
        fit_depth_profile(traj, [mix, mix])


# -- particles analyze ------------------------------------------------------------------


def test_cli_analyze(tmp_path, hidden, capsys):
    path = tmp_path / "h.safetensors"
    safetensors.numpy.save_file({"hidden_states": hidden, "other": hidden[:2]}, path)
    out = tmp_path / "result.nc"
    assert (
        main(["analyze", str(path), "--key", "hidden_states", "--schemes", "post,pre", "--out", str(out)])
        == 0
    )
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert f"{L} layers, n={N} tokens, d={D}, float64" in lines[0]
    assert lines[1].split() == [
        "layer",
        "mean",
        "cosine",
        "min",
        "cosine",
        "effective",
        "rank",
        "mean",
        "radius",
    ]
    assert [row.split()[0] for row in lines[2 : L + 3]] == [str(k) for k in range(L + 1)]
    assert "depth profile fit" in text and " best" in text and f"wrote {out}" in text
    _same(particles.load_hidden_states(out), particles.load_hidden_states(path, "hidden_states"))
    # bad input: one line, exit code 2, nothing written
    (tmp_path / "model.pt").write_bytes(b"\x80\x04")
    for argv in (
        ["analyze", str(tmp_path / "model.pt"), "--out", str(tmp_path / "no.nc")],
        ["analyze", str(path), "--out", str(tmp_path / "no.nc")],  # two arrays, no --key
        [
            "analyze",
            str(path),
            "--key",
            "hidden_states",
            "--schemes",
            "bogus",
            "--out",
            str(tmp_path / "no.nc"),
        ],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("particles analyze: error: ") and err.count("\n") == 1
    assert sorted(os.listdir(tmp_path)) == ["h.safetensors", "model.pt", "result.nc"]
