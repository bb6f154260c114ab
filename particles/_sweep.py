"""Parameter sweeps written chunk by chunk to a resumable store on disk.

A sweep is a grid over scheme, scheme parameters (tau, alpha), n, d, beta and seed.
The work is split into *units*: one (scheme, parameters, n, d, beta) with all its
seeds, solved by one :func:`particles.simulate` call (the seeds batched into one
compiled solve; all units of the same (scheme, parameters, n, d) share one compile,
since beta is traced). Units are grouped ``chunk_size`` at a time into *chunks*, and
each finished chunk is written atomically to its own NetCDF file.

Because each unit is its own solve (its seeds share one step-size controller, no
other unit does), a unit's numbers depend only on the unit: an interrupted sweep that
resumes, or the same sweep cut into different chunk sizes, gives bit-identical
results. (Batching several betas into one solve would be faster on a GPU but would
make the step sizes, hence the last digits, depend on the chunking.)

Store layout (a folder)::

    OUT/manifest.json          the full sweep configuration and the chunk size
    OUT/chunk-00000.nc ...     one per finished chunk: dims (unit, seed, time)

A chunk file appears complete or not at all (temporary file + rename), so a kill at
any moment loses at most the chunk being computed. Rerunning the same sweep skips
the chunks on disk; a store written by a different configuration is refused.
"""

import contextlib
import functools
import itertools
import json
import math
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from . import analysis, init
from ._config import SolveConfig
from ._integrate import integrate
from ._problem import make_problem, precision
from ._status import SimulationWarning
from ._trajectory import TMP_PREFIX, atomic_path, write_atomic
from ._validate import check_choice, check_float, check_int, default_dtype
from .schemes import SCHEMES, get_scheme
from .sphere import normalize

MANIFEST = "manifest.json"
FORMAT = "particles-sweep/2"  # 2: per-seed status variable


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


def save_times(t0, t1, save_every=None, ts=None) -> np.ndarray:
    """The save times: ``ts`` if given, else every ``save_every`` from t0 plus t1, else
    101 points on [t0, t1]."""
    if ts is not None and save_every is not None:
        raise ValueError("give ts or save_every, not both")
    if ts is not None:
        return np.asarray(ts, dtype=float)
    if save_every is None:
        return np.linspace(t0, t1, 101)
    save_every = check_float("save_every", save_every, positive=True)
    if not t1 > t0:
        raise ValueError(f"t1={t1!r} must be greater than t0={t0!r}")
    return np.append(np.arange(t0, t1, save_every), t1)


def _config(**kw):
    """Validate the sweep arguments into a JSON-serialisable configuration."""
    cfg = {"format": FORMAT}
    axes = {}
    axes["scheme"] = _axis("schemes", kw["schemes"], _scheme_name)
    for key, value in sorted(kw["scheme_params"].items()):
        owners = [s for s in axes["scheme"][0] if key in SCHEMES[s].__dataclass_fields__]
        if not owners:
            raise ValueError(f"scheme parameter {key!r} is used by none of the schemes {axes['scheme'][0]}")
        axes[key] = _axis(key, value, check_float)
    axes["n"] = _axis("n", kw["n"], lambda k, v: check_int(k, v, minimum=2))
    axes["d"] = _axis("d", kw["d"], lambda k, v: check_int(k, v, minimum=2))
    axes["beta"] = _axis("beta", kw["beta"], check_float)
    seeds = kw["seeds"]
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        seeds = list(range(check_int("seeds", seeds, minimum=1)))
    axes["seed"] = (_axis("seeds", list(seeds), check_int)[0], True)
    cfg["axes"] = {k: {"values": v, "swept": s} for k, (v, s) in axes.items()}
    t0 = check_float("t0", kw["t0"])
    t1 = check_float("t1", kw["t1"])
    if not t1 > t0:
        raise ValueError(f"t1={t1!r} must be greater than t0={t0!r}")
    ts = save_times(t0, t1, kw["save_every"], kw["ts"])
    if ts.ndim != 1 or ts.size == 0 or np.any(np.diff(ts) <= 0) or ts[0] < t0 or ts[-1] > t1:
        raise ValueError(f"ts must be a non-empty increasing 1-d array of times in [t0, t1] = [{t0}, {t1}]")
    cfg.update(t0=t0, t1=t1, ts=ts.tolist())
    cfg["observables"] = list(analysis.check_observables(kw["observables"]))
    delta = check_float("delta", kw["delta"], positive=True)
    cfg.update(delta=delta, stop_at_collapse=bool(kw["stop_at_collapse"]), init=init.check_spec(kw["init"]))
    dtype = np.dtype(kw["dtype"] if kw["dtype"] is not None else default_dtype())
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype={dtype} must be float32 or float64")
    cfg["dtype"] = dtype.name
    cfg["solve"] = {
        "attention": kw["attention"],
        "rtol": check_float("rtol", kw["rtol"], positive=True),
        "atol": check_float("atol", kw["atol"], positive=True),
        "max_steps": check_int("max_steps", kw["max_steps"], minimum=1),
    }
    return cfg


