"""An xarray backend: ``xr.open_dataset(path, engine="particles")`` opens a sweep store
(a folder written by :func:`particles.sweep`, as :func:`particles.open_sweep` does) or
a trajectory file written by :meth:`particles.Trajectory.save` (its
:meth:`~particles.Trajectory.to_xarray` dataset). Registered in pyproject.toml under
the ``xarray.backends`` entry point."""

import os

from xarray.backends import BackendEntrypoint

from ._info import is_sweep_store, result_kind
from ._io import is_trajectory_file
from ._sweep import open_sweep


def _path(filename_or_obj):
    try:
        return os.fspath(filename_or_obj)
    except TypeError:
        raise ValueError(
            f"engine='particles' opens paths only (a sweep folder or a trajectory .nc), "
            f"got {type(filename_or_obj).__name__}"
        ) from None


class ParticlesBackendEntrypoint(BackendEntrypoint):
    """Sweep stores and trajectory files of the ``particles`` simulator."""

    description = "Open particles sweep stores (folders with manifest.json) and trajectory files (.nc)"
    open_dataset_parameters = ("filename_or_obj", "drop_variables")

    def open_dataset(self, filename_or_obj, *, drop_variables=None):
        path = _path(filename_or_obj)
        if result_kind(path) == "sweep":
            ds = open_sweep(path)
            return ds.drop_vars(drop_variables) if drop_variables is not None else ds
        # a trajectory file holds to_xarray() exactly, read lazily
        from xarray.backends import H5netcdfBackendEntrypoint

        return H5netcdfBackendEntrypoint().open_dataset(path, drop_variables=drop_variables)

    def guess_can_open(self, filename_or_obj) -> bool:
        try:
            path = os.fspath(filename_or_obj)
        except TypeError:
            return False
        if isinstance(path, bytes):
            return False
        return is_sweep_store(path) or (path.endswith(".nc") and is_trajectory_file(path))
