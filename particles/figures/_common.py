"""Shared plumbing of the figure modules: where files go, how they are written."""

import contextlib
import os
import shutil

from .._io import write_atomic
from ..plotting import pyplot, save_figure, scheme_color

__all__ = ["pyplot", "scheme_color", "sweep_store", "write_outputs"]


def write_outputs(name: str, out_dir: str, fig, data) -> list[str]:
    """Write ``NAME.nc`` (the data) and ``NAME.png`` (the figure), each atomically."""
    os.makedirs(out_dir, exist_ok=True)
    nc = os.path.join(out_dir, f"{name}.nc")
    png = os.path.join(out_dir, f"{name}.png")
    write_atomic(data, nc)
    save_figure(fig, png)
    pyplot().close(fig)
    return [png, nc]


@contextlib.contextmanager
def sweep_store(out_dir: str, name: str, size: str, part: str = ""):
    """Yield the path ``out_dir/.NAME-SIZE[-PART].sweep``; delete it on success only."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f".{name}-{size}{'-' + part if part else ''}.sweep")
    yield path
    shutil.rmtree(path, ignore_errors=True)
