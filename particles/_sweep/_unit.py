"""One unit of a sweep (a (scheme, parameters, n, d, beta, layers, noise) with all its seeds, one
solve) and one chunk of units, as pure functions: they run in this process or on a
Dask worker and write nothing."""

import functools
import warnings

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from .. import analysis, init
from .._config import SolveConfig
from .._gram import observe_gram
from .._integrate import Observe, integrate
from .._model.position import from_spec
from .._outcome import observed_outcome
from .._problem import make_problem
from .._solver import UnrolledTsit5
from .._status import SimulationWarning, Status
from .._validate import precision
from ..schemes import get_scheme
from ..sphere import normalize
from ..weights import random_transformer_arguments
from ._grid import beta_groups


@functools.lru_cache(maxsize=4)
def _initial_tokens(spec, seeds, n, d, dtype):
    """The initial tokens of every seed, shared by the units that differ only in the
    scheme, its parameters or beta (the same arrays each time, so the same results), as
    a numpy array: stacked, sliced and tiled on the host, not by a compiled program each."""
    return np.stack([np.asarray(init.from_spec(spec, s, n, d, jnp.dtype(dtype))) for s in seeds])


@functools.partial(jax.jit, static_argnames=("names", "delta", "k"))
def _unit_observables(ts, lift, r, beta, t_stop, names, delta, k):
    """The observables over the first ``k`` saves and the collapse times of one unit
    from the solver's saves (``lift`` (T, seed, n, m), θ = lift/|lift|; ``r`` (T, seed,
    n); ``beta`` (seed,)), as one compiled program (op by op, they took as long as the solve), four seeds
    at a time: for the whole unit at once, its Gram matrices (seeds × saves × n × n)
    were arrays of tens of MB, and allocating them cost more than computing them
    (64 seeds, n = 32, 301 saves: 123 ms at once, 47 ms seed by seed, 39 ms by four;
    2026-12-03, 2-core CPU)."""

    def one_seed(i):
        theta = normalize(jax.lax.dynamic_index_in_dim(lift, i, axis=1, keepdims=False))
        r_seed = jax.lax.dynamic_index_in_dim(r, i, axis=1, keepdims=False)
        values = analysis.observe(names, theta[:k], r_seed[:k], beta[i], delta)
        return values, analysis.collapse_time_of_saves(ts, theta, delta, t_stop)

    return jax.lax.map(one_seed, jnp.arange(lift.shape[1]), batch_size=4)


def solve_group(cfg, group, size=None):
    """One solve for units that differ only in beta (:func:`particles._sweep._grid.beta_groups`;
    a single unit is its own group), padded to ``size`` units with copies of the last
    one so that every group of a sweep is one compiled program: a list with, per unit,
    its observables (seed, time), NaN after a stop and where a failed seed has no state;
    collapse times (seed), NaN for a failed seed; the seeds' status (0 ok, see
    :class:`particles.Trajectory`); the stop time."""
    n, d = group[0].n, group[0].d
    betas = [unit.beta for unit in group]
    betas += betas[-1:] * ((size or len(betas)) - len(betas))
    seeds = cfg.values("seed")
    x0 = _initial_tokens(cfg.init, tuple(seeds), n, d, cfg.dtype)
    if len(betas) == 1:
        return [_solve(cfg, group[0], x0, betas[0])]
    x0 = np.tile(x0, (len(betas), 1, 1))
    out = _solve(cfg, group[0], x0, np.repeat(np.asarray(betas, np.float64), len(seeds)))
    per_seed = [k for k, v in out.items() if np.ndim(v) >= 1]
    return [
        {k: (out[k][g * len(seeds) : (g + 1) * len(seeds)] if k in per_seed else out[k]) for k in out}
        for g in range(len(group))
    ]