def _units(cfg):
    """The distinct units (scheme, params, n, d, beta) of the grid, and for every grid
    point (in the order of the axes, seed excluded) the index of its unit. A scheme
    parameter that a scheme does not take does not make new units for it."""
    axes = {k: v["values"] for k, v in cfg["axes"].items() if k != "seed"}
    params = [k for k in axes if k not in ("scheme", "n", "d", "beta")]
    units, index = [], {}
    grid = np.empty([len(v) for v in axes.values()], dtype=np.int64)
    for pos in itertools.product(*(range(len(v)) for v in axes.values())):
        point = {k: axes[k][i] for k, i in zip(axes, pos)}
        fields = SCHEMES[point["scheme"]].__dataclass_fields__
        unit = (
            point["scheme"],
            tuple((p, point[p]) for p in params if p in fields),
            point["n"],
            point["d"],
            point["beta"],
        )
        if unit not in index:
            index[unit] = len(units)
            units.append(unit)
        grid[pos] = index[unit]
    return units, grid


@functools.lru_cache(maxsize=4)
def _initial_tokens(spec, seeds, n, d, dtype):
    """The initial tokens of every seed, shared by the units that differ only in the
    scheme, its parameters or beta (the same arrays each time, so the same results)."""
    return jnp.stack([init.from_spec(spec, s, n, d, jnp.dtype(dtype)) for s in seeds])


@functools.partial(jax.jit, static_argnames=("names", "delta", "k"))
def _unit_observables(ts, lift, r, beta, t_stop, names, delta, k):
    """The observables over the first ``k`` saves and the collapse times of one unit
    from the solver's saves (``lift`` (T, seed, n, m), θ = lift/|lift|; ``r`` (T, seed,
    n)), as one compiled program (op by op, they took as long as the solve), one seed
    at a time: for the whole unit at once, its Gram matrices (seeds × saves × n × n)
    were arrays of tens of MB, and allocating them cost more than computing them."""

    def one_seed(i):
        theta = normalize(jax.lax.dynamic_index_in_dim(lift, i, axis=1, keepdims=False))
        r_seed = jax.lax.dynamic_index_in_dim(r, i, axis=1, keepdims=False)
        values = analysis.observe(names, theta[:k], r_seed[:k], beta, delta)
        return values, analysis._collapse_time(ts, theta, delta, t_stop)

    return jax.lax.map(one_seed, jnp.arange(lift.shape[1]))


