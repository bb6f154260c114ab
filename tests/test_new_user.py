"""What a new user hit (issue 24): file permissions, smoke figures over the published
ones, a store created from bad input, messages in the wrong vocabulary, a Trajectory
that prints every array, n = 1 handled differently by simulate and sweep."""

import contextlib
import os
import stat

import numpy as np
import pytest
from helpers import BASE

import particles
from particles.cli import build_parser, main
from particles.plotting import pyplot, save_figure


@contextlib.contextmanager
def umask(mask):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def small_trajectory():
    """Four tokens on the circle at two saves (no solve)."""
    angles = np.array([[0.0, 0.5, 1.0, 2.0], [0.1, 0.5, 0.9, 1.5]])
    theta = np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    config = {"scheme": "post", "beta": 1.0}
    return particles.Trajectory(
        ts=np.array([0.0, 1.0]), theta=theta, r=np.ones((2, 4)), stats={}, config=config
    )


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, mask, expected):
    """NetCDF, sweep chunks and manifest, PNG and GIF get 0o666 & ~umask, as open() would
    (mkstemp alone made every one of them 0600)."""
    traj = small_trajectory()
    with umask(mask):
        traj.save(tmp_path / "run.nc")
        traj.animate(tmp_path / "run.gif")
        plt = pyplot()
        fig = plt.figure()
        save_figure(fig, tmp_path / "fig.png")
        plt.close(fig)
        if mask == 0o022:  # one sweep (a compile) is enough
            particles.sweep(tmp_path / "s.sweep", **{**BASE, "beta": 1.0, "t1": 1.0})
    written = [tmp_path / name for name in ("run.nc", "run.gif", "fig.png")]
    if mask == 0o022:
        written += sorted((tmp_path / "s.sweep").iterdir())
        assert {p.name for p in written[3:]} == {"manifest.json", "chunk-00000.nc"}
    for path in written:
        assert mode(path) == expected, (path.name, oct(mode(path)))


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A clone's root as the working folder: particles/figures/ and the published figures/,
    with the system's temporary folder moved to tmp_path/tmp."""
    (tmp_path / "particles" / "figures").mkdir(parents=True)
    (tmp_path / "particles" / "figures" / "__init__.py").write_text("")
    (tmp_path / "figures").mkdir()
    for name in ("long_context.png", "long_context.nc"):
        (tmp_path / "figures" / name).write_bytes(b"published")
    (tmp_path / "tmp").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    return tmp_path


