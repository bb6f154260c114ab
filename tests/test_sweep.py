"""Resumable sweeps: grids, chunked stores, resuming, refusals, observables."""

import contextlib
import errno
import json
import logging
import os

import diffrax
import jax
import numpy as np
import pytest
import xarray as xr
from helpers import files, run, same

import particles
from particles import _sweep
from particles.analysis import crossing_time
from particles.cli import main


def test_equiangular_sweep_matches_reduced_model(tmp_path):
    """From the equiangular start the mean cosine of every (beta, seed) is ρ(t) of the
    reduced model (MODEL.md §3); the collapse event stops at its threshold time."""
    betas = [0.5, 1.0, 3.0]
    ds = run(tmp_path / "a", init="equiangular:0.0", rtol=1e-10, atol=1e-12)
    assert dict(ds.sizes) == {"beta": 3, "seed": 2, "time": 13}
    assert float(ds["n"]) == 4 and "scheme" not in ds.dims
    ts_dense = np.linspace(0.0, 6.0, 6001)  # the saves are every 500th time
    dense, _ = particles.equiangular.solve("post", 4, np.asarray(betas), 0.0, ts_dense)
    for s in range(2):
        np.testing.assert_allclose(ds.mean_cosine.isel(seed=s), dense[:, ::500], atol=1e-8)
    np.testing.assert_array_equal(ds.cluster_count.isel(time=0), 4.0)
    t_ref = np.asarray(crossing_time(ts_dense, dense, 1 - 1e-3))
    assert np.all(np.isfinite(t_ref[:2])) and np.isinf(t_ref[2])  # beta=3 is too slow for t1
    stopped = run(tmp_path / "b", init="equiangular:0.0", rtol=1e-10, atol=1e-12, stop_at_collapse=True)
    np.testing.assert_allclose(stopped.t_stop[:2], t_ref[:2], atol=1e-5)
    assert float(stopped.t_stop[2]) == 6.0
    np.testing.assert_allclose(stopped.collapse_time.isel(seed=0), t_ref, atol=1e-5)
    after = stopped.time.values[None, None, :] > stopped.t_stop.values[:, None, None]
    after = np.broadcast_to(after, stopped.mean_cosine.shape)
    assert after.any() and not after[2].any()
    mc = stopped.mean_cosine.values
    assert np.all(np.isnan(mc[after])) and not np.any(np.isnan(mc[~after]))
    # Without a stop the three betas are one solve (a beta group: common steps), with a
    # stop each beta is its own: the two agree to the tolerance, not bit for bit.
    assert ds.attrs["config"].count('"beta_group": 3') == 1
    np.testing.assert_allclose(mc[~after], ds.mean_cosine.values[~after], rtol=0, atol=1e-9)


def test_killed_sweep_resumes_to_identical_result_any_chunk_size(tmp_path):
    whole = run(tmp_path / "whole", chunk_size=1)
    assert whole.attrs["chunks_resumed"] == 0

    class Killed(Exception):
        pass

    def kill_after_two(done, total):
        if done == 2:
            raise Killed

    out = tmp_path / "killed"
    with pytest.raises(Killed):
        run(out, chunk_size=1, on_chunk=kill_after_two)
    assert sorted(f for f in os.listdir(out) if f.endswith(".nc")) == ["chunk-00000.nc", "chunk-00001.nc"]
    with pytest.raises(ValueError, match="1 of 3 chunks are missing; rerun"):
        particles.open_sweep(out)
    kept = files(out)
    calls = []
    resumed = run(out, on_chunk=lambda done, total: calls.append(done))
    assert calls == [3] and resumed.attrs["chunks_resumed"] == 2
    assert all(files(out)[f] == kept[f] for f in kept)  # finished chunks never rewritten
    same(resumed, whole)

    os.remove(out / "chunk-00001.nc")  # a lost chunk is recomputed, bit for bit
    same(run(out), whole)
    same(run(tmp_path / "big", chunk_size=2), whole)
    same(run(tmp_path / "one", chunk_size=5), whole)
    same(particles.open_sweep(tmp_path / "one"), whole)


