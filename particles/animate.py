"""Animations of a trajectory: one frame per save, the tokens' directions θ_i on the
circle (d = 2), on the sphere (d = 3), or projected on their top principal directions
(d > 3), coloured by cluster, beside the mean cosine against time.

A cluster is a connected component of the graph {⟨θ_i, θ_j⟩ ≥ 1 − δ} at that frame
(:func:`particles.analysis.cluster_labels`, MODEL.md §4); tokens alone in their
component are grey, the others take one colour per cluster, kept from frame to frame
(a component is named by its smallest token index, so a cluster keeps its colour until
it merges into one with a smaller index).

matplotlib is imported when a function here is called, never with ``particles``.
"""

import os

from ._animation import ALONE as ALONE
from ._animation import PALETTE as PALETTE
from ._animation import PROJECTION as PROJECTION
from ._animation import WRITERS as WRITERS
from ._animation import still, write_animation
from ._trajectory import Trajectory, load


def animate(
    traj_or_path,
    out,
    *,
    fps: float = 10,
    sample: int = 0,
    delta: float = 1e-3,
    components: int = 2,
    dpi: int = 100,
) -> str:
    """Write an animation of a trajectory to ``out`` (``.gif``, or ``.mp4`` when ffmpeg
    is on PATH) and return its path: one frame per save, the tokens on the unit circle
    (d = 2), the unit sphere (d = 3) or, for d > 3, projected on the top ``components``
    (2 or 3) principal directions of all their saved directions, coloured by cluster
    (⟨θ_i, θ_j⟩ ≥ 1 − ``delta``), beside the mean cosine against time.

    ``traj_or_path``: a :class:`~particles.Trajectory` or a file written by
    :meth:`Trajectory.save`. ``sample`` picks one trajectory of a batch (the index in
    the flattened batch, the ``sample`` dimension of the file). Saves a failed
    trajectory did not reach (NaN) are left out. The file is written atomically.
    """
    return write_animation(
        lambda: _trajectory(traj_or_path),
        out,
        fps=fps,
        sample=sample,
        delta=delta,
        components=components,
        dpi=dpi,
    )


def figure(traj_or_path, *, frame: int = -1, sample: int = 0, delta: float = 1e-3, components: int = 2):
    """One frame of :func:`animate` as a matplotlib figure (the last save by default;
    ``frame`` indexes the saves as ``traj.ts`` does), e.g. for a still in a paper."""
    return still(
        lambda: _trajectory(traj_or_path), frame=frame, sample=sample, delta=delta, components=components
    )


def _trajectory(traj_or_path) -> Trajectory:
    if isinstance(traj_or_path, Trajectory):
        return traj_or_path
    if isinstance(traj_or_path, (str, os.PathLike)):
        return load(traj_or_path)
    raise ValueError(
        f"expected a Trajectory or the path of a file it saved, got {type(traj_or_path).__name__}"
    )
