"""The grid of a sweep: validated axes, save times, and the distinct units
(scheme, parameters, n, d, beta) with the index of each grid point's unit."""

import dataclasses
import itertools
from typing import NamedTuple

import numpy as np

from .. import analysis, init
from .._config import SolveConfig, save_times
from .._model.position import from_spec
from .._problem import check_dtype
from .._validate import check_choice, check_float, check_int
from ..schemes import SCHEMES, scheme_parameters

FORMAT = "particles-sweep/3"  # 2: per-seed status variable; 3: betas solved in groups (beta_group)

# Trajectories per solve where betas are grouped (:func:`beta_group`). Measured on the
# 2-core CPU (2026-12-03; post, n = 32, T = 30, 64 seeds per beta, float32): one solve per
# beta cost 41, 38 and 21 µs per trajectory-step at d = 128, 128 and 8; ten betas per
# solve (640 trajectories) 25-29 µs and 11-13 µs; thirty (1920) 26-39 µs at d = 128, as
# the states fall out of the cache.
TRAJECTORIES_PER_SOLVE = 640


def _axis(name, value, convert):
    """(values, swept): a sequence is swept (a labelled dim, even of length 1), a scalar is fixed."""
    if isinstance(value, (str, int, float, np.number)) and not isinstance(value, bool):
        return [convert(name, value)], False
    try:
        values = [convert(name, v) for v in np.asarray(value, dtype=object).ravel()]
    except TypeError:
        raise ValueError(f"{name}={value!r} must be a value or a list of values") from None
    if not values:
        raise ValueError(f"{name} is an empty list: give at least one value")
    if len(set(values)) != len(values):
        raise ValueError(f"{name}={values} contains a repeated value")
    return values, True


def _scheme_name(name, value):
    if not isinstance(value, str) or value not in SCHEMES:
        raise ValueError(f"{name}={value!r} is not one of: {', '.join(SCHEMES)}")
    return value


def _position_label(name, value):
    """A position label (:func:`particles._model.position.from_spec`), checked."""
    if not isinstance(value, str):
        raise ValueError(f"{name}={value!r} must be a label such as 'causal', 'alibi' or 'rope:500+causal'")
    from_spec(value, name)
    return value


def _tokens(name, value):
    """n: at least 2, as on the command line (every observable is about pairs of tokens)."""
    n = check_int(name, value)
    if n < 2:
        raise ValueError(f"{name}={n} must be at least 2: every observable is about pairs of tokens")
    return n


class Axis(NamedTuple):
    """One axis of the grid: its values, and whether it is swept (a labelled dim) or fixed."""

    values: list
    swept: bool


