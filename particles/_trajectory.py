"""The result of a simulation, and its labelled (xarray / NetCDF) form."""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from ._io import is_trajectory_file, not_a_trajectory, write_atomic
from ._status import STATUS_MEANINGS, STATUS_VALUES
from .sphere import normalize


@jax.jit
def _tokens(lift, r, chart):
    """θ (*batch, T, n, d) and r (*batch, T, n) from a solver's saves (T, *batch, ...) in
    the coordinates of ``chart`` (norms are kept)."""
    theta = chart.decode_saves(jnp.moveaxis(normalize(lift), 0, -3))
    return theta, jnp.moveaxis(r, 0, -2)


@dataclasses.dataclass(frozen=True, repr=False)
class Trajectory:
    """Tokens saved at times ``ts``: directions ``theta`` (..., T, n, d) on the sphere
    and radii ``r`` (..., T, n); ``x = r θ``. ``stats`` holds the solver's step counts
    and ``config`` the full configuration that produced it.

    ``status`` (batch shape, default all zero) marks failed trajectories of a batch
    (:class:`particles.Status`): 0 ok, 1 non-finite state, a radius r ≤ 0 (a token of
    pre shrunk to the origin in finite time) or another solver failure, 2 step budget
    spent before t1. A failed trajectory keeps the saves it reached; the saves it did
    not reach are NaN.
    """

    ts: Float[ArrayLike, " T"]
    theta: Float[ArrayLike, "*batch T n d"]
    r: Float[ArrayLike, "*batch T n"]
    stats: dict
    config: dict
    status: Int[np.ndarray, "*batch"] | None = None

    def __post_init__(self):
        status = np.zeros(self.theta.shape[:-3], np.int8) if self.status is None else self.status
        object.__setattr__(self, "status", np.asarray(status, np.int8).reshape(self.theta.shape[:-3]))

    @classmethod
    def from_raw(cls, raw, problem, config) -> "Trajectory":
        """The trajectory of a :class:`particles.RawSolution` of ``problem`` solved with
        ``config``: directions mapped back to R^d, time after the batch axes."""
        theta, r = _tokens(raw.lift, raw.r, raw.chart)
        described, settings = problem.describe(), config.describe()
        dtype = described.pop("dtype")
        stop = settings.pop("stop_at_collapse")
        record = {**described, **settings, "dtype": dtype, "stop_at_collapse": stop}
        return cls(ts=raw.ts, theta=theta, r=r, stats=raw.stats, config=record, status=raw.status)

    def __repr__(self) -> str:
        """A summary, as ``particles info`` prints for a saved file (not the arrays)."""
        from ._info import trajectory_summary

        return trajectory_summary(self)

    @property
    def x(self) -> Float[Array, "*batch T n d"]:
        return self.r[..., None] * self.theta

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self.theta.shape[:-3])

    def to_xarray(self):
        """An ``xarray.Dataset`` with dims (sample, time, token, dim); leading batch
        dimensions are flattened into ``sample`` (attr ``batch_shape`` restores them)."""
        import xarray as xr

        from ._version import __version__

        n, d = self.theta.shape[-2:]
        T = len(self.ts)
        batch = self.batch_shape
        lead = ("sample",) if batch else ()
        shape = (-1,) if batch else ()
        theta = np.asarray(self.theta).reshape(*shape, T, n, d)
        r = np.asarray(self.r).reshape(*shape, T, n)
        data = {
            "theta": ((*lead, "time", "token", "dim"), theta),
            "r": ((*lead, "time", "token"), r),
            "x": ((*lead, "time", "token", "dim"), r[..., None] * theta),
        }
        beta = np.broadcast_to(np.asarray(self.config.get("beta", np.nan), dtype=theta.dtype), batch)
        data["beta"] = (lead, beta.reshape(shape) if batch else beta)
        data["status"] = (lead, self.status.reshape(shape) if batch else self.status)
        attrs = {
            "particles_version": __version__,
            "config": json.dumps(self.config),
            "stats": json.dumps(self.stats),
            "batch_shape": json.dumps(list(batch)),
        }
        for key, value in self.config.items():
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                attrs[key] = value
        coords = {"time": np.asarray(self.ts)}
        if "layers" in self.config:  # discrete depth: the layer index of each save
            c = self.config
            h = (c["t1"] - c["t0"]) / c["layers"]
            coords["layer"] = ("time", np.rint((np.asarray(self.ts, float) - c["t0"]) / h).astype(np.int64))
        ds = xr.Dataset(data, coords=coords, attrs=attrs)
        ds["status"].attrs.update(flag_values=STATUS_VALUES, flag_meanings=STATUS_MEANINGS)
        return ds

    def save(self, path) -> None:
        """Write NetCDF (h5netcdf engine); the file appears complete or not at all."""
        write_atomic(self.to_xarray(), path)

    def animate(self, out, **kw) -> str:
        """Write a GIF (or MP4) of the saves to ``out``: see :func:`particles.animate.animate`."""
        from ._animation import write_animation

        return write_animation(lambda: self, out, **kw)


def load(path) -> Trajectory:
    """Read a file written by :meth:`Trajectory.save`."""
    import xarray as xr

    path = os.fspath(path)
    if not is_trajectory_file(path):
        raise ValueError(not_a_trajectory(path))
    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            ds = ds.load()
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"path={path!r} is truncated or corrupt ({e}); write it again") from None
    batch = tuple(json.loads(ds.attrs["batch_shape"]))
    n, d = ds.sizes["token"], ds.sizes["dim"]
    T = ds.sizes["time"]
    return Trajectory(
        ts=jnp.asarray(ds["time"].values),
        theta=jnp.asarray(ds["theta"].values.reshape(*batch, T, n, d)),
        r=jnp.asarray(ds["r"].values.reshape(*batch, T, n)),
        stats=json.loads(ds.attrs["stats"]),
        config=json.loads(ds.attrs["config"]),
        status=ds["status"].values.reshape(batch) if "status" in ds else None,
    )
