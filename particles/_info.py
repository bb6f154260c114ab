"""A short description of what a results path holds: a sweep store (configuration,
progress, size on disk) or a trajectory file (scheme, sizes, saves, dtype)."""

import json
import math
import os

from ._io import TMP_PREFIX, is_trajectory_file, not_a_trajectory
from ._sweep import MANIFEST, SweepConfig, chunk_path, units_of


def is_sweep_store(path) -> bool:
    """Whether ``path`` is a folder holding a sweep manifest."""
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, MANIFEST))


def result_kind(path) -> str:
    """ "sweep" for a sweep store, "trajectory" for a file written by Trajectory.save;
    anything else is a one-line ValueError."""
    if is_sweep_store(path):
        return "sweep"
    if is_trajectory_file(path):
        return "trajectory"
    reason = not_a_trajectory(path)
    if "truncated" in reason or "does not exist" in reason:
        raise ValueError(reason)
    raise ValueError(
        f"path={path!r} is neither a sweep store (a folder with {MANIFEST}) "
        "nor a trajectory file written by Trajectory.save"
    )


def info(path) -> str:
    """A few lines describing ``path``: for a sweep store (a folder written by
    :func:`particles.sweep`) its swept axes and their sizes, fixed values, times,
    observables, progress (chunks done / total, so also an unfinished store) and size
    on disk; for a trajectory file (:meth:`Trajectory.save`) its scheme, n, d, batch,
    saves, dtype and status. Reads the manifest or the file's metadata only."""
    path = os.fspath(path)
    return _sweep_info(path) if result_kind(path) == "sweep" else _trajectory_info(path)


def _lines(title, rows) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join([title] + [f"  {k:<{width}}  {v}" for k, v in rows])


def _values(values) -> str:
    """1, 2, 3 for a few values; '16 values, 0.5 .. 8' for many."""
    text = lambda v: f"{v:g}" if isinstance(v, float) else str(v)
    if len(values) <= 6:
        return ", ".join(map(text, values))
    return f"{text(values[0])} .. {text(values[-1])}"


def _size(nbytes) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024


def _sweep_info(path) -> str:
    try:
        with open(os.path.join(path, MANIFEST)) as f:
            stored = json.load(f)
        cfg, chunk_size = SweepConfig.from_json(stored["config"]), stored["chunk_size"]
        units, _ = units_of(cfg)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"path={path!r}: cannot read its {MANIFEST} ({e!r})") from None
    swept = [f"{k}: {len(a.values)} ({_values(a.values)})" for k, a in cfg.axes.items() if a.swept]
    fixed = [f"{k}={_values(a.values)}" for k, a in cfg.axes.items() if not a.swept]
    num_chunks = math.ceil(len(units) / chunk_size)
    done = sum(os.path.isfile(chunk_path(path, k)) for k in range(num_chunks))
    files = [os.path.join(path, name) for name in os.listdir(path) if not name.startswith(TMP_PREFIX)]
    nbytes = sum(os.path.getsize(p) for p in files if os.path.isfile(p))
    progress = f"{done} / {num_chunks} chunks done ({len(units)} units, {chunk_size} per chunk)"
    if done < num_chunks:
        progress += "; rerun the same sweep to finish it"
    solve = cfg.solve
    settings = [
        cfg.dtype,
        f"init {cfg.init}",
        f"delta {cfg.delta:g}",
        f"attention {solve.attention}",
        f"rtol {solve.rtol:g}",
        f"atol {solve.atol:g}",
    ]
    if solve.step_size is not None:  # constant steps (noise: the Heun SDE solver)
        settings.append(f"step_size {solve.step_size:g}" + (", Heun" if "noise" in cfg.axes else ""))
    if cfg.stop_at_collapse:
        settings.append("stop at collapse")
    ts = cfg.ts
    within = f" from {ts[0]:g} to {ts[-1]:g}" if (ts[0], ts[-1]) != (cfg.t0, cfg.t1) else ""
    rows = [
        ("swept", "; ".join(swept)),
        ("fixed", ", ".join(fixed) or "none"),
        ("times", f"t = {cfg.t0:g} .. {cfg.t1:g}, {len(ts)} saves{within}"),
        ("observables", ", ".join(cfg.observables) + " (and collapse_time, t_stop, status)"),
        ("settings", ", ".join(settings)),
        ("progress", progress),
        ("size", f"{_size(nbytes)} in {len(files)} files"),
    ]
    return _lines(f"sweep store {path} ({cfg.format})", rows)


def _trajectory_info(path) -> str:
    import numpy as np
    import xarray as xr

    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            attrs, sizes = dict(ds.attrs), dict(ds.sizes)
            dtype = ds["theta"].dtype
            ts = ds["time"].values
            status = ds["status"].values if "status" in ds else np.zeros(())
        cfg, stats = json.loads(attrs["config"]), json.loads(attrs.get("stats", "{}"))
        batch = tuple(json.loads(attrs["batch_shape"]))
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"path={path!r}: cannot read it as a trajectory file ({e!r})") from None
    rows = _trajectory_rows(cfg, stats, batch, sizes["token"], sizes["dim"], ts, dtype, status)
    rows.append(("size", _size(os.path.getsize(path))))
    return _lines(f"trajectory {path} (particles {attrs.get('particles_version', '?')})", rows)


def trajectory_summary(traj) -> str:
    """The lines of ``particles info`` for a :class:`~particles.Trajectory` in memory
    (its ``repr``)."""
    import numpy as np

    n, d = traj.theta.shape[-2:]
    rows = _trajectory_rows(
        traj.config, traj.stats, traj.batch_shape, n, d, np.asarray(traj.ts), traj.theta.dtype, traj.status
    )
    return _lines("Trajectory", rows)


def _trajectory_rows(cfg, stats, batch, n, d, ts, dtype, status) -> list:
    import numpy as np

    scheme = cfg.get("scheme", "?")
    params = cfg.get("scheme_params") or {}
    if params:
        scheme += " (" + ", ".join(f"{k}={v:g}" for k, v in params.items()) + ")"
    beta = np.ravel(np.asarray(cfg.get("beta", np.nan), dtype=float))
    size = int(np.prod(batch))
    failed = int(np.sum(status != 0))
    counts = {name: int(np.sum(status == code)) for code, name in ((1, "non-finite"), (2, "max_steps"))}
    return [
        ("scheme", f"{scheme}, beta {_values([float(b) for b in beta])}"),
        ("tokens", f"n={n}, d={d}"),
        ("batch", f"{batch}: {size} samples" if batch else "none (one trajectory)"),
        ("saves", f"{len(ts)}, t = {ts[0]:g} .. {ts[-1]:g}" if len(ts) else "0"),
        ("dtype", str(dtype)),
        ("solver", _solver_line(cfg, stats)),
        (
            "status",
            "all ok"
            if not failed
            else f"{failed} of {max(size, 1)} failed ("
            + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
            + ")",
        ),
    ]


def _solver_line(cfg: dict, stats: dict) -> str:
    """How the run was solved: its discrete layers, or the ODE solver and its steps."""
    attention = f"attention {cfg.get('attention', '?')}"
    if cfg.get("layers") is not None:
        residual = f" ({cfg['residual']} residual steps)" if cfg.get("residual") else ""
        return f"{cfg['layers']} discrete layers{residual}, {attention}"
    steps = f"{stats.get('num_steps', '?')} steps ({stats.get('num_rejected', '?')} rejected)"
    return f"{cfg.get('solver', '?')}, {attention}, {steps}"