def _solve(cfg, unit, x0, beta):
    """The solve of :func:`solve_group`: tokens ``x0`` (batch, n, d), ``beta`` a scalar
    or one per trajectory; the other settings from ``unit``."""
    scheme, params, d, layers, noise = unit.scheme, unit.params, unit.d, unit.layers, unit.noise
    position = None if unit.position is None else from_spec(unit.position)
    dtype = jnp.dtype(cfg.dtype)
    seeds, ts = cfg.values("seed"), np.asarray(cfg.ts)
    delta = cfg.delta
    problem = make_problem(
        x0, get_scheme(scheme, **dict(params)), beta=beta, t0=cfg.t0, t1=cfg.t1, dtype=dtype,
        attention=cfg.solve.attention, layers=layers, **_model_arguments(cfg, d, layers, dtype),
        **_noise_arguments(noise, seeds), position=position,
    )  # fmt: skip
    config = SolveConfig(
        ts=ts, stop_at_collapse=delta if cfg.stop_at_collapse else None,
        solver=diffrax.Heun() if "noise" in cfg.axes else None,  # Stratonovich; for D = 0 too
        **cfg.solve.options(),
    )  # fmt: skip
    names = analysis.check_observables(cfg.observables)
    if "energy" in names:
        for b in np.ravel(beta):
            analysis.check_energy_beta(b)  # under jit, beta = 0 would give inf, not an error
    if (
        problem.closes_on_gram
        and config.gram
        and config.adaptive
        and isinstance(config.solver, UnrolledTsit5)
    ):
        out = _solve_unit_gram(problem, config, ts, names, delta, dtype)
        if out is not None:
            return out
    batch = len(x0)
    if problem.layers is None:  # the observables computed at each save, inside the solve
        return _solve_observed(problem, config, names, delta, ts, cfg.t1, dtype)
    with warnings.catch_warnings():  # failed seeds are recorded in the status variable
        warnings.simplefilter("ignore", SimulationWarning)
        saves = integrate(
            problem, config
        )  # in the solver's coordinates: observables need inner products only
    stopped = saves.stats.get("collapsed")
    k = len(saves.ts) - 1 if stopped else len(ts)
    beta_each = jnp.broadcast_to(jnp.asarray(beta, dtype), (batch,))
    values, collapse = _unit_observables(
        saves.ts, saves.lift, saves.r, beta_each, saves.stats["t_stop"] if stopped else None, names, delta, k
    )
    missing = np.isnan(np.asarray(saves.r[:k])).any(axis=-1).T  # saves a failed seed did not reach
    out = {}
    for name, v in values.items():
        full = np.full((batch, len(ts)), np.nan, dtype=dtype)
        full[:, :k] = np.where(missing, np.nan, np.asarray(v))
        out[name] = full
    return _finish(out, collapse, saves.status, saves.stats.get("t_stop", cfg.t1), dtype)


def _solve_observed(problem, config, names, delta, ts, t1, dtype):
    """The ODE's observables computed at each save inside the solve (:class:`Observe`)."""
    batch = problem.batch_shape[0]
    with warnings.catch_warnings():  # failed seeds are recorded in the status variable
        warnings.simplefilter("ignore", SimulationWarning)
        sol = integrate(problem, config, observe=Observe(names, float(delta)))
    stopped = sol.stats.get("collapsed")
    k = len(sol.ts) - 1 if stopped else len(ts)
    out = {}
    for name in names:
        full = np.full((batch, len(ts)), np.nan, dtype=dtype)
        full[:, :k] = np.asarray(sol.values[name][:k]).T
        out[name] = full
    t_stop = sol.stats["t_stop"] if stopped else t1
    collapse = _collapse_times(sol.ts, sol.values["_min_cosine"], delta, t_stop if stopped else None, dtype)
    return _finish(out, collapse, sol.status, t_stop, dtype)


_crossing_time = jax.jit(analysis.crossing_time)  # one program (op by op: ~0.8 s of compiles)


def _collapse_times(ts, min_cos, delta, t_stop, dtype):
    """τ_δ per seed from min_{i≠j} G_ij (T, seed) at the saves ``ts``: the first
    crossing of 1 − δ, interpolated; where none, ``t_stop`` (a collapse stop) or inf."""
    m = jnp.asarray(np.asarray(min_cos).T.astype(dtype))
    collapse = np.asarray(_crossing_time(jnp.asarray(ts, dtype), m, 1 - delta))
    return collapse if t_stop is None else np.where(np.isinf(collapse), t_stop, collapse)


def _finish(out, collapse, status, t_stop, dtype):
    """``out`` with the collapse times (NaN for a failed seed), the status and the stop time."""
    out["collapse_time"] = np.where(status != Status.OK, np.nan, collapse).astype(dtype)
    out["status"] = status
    out["t_stop"] = np.asarray(t_stop, dtype=dtype)
    return out