def _solve_unit(cfg, unit):
    """One simulate call for a unit: observables (seed, time), NaN after a stop and
    where a failed seed has no state; collapse times (seed), NaN for a failed seed; the
    seeds' status (0 ok, see :class:`particles.Trajectory`); the stop time."""
    scheme, params, n, d, beta = unit
    dtype = jnp.dtype(cfg["dtype"])
    seeds, ts = cfg["axes"]["seed"]["values"], np.asarray(cfg["ts"])
    x0 = _initial_tokens(cfg["init"], tuple(seeds), n, d, dtype.name)
    delta = cfg["delta"]
    problem = make_problem(
        x0, get_scheme(scheme, **dict(params)), beta=beta, t0=cfg["t0"], t1=cfg["t1"], dtype=dtype,
        attention=cfg["solve"]["attention"],
    )  # fmt: skip
    config = SolveConfig(
        ts=ts, stop_at_collapse=delta if cfg["stop_at_collapse"] else None,
        **{k: v for k, v in cfg["solve"].items() if k != "attention"},
    )  # fmt: skip
    with warnings.catch_warnings():  # failed seeds are recorded in the status variable
        warnings.simplefilter("ignore", SimulationWarning)
        saves = integrate(
            problem, config
        )  # in the solver's coordinates: observables need inner products only
    stopped = saves.stats.get("collapsed")
    k = len(saves.ts) - 1 if stopped else len(ts)
    names = analysis.check_observables(cfg["observables"])
    if "energy" in names:
        analysis._check_energy_beta(beta)  # under jit, beta = 0 would give inf, not an error
    values, collapse = _unit_observables(
        saves.ts, saves.lift, saves.r, beta, saves.stats["t_stop"] if stopped else None, names, delta, k
    )
    missing = np.isnan(np.asarray(saves.r[:k])).any(axis=-1).T  # saves a failed seed did not reach
    out = {}
    for name, v in values.items():
        full = np.full((len(seeds), len(ts)), np.nan, dtype=dtype)
        full[:, :k] = np.where(missing, np.nan, np.asarray(v))
        out[name] = full
    failed = saves.status != 0
    out["collapse_time"] = np.where(failed, np.nan, collapse).astype(dtype)
    out["status"] = saves.status
    out["t_stop"] = np.asarray(saves.stats.get("t_stop", cfg["t1"]), dtype=dtype)
    return out


def _chunk_dataset(cfg, units, indices):
    """Compute one chunk (a pure function of its arguments: it runs in this process or
    on a Dask worker, and writes nothing)."""
    import xarray as xr

    with precision(cfg["dtype"]):
        results = [_solve_unit(cfg, units[i]) for i in indices]
    data = {}
    for name in results[0]:
        stacked = np.stack([r[name] for r in results])
        dims = ("unit", "seed", "time")[: stacked.ndim]
        data[name] = (dims, stacked)
    return xr.Dataset(data, coords={"unit": np.asarray(indices)})


def _chunk_path(out, k):
    return os.path.join(out, f"chunk-{k:05d}.nc")


def _write_json_atomic(obj, path):
    with atomic_path(path, ".json") as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=1)


def _open_store(out, cfg, chunk_size, num_units):
    """Create the store, or check that the one at ``out`` holds this very sweep; return
    the chunk size to use."""
    start_fresh = "delete the folder or choose another out to start fresh"
    manifest = os.path.join(out, MANIFEST)
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"out={out!r} exists and is not a sweep folder; choose another out")
    if os.path.isdir(out):  # temporary files of a killed run are never part of the store
        for name in os.listdir(out):
            if name.startswith(TMP_PREFIX):
                os.remove(os.path.join(out, name))
    if os.path.isfile(manifest):
        try:
            with open(manifest) as f:
                stored = json.load(f)
        except (OSError, ValueError) as e:
            raise ValueError(f"out={out!r}: cannot read {MANIFEST} ({e}); {start_fresh}") from None
        old = stored.get("config", {})
        if old != cfg:
            keys = sorted(k for k in set(old) | set(cfg) if old.get(k) != cfg.get(k))
            raise ValueError(
                f"out={out!r} holds a sweep with a different configuration (differs in: "
                f"{', '.join(keys)}); {start_fresh}"
            )
        if chunk_size is not None and chunk_size != stored["chunk_size"]:
            raise ValueError(
                f"out={out!r} was written with chunk_size={stored['chunk_size']}; resume with that "
                f"chunk size (or leave it unset), or {start_fresh}"
            )
        return stored["chunk_size"]
    if os.path.isdir(out) and os.listdir(out):
        raise ValueError(
            f"out={out!r} is a non-empty folder without {MANIFEST}, not a sweep store; choose another out"
        )
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise ValueError(f"out={out!r}: folder {parent!r} does not exist")
    if chunk_size is None:
        chunk_size = max(1, math.ceil(num_units / 200))
    try:
        os.makedirs(out, exist_ok=True)
        _write_json_atomic({"config": cfg, "chunk_size": chunk_size}, manifest)
    except OSError as e:
        raise ValueError(
            f"out={out!r}: cannot write there ({e.strerror}); choose a writable location"
        ) from None
    return chunk_size