def test_swept_scheme_parameters_and_labels(tmp_path):
    ds = run(tmp_path / "p", beta=2.0, seeds=[3, 7], observables=["energy", "radius_mean"], n=[4])
    assert dict(ds.sizes) == {"n": 1, "seed": 2, "time": 13}
    np.testing.assert_array_equal(ds.seed, [3, 7])
    np.testing.assert_allclose(ds.radius_mean, 1.0, rtol=1e-12)
    assert json.loads(ds.attrs["config"])["axes"]["beta"] == {"values": [2.0], "swept": False}


def test_bad_input_is_refused_without_damage(tmp_path, monkeypatch):
    out = tmp_path / "s"
    run(out, chunk_size=1)
    before = files(out)
    for kw, match in [
        (dict(beta=[0.5, 1.0]), r"different configuration \(differs in: axes, solve\); delete the folder"),
        (dict(observables=["mean_cosine"]), "differs in: observables"),
        (dict(chunk_size=2), "written with chunk_size=1"),
        (dict(observables=["nope"]), "unknown observable 'nope'; choose from: mean_cosine"),
        (dict(beta=[]), "beta is an empty list"),
        (dict(beta=[1.0, 1.0]), "repeated value"),
        (dict(schemes=["post", "bogus"]), "is not one of: post, pre"),
        (dict(tau=[1.0]), "'tau' is used by none of the schemes"),
    ]:
        with pytest.raises(ValueError, match=match):
            run(out, **kw)
    assert files(out) == before

    (tmp_path / "file").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("x")
    for where, match in [
        (tmp_path / "file", "exists and is not a sweep folder"),
        (tmp_path / "file" / "s", "does not exist"),
        (tmp_path / "missing" / "s", "does not exist"),
        (tmp_path / "full", "non-empty folder without manifest.json"),
    ]:
        with pytest.raises(ValueError, match=match):
            run(where)
    assert (tmp_path / "file").read_text() == "x" and os.listdir(tmp_path / "full") == ["notes.txt"]

    # a full disk while writing the second chunk: one-line error, first chunk kept, no temp files
    real = _sweep.write_atomic
    writes = []

    def full_disk(ds, path):
        writes.append(path)
        if len(writes) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(ds, path)

    monkeypatch.setattr(_sweep, "write_atomic", full_disk)
    with pytest.raises(
        ValueError, match=r"could not write chunk 1 \(No space left on device\).*rerun to resume"
    ):
        run(tmp_path / "disk", chunk_size=1)
    assert sorted(os.listdir(tmp_path / "disk")) == ["chunk-00000.nc", "manifest.json"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_location(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="cannot write there"):
            run(ro / "s")
    finally:
        ro.chmod(0o700)


def test_sweep_observables_equal_simulate_then_observe(tmp_path):
    """With n < d a sweep evaluates the observables on the span's coordinates (never
    mapping the saves back to R^d) in one compiled program: the same numbers as
    simulate + analysis.observe + collapse_time on the directions in R^d. The two betas
    are one solve (a beta group), so simulate gets the same batch: every beta's seeds."""
    names = list(particles.analysis.OBSERVABLES)
    betas, seeds, n, d = [1.0, 3.0], [0, 1, 2], 4, 8
    kw = dict(schemes="pre", n=n, d=d, t1=10.0, save_every=0.5, dtype="float64", progress=False)
    ds = particles.sweep(tmp_path / "s", beta=betas, seeds=seeds, observables=names, delta=0.05, **kw)
    x0 = np.stack([particles.init.uniform_sphere(s, n, d, dtype=np.float64) for s in seeds])
    beta = np.repeat(betas, len(seeds))
    traj = particles.simulate(
        np.tile(x0, (len(betas), 1, 1)), "pre", beta=beta, t1=10.0, ts=ds.time.values, dtype=np.float64
    )
    assert traj.theta.shape[-1] == d
    expected = particles.analysis.observe(names, traj.theta, traj.r, beta[:, None], 0.05)
    collapse = particles.analysis.collapse_time(traj, 0.05)
    for b in range(len(betas)):
        rows = slice(b * len(seeds), (b + 1) * len(seeds))
        for name in names:
            np.testing.assert_allclose(
                ds[name].isel(beta=b), expected[name][rows], rtol=1e-12, atol=1e-12, err_msg=name
            )
        np.testing.assert_allclose(ds.collapse_time.isel(beta=b), collapse[rows], rtol=1e-12)
    assert np.isfinite(collapse).any() and np.isinf(collapse).any()  # both cases compared


ALL_SCHEMES = pytest.param(tuple(particles.SCHEMES), marks=pytest.mark.slow, id="all")


@pytest.mark.parametrize("attention", ["softmax", "usa"])
@pytest.mark.parametrize("schemes", [("post", "pre"), ALL_SCHEMES])
def test_gram_sweep_matches_the_token_sweep_for_every_scheme(tmp_path, attention, schemes):
    """``gram=True`` solves the chord distances (MODEL.md §8) instead of the tokens: at
    a tight tolerance the observables of both agree to 1e-8 for every built-in scheme,
    with fewer tokens than dimensions and more (n = 6, d = 4 and 16); post and pre in
    ``make test``, all of them (each one compiles twice) in ``make test-all``. (Under USA the
    unnormalised scheme "none" grows without bound at this β: max_steps either way.)"""
    names = ["mean_cosine", "min_cosine", "energy", "effective_rank", "radius_mean", "radius_max"]
    schemes = [s for s in schemes if not (attention == "usa" and s == "none")]
    kw = dict(
        schemes=schemes, n=6, d=[4, 16], beta=3.0, seeds=2, t1=4.0, save_every=1.0,
        observables=names, attention=attention, rtol=1e-11, atol=1e-11, dtype="float64", progress=False,
    )  # fmt: skip
    token = particles.sweep(tmp_path / "token", **kw)
    gram = particles.sweep(tmp_path / "gram", gram=True, **kw)
    assert np.all(gram.status == 0) and np.all(token.status == 0)
    for name in names:
        # the effective rank from G's eigenvalues: singular values √λ known to ~√(n ε)
        # absolutely where tokens span fewer than n dimensions (gram_effective_rank)
        tol = 1e-4 if name == "effective_rank" else 1e-8
        np.testing.assert_allclose(gram[name], token[name], rtol=tol, atol=tol, err_msg=name)
    np.testing.assert_allclose(gram.collapse_time, token.collapse_time, rtol=1e-8)


def test_gram_sweep_is_one_program_for_every_d_and_identical_across_chunk_sizes(tmp_path):
    """The Gram state is n × n whatever d: d = 3, 8 and 64 share one compiled solve;
    chunking does not change a bit, as for the token solve; and a collapse stop ends
    each unit where all its seeds collapsed."""
    kw = dict(
        n=5, d=[3, 8, 64], beta=[1.0, 2.0], seeds=3, t1=40.0, save_every=2.0, observables=["pair_density"],
        gram=True, stop_at_collapse=True, delta=1e-2, progress=False,
    )  # fmt: skip
    with jax.log_compiles():
        with _capture_compiles() as compiled:
            one = particles.sweep(tmp_path / "one", chunk_size=1, **kw)
    assert sum("_solve" in name for name in compiled) == 1, compiled
    whole = particles.sweep(tmp_path / "whole", **kw)
    xr.testing.assert_identical(one, whole)
    assert np.all(one.status == 0)
    stops = one.t_stop.values
    assert np.all(stops < 40.0) and np.all(np.max(one.collapse_time.values, axis=-1) <= stops + 1e-6)
    late = one.time.values[None, None, :] > stops[..., None]
    assert np.all(np.isnan(one.pair_density.values[late[:, :, None, :].repeat(3, axis=2)]))


@contextlib.contextmanager
def _capture_compiles():
    """The names of the programs JAX compiles inside the block (from its log)."""
    names = []

    class Handler(logging.Handler):
        def emit(self, record):
            message = record.getMessage()
            if message.startswith("Compiling "):
                names.append(message.split()[1])

    handler = Handler(level=logging.DEBUG)
    logger = logging.getLogger("jax")
    logger.addHandler(handler)
    try:
        yield names
    finally:
        logger.removeHandler(handler)


NOISY = dict(beta=[0.0, 1.0], noise=[0.0, 0.3], step_size=0.1, seeds=[1, 2], t1=2.0)


def test_noise_axis_resumes_bit_identical_and_keys_the_paths_by_seed(tmp_path, capsys):
    """noise as a swept axis (MODEL.md §10): killed and resumed, or cut into other chunk
    sizes, the store is bit-identical; seed s has the Brownian paths of
    jax.random.key(s) whatever other seeds share its solve, so each grid point is
    simulate(x0_s, noise=D, key=s) alone; D = 0 is the ODE with the same Heun steps."""
    whole = run(tmp_path / "whole", chunk_size=1, **NOISY)
    assert dict(whole.sizes) == {"beta": 2, "noise": 2, "seed": 2, "time": 5}
    assert main(["info", str(tmp_path / "whole")]) == 0
    out = capsys.readouterr().out
    assert "noise: 2 (0, 0.3)" in out and "step_size 0.1, Heun" in out

    class Killed(Exception):
        pass

    def kill_after_one(done, total):
        if done == 1:
            raise Killed

    with pytest.raises(Killed):
        run(tmp_path / "killed", chunk_size=1, on_chunk=kill_after_one, **NOISY)
    same(run(tmp_path / "killed", **NOISY), whole)
    same(run(tmp_path / "three", chunk_size=3, **NOISY), whole)

    x0 = particles.init.uniform_sphere(2, 4, 4, dtype=np.float64)
    kw = dict(beta=1.0, t1=2.0, ts=whole.time.values, step_size=0.1, solver=diffrax.Heun())
    for D in (0.0, 0.3):
        traj = particles.simulate(x0, "post", noise=D, key=2, **kw)
        np.testing.assert_allclose(
            whole.mean_cosine.sel(beta=1.0, noise=D, seed=2), particles.analysis.mean_cosine(traj.theta),
            rtol=0, atol=1e-14,
        )  # fmt: skip
    noisy = whole.mean_cosine.sel(noise=0.3).values
    assert np.abs(noisy - whole.mean_cosine.sel(noise=0.0).values)[..., 1:].min() > 1e-4


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(step_size=None), "noise > 0 needs constant steps: give step_size"),
        (dict(noise=[-0.1, 0.3]), "noise=-0.1 must be non-negative"),
        (dict(noise=[0.3, 0.3]), "repeated value"),
        (dict(layers=4), "not to layers=L"),
    ],
)
def test_bad_noise_axis_is_refused(tmp_path, kw, match):
    with pytest.raises(ValueError, match=match) as info:
        run(tmp_path / "s", **{**NOISY, **kw})
    assert "\n" not in str(info.value) and not (tmp_path / "s").exists()


