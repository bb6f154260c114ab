"""The forward solve's engine (particles._engine.solve_ode, the loop of particles._loop)
against ``diffrax.diffeqsolve`` called as the package called it before the loop (the
reference below): the same steps and the same numbers through adaptive and constant
steps, the collapse stop, noise, jumps of the field, saved observables and a batch that
runs out of steps. Bit for bit with XLA's default CPU compiler (what users, benchmarks
and figures get: the slow test runs this file so); under the tests' fast-compiling flags
(tests/conftest.py) XLA fuses the two programs differently and they agree to rounding."""

import os
import subprocess
import sys

import diffrax
import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest

import particles
import particles._integrate as driver
from particles._engine import _collapse_event, _controller, _terms

DEFAULT_COMPILER = bool(os.environ.get("PARTICLES_TEST_DEFAULT_COMPILER"))  # see tests/conftest.py


@eqx.filter_jit
def diffeqsolve_reference(
    y0, args, solver, ts, t0, t1, rtol, atol, step_size, jumps, max_steps, progress, dim, level,
    noise=None, key=None, observe=None,
):  # fmt: skip
    return diffrax.diffeqsolve(
        _terms(y0, noise, key, t0, t1, step_size),
        solver,
        t0,
        t1,
        step_size,
        y0,
        args=args if noise is None else (*args, noise),
        saveat=diffrax.SaveAt(ts=ts, t1=level is not None, **({} if observe is None else {"fn": observe})),
        stepsize_controller=_controller(rtol, atol, step_size, y0, dim, jumps),
        event=None if level is None else _collapse_event(level, ts.dtype),
        max_steps=max_steps,
        throw=False,
        progress_meter=diffrax.TqdmProgressMeter() if progress else diffrax.NoProgressMeter(),
    )


def _both(monkeypatch, run):
    """``run()`` by the engine, then by the reference."""
    ours = run()
    with monkeypatch.context() as m:
        m.setattr(driver, "solve_ode", diffeqsolve_reference)
        reference = run()
    return ours, reference


def _assert_equal(a, b):
    """Bit for bit with the default compiler, else to rounding."""
    if DEFAULT_COMPILER:
        np.testing.assert_array_equal(a, b)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def _assert_same(ours, reference):
    assert ours.stats["num_steps"] == reference.stats["num_steps"]
    np.testing.assert_array_equal(ours.status, reference.status)
    _assert_equal(ours.stats.get("t_stop", 0.0), reference.stats.get("t_stop", 0.0))
    _assert_equal(np.asarray(ours.x), np.asarray(reference.x))
    _assert_equal(np.asarray(ours.ts), np.asarray(reference.ts))


X0 = particles.init.uniform_sphere(0, 6, 4)
TS = np.linspace(0.0, 12.0, 25)


@pytest.mark.parametrize(
    "scheme,options",
    [
        ("pre", {"rtol": 1e-3, "atol": 1e-3}),
        ("ngpt", {"stop_at_collapse": 1e-3}),
        ("post", {"noise": 0.2, "key": 1, "step_size": 0.1}),  # constant steps, Heun
        (particles.get_scheme("mix", tau=2.5), {}),  # a jump of the field at t = 2.5
        ("post", {"position": particles.Causal(), "progress": True}),
    ],
)
def test_the_engine_takes_diffeqsolves_steps(monkeypatch, scheme, options):
    run = lambda: particles.simulate(X0, scheme, beta=2.0, t1=12.0, ts=TS, **options)  # noqa: E731
    _assert_same(*_both(monkeypatch, run))


def test_a_batch_stops_at_collapse_and_is_retried_as_by_diffeqsolve(monkeypatch):
    x0 = jnp.stack([particles.init.uniform_sphere(s, 6, 4) for s in range(3)])
    stop = lambda: particles.simulate(
        x0, "post", beta=np.array([1.0, 2.0, 4.0]), t1=30.0, stop_at_collapse=1e-2
    )  # noqa: E731
    ours, reference = _both(monkeypatch, stop)
    assert ours.stats["collapsed"]
    _assert_same(ours, reference)
    with pytest.warns(particles.SimulationWarning):
        ours, reference = _both(
            monkeypatch, lambda: particles.simulate(x0, "post", beta=2.0, t1=12.0, max_steps=4)
        )
    assert np.all(ours.status == particles.Status.MAX_STEPS)
    _assert_same(ours, reference)


def test_saved_observables_are_diffeqsolves(monkeypatch, tmp_path):
    """A sweep saves observables inside the solve (SaveAt(fn=...)): the same numbers."""

    def sweep(tmp):
        ds = particles.sweep(
            tmp, schemes="post", n=6, d=[4], beta=[1.0, 3.0], seeds=2, t1=12.0, save_every=0.5,
            observables=["mean_cosine"], progress=False, dtype="float64",
        )  # fmt: skip
        return {k: ds[k].values for k in ("mean_cosine", "collapse_time")}

    stores = iter([tmp_path / "ours", tmp_path / "reference"])
    ours, reference = _both(monkeypatch, lambda: sweep(next(stores)))
    for k in ours:
        _assert_equal(ours[k], reference[k])


@pytest.mark.slow
@pytest.mark.skipif(DEFAULT_COMPILER, reason="this run is the one it starts")
def test_bit_for_bit_with_the_default_compiler():
    """This file again, in a process with XLA's default flags: the comparisons exact."""
    env = dict(os.environ, PARTICLES_TEST_DEFAULT_COMPILER="1", XLA_FLAGS="")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:xdist", __file__],
        env=env, capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