def _solve_unit_gram(problem, config, ts, names, delta, dtype):
    """:func:`_solve` by the Gram solve (MODEL.md §8; one compiled program for every
    d, since the state is the n × n chord distances), or ``None`` where it does not
    apply (coincident initial tokens). A failed batch is solved again seed by seed,
    as the token solve does."""
    att = problem.attention
    level = None if config.stop_at_collapse is None else 1 - config.stop_at_collapse
    solve = lambda x0, beta, level: observe_gram(  # noqa: E731
        x0, problem.scheme, beta=beta, kernel=att.kernel, position=att.position, ts=ts, t0=problem.t0, t1=problem.t1,
        rtol=config.rtol, atol=config.atol, max_steps=config.max_steps, stop_level=level, names=names, delta=delta,
    )  # fmt: skip
    x0, beta = np.asarray(problem.x0), np.broadcast_to(np.asarray(att.beta), problem.batch_shape)
    obs = solve(x0, beta, level)
    if obs is None:
        return None
    parts, status = observed_outcome(obs, lambda i: solve(x0[i : i + 1], beta[i : i + 1], None), len(x0), ts)
    min_cos = np.concatenate([p.min_cosine for p in parts], axis=1)  # (T, seed), NaN where not reached
    stopped = len(parts) == 1 and obs.stopped
    collapse = _collapse_times(ts, min_cos, delta, obs.t_stop if stopped else None, dtype)
    out = {name: np.concatenate([p.values[name] for p in parts], axis=1).T.astype(dtype) for name in names}
    return _finish(out, collapse, status, obs.t_stop if stopped else problem.t1, dtype)


def _noise_arguments(noise, seeds) -> dict:
    """make_problem's noise arguments: D and, for D > 0, one Brownian key per seed,
    ``jax.random.key(s)`` (the paths of ``particles simulate --seed s --noise D``), so a
    trajectory's paths depend on its seed only: the same for every beta and D of the
    grid, whatever the chunking."""
    if not noise:
        return {}
    return {"noise": noise, "key": np.asarray(seeds, dtype=np.int64)}


def check_units(cfg, units) -> None:
    """Build (without solving) the problem of every line of units that differ only in
    beta, with all its betas and the tokens of the first seed, so that every argument
    (the initial tokens of ``init`` for each n and d, norm, residual, weights, logit
    range, ...) is refused with its one-line message before the store is created."""
    dtype = jnp.dtype(cfg.dtype)
    seeds = cfg.values("seed")
    lines = {}
    for unit in units:
        lines.setdefault(unit.without_beta(), []).append(unit.beta)
    SolveConfig(ts=np.asarray(cfg.ts), **cfg.solve.options())
    names = analysis.check_observables(cfg.observables)
    with precision(cfg.dtype):
        for (scheme, params, n, d, _, layers, noise, position), betas in lines.items():
            x0 = _initial_tokens(cfg.init, tuple(seeds), n, d, dtype.name)[:1]
            make_problem(
                np.tile(x0, (len(betas), 1, 1)), get_scheme(scheme, **dict(params)),
                beta=np.asarray(betas, np.float64), t0=cfg.t0, t1=cfg.t1, dtype=dtype,
                attention=cfg.solve.attention, layers=layers, **_model_arguments(cfg, d, layers, dtype),
                **_noise_arguments(noise, seeds[:1] * len(betas)),
                position=None if position is None else from_spec(position),
            )  # fmt: skip
            if "energy" in names:
                for b in betas:
                    analysis.check_energy_beta(b)


def chunk_dataset(cfg, units, indices):
    """Compute one chunk (a pure function of its arguments: it runs in this process or
    on a Dask worker, and writes nothing)."""
    import xarray as xr

    groups = beta_groups(cfg, units)
    size = max(len(g) for g in groups)
    group_of = {i: g for g in groups for i in g}
    solved = {}
    with precision(cfg.dtype):
        for i in indices:
            if i not in solved:
                members = group_of[i]
                solved.update(zip(members, solve_group(cfg, [units[j] for j in members], size)))
    results = [solved[i] for i in indices]
    data = {}
    for name in results[0]:
        stacked = np.stack([r[name] for r in results])
        dims = ("unit", "seed", "time")[: stacked.ndim]
        data[name] = (dims, stacked)
    return xr.Dataset(data, coords={"unit": np.asarray(indices)})


def _model_arguments(cfg, d, layers, dtype) -> dict:
    """make_problem's transformer arguments from the sweep's model settings: the norm,
    the residual scaling and the random weights and MLP."""
    model = cfg.model
    drawn = random_transformer_arguments(
        d, t0=cfg.t0, t1=cfg.t1, layers=layers, weights=model.get("weights"), mlp=model.get("mlp"),
        heads=model.get("heads", 1), weight_seed=model.get("weight_seed", 0), dtype=dtype,
    )  # fmt: skip
    return {**{k: model[k] for k in ("norm", "residual") if k in model}, **drawn}
