"""particles/_outcome.py: how a solve ended, trajectory by trajectory (one module for
every path: tokens, layers, Gram)."""

import types
import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import particles
from particles._outcome import mark_failures, observed_outcome, status_of_saves, valid_saves

OK, NONFINITE, MAX_STEPS = (int(s) for s in particles.Status)


def test_valid_saves_needs_finite_directions_and_positive_radii():
    lift = jnp.asarray([[[1.0, 0.0], [np.nan, 0.0]], [[0.0, 1.0], [1.0, 1.0]]])  # (save, token, dim)
    r = jnp.asarray([[1.0, 1.0], [0.0, 2.0]])
    np.testing.assert_array_equal(valid_saves(lift, r), [[True, False], [False, True]])


def test_status_of_saves_is_ok_only_where_every_save_is_valid_and_the_solve_succeeded():
    valid = np.array([[True, True, False], [True, False, False]])  # (T, batch)
    np.testing.assert_array_equal(status_of_saves(valid), [OK, NONFINITE, NONFINITE])
    np.testing.assert_array_equal(status_of_saves(valid, ok=False), [NONFINITE] * 3)
    assert status_of_saves(valid).dtype == np.int8


def test_mark_failures_blanks_the_invalid_saves_and_warns_once():
    lift = np.ones((3, 2, 4, 2))  # (T, batch, n, m)
    lift[2, 1, 0, 0] = np.inf  # trajectory 1 fails at the last save
    r = np.ones((3, 2, 4))
    status = np.zeros(2, np.int8)
    with pytest.warns(particles.SimulationWarning, match="1 of 2 trajectories failed before t1=5"):
        (lift_out, r_out), status = mark_failures(
            (jnp.asarray(lift), jnp.asarray(r)), status, slice(None), (2,), 5.0
        )
    np.testing.assert_array_equal(status, [OK, NONFINITE])
    assert np.all(np.isnan(lift_out[2, 1])) and np.all(np.isnan(r_out[2, 1]))
    assert np.all(np.isfinite(lift_out[:2])) and np.all(np.isfinite(lift_out[:, 0]))


def test_mark_failures_raises_for_a_single_trajectory_and_is_silent_when_all_is_well():
    lift, r = jnp.ones((2, 3, 2)), jnp.ones((2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, status = mark_failures((lift, r), np.int8(OK), slice(None), (), 1.0)
    assert status == OK
    with pytest.raises(particles.SimulationError, match="non-finite"):
        mark_failures((lift, r.at[1, 0].set(-1.0)), np.int8(OK), slice(None), (), 1.0)


def _observation(min_cosine, ok=True, t_stop=2.0):
    return types.SimpleNamespace(min_cosine=np.asarray(min_cosine, float), ok=ok, t_stop=t_stop)


def test_observed_outcome_retries_a_failed_batch_one_trajectory_at_a_time():
    ts = np.array([0.0, 1.0, 2.0])
    good = _observation([[0.1, 0.2], [0.5, 0.6], [0.9, 0.9]])
    parts, status = observed_outcome(good, lambda i: pytest.fail("no retry for a good batch"), 2, ts)
    assert parts == [good]
    np.testing.assert_array_equal(status, [OK, OK])

    failed = _observation(np.full((3, 2), np.nan), ok=False)
    retries = {
        0: _observation([[0.1], [0.5], [0.9]]),
        1: _observation([[0.2], [np.nan], [np.nan]], ok=False, t_stop=1.0),  # ran out of steps
    }
    parts, status = observed_outcome(failed, retries.__getitem__, 2, ts)
    assert parts == [retries[0], retries[1]]
    np.testing.assert_array_equal(status, [OK, MAX_STEPS])

    nonfinite = _observation([[0.1], [np.nan], [0.9]])  # a save it made is NaN
    _, status = observed_outcome(nonfinite, None, 1, ts)
    np.testing.assert_array_equal(status, [NONFINITE])
