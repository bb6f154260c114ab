"""The store of a sweep on disk: a folder with the manifest and one NetCDF file per
finished chunk, each written atomically; opening it as one labelled Dataset."""

import json
import math
import os

import numpy as np

from .._io import MANIFEST, TMP_PREFIX, atomic_path
from ._grid import SweepConfig, units_of


def chunk_path(out, k):
    return os.path.join(out, f"chunk-{k:05d}.nc")


def _write_json_atomic(obj, path):
    with atomic_path(path, ".json") as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=1)


def open_store(out, cfg, chunk_size, num_units):
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
        old, new = stored.get("config", {}), cfg.to_json()
        if old != new:
            keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
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
        # 16 chunks: each NetCDF write took ~40 ms on the 2-core machine, and the full phase
        # diagram had 135 chunks (~5 s of writes by that count); a resume redoes at most 1/16.
        # A multiple of the beta groups, so that no group is solved by two chunks.
        group = cfg.solve.beta_group
        chunk_size = group * max(1, math.ceil(num_units / 16 / group))
    try:
        os.makedirs(out, exist_ok=True)
        _write_json_atomic({"config": cfg.to_json(), "chunk_size": chunk_size}, manifest)
    except OSError as e:
        raise ValueError(
            f"out={out!r}: cannot write there ({e.strerror}); choose a writable location"
        ) from None
    return chunk_size


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
    cfg, chunk_size = SweepConfig.from_json(stored["config"]), stored["chunk_size"]
    units, grid = units_of(cfg)
    num_chunks = math.ceil(len(units) / chunk_size)
    missing = [k for k in range(num_chunks) if not os.path.isfile(chunk_path(path, k))]
    if missing:
        raise ValueError(
            f"path={path!r}: {len(missing)} of {num_chunks} chunks are missing; rerun the same sweep to finish it"
        )
    parts = []
    for k in range(num_chunks):
        with xr.open_dataset(chunk_path(path, k), engine="h5netcdf") as ds:
            parts.append(ds.load())
    per_unit = xr.concat(parts, dim="unit")
    axes = {k: a.values for k, a in cfg.axes.items() if k != "seed"}
    dims = tuple(axes)
    data = {}
    for name, var in per_unit.data_vars.items():
        values = var.values[grid]  # (*grid, [seed, [time]])
        data[name] = (dims + var.dims[1:], values)
    coords = {k: np.asarray(v) for k, v in axes.items()}
    coords["seed"] = np.asarray(cfg.values("seed"))
    coords["time"] = np.asarray(cfg.ts, dtype=per_unit["t_stop"].dtype)
    ds = xr.Dataset(
        data, coords=coords, attrs={"config": json.dumps(cfg.to_json()), "chunk_size": chunk_size}
    )
    fixed = [k for k, a in cfg.axes.items() if not a.swept]
    return ds.squeeze(fixed)
