"""The drawing behind :mod:`particles.animate` and :meth:`particles.Trajectory.animate`,
for a trajectory in memory (the public module reads files too).

What the frames show is described in :mod:`particles.animate`. matplotlib is
imported when a function here is called, never with ``particles``.
"""

import dataclasses
import os

import jax.numpy as jnp
import numpy as np

from . import analysis
from ._io import atomic_path
from ._validate import check_choice, check_float, check_int

WRITERS = {".gif": "pillow", ".mp4": "ffmpeg"}
PROJECTION = "projection on the top principal directions"
ALONE = "#a0a0a0"  # tokens in no cluster
PALETTE = "tab10"


def write_animation(
    trajectory,
    out,
    *,
    fps: float = 10,
    sample: int = 0,
    delta: float = 1e-3,
    components: int = 2,
    dpi: int = 100,
) -> str:
    """:func:`particles.animate.animate` for the trajectory that ``trajectory()`` returns
    (called once the other arguments are checked)."""
    out = os.fspath(out)
    suffix = os.path.splitext(out)[1].lower()
    if suffix not in WRITERS:
        raise ValueError(f"out={out!r}: unknown suffix {suffix or '(none)'!r}; write a .gif or an .mp4")
    fps = check_float("fps", fps, positive=True)
    dpi = check_int("dpi", dpi, minimum=10)
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise ValueError(f"out={out!r}: folder {folder!r} does not exist")

    from matplotlib import animation

    if suffix == ".mp4" and not animation.FFMpegWriter.isAvailable():
        raise ValueError(f"out={out!r}: writing .mp4 needs ffmpeg on PATH, which is not there; write a .gif")
    frames = _frames(trajectory(), sample, delta, components)
    scene = _Scene(frames)
    scene.update(0)  # a drawing error raises here, not masked by the writer's cleanup
    writer = animation.PillowWriter(fps=fps) if suffix == ".gif" else animation.FFMpegWriter(fps=fps)
    try:
        with atomic_path(out, suffix) as tmp, writer.saving(scene.fig, tmp, dpi):
            for k in range(len(frames.ts)):
                scene.update(k)
                writer.grab_frame()
    finally:
        scene.close()
    return out


def still(trajectory, *, frame: int = -1, sample: int = 0, delta: float = 1e-3, components: int = 2):
    """One frame of :func:`animate` as a matplotlib figure (the last save by default;
    ``frame`` indexes the saves as ``traj.ts`` does), e.g. for a still in a paper."""
    frames = _frames(trajectory(), sample, delta, components)
    T = len(frames.ts)
    frame = check_int("frame", frame)
    if not -T <= frame < T:
        raise ValueError(f"frame={frame} is out of range: the animation has {T} frames")
    scene = _Scene(frames)
    scene.update(frame % T)
    return scene.fig


@dataclasses.dataclass(frozen=True)
class _Frames:
    """What the frames show: ``points`` (T, n, k) with k = 2 or 3 plotted coordinates,
    cluster ``labels`` (T, n), mean cosine ``rho`` (T,) at times ``ts``, and the text."""

    ts: np.ndarray
    points: np.ndarray
    labels: np.ndarray
    rho: np.ndarray
    axis_labels: tuple[str, ...]
    panel_title: str
    title: str
    delta: float
    projected: bool