def test_beta_groups_are_fixed_by_the_grid_and_padded(tmp_path, monkeypatch):
    """Betas are solved in groups (up to TRAJECTORIES_PER_SOLVE trajectories, evened
    over the beta axis); the last, shorter group is padded with copies of its last beta
    so that every group is one compiled program. Each group is exactly the simulate call
    of its batch, and any chunking gives the same bits."""
    from particles._sweep import _grid

    assert _grid.beta_group(90, 64) == 10 and _grid.beta_group(12, 16) == 12
    assert _grid.beta_group(95, 64) == 10 and _grid.beta_group(5, 256) == 2
    assert _grid.beta_group(90, 64, grouped=False) == 1
    monkeypatch.setattr(_grid, "TRAJECTORIES_PER_SOLVE", 4)  # 2 seeds: 2 betas per solve
    betas, seeds = [0.5, 1.0, 3.0], [0, 1]
    kw = dict(n=4, d=3, t1=4.0, save_every=1.0, dtype="float64", progress=False, observables=["mean_cosine"])
    ds = particles.sweep(tmp_path / "a", beta=betas, seeds=seeds, chunk_size=1, **kw)
    assert json.loads(ds.attrs["config"])["solve"]["beta_group"] == 2
    x0 = np.stack([particles.init.uniform_sphere(s, 4, 3, dtype=np.float64) for s in seeds])
    for group, rows in (([0.5, 1.0], [0, 1]), ([3.0, 3.0], [2])):
        beta = np.repeat(group, len(seeds))
        traj = particles.simulate(
            np.tile(x0, (2, 1, 1)), "post", beta=beta, t1=4.0, ts=ds.time.values, dtype=np.float64
        )
        expected = particles.analysis.mean_cosine(traj.theta)
        for g, b in enumerate(rows):
            np.testing.assert_allclose(
                ds.mean_cosine.isel(beta=b), expected[g * 2 : g * 2 + 2], rtol=1e-13, atol=1e-13
            )
    same(particles.sweep(tmp_path / "b", beta=betas, seeds=seeds, chunk_size=2, **kw), ds)
