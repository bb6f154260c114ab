"""A resumable sweep store for a figure: kept next to the outputs while the figure is
being made (so an interrupted run resumes where it stopped), removed once the figure
and its data are written."""

import contextlib
import os
import shutil


@contextlib.contextmanager
def sweep_store(out_dir: str, name: str, size: str, part: str = ""):
    """Yield the path ``out_dir/.NAME-SIZE[-PART].sweep``; delete it on success only."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f".{name}-{size}{'-' + part if part else ''}.sweep")
    yield path
    shutil.rmtree(path, ignore_errors=True)
