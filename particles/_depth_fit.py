"""Which speed scheme's equiangular collapse best explains a measured depth profile of
the mean cosine (issue 27): the fit behind :func:`particles.analysis.fit_depth_profile`
(which measures the profile) and its result :class:`DepthFit`."""

import dataclasses
import math

import numpy as np

from . import equiangular
from ._validate import check_float, precision
from .schemes import SCHEMES, AbstractScheme, get_scheme

DEFAULT_SCHEMES = ("post", "pre", "peri", "ngpt", "sqrt")
"""The schemes :func:`particles.analysis.fit_depth_profile` compares by default: those
whose equiangular curve has no shape parameter besides the fitted time scale."""

_GRID = 2000  # model times per curve, log-spaced: the cubic spline through them is exact to ~1e-10
_COARSE = 121  # values of log c scanned before the bounded refinement


@dataclasses.dataclass(frozen=True, eq=False)
class DepthFit:
    """The result of :func:`particles.analysis.fit_depth_profile`.

    ``scheme``: the best scheme's name; ``params``: its fitted time scale ``c`` (model
    time per unit of depth) with the model's fixed settings ``beta``, ``rho0`` (the
    measured mean cosine at depth 0), ``r0`` and ``n``; ``residual_norms``: √Σ_l (ρ̄_l − ρ(c l))² per scheme,
    smallest first; ``scales``: each scheme's fitted c in the same order; ``at_bound``:
    the schemes whose c ended on an end of ``c_range`` (no interior optimum: the
    profile does not look like that scheme at any time scale); ``depth``,
    ``measured``, ``predicted`` and ``residuals`` (measured − predicted) are per save
    for the best scheme.
    """

    scheme: str
    params: dict
    residual_norms: dict
    scales: dict
    at_bound: tuple
    depth: np.ndarray
    measured: np.ndarray
    predicted: np.ndarray
    residuals: np.ndarray
    c_range: tuple

    def __str__(self) -> str:
        p = self.params
        lines = [
            f"depth profile fit: the mean cosine at {len(self.depth)} depths against rho(c * depth) of the "
            "equiangular model",
            f"  (n={p['n']} tokens, beta={p['beta']:g}, rho0={p['rho0']:.4f}, r0=1; c fitted in "
            f"[{self.c_range[0]:g}, {self.c_range[1]:g}])",
            f"  {'scheme':<12}{'c':>12}  {'residual norm':>14}",
        ]
        for name, norm in self.residual_norms.items():
            notes = [
                " best" if name == self.scheme else "",
                " (c at a bound)" if name in self.at_bound else "",
            ]
            lines.append(f"  {name:<12}{self.scales[name]:>12.5g}  {norm:>14.3e}{''.join(notes)}")
        return "\n".join(lines)


def depth_of(traj) -> np.ndarray:
    """The depth of each save: the layer index for a layer run (``config['layers']``,
    as :meth:`Trajectory.to_xarray` labels it) or hidden states, else the time since the
    first save."""
    ts = np.asarray(traj.ts, dtype=float)
    c = traj.config or {}
    if "layers" in c:
        return np.rint((ts - c["t0"]) / ((c["t1"] - c["t0"]) / c["layers"]))
    return ts - ts[0]


