"""Per-trajectory outcomes (particles/_status.py): the status codes and how diffrax's
result codes map onto them."""

import diffrax
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
