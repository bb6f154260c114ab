"""The files the package writes and reads: every write atomic (a temporary file renamed
into place, with the permissions the umask gives), and what kind of file a path is
(a trajectory file, a sweep store, or neither, in one line)."""

import contextlib
import os
import tempfile

MANIFEST = "manifest.json"  # the file that makes a folder a sweep store


TMP_PREFIX = ".tmp-"


def _umask() -> int:
    """The process umask, read without changing it where /proc allows (os.umask sets it
    too, so the fallback restores it at once)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path in the folder of ``path``; on success rename it onto
    ``path`` (atomic on POSIX), on any error remove it. Every file the library writes
    goes through here, so ``path`` holds the previous complete file or the new one,
    never a partial one (a SIGKILL may leave a stray ``.tmp-*`` file beside it)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"out={path!r}: folder {folder!r} does not exist")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=TMP_PREFIX, suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600: follow the umask as open() would
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_atomic(dataset, path) -> None:
    """Write ``dataset`` to ``path`` as NetCDF via a temporary file and a rename."""
    with atomic_path(path, ".nc") as tmp:
        dataset.to_netcdf(tmp, engine="h5netcdf")


def is_trajectory_file(path) -> bool:
    """Whether ``path`` is a NetCDF (HDF5) file with the attributes :meth:`Trajectory.save`
    writes; reads the file's attributes only, never raises."""
    import h5py

    try:
        with h5py.File(os.fspath(path), "r") as f:
            return {"particles_version", "batch_shape", "config"} <= set(f.attrs) and "theta" in f
    except (OSError, TypeError, ValueError):
        return False


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def not_a_trajectory(path) -> str:
    """Why ``path`` cannot be read as a trajectory file, in one line: missing, a sweep
    store or another folder, a truncated or corrupt HDF5 file, or another file."""
    import h5py

    path = os.fspath(path)
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, MANIFEST)):
            return (
                f"path={path!r} is a sweep store (a folder written by particles sweep), not a trajectory "
                "file: read it with particles.open_sweep, describe it with particles info; animations "
                "take a file written by simulate --out or Trajectory.save"
            )
        return f"path={path!r} is a folder, not a trajectory file written by Trajectory.save"
    if not os.path.isfile(path):
        return f"path={path!r} does not exist"
    try:
        with h5py.File(path, "r"):
            pass
    except (OSError, TypeError, ValueError):
        with open(path, "rb") as f:
            if f.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                return f"path={path!r} is truncated or corrupt (an HDF5 file that cannot be read); write it again"
    return f"path={path!r} is not a trajectory file written by Trajectory.save"