def fit_profile(
    depth, measured, n: int, schemes=None, *, beta: float = 1.0, c_range: tuple[float, float] = (1e-4, 1e2)
) -> DepthFit:
    """The fit of :func:`particles.analysis.fit_depth_profile` from the profile itself:
    the mean cosine ``measured`` of n tokens at each of the increasing ``depth``."""
    depth, measured = np.asarray(depth, dtype=float), np.asarray(measured, dtype=float)
    if depth.ndim != 1 or depth.shape != measured.shape:
        raise ValueError(f"depth {depth.shape} and measured {measured.shape} must be 1-d of one length")
    if len(depth) < 3 or depth[0] != 0 or np.any(np.diff(depth) <= 0):
        raise ValueError(f"need at least 3 saves at increasing depths from 0 to fit a profile, got {depth}")
    if not np.all(np.isfinite(measured)):
        raise ValueError("the mean cosine is not finite at some save: nothing to fit")
    if n < 2:
        raise ValueError(f"n={n} token: the mean cosine needs at least 2")
    schemes = _schemes(schemes)
    beta = check_float("beta", beta)
    lo, hi = _check_range(c_range)
    rho0 = float(np.clip(measured[0], -1 / (n - 1), 1))
    fits = {}
    with precision("float64"):
        for label, scheme in schemes.items():
            curve = _curve(scheme, n, beta, rho0, depth, lo, hi)
            fits[label] = (*_fit_scale(curve, measured, lo, hi), curve)
    order = sorted(fits, key=lambda k: fits[k][1])
    best = order[0]
    c, _, _, curve = fits[best]
    predicted = curve(c)
    at_bound = tuple(k for k in order if fits[k][2])
    return DepthFit(
        scheme=best,
        params={"c": c, "beta": beta, "rho0": rho0, "r0": 1.0, "n": n},
        residual_norms={k: fits[k][1] for k in order},
        scales={k: fits[k][0] for k in order},
        at_bound=at_bound,
        depth=depth,
        measured=measured,
        predicted=predicted,
        residuals=measured - predicted,
        c_range=(lo, hi),
    )


def _schemes(schemes) -> dict[str, AbstractScheme]:
    """Label -> scheme instance, names checked by :func:`particles.get_scheme`."""
    if schemes is None:
        schemes = DEFAULT_SCHEMES
    if isinstance(schemes, (str, AbstractScheme)):
        schemes = (schemes,)
    out = {}
    for s in schemes:
        scheme = get_scheme(s)
        label = scheme.name
        if scheme.name not in SCHEMES or scheme != get_scheme(scheme.name):  # not the defaults: say which
            label += "(" + ", ".join(f"{k}={v:g}" for k, v in scheme.params().items()) + ")"
        if label in out:
            raise ValueError(f"schemes={schemes!r} name {label!r} twice")
        out[label] = scheme
    if not out:
        raise ValueError("schemes is empty: give at least one scheme to fit")
    return out


def _check_range(c_range) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in c_range)
    except (TypeError, ValueError):
        raise ValueError(f"c_range={c_range!r} must be two numbers (lo, hi)") from None
    if not (0 < lo < hi < math.inf):
        raise ValueError(f"c_range={c_range!r} must satisfy 0 < lo < hi < inf")
    return lo, hi


def _curve(scheme, n, beta, rho0, depth, lo, hi):
    """c ↦ ρ(c · depth) of ``scheme``'s equiangular model: one solve on a log grid of
    model times covering every c in [lo, hi], a cubic spline in log t between them."""
    from scipy.interpolate import CubicSpline

    positive = depth[depth > 0]
    ts = np.geomspace(lo * positive.min(), hi * positive.max(), _GRID)
    rho, _ = equiangular.solve(scheme, n, beta, rho0, np.concatenate([[0.0], ts]))
    spline = CubicSpline(np.log(ts), np.asarray(rho, dtype=float)[1:])
    first = depth == 0

    def curve(c):
        return np.where(first, rho0, spline(np.log(c * np.where(first, 1.0, depth))))

    return curve


def _fit_scale(curve, measured, lo, hi) -> tuple[float, float, bool]:
    """(c, residual norm, whether c ended at an end of [lo, hi]) minimising
    Σ (measured − curve(c))² over c ∈ [lo, hi]: a scan of log c, then Brent's bounded
    method between the neighbours of the best point."""
    from scipy.optimize import minimize_scalar

    def loss(u):
        return float(np.sum((curve(math.exp(u)) - measured) ** 2))

    grid = np.linspace(math.log(lo), math.log(hi), _COARSE)
    values = np.array([loss(u) for u in grid])
    k = int(np.argmin(values))
    a, b = grid[max(k - 1, 0)], grid[min(k + 1, _COARSE - 1)]
    result = minimize_scalar(loss, bounds=(a, b), method="bounded", options={"xatol": 1e-10})
    u, value = (result.x, result.fun) if result.fun <= values[k] else (grid[k], values[k])
    u = min(max(u, grid[0]), grid[-1])
    edge = bool(min(u - grid[0], grid[-1] - u) < 1e-6)
    return math.exp(u), math.sqrt(value), edge
