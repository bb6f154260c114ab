"""What a solve returns: the saves in the solver's coordinates
(:class:`RawSolution`), or the observables saved in their place
(:class:`ObservedSolution`); :meth:`particles.Trajectory.from_raw` turns the first into
tokens."""

from typing import NamedTuple

import jax
import numpy as np

from ._chart import AbstractChart


class RawSolution(NamedTuple):
    """The saves of a solve as the solver made them: ``lift`` (T, *batch, n, m) with
    θ_i = lift_i/|lift_i| in the coordinates of ``chart`` (m = d, or m = n in the span
    of the initial tokens), ``r`` (T, *batch, n); NaN at the saves a failed trajectory
    did not validly reach. ``ts`` the save times (after a collapse stop: those before
    it, then the stop time). ``stats``: step counts, wall time, number failed and, with
    a collapse stop, ``t_stop``, ``collapsed``, ``stop_delta``. ``status`` (*batch)
    as in :class:`Status`."""

    ts: jax.Array
    lift: jax.Array
    r: jax.Array
    chart: AbstractChart
    stats: dict
    status: np.ndarray


class ObservedSolution(NamedTuple):
    """:func:`integrate` with ``observe``: ``values`` name -> (T, *batch) (NaN at the
    saves a failed trajectory did not validly reach), ``ts``, ``stats`` and ``status``
    as in :class:`RawSolution`."""

    ts: jax.Array
    values: dict
    stats: dict
    status: np.ndarray