def sweep(
    out,
    *,
    beta,
    n,
    d,
    t1,
    seeds=1,
    schemes="post",
    t0=0.0,
    ts=None,
    save_every=None,
    observables=("mean_cosine",),
    delta=1e-3,
    stop_at_collapse=False,
    init="uniform",
    attention="softmax",
    rtol=1e-6,
    atol=1e-8,
    max_steps=100_000,
    dtype=None,
    chunk_size=None,
    progress=True,
    on_chunk=None,
    scheduler=None,
    **scheme_params,
):
    """Run a grid of simulations and return its observables as an ``xarray.Dataset``.

    ``schemes``, ``beta``, ``n``, ``d`` and scheme parameters (``tau=``, ``alpha=``)
    take a value (fixed) or a list (swept: one labelled dimension each); ``seeds`` is a
    count (seeds 0..k−1) or a list, always the dimension ``seed``. Seed s draws the
    initial tokens from ``init`` ("uniform" on the sphere, "gaussian",
    "equiangular:RHO") with ``jax.random.key(s)``, the same for every scheme and beta.

    Each variable of ``observables`` (names from :data:`particles.analysis.OBSERVABLES`;
    ``delta`` is the threshold of pair_density, cluster_count and the collapse time) has
    dims (swept parameters..., seed, time); ``collapse_time`` (swept..., seed) is the
    first time min_{i≠j}⟨θ_i, θ_j⟩ ≥ 1 − delta, interpolated between saves, inf if never;
    ``t_stop`` (swept...) is when the solve ended. With ``stop_at_collapse=True`` the
    solve of a (scheme, parameters, n, d, beta) ends once all its seeds have collapsed,
    and the saves after the stop are NaN (not computed).

    Results are written to the folder ``out`` chunk by chunk (see the module docstring):
    rerunning the same call resumes, computing only the missing chunks, and gives a
    result bit-identical to an uninterrupted run, for any ``chunk_size`` (the number of
    (scheme, parameters, n, d, beta) units per chunk file). ``on_chunk(done, total)`` is
    called after each chunk is written; ``progress`` shows a bar with chunks done and
    time left.

    ``scheduler`` (an address such as ``"tcp://host:8786"`` or a ``distributed.Client``)
    sends the chunks to a Dask cluster (``pip install particles[distributed]``). Workers
    only compute; this process writes every chunk file, so the store and its resumption
    are the same as in-process, and so are the numbers.
    """
    import tqdm

    cfg = _config(
        schemes=schemes,
        scheme_params=scheme_params,
        n=n,
        d=d,
        beta=beta,
        seeds=seeds,
        t0=t0,
        t1=t1,
        ts=ts,
        save_every=save_every,
        observables=observables,
        delta=delta,
        stop_at_collapse=stop_at_collapse,
        init=init,
        dtype=dtype,
        attention=attention,
        rtol=rtol,
        atol=atol,
        max_steps=max_steps,
    )
    check_choice("attention", attention, ("softmax", "usa"))
    for scheme in cfg["axes"]["scheme"]["values"]:  # parameter values valid for each scheme
        for key in scheme_params:
            if key in SCHEMES[scheme].__dataclass_fields__:
                for v in cfg["axes"][key]["values"]:
                    get_scheme(scheme, **{key: v})
    if chunk_size is not None:
        chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    out = os.fspath(out)
    units, _ = _units(cfg)
    chunk_size = _open_store(out, cfg, chunk_size, len(units))
    chunks = [list(range(i, min(i + chunk_size, len(units)))) for i in range(0, len(units), chunk_size)]
    todo = [k for k in range(len(chunks)) if not os.path.isfile(_chunk_path(out, k))]
    resumed = done = len(chunks) - len(todo)
    desc = f"sweep (resumed: {resumed} chunks on disk)" if resumed else "sweep"
    with (
        _computed_chunks(cfg, units, chunks, todo, scheduler) as computed,
        tqdm.tqdm(total=len(chunks), initial=resumed, unit="chunk", desc=desc, disable=not progress) as bar,
    ):
        for k, ds in computed:
            try:
                write_atomic(ds, _chunk_path(out, k))
            except OSError as e:
                raise ValueError(
                    f"out={out!r}: could not write chunk {k} ({e.strerror}); the {done} "
                    "finished chunks are kept: free space or fix permissions and rerun to resume"
                ) from None
            bar.update(1)
            done += 1
            if on_chunk is not None:
                on_chunk(done, len(chunks))
    result = open_sweep(out)
    result.attrs["chunks_resumed"] = resumed
    return result