def _frames(traj, sample, delta, components) -> _Frames:
    """One sample's finite saves, their coordinates, clusters and mean cosine."""
    theta = np.asarray(traj.theta)
    *batch, T, n, d = theta.shape
    if d < 2:
        raise ValueError(f"d={d}: the tokens live on S^0 (two points); animations need d >= 2")
    delta = check_float("delta", delta, positive=True)
    components = check_choice("components", components, (2, 3))
    sample = check_int("sample", sample)
    size = int(np.prod(batch))
    if batch and not 0 <= sample < size:
        raise ValueError(
            f"sample={sample} is out of range: the trajectory has {size} samples (0..{size - 1})"
        )
    if not batch and sample != 0:
        raise ValueError(f"sample={sample}: the trajectory is not batched, leave sample at 0")
    theta = theta.reshape(size, T, n, d)[sample]
    finite = np.all(np.isfinite(theta), axis=(-1, -2))
    if not finite.any():
        raise ValueError(
            f"sample {sample} has no finite save to animate (status {traj.status.ravel()[sample]})"
        )
    ts, theta = np.asarray(traj.ts)[finite], theta[finite]
    th = jnp.asarray(theta)
    labels = np.asarray(analysis.cluster_labels(jnp.asarray(th), delta))
    rho = np.asarray(analysis.mean_cosine(th))

    projected = d > 3
    if projected:
        points, share = _principal_coordinates(theta, components)
        name = "principal direction" if components == 2 else "PC"
        axis_labels = tuple(f"{name} {i + 1} ({100 * s:.0f}%)" for i, s in enumerate(share))
        outline = "dashed: the unit circle" if components == 2 else "wireframe: the unit sphere"
        panel_title = f"{PROJECTION} (d = {d})\n%: share of Σ|θ_i|² along each; {outline}"
    else:
        points = theta
        axis_labels = tuple(f"θ{'₁₂₃'[i]}" for i in range(d))
        panel_title = "tokens θ_i on the unit circle" if d == 2 else "tokens θ_i on the unit sphere"
    return _Frames(
        ts=ts,
        points=points,
        labels=labels,
        rho=rho,
        axis_labels=axis_labels,
        panel_title=panel_title,
        title=_title(traj, sample, size if batch else None),
        delta=delta,
        projected=projected,
    )


def _principal_coordinates(theta, k):
    """Coordinates of ``theta`` (T, n, d) on the top ``k`` right singular vectors of all
    its saves stacked (nT × d), and each one's share of Σ|θ|². Uncentred, so that the
    sphere's centre stays at the origin: the projected tokens lie in the unit disk (ball)
    and a collapsed configuration sits on its boundary. The signs are chosen so that the
    last save's mean has non-negative coordinates."""
    _, s, vt = np.linalg.svd(theta.reshape(-1, theta.shape[-1]), full_matrices=False)
    basis = vt[:k]
    basis = basis * np.where(basis @ theta[-1].mean(0) < 0, -1, 1)[:, None]
    return theta @ basis.T, (s**2 / np.sum(s**2))[:k]


def _title(traj, sample, size) -> str:
    cfg = traj.config or {}
    scheme = cfg.get("scheme", "?")
    params = cfg.get("scheme_params") or {}
    if params:
        scheme += " (" + ", ".join(f"{k}={v:g}" for k, v in params.items()) + ")"
    n, d = traj.theta.shape[-2:]
    parts = [f"scheme {scheme}", f"n = {n}", f"d = {d}"]
    beta = cfg.get("beta")
    if beta is not None:
        b = np.broadcast_to(np.asarray(beta, dtype=float), traj.batch_shape).ravel()
        parts.append(f"β = {b[sample] if size else float(np.asarray(beta)):g}")
    if size:
        parts.append(f"sample {sample} of {size}")
    return ",  ".join(parts)


