"""Per-trajectory outcome of a solve: a status code and the errors and warnings that
report it."""

import enum

import diffrax


class Status(enum.IntEnum):
    """Outcome of one trajectory (``Trajectory.status``, the ``status`` variable on disk).

    ``OK``: reached t1 (or the collapse stop). ``NONFINITE``: the state became NaN/inf,
    a radius reached r ≤ 0 (a token of pre shrunk to the origin in finite time), or the
    solver failed otherwise. ``MAX_STEPS``: the step budget ran out before t1 (also how
    a blow-up under adaptive steps ends).
    """

    OK = 0
    NONFINITE = 1
    MAX_STEPS = 2

    @classmethod
    def from_result(cls, result) -> "Status":
        """The status of a diffrax result code."""
        if result == diffrax.RESULTS.successful or result == diffrax.RESULTS.event_occurred:
            return cls.OK
        if result == diffrax.RESULTS.max_steps_reached:
            return cls.MAX_STEPS
        return cls.NONFINITE


# the CF flag attributes of the status variable in NetCDF files, and the legend of messages
STATUS_VALUES = [int(s) for s in Status]
STATUS_MEANINGS = " ".join(s.name.lower() for s in Status)
STATUS_LEGEND = "1 non-finite, 2 max_steps"


class SimulationError(RuntimeError):
    """The solver did not reach t1 (step budget spent or the state blew up)."""


class SimulationWarning(RuntimeWarning):
    """Some trajectories of a batch failed; ``Trajectory.status`` marks them."""