def test_tiny_figure_goes_to_a_scratch_folder_never_over_the_published_ones(checkout, capsys):
    assert main(["figure", "long_context", "--tiny"]) == 0
    out = capsys.readouterr().out
    (scratch,) = (checkout / "tmp").iterdir()
    assert sorted(p.name for p in scratch.iterdir()) == ["long_context.nc", "long_context.png"]
    assert f"wrote {scratch / 'long_context.png'}" in out
    for out_dir in ("figures", "./figures/", str(checkout / "figures")):
        assert main(["figure", "long_context", "--tiny", "--out-dir", out_dir]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "published figures" in err
    with pytest.raises(ValueError, match="published figures"):
        particles.figures.run("long_context", "figures", "tiny")
    assert {p.name: p.read_bytes() for p in (checkout / "figures").iterdir()} == {
        "long_context.png": b"published",
        "long_context.nc": b"published",
    }
    args = build_parser().parse_args(["figure", "long_context"])
    assert args.out_dir is None and args.size == "quick"  # quick and full still default to figures/


def test_sweep_arguments_are_checked_before_the_store_is_created(tmp_path, capsys):
    """A bad --init (shape, text file), norm, residual or equiangular start creates
    nothing; the corrected command then runs (it was refused as 'a different configuration')."""
    bad, good, text = tmp_path / "bad.npy", tmp_path / "good.npy", tmp_path / "text.npy"
    np.save(bad, np.ones((3, 5)))
    np.save(good, particles.init.uniform_sphere(0, 4, 4, dtype=np.float64))
    text.write_text("1 2 3\n")
    out = tmp_path / "s.sweep"
    argv = ["sweep", "--beta", "1", "--n", "4", "--d", "4", "--t1", "1", "--seeds", "1", "--no-progress"]
    for extra, message in [
        (["--init", str(bad)], "--n 4 disagrees with --init"),
        (["--init", str(text)], "--init"),
        (["--init", "equiangular:0.5"], "n + 1 <= d"),
        (["--norm", "foo"], "norm='foo'"),
        (["--residual", "foo"], "residual='foo'"),
    ]:
        assert main([*argv, *extra, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
        assert not out.exists(), extra
    for kw in (dict(init=str(bad)), dict(norm="foo"), dict(attention="usa", beta=1e5, dtype="float32")):
        with pytest.raises(ValueError):
            particles.sweep(out, **{**BASE, "beta": 1.0, "t1": 1.0, **kw})
        assert not out.exists(), kw
    assert main([*argv, "--init", str(good), "--x64", "--out", str(out)]) == 0
    assert "failed trajectories: 0 of 1" in capsys.readouterr().out


def test_animate_a_sweep_store_says_what_it_is(tmp_path, capsys):
    store = tmp_path / "s.sweep"
    store.mkdir()
    (store / "manifest.json").write_text("{}")
    assert main(["animate", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a sweep store" in err and "does not exist" not in err


def test_cli_messages_name_the_flags(tmp_path, capsys):
    text = tmp_path / "tokens.npy"
    text.write_text("0.1 0.2\n0.3 0.4\n")
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{}]), allow_pickle=True)
    truncated = tmp_path / "truncated.npy"
    np.save(truncated, np.ones((40, 4)))
    truncated.write_bytes(truncated.read_bytes()[:200])
    for argv, wanted, unwanted in [
        (["simulate", "--noise", "0.1"], "give step_size with --step-size H", "give --step_size"),
        (
            ["sweep", "--beta", "1", "--noise", "0.1", "--out", str(tmp_path / "s")],
            "with --step-size H",
            "give --step_size",
        ),
        (["simulate", "--init", str(text)], "--init", "allow_pickle"),
        (["simulate", "--init", str(objects)], "--init", "allow_pickle"),
        (["simulate", "--init", str(truncated)], "truncated or corrupt", "Traceback"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and wanted in err and unwanted not in err, err


def test_truncated_trajectory_file_is_called_truncated(tmp_path, capsys):
    path = tmp_path / "run.nc"
    small_trajectory().save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        particles.load(path)
    for command in ("animate", "info"):
        assert main([command, str(path)]) == 2
        err = capsys.readouterr().err
        assert "truncated or corrupt" in err and "not a trajectory file" not in err, err


def test_unknown_keyword_names_the_closest_one():
    x0 = particles.init.uniform_sphere(0, 3, 2)
    for kw, message in [
        (dict(rtoll=1e-3), "simulate() got an unknown keyword 'rtoll'; did you mean 'rtol'?"),
        (dict(stepsize=0.1), "did you mean 'step_size'?"),
        (dict(alpah=1.0), "did you mean 'alpha'?"),
    ]:
        with pytest.raises(ValueError) as info:
            particles.simulate(x0, "post", beta=1.0, t1=1.0, **kw)
        assert message in str(info.value) and "keeps_span" not in str(info.value)
    with pytest.raises(ValueError) as info:  # a parameter of another scheme: which scheme takes none
        particles.simulate(x0, "post", beta=1.0, t1=1.0, tau=1.0)
    assert str(info.value) == "scheme 'post' has no parameter 'tau'; it takes none"
    with pytest.raises(ValueError, match=r"sweep\(\) got an unknown keyword 'seed'; did you mean 'seeds'\?"):
        particles.sweep("unused.sweep", beta=1.0, n=4, d=4, t1=1.0, seed=3)
    assert not os.path.exists("unused.sweep")


def test_trajectory_prints_a_summary_like_particles_info(tmp_path, capsys):
    x0 = particles.init.uniform_sphere(0, 5, 3, batch=2)
    traj = particles.simulate(x0, "mix", beta=np.array([1.0, 2.0]), t1=1.0, tau=0.5)
    text = repr(traj)
    assert str(traj) == text and len(text.splitlines()) <= 10 and "Array(" not in text
    assert "mix (tau=0.5), beta 1, 2" in text and "n=5, d=3" in text and "101, t = 0 .. 1" in text
    traj.save(tmp_path / "run.nc")
    assert main(["info", str(tmp_path / "run.nc")]) == 0
    info = capsys.readouterr().out.splitlines()
    assert text.splitlines()[1:] == info[1:-1]  # the same rows; info adds the title and file size


def test_one_token_is_refused_alike_by_simulate_and_sweep(tmp_path, capsys):
    messages = []
    for argv in (["simulate", "--n", "1", "--d", "2"], ["sweep", "--beta", "1", "--n", "1", "--out", "x"]):
        assert main(argv) == 2
        messages.append(capsys.readouterr().err.split("error: ", 1)[1])
    assert (
        messages[0] == messages[1] == "--n=1 must be at least 2: every observable is about pairs of tokens\n"
    )
    np.save(tmp_path / "one.npy", np.ones((1, 3)))
    assert main(["simulate", "--init", str(tmp_path / "one.npy")]) == 2
    assert "every observable is about pairs of tokens" in capsys.readouterr().err


def test_help_lists_observables_and_describes_every_flag():
    sweep = build_parser()._subparsers._group_actions[0].choices["sweep"]
    text = sweep.format_help()
    for name in particles.analysis.OBSERVABLES:
        assert name in text
    for command in ("simulate", "sweep", "lyapunov", "stability"):
        parser = build_parser()._subparsers._group_actions[0].choices[command]
        undocumented = [a.option_strings[0] for a in parser._actions if a.option_strings and not a.help]
        assert not undocumented, (command, undocumented)


def test_interrupted_sweep_says_the_same_command_resumes(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(particles, "sweep", interrupted)
    assert main(["sweep", "--beta", "1", "--out", str(tmp_path / "s")]) == 130
    assert "rerun the same command to resume" in capsys.readouterr().err


def test_readme_describes_make_test_and_the_model_of_a_clone():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    readme = open(os.path.join(root, "README.md")).read()
    makefile = open(os.path.join(root, "Makefile")).read()
    assert '-e ".[dev]"' in makefile and '".[dev]"' in readme and "installs the test extras" not in readme
    assert "beside this checkout" not in readme and "docs/model.md" in readme