class _Scene:
    """The figure of an animation and how to draw frame k on it."""

    def __init__(self, frames: _Frames):
        from .plotting import pyplot

        plt = pyplot()
        self.frames = frames
        self.plt = plt
        k = frames.points.shape[-1]
        self.fig = fig = plt.figure(figsize=(10.5, 4.8))
        grid = fig.add_gridspec(
            1, 2, width_ratios=(1, 1.15), wspace=0.28, left=0.05, right=0.97, top=0.8, bottom=0.11
        )
        self.ax = fig.add_subplot(grid[0], projection="3d" if k == 3 else None)
        self.ax_rho = fig.add_subplot(grid[1])
        self._draw_static()
        self.scatter = None
        self.colors = self._cluster_colors()

    def _draw_static(self):
        f, ax = self.frames, self.ax
        u = np.linspace(0, 2 * np.pi, 200)
        style = dict(color="0.6", lw=0.8, ls="--" if f.projected else "-")
        if f.points.shape[-1] == 2:
            ax.plot(np.cos(u), np.sin(u), **style)
            ax.set_aspect("equal")
            ax.set_xlim(-1.12, 1.12)
            ax.set_ylim(-1.12, 1.12)
            ax.set_xticks([-1, 0, 1])
            ax.set_yticks([-1, 0, 1])
        else:
            lon, lat = np.meshgrid(np.linspace(0, 2 * np.pi, 25), np.linspace(0, np.pi, 13))
            ax.plot_wireframe(
                np.cos(lon) * np.sin(lat),
                np.sin(lon) * np.sin(lat),
                np.cos(lat),
                color="0.7",
                lw=0.4,
                alpha=0.5,
            )
            for set_lim in (ax.set_xlim, ax.set_ylim, ax.set_zlim):
                set_lim(-1, 1)
            ax.set_box_aspect((1, 1, 1))
            ax.set_xticks([-1, 0, 1])
            ax.set_yticks([-1, 0, 1])
            ax.set_zticks([-1, 0, 1])
            ax.set_zlabel(f.axis_labels[2], labelpad=-2)
        ax.set_xlabel(f.axis_labels[0])
        ax.set_ylabel(f.axis_labels[1])
        ax.set_title(f.panel_title, fontsize=10)

        a = self.ax_rho
        a.plot(f.ts, f.rho, color="#1f77b4", lw=1.6)
        a.axhline(1.0, color="0.5", lw=0.8, ls=":")
        lo = min(-0.05, float(np.min(f.rho)) - 0.05)
        a.set_ylim(lo, 1.05)
        span = f.ts[-1] - f.ts[0] if f.ts[-1] > f.ts[0] else 1.0
        a.set_xlim(f.ts[0] - 0.02 * span, f.ts[0] + 1.02 * span)
        a.set_xlabel("t (depth)")
        a.set_ylabel("mean cosine ρ̄")
        a.set_title(
            "mean cosine ρ̄ = mean over i ≠ j of ⟨θ_i, θ_j⟩\n(1: all tokens at one point)", fontsize=10
        )
        a.grid(alpha=0.3)
        (self.marker,) = a.plot([], [], "o", color="#d62728", ms=8, zorder=3)
        self.cursor = a.axvline(f.ts[0], color="#d62728", lw=0.8, alpha=0.6)
        self.suptitle = self.fig.suptitle("", fontsize=11)

    def _cluster_colors(self):
        """(T, n) colours: grey for tokens alone, else one palette colour per cluster
        label in order of first appearance."""
        labels = self.frames.labels
        T, n = labels.shape
        size = np.zeros((T, n), int)
        for t in range(T):
            size[t] = np.bincount(labels[t], minlength=n)[labels[t]]
        from matplotlib.colors import to_rgba_array

        palette = to_rgba_array(self.plt.get_cmap(PALETTE).colors)
        palette = palette[[i for i in range(len(palette)) if i != 7]]  # tab10's grey: tokens alone
        order = {}
        for t in range(T):
            for lab in labels[t][size[t] > 1]:
                order.setdefault(int(lab), len(order))
        index = np.vectorize(lambda lab: order.get(int(lab), 0), otypes=[int])(labels)
        colors = np.where((size > 1)[..., None], palette[index % len(palette)], to_rgba_array(ALONE)[0])
        self.sizes = size
        return colors

    def update(self, k):
        f = self.frames
        p = f.points[k]
        if self.scatter is not None:
            self.scatter.remove()
        size = self.sizes[k]  # a cluster's tokens sit on top of each other: the marker grows with it
        kw = dict(c=self.colors[k], s=36 * np.sqrt(size), edgecolors="k", linewidths=0.4, zorder=3)
        self.scatter = self.ax.scatter(*p.T, **kw)
        t, rho = f.ts[k], f.rho[k]
        self.marker.set_data([t], [rho])
        self.cursor.set_xdata([t, t])
        roots = f.labels[k] == np.arange(len(f.labels[k]))
        clusters = int(np.sum(roots))
        sizes = sorted(size[roots][size[roots] > 1], reverse=True)
        shown = ", ".join(map(str, sizes[:8])) + (", ..." if len(sizes) > 8 else "")
        alone = int(np.sum(size == 1))
        detail = [f"sizes {shown}"] if sizes else []
        detail += [f"{alone} token{'s' * (alone != 1)} alone (grey)"] if alone else []
        self.suptitle.set_text(
            f"{f.title}\nt = {t:.3g}  (frame {k + 1}/{len(f.ts)}),   ρ̄ = {rho:.4f},   "
            f"{clusters} cluster{'s' * (clusters != 1)} at δ = {f.delta:g}"
            + (f": {'; '.join(detail)}" if detail else "")
        )

    def close(self):
        self.plt.close(self.fig)
