"""How a problem is solved: one validated object with one set of defaults, used by
:func:`particles.simulate`, the sweep manifest and the command line."""

import dataclasses
from collections.abc import Sequence

import diffrax
import numpy as np
from jaxtyping import ArrayLike, Real

from ._solver import UnrolledTsit5
from ._validate import check_float, check_int

NUM_SAVES = 101  # default save times: this many evenly spaced points on [t0, t1]


def check_times(ts) -> np.ndarray:
    """``ts`` as a non-empty, strictly increasing 1-d float64 array of finite times."""
    try:
        out = np.asarray(ts, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("ts must be a non-empty 1-d array of finite times") from None
    if out.ndim != 1 or out.size == 0 or not np.all(np.isfinite(out)):
        raise ValueError("ts must be a non-empty 1-d array of finite times")
    if np.any(np.diff(out) <= 0):
        raise ValueError("ts must be strictly increasing")
    return out


def save_times(t0: float, t1: float, ts=None, save_every=None) -> np.ndarray:
    """The save times (float64): ``ts`` if given, else every ``save_every`` from t0
    plus t1, else :data:`NUM_SAVES` points on [t0, t1]; checked (:func:`check_times`)
    and in [t0, t1]."""
    t0, t1 = check_float("t0", t0), check_float("t1", t1)
    if not t1 > t0:
        raise ValueError(f"t1={t1!r} must be greater than t0={t0!r}")
    if ts is not None and save_every is not None:
        raise ValueError("give ts or save_every, not both")
    if ts is not None:
        out = check_times(ts)
    elif save_every is not None:
        save_every = check_float("save_every", save_every, positive=True)
        grid = np.arange(t0, t1, save_every)
        out = np.append(grid[grid < t1], t1)  # arange can end a rounding error past t1
    else:
        out = np.linspace(t0, t1, NUM_SAVES)
    if out[0] < t0 or out[-1] > t1:
        raise ValueError(f"ts must lie in [t0, t1] = [{t0}, {t1}], got [{out[0]}, {out[-1]}]")
    return out


@dataclasses.dataclass(frozen=True)
class SolveConfig:
    """How to solve: the diffrax ``solver`` (default Tsit5 with unrolled stages,
    :class:`particles.UnrolledTsit5`), adaptive steps to ``rtol``/``atol`` in each
    trajectory's RMS norm (PI control) or constant ``step_size``, at most ``max_steps``
    steps, a ``progress`` bar, ``stop_at_collapse=δ`` (end once every trajectory has
    min_{i≠j}⟨θ_i, θ_j⟩ ≥ 1 − δ), ``shard`` the batch across local devices, and
    ``reduce_span`` (solve in the span of the initial tokens where the flow keeps it),
    ``gram`` (a sweep solves the Gram flow where it is exact, MODEL.md §8).
    ``ts`` the save times (default :data:`NUM_SAVES` points on the problem's [t0, t1];
    checked against it by :func:`save_times`). Checked when built."""

    solver: diffrax.AbstractSolver | None = None
    rtol: float = 1e-6
    atol: float = 1e-8
    step_size: float | None = None
    max_steps: int = 100_000
    ts: Sequence[float] | Real[ArrayLike, " T"] | None = None  # stored as a tuple of floats
    stop_at_collapse: float | None = None
    progress: bool = False
    shard: bool = True
    reduce_span: bool = True
    gram: bool = False

    def __post_init__(self):
        solver = UnrolledTsit5() if self.solver is None else self.solver
        if not isinstance(solver, diffrax.AbstractSolver):
            raise ValueError(f"solver={solver!r} must be a diffrax solver such as diffrax.Tsit5()")
        fix = lambda name, value: object.__setattr__(self, name, value)
        fix("solver", solver)
        fix("rtol", check_float("rtol", self.rtol, positive=True))
        fix("atol", check_float("atol", self.atol, positive=True))
        fix("max_steps", check_int("max_steps", self.max_steps, minimum=1))
        if self.step_size is not None:
            fix("step_size", check_float("step_size", self.step_size, positive=True))
        elif not isinstance(solver, diffrax.AbstractAdaptiveSolver):
            raise ValueError(f"solver {type(solver).__name__} has no error estimate: give step_size")
        if self.stop_at_collapse is not None:
            fix("stop_at_collapse", check_float("stop_at_collapse", self.stop_at_collapse, positive=True))
        if self.ts is not None:
            fix("ts", tuple(check_times(self.ts).tolist()))
        fix("progress", bool(self.progress))
        fix("shard", bool(self.shard))
        fix("reduce_span", bool(self.reduce_span))
        fix("gram", bool(self.gram))

    @property
    def adaptive(self) -> bool:
        return self.step_size is None

    def describe(self) -> dict:
        """The settings as plain values (for a Trajectory's ``config``)."""
        return {
            "solver": type(self.solver).__name__,
            "rtol": self.rtol,
            "atol": self.atol,
            "step_size": self.step_size,
            "stop_at_collapse": self.stop_at_collapse,
        }


DEFAULTS = SolveConfig()