@contextlib.contextmanager
def _computed_chunks(cfg, units, chunks, todo, scheduler):
    """Yield (k, dataset) for the chunks ``todo``: computed here in order, or on a Dask
    cluster as they finish."""
    if scheduler is None:
        yield ((k, _chunk_dataset(cfg, units, chunks[k])) for k in todo)
        return
    try:
        import distributed
    except ImportError:
        raise ValueError(
            "scheduler= needs the 'distributed' package: pip install 'particles[distributed]'"
        ) from None
    if isinstance(scheduler, distributed.Client):
        client, own = scheduler, False
    else:
        try:
            client, own = distributed.Client(scheduler, timeout="20s"), True
        except (OSError, TimeoutError, ValueError) as e:
            raise ValueError(f"scheduler={scheduler!r}: cannot connect ({e})") from None
    try:
        futures = {client.submit(_chunk_dataset, cfg, units, chunks[k], pure=False): k for k in todo}
        yield ((futures[f], f.result()) for f in distributed.as_completed(futures))
    finally:
        if own:
            client.close()


def open_sweep(path):
    """Read the store written by :func:`sweep` into one labelled ``xarray.Dataset``
    (dims: the swept parameters, seed, time; fixed parameters are scalar coordinates).
    Refuses an unfinished store: rerun the sweep to complete it."""
    import xarray as xr

    path = os.fspath(path)
    manifest = os.path.join(path, MANIFEST)
    if not os.path.isfile(manifest):
        raise ValueError(f"path={path!r} is not a sweep store (no {MANIFEST})")
    with open(manifest) as f:
        stored = json.load(f)
    cfg, chunk_size = stored["config"], stored["chunk_size"]
    units, grid = _units(cfg)
    num_chunks = math.ceil(len(units) / chunk_size)
    missing = [k for k in range(num_chunks) if not os.path.isfile(_chunk_path(path, k))]
    if missing:
        raise ValueError(
            f"path={path!r}: {len(missing)} of {num_chunks} chunks are missing; rerun the same sweep to finish it"
        )
    parts = []
    for k in range(num_chunks):
        with xr.open_dataset(_chunk_path(path, k), engine="h5netcdf") as ds:
            parts.append(ds.load())
    per_unit = xr.concat(parts, dim="unit")
    axes = {k: v["values"] for k, v in cfg["axes"].items() if k != "seed"}
    dims = tuple(axes)
    data = {}
    for name, var in per_unit.data_vars.items():
        values = var.values[grid]  # (*grid, [seed, [time]])
        data[name] = (dims + var.dims[1:], values)
    coords = {k: np.asarray(v) for k, v in axes.items()}
    coords["seed"] = np.asarray(cfg["axes"]["seed"]["values"])
    coords["time"] = np.asarray(cfg["ts"], dtype=per_unit["t_stop"].dtype)
    ds = xr.Dataset(data, coords=coords, attrs={"config": json.dumps(cfg), "chunk_size": chunk_size})
    fixed = [k for k, v in cfg["axes"].items() if not v["swept"]]
    return ds.squeeze(fixed)
