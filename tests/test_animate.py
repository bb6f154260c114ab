"""Animations (particles.animate) and the `particles animate` command."""

import matplotlib
import numpy as np
import pytest
import xarray as xr
from PIL import Image

import particles
from particles import analysis
from particles._animation import _principal_coordinates
from particles.animate import PROJECTION, figure
from particles.cli import main

TS = np.linspace(0.0, 3.0, 8)


@pytest.fixture(scope="module")
def runs():
    """One small run per case, shared by the tests (each shape is one compile): d = 2,
    d = 3 batched over β = 1, 2, and d = 5."""
    out = {}
    for d, batch in ((2, None), (3, 2), (5, None)):
        x0 = particles.init.uniform_sphere(0, 6, d, batch=batch)
        beta = np.array([1.0, 2.0]) if batch else 1.0
        out[d] = particles.simulate(x0, "post", beta=beta, t1=3.0, ts=TS)
    return out


def _frames(path):
    with Image.open(path) as im:
        frames = []
        for k in range(im.n_frames):
            im.seek(k)
            frames.append(np.asarray(im.convert("RGB")))
    return frames


@pytest.mark.parametrize("d", [2, 3])
def test_gif_has_one_frame_per_save(tmp_path, runs, d):
    out = tmp_path / f"run{d}.gif"
    assert runs[d].animate(out, fps=5) == str(out)
    frames = _frames(out)
    assert len(frames) == len(TS)
    assert not np.array_equal(frames[0], frames[-1])  # the tokens move and t changes
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # written atomically


def test_figure_axes_and_projection_label(runs):
    for d, kind in ((2, "unit circle"), (3, "unit sphere"), (5, PROJECTION)):
        fig = figure(runs[d], frame=0)
        ax, ax_rho = fig.axes
        assert kind in ax.get_title()
        assert ax.name == ("3d" if d == 3 else "rectilinear")
        assert "mean cosine" in ax_rho.get_ylabel() and "t" in ax_rho.get_xlabel()
        assert "t = 0" in fig._suptitle.get_text()
        if d == 5:
            assert ax.get_xlabel().startswith("principal direction 1 (")
        matplotlib.pyplot.close(fig)
    fig = figure(runs[5], components=3)
    assert fig.axes[0].name == "3d" and PROJECTION in fig.axes[0].get_title()
    matplotlib.pyplot.close(fig)


def test_principal_coordinates_recover_a_plane():
    # tokens in the plane spanned by (e1 + e3)/√2 and e4 of R^5: the projection on the
    # top two principal directions keeps every token on the unit circle, and nothing
    # is left for a third direction
    angles = np.linspace(0, 2 * np.pi, 7)[:-1]
    u = np.array([1, 0, 1, 0, 0]) / np.sqrt(2)
    v = np.array([0, 0, 0, 1, 0.0])
    theta = np.stack([np.cos(angles + s)[:, None] * u + np.sin(angles + s)[:, None] * v for s in (0, 0.3)])
    coords, share = _principal_coordinates(theta, 3)
    np.testing.assert_allclose(np.linalg.norm(coords[..., :2], axis=-1), 1, atol=1e-12)
    np.testing.assert_allclose(share, [0.5, 0.5, 0], atol=1e-12)


def test_tokens_coloured_by_cluster():
    # tokens 0 and 1 within δ of each other, 2 and 3 alone: one colour for the pair, grey for the rest
    angles = np.array([0.0, 1e-3, np.pi / 2, np.pi])
    theta = np.stack([np.cos(angles), np.sin(angles)], -1)[None]
    traj = particles.Trajectory(
        ts=np.array([0.0]), theta=theta, r=np.ones((1, 4)), stats={}, config={"scheme": "post"}
    )
    np.testing.assert_array_equal(analysis.cluster_labels(theta[0], 1e-3), [0, 0, 2, 3])
    fig = figure(traj)
    colors = fig.axes[0].collections[-1].get_facecolors()
    grey = matplotlib.colors.to_rgba(particles.animate.ALONE)
    np.testing.assert_array_equal(colors[0], colors[1])
    assert not np.allclose(colors[0], grey)
    np.testing.assert_allclose(colors[2], grey)
    np.testing.assert_allclose(colors[3], grey)
    assert "3 clusters" in fig._suptitle.get_text() and "sizes 2" in fig._suptitle.get_text()
    matplotlib.pyplot.close(fig)


def test_sample_of_a_batch_and_bad_arguments(tmp_path, runs):
    batched = runs[3]
    fig = figure(batched, sample=1)
    assert "β = 2" in fig._suptitle.get_text() and "sample 1 of 2" in fig._suptitle.get_text()
    matplotlib.pyplot.close(fig)
    with pytest.raises(ValueError, match="sample=2 is out of range"):
        figure(batched, sample=2)
    with pytest.raises(ValueError, match="not batched"):
        figure(runs[2], sample=1)
    with pytest.raises(ValueError, match="unknown suffix"):
        particles.animate.animate(batched, tmp_path / "a.png")
    with pytest.raises(ValueError, match="fps"):
        particles.animate.animate(batched, tmp_path / "a.gif", fps=0)


def test_mp4_without_ffmpeg_is_one_line_error(tmp_path, runs, monkeypatch):
    monkeypatch.setitem(matplotlib.rcParams, "animation.ffmpeg_path", "no-such-ffmpeg-here")
    with pytest.raises(ValueError, match="needs ffmpeg on PATH") as err:
        runs[2].animate(tmp_path / "a.mp4")
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_cli_animate_writes_gif(tmp_path, runs, capsys):
    path = tmp_path / "run.nc"
    runs[3].save(path)
    assert main(["animate", str(path), "--sample", "1", "--fps", "4"]) == 0
    out = tmp_path / "run.gif"
    assert f"wrote {out}" in capsys.readouterr().out
    assert len(_frames(out)) == len(TS)


def _d1_file(path):
    theta = np.ones((3, 4, 1))
    particles.Trajectory(
        ts=np.linspace(0, 1, 3), theta=theta, r=np.ones((3, 4)), stats={}, config={"scheme": "post"}
    ).save(path)


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "does not exist"),
        ("d1", "d=1"),
        ("suffix", "unknown suffix"),
        ("not_trajectory", "not a trajectory file"),
        ("not_netcdf", "not a trajectory file"),
        ("sample", "out of range"),
    ],
)
def test_cli_animate_bad_input_is_one_line_exit_2(tmp_path, runs, capsys, case, message):
    path, out, extra = tmp_path / "run.nc", tmp_path / "run.gif", []
    if case == "d1":
        _d1_file(path)
    elif case in ("suffix", "sample"):
        runs[3].save(path)
        out = tmp_path / "run.avi" if case == "suffix" else out
        extra = ["--sample", "3"] if case == "sample" else []
    elif case == "not_trajectory":
        xr.Dataset({"a": ("x", np.arange(3.0))}).to_netcdf(path, engine="h5netcdf")
    elif case == "not_netcdf":
        path.write_text("hello")
    code = main(["animate", str(path), "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("particles animate: error:") and message in err
    assert "Traceback" not in err
    assert not out.exists()


def test_cli_info_trajectory(tmp_path, runs, capsys):
    path = tmp_path / "run.nc"
    runs[3].save(path)
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    for part in (
        "scheme  post, beta 1, 2",
        "n=6, d=3",
        "(2,): 2 samples",
        f"saves   {len(TS)}, t = 0 .. 3",
        "float64",
    ):
        assert part in text, (part, text)
