"""How a problem is solved (particles/_config.py): the save times and SolveConfig's
checks and defaults. (Arguments of the wrong type are jaxtyping's to refuse in the test
run, before these checks: see pyproject's addopts.)"""

import dataclasses
import re

import diffrax
import numpy as np
import pytest

import particles
from particles._config import NUM_SAVES, check_times


def raises(message):
    """pytest.raises for a ValueError of exactly this one-line message."""
    return pytest.raises(ValueError, match="^" + re.escape(message) + "$")


def test_check_times():
    out = check_times([0, 1, 2.5])
    assert out.dtype == np.float64 and out.tolist() == [0.0, 1.0, 2.5]
    assert check_times(np.float32([0.5])).tolist() == [0.5]  # one save is allowed
    for bad in ([], [[0.0, 1.0]], 3.0, [0.0, np.nan], [0.0, np.inf], ["a"], None):
        with raises("ts must be a non-empty 1-d array of finite times"):
            check_times(bad)
    for bad in ([0.0, 0.0], [0.0, 2.0, 1.0]):
        with raises("ts must be strictly increasing"):
            check_times(bad)


def test_save_times_default_is_num_saves_evenly_spaced():
    out = particles.save_times(1.0, 3.0)
    assert out.dtype == np.float64 and len(out) == NUM_SAVES == 101
    np.testing.assert_array_equal(out, np.linspace(1.0, 3.0, 101))


def test_save_times_given():
    np.testing.assert_array_equal(particles.save_times(0, 2, ts=[0.5, 2.0]), [0.5, 2.0])
    np.testing.assert_array_equal(particles.save_times(0, 2, ts=[0.0, 2.0]), [0.0, 2.0])  # the ends
    with raises("ts must lie in [t0, t1] = [0.0, 2.0], got [0.5, 2.5]"):
        particles.save_times(0, 2, ts=[0.5, 2.5])
    with raises("ts must lie in [t0, t1] = [1.0, 2.0], got [0.5, 1.5]"):
        particles.save_times(1, 2, ts=[0.5, 1.5])
    with raises("ts must be strictly increasing"):
        particles.save_times(0, 2, ts=[1.0, 0.5])


@pytest.mark.parametrize(
    "t0, t1, every, expected",
    [
        (0.0, 1.0, 0.25, [0.0, 0.25, 0.5, 0.75, 1.0]),  # t1 on the grid: saved once
        (0.0, 1.0, 0.3, [0.0, 0.3, 0.6, 0.9, 1.0]),  # t1 off the grid: appended
        (0.0, 1.0, 5.0, [0.0, 1.0]),  # a step longer than the interval: the ends
        (2.0, 3.0, 0.5, [2.0, 2.5, 3.0]),  # from t0, not from 0
    ],
)
def test_save_times_every(t0, t1, every, expected):
    out = particles.save_times(t0, t1, save_every=every)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-15)
    assert out[0] == t0 and out[-1] == t1 and np.all(np.diff(out) > 0)


def test_save_times_every_never_passes_t1():
    # np.arange(1.0, 1.3, 0.1) ends at 1.3000000000000003 > t1
    out = particles.save_times(1.0, 1.3, save_every=0.1)
    assert out[-1] == 1.3 and np.all(np.diff(out) > 0) and np.all(out <= 1.3), out.tolist()


def test_save_times_errors():
    with raises("t1=1.0 must be greater than t0=1.0"):
        particles.save_times(1.0, 1.0)
    with raises("t1=0.0 must be greater than t0=1.0"):
        particles.save_times(1.0, 0.0)
    with raises("give ts or save_every, not both"):
        particles.save_times(0.0, 1.0, ts=[1.0], save_every=0.5)
    with raises("save_every=0.0 must be positive"):
        particles.save_times(0.0, 1.0, save_every=0.0)
    with raises("save_every=-0.5 must be positive"):
        particles.save_times(0.0, 1.0, save_every=-0.5)
    with raises("t1=nan must be finite"):
        particles.save_times(0.0, float("nan"))


def test_solve_config_defaults():
    c = particles.SolveConfig()
    assert isinstance(c.solver, diffrax.AbstractAdaptiveSolver) and c.adaptive
    assert (c.rtol, c.atol, c.step_size, c.max_steps, c.ts) == (1e-6, 1e-8, None, 100_000, None)
    assert (c.stop_at_collapse, c.progress, c.shard, c.reduce_span, c.gram) == (
        None,
        False,
        True,
        True,
        False,
    )
    assert c.describe() == {
        "solver": type(c.solver).__name__,
        "rtol": 1e-6,
        "atol": 1e-8,
        "step_size": None,
        "stop_at_collapse": None,
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.rtol = 1e-3


def test_solve_config_normalises_what_it_keeps():
    c = particles.SolveConfig(
        solver=diffrax.Euler(), step_size=1, rtol=1, ts=np.array([0.0, 0.5]), stop_at_collapse=1e-3, gram=True
    )
    assert not c.adaptive and c.step_size == 1.0 and type(c.step_size) is float and type(c.rtol) is float
    assert c.ts == (0.0, 0.5) and type(c.ts) is tuple and c.stop_at_collapse == 1e-3 and c.gram
    assert c.describe()["solver"] == "Euler" and c.describe()["step_size"] == 1.0
    hash(c)  # frozen, with the save times as a tuple: usable as a key


def test_solve_config_errors():
    with raises("solver Euler has no error estimate: give step_size"):
        particles.SolveConfig(solver=diffrax.Euler())
    with raises("rtol=0 must be positive"):
        particles.SolveConfig(rtol=0)
    with raises("atol=-1e-08 must be positive"):
        particles.SolveConfig(atol=-1e-8)
    with raises("max_steps=0 must be at least 1"):
        particles.SolveConfig(max_steps=0)
    with raises("step_size=0.0 must be positive"):
        particles.SolveConfig(step_size=0.0)
    with raises("stop_at_collapse=0 must be positive"):
        particles.SolveConfig(stop_at_collapse=0)
    with raises("ts must be strictly increasing"):
        particles.SolveConfig(ts=[1.0, 1.0])
    with raises("ts must be a non-empty 1-d array of finite times"):
        particles.SolveConfig(ts=[])
