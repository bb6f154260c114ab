"""Shared plumbing of the figure modules: where files go, how they are written."""

import os

from .._trajectory import write_atomic
from ..plotting import pyplot, save_figure, scheme_color

__all__ = ["pyplot", "scheme_color", "write_outputs"]


def write_outputs(name: str, out_dir: str, fig, data) -> list[str]:
    """Write ``NAME.nc`` (the data) and ``NAME.png`` (the figure), each atomically."""
    os.makedirs(out_dir, exist_ok=True)
    nc = os.path.join(out_dir, f"{name}.nc")
    png = os.path.join(out_dir, f"{name}.png")
    write_atomic(data, nc)
    save_figure(fig, png)
    pyplot().close(fig)
    return [png, nc]