@dataclasses.dataclass(frozen=True)
class SweepSolve:
    """How each unit is solved: the attention kernel, the tolerances, constant steps
    (``step_size``; None: adaptive), the Gram flow, and how many betas one solve takes."""

    attention: str
    rtol: float
    atol: float
    max_steps: int
    gram: bool = False
    step_size: float | None = None
    beta_group: int = 1

    def options(self) -> dict:
        """The :class:`~particles.SolveConfig` settings."""
        return dict(
            rtol=self.rtol, atol=self.atol, max_steps=self.max_steps, gram=self.gram, step_size=self.step_size
        )

    def to_json(self) -> dict:
        out = {"attention": self.attention, "rtol": self.rtol, "atol": self.atol, "max_steps": self.max_steps}
        if self.gram:  # absent by default: stores written before it resume
            out["gram"] = True
        if self.step_size is not None:  # constant steps (absent: adaptive, as in earlier stores)
            out["step_size"] = self.step_size
        out["beta_group"] = self.beta_group
        return out


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A validated sweep: the axes of the grid (seed last), the save times, what is
    observed, the initial tokens, the dtype, how units are solved, and the transformer
    settings that differ from the defaults. Stored as JSON in the store's manifest
    (:meth:`to_json`; the same JSON resumes the same sweep)."""

    axes: dict  # name -> Axis, in the grid's order
    t0: float
    t1: float
    ts: list
    observables: list
    delta: float
    stop_at_collapse: bool
    init: object
    dtype: str
    solve: SweepSolve
    model: dict = dataclasses.field(default_factory=dict)
    format: str = FORMAT

    def values(self, name: str) -> list:
        return self.axes[name].values

    def to_json(self) -> dict:
        out = {
            "format": self.format,
            "axes": {k: {"values": a.values, "swept": a.swept} for k, a in self.axes.items()},
        }
        out.update(t0=self.t0, t1=self.t1, ts=self.ts, observables=self.observables, delta=self.delta)
        out.update(stop_at_collapse=self.stop_at_collapse, init=self.init, dtype=self.dtype)
        out["solve"] = self.solve.to_json()
        if self.model:
            out["model"] = self.model
        return out

    @classmethod
    def from_json(cls, cfg: dict) -> "SweepConfig":
        return cls(
            axes={k: Axis(v["values"], v["swept"]) for k, v in cfg["axes"].items()},
            **{
                k: cfg[k]
                for k in ("t0", "t1", "ts", "observables", "delta", "stop_at_collapse", "init", "dtype")
            },
            solve=SweepSolve(**cfg["solve"]),
            model=cfg.get("model", {}),
            format=cfg["format"],
        )


def sweep_config(**kw) -> SweepConfig:
    """Validate the sweep arguments into a :class:`SweepConfig`."""
    axes = {}
    axes["scheme"] = _axis("schemes", kw["schemes"], _scheme_name)
    for key, value in sorted(kw["scheme_params"].items()):
        owners = [s for s in axes["scheme"][0] if key in scheme_parameters(SCHEMES[s])]
        if not owners:
            raise ValueError(f"scheme parameter {key!r} is used by none of the schemes {axes['scheme'][0]}")
        axes[key] = _axis(key, value, check_float)
    axes["n"] = _axis("n", kw["n"], _tokens)
    axes["d"] = _axis("d", kw["d"], lambda k, v: check_int(k, v, minimum=2))
    axes["beta"] = _axis("beta", kw["beta"], check_float)
    if kw.get("layers") is not None:  # discrete depth (absent: the ODE, as in earlier stores)
        axes["layers"] = _axis("layers", kw["layers"], lambda k, v: check_int(k, v, minimum=1))
    if kw.get("noise") is not None:  # the SDE of MODEL.md §10 (absent: the ODE, as in earlier stores)
        axes["noise"] = _axis("noise", kw["noise"], lambda k, v: check_float(k, v, nonnegative=True))
    if kw.get("position") is not None:  # position parts of MODEL.md §11 (absent: none, as in earlier stores)
        axes["position"] = _axis("position", kw["position"], _position_label)
    seeds = kw["seeds"]
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        seeds = list(range(check_int("seeds", seeds, minimum=1)))
    axes["seed"] = (_axis("seeds", list(seeds), check_int)[0], True)
    t0, t1 = check_float("t0", kw["t0"]), check_float("t1", kw["t1"])
    ts = kw["ts"]
    if "layers" in axes and ts is None and kw["save_every"] is None:  # every layer of the shallowest stack
        ts = np.linspace(t0, t1, min(axes["layers"][0]) + 1)
    ts = save_times(t0, t1, ts=ts, save_every=kw["save_every"])
    observables = list(analysis.check_observables(kw["observables"]))
    delta = check_float("delta", kw["delta"], positive=True)
    stop, spec, dtype = (
        bool(kw["stop_at_collapse"]),
        init.check_spec(kw["init"]),
        check_dtype(kw["dtype"]).name,
    )
    solve = SolveConfig(
        rtol=kw["rtol"], atol=kw["atol"], max_steps=kw["max_steps"], step_size=kw.get("step_size"),
        gram=kw.get("gram", False),
    )  # fmt: skip
    group = beta_group(
        len(axes["beta"][0]), len(axes["seed"][0]),
        grouped=solve.step_size is None and not solve.gram and not stop
        and "layers" not in axes and "noise" not in axes,
    )  # fmt: skip
    gram_flow = [from_spec(p) is None or from_spec(p).gram_flow for p in axes.get("position", ([],))[0]]
    if solve.gram and not all(gram_flow):
        raise ValueError(
            "gram=True solves the Gram flow, which positions other than causal break; drop gram or those positions"
        )
    if any(axes.get("noise", ([0.0],))[0]):
        if solve.step_size is None:
            raise ValueError("noise > 0 needs constant steps: give step_size")
        if "layers" in axes:
            raise ValueError("noise applies to the ODE mode (continuous depth), not to layers=L")
    return SweepConfig(
        axes={k: Axis(*v) for k, v in axes.items()},
        t0=t0,
        t1=t1,
        ts=ts.tolist(),
        observables=observables,
        delta=delta,
        stop_at_collapse=stop,
        init=spec,
        dtype=dtype,
        solve=SweepSolve(
            kw["attention"], solve.rtol, solve.atol, solve.max_steps, solve.gram, solve.step_size, group
        ),
        model=_model(kw.get("model") or {}),
    )


def beta_group(num_betas: int, num_seeds: int, grouped: bool = True) -> int:
    """How many betas one solve takes: as many as fill :data:`TRAJECTORIES_PER_SOLVE`
    (at least 1), evened out over the beta axis (90 betas by at most 10: 9 groups of 10).
    1 (one solve per unit) where ``grouped`` is False: constant steps, noise, discrete
    layers, collapse stops (a stop would end a group, not a unit) and the Gram solve
    (float64 chords: the full phase diagram took 207 s in groups against 138 s without,
    2026-12-03)."""
    if not grouped:
        return 1
    most = max(1, TRAJECTORIES_PER_SOLVE // num_seeds)
    groups = -(-num_betas // most)
    return -(-num_betas // groups)


def beta_groups(cfg: SweepConfig, units) -> list[list[int]]:
    """The solves of a sweep: lists of unit indices that differ only in beta, at most
    ``cfg.solve.beta_group`` each, taken in order along the beta axis. A function of
    the grid alone, so every chunking solves the same groups (a chunk that holds part of
    a group solves all of it and keeps its own units)."""
    size = cfg.solve.beta_group
    lines = {}
    for i, unit in enumerate(units):
        lines.setdefault(unit.without_beta(), []).append(i)
    return [members[k : k + size] for members in lines.values() for k in range(0, len(members), size)]


class Unit(NamedTuple):
    """One solve's worth of a sweep's grid: every grid coordinate but the seed (the
    scheme's parameters as ((name, value), ...), only those the scheme takes)."""

    scheme: str
    params: tuple
    n: int
    d: int
    beta: float
    layers: int | None
    noise: float | None
    position: str | None = None  # a label of particles._model.position.from_spec

    def without_beta(self) -> tuple:
        """The coordinates that a group of betas shares."""
        return self._replace(beta=None)


def units_of(cfg: SweepConfig):
    """The distinct units (scheme, params, n, d, beta, layers, noise) of the grid, and for every grid
    point (in the order of the axes, seed excluded) the index of its unit. A scheme
    parameter that a scheme does not take does not make new units for it."""
    axes = {k: a.values for k, a in cfg.axes.items() if k != "seed"}
    params = [k for k in axes if k not in ("scheme", "n", "d", "beta", "layers", "noise", "position")]
    units, index = [], {}
    grid = np.empty([len(v) for v in axes.values()], dtype=np.int64)
    for pos in itertools.product(*(range(len(v)) for v in axes.values())):
        point = {k: axes[k][i] for k, i in zip(axes, pos)}
        fields = scheme_parameters(SCHEMES[point["scheme"]])
        unit = Unit(
            point["scheme"],
            tuple((p, point[p]) for p in params if p in fields),
            point["n"],
            point["d"],
            point["beta"],
            point.get("layers"),
            point.get("noise"),
            point.get("position"),
        )
        if unit not in index:
            index[unit] = len(units)
            units.append(unit)
        grid[pos] = index[unit]
    return units, grid


MODEL_DEFAULTS = {
    "norm": "projection",
    "mlp": None,
    "residual": "constant",
    "weights": None,
    "heads": 1,
    "weight_seed": 0,
}


def _model(model: dict) -> dict:
    """The transformer settings of a sweep that differ from the defaults (norm kind,
    MLP width, residual scaling, random weights ensemble, heads, weight seed), checked."""
    unknown = set(model) - set(MODEL_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown model settings {sorted(unknown)}; allowed: {', '.join(MODEL_DEFAULTS)}")
    out = {}
    for key, value in model.items():
        if value is None or value == MODEL_DEFAULTS[key]:
            continue
        if key in ("mlp", "heads", "weight_seed"):
            value = check_int(key, value, minimum=0 if key == "weight_seed" else 1)
        out[key] = value
    if "weights" in out:
        from ..weights import ENSEMBLES

        check_choice("weights", out["weights"], ENSEMBLES)
    if ("heads" in out or "weight_seed" in out) and "weights" not in out:
        raise ValueError(
            "heads and weight_seed apply to random weights: give weights='kaiming', 'gaussian' or 'goe'"
        )
    return out
