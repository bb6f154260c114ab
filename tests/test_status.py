"""Per-trajectory outcomes (particles/_status.py): the status codes and how diffrax's
result codes map onto them."""

import warnings

import diffrax
import numpy as np
import pytest

import particles
from particles._status import STATUS_LEGEND, STATUS_MEANINGS, STATUS_VALUES

Status = particles.Status


def test_status_codes():
    assert [(s.name, int(s)) for s in Status] == [("OK", 0), ("NONFINITE", 1), ("MAX_STEPS", 2)]
    # the CF flag attributes on disk and the legend of the messages say the same
    assert STATUS_VALUES == [0, 1, 2] and STATUS_MEANINGS == "ok nonfinite max_steps"
    assert STATUS_LEGEND == "1 non-finite, 2 max_steps"


@pytest.mark.parametrize(
    "result, status",
    [
        (diffrax.RESULTS.successful, Status.OK),
        (diffrax.RESULTS.event_occurred, Status.OK),  # the collapse stop
        (diffrax.RESULTS.max_steps_reached, Status.MAX_STEPS),
        (diffrax.RESULTS.nonfinite, Status.NONFINITE),
        (diffrax.RESULTS.dt_min_reached, Status.NONFINITE),
        (diffrax.RESULTS.max_steps_rejected, Status.NONFINITE),
        (diffrax.RESULTS.internal_error, Status.NONFINITE),
        (diffrax.RESULTS.singular, Status.NONFINITE),
    ],
)
def test_from_result(result, status):
    got = Status.from_result(result)
    assert got is status and isinstance(got, Status)


def test_a_solve_reports_its_status():
    """The step budget spent: MAX_STEPS in a batch (with a warning and NaN saves), a
    SimulationError for a single trajectory; OK otherwise."""
    x0 = particles.init.uniform_sphere(0, 3, 3, batch=2)
    kw = dict(beta=1.0, t1=5.0, ts=[5.0], rtol=1e-10, atol=1e-10)
    assert particles.simulate(x0, "post", **kw).status.tolist() == [Status.OK, Status.OK]
    with pytest.warns(particles.SimulationWarning):
        traj = particles.simulate(x0, "post", max_steps=2, **kw)
    assert traj.status.tolist() == [Status.MAX_STEPS, Status.MAX_STEPS]
    assert np.all(np.isnan(np.asarray(traj.theta[:, -1])))
    with pytest.raises(particles.SimulationError), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        particles.simulate(x0[0], "post", max_steps=2, **kw)
