"""Observables of a configuration of directions (MODEL.md §4), collapse times and
collapse-rate fits.

Every function takes leading batch dimensions (``*b``) and works under ``jax.jit``.
``OBSERVABLES`` maps a name to a function of ``(theta, r, beta, delta)`` returning one
value per configuration; the sweep and the command line look observables up there.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int

# Which scheme's equiangular collapse explains a depth profile (hidden states of real models)
from ._depth_fit import DepthFit as DepthFit
from ._depth_fit import depth_of, fit_profile

# The "lost in the middle" retrieval profile (MODEL.md §11)
from ._retrieval import RetrievalProfile as RetrievalProfile
from ._retrieval import continuum_profile as continuum_profile
from ._retrieval import critical_time as critical_time
from ._retrieval import linear_response_profile as linear_response_profile
from ._retrieval import lost_in_the_middle_prior as lost_in_the_middle_prior
from ._retrieval import retrieval_profile as retrieval_profile
from .sphere import cosine_matrix


def mean_cosine(theta: Float[ArrayLike, "*b n d"]) -> Float[Array, "*b"]:
    """ρ̄ = (1/(n(n−1))) Σ_{i≠j} ⟨θ_i, θ_j⟩ (1 for a single token)."""
    n = theta.shape[-2]
    if n == 1:
        return jnp.ones(theta.shape[:-2], theta.dtype)
    s = jnp.sum(theta, axis=-2)
    return (jnp.sum(s * s, axis=-1) - jnp.sum(theta * theta, axis=(-1, -2))) / (n * (n - 1))


def min_cosine(theta: Float[ArrayLike, "*b n d"]) -> Float[Array, "*b"]:
    """min_{i≠j} ⟨θ_i, θ_j⟩ (1 for a single token)."""
    n = theta.shape[-2]
    gram = cosine_matrix(theta)
    return (
        jnp.min(jnp.where(jnp.eye(n, dtype=bool), jnp.inf, gram), axis=(-1, -2))
        if n > 1
        else jnp.ones(theta.shape[:-2], theta.dtype)
    )


def _close(G, delta) -> Bool[Array, "*b n n"]:
    """The threshold graph G_ij = ⟨θ_i, θ_j⟩ ≥ 1 − δ, with every token joined to itself."""
    return (G >= 1 - delta) | jnp.eye(G.shape[-1], dtype=bool)


def pair_density(theta: Float[ArrayLike, "*b n d"], delta: float = 1e-3) -> Float[Array, "*b"]:
    """Fraction of pairs i ≠ j with ⟨θ_i, θ_j⟩ ≥ 1 − δ (1 for a single token: no pair is
    apart). δ = 1e-3 is the threshold of the phase diagrams of Geshkovski et al.,
    arXiv 2312.10794."""
    n = theta.shape[-2]
    if n == 1:
        return jnp.ones(theta.shape[:-2], theta.dtype)
    count = jnp.sum(_close(cosine_matrix(theta), delta), axis=(-1, -2), dtype=theta.dtype) - n
    return count / (n * (n - 1))


def cluster_labels(
    theta: Float[ArrayLike, "*b n d"], delta: float | Float[Array, ""] = 1e-3
) -> Int[Array, "*b n"]:
    """The connected component of each token in the graph {⟨θ_i, θ_j⟩ ≥ 1 − δ}
    (MODEL.md §4), labelled by the smallest token index in it.

    Each token starts with its own index as label and repeatedly takes the smallest
    label among its neighbours (``lax.while_loop`` until nothing changes, at most the
    graph's diameter rounds). Unlike the rank of a thresholded Gram matrix this is
    exact for chains of close tokens.
    """
    n = theta.shape[-2]
    adj = _close(cosine_matrix(theta), delta)

    def relabel(labels):
        return jnp.min(jnp.where(adj, labels[..., None, :], n), axis=-1)

    def body(state):
        labels, _ = state
        new = relabel(labels)
        return new, jnp.any(new != labels)

    start = jnp.broadcast_to(jnp.arange(n), adj.shape[:-1])
    labels, _ = jax.lax.while_loop(lambda s: s[1], body, (start, jnp.array(True)))
    return labels


def cluster_count(
    theta: Float[ArrayLike, "*b n d"], delta: float | Float[Array, ""] = 1e-3
) -> Int[Array, "*b"]:
    """Number of connected components of the graph {⟨θ_i, θ_j⟩ ≥ 1 − δ} (MODEL.md §4):
    the tokens that keep their own index in :func:`cluster_labels`."""
    n = theta.shape[-2]
    return jnp.sum(cluster_labels(theta, delta) == jnp.arange(n), axis=-1)


def energy(theta: Float[ArrayLike, "*b n d"], beta) -> Float[Array, "*b"]:
    """Interaction energy E_β = (1/(2β n²)) Σ_{i,j} e^{β⟨θ_i, θ_j⟩} (MODEL.md §4).

    With Q = K = V = I it never decreases along the SA (post) and USA flows, which are
    gradient flows of E_β (Geshkovski et al., arXiv 2312.10794, §3). ``beta`` is a
    scalar or an array broadcast against the batch dimensions. E_β ~ 1/(2β) as β → 0,
    so β = 0 is refused when ``beta`` is concrete (under jit it gives inf).
    """
    if not isinstance(beta, jax.core.Tracer):
        check_energy_beta(beta)
    n = theta.shape[-2]
    beta = jnp.asarray(beta, theta.dtype)
    total = jnp.sum(jnp.exp(beta[..., None, None] * cosine_matrix(theta)), axis=(-1, -2))
    return total / (2 * beta * n * n)


def check_energy_beta(beta) -> None:
    """Refuse a concrete beta for which the energy is not finite."""
    b = np.asarray(beta)
    if np.any(b == 0) or not np.all(np.isfinite(b)):
        raise ValueError(f"beta={beta!r}: the energy needs finite nonzero beta (E ~ 1/(2 beta) as beta -> 0)")


def effective_rank(theta: Float[ArrayLike, "*b n d"]) -> Float[Array, "*b"]:
    """exp(−Σ_k p_k log p_k) with p_k = σ_k / Σ σ the normalised singular values of the
    n×d matrix of directions (Roy & Vetterli, 2007): n for orthonormal tokens, 1 for a
    single point; the representation-collapse measure used for LLMs."""
    s = jnp.linalg.svd(theta, compute_uv=False)
    p = s / jnp.sum(s, axis=-1, keepdims=True)
    plogp = jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1)), 0)
    return jnp.exp(-jnp.sum(plogp, axis=-1))


class RadiusStats(NamedTuple):
    """Mean, standard deviation, min and max of the radii r_i over the tokens."""

    mean: Float[Array, "*b"]
    std: Float[Array, "*b"]
    min: Float[Array, "*b"]
    max: Float[Array, "*b"]


def radius_stats(r: Float[ArrayLike, "*b n"]) -> RadiusStats:
    """Statistics of the radii r_i = |x_i| over the tokens (hidden-state growth under
    pre/peri/mix/spannorm; r ≡ 1 for the sphere-bound schemes)."""
    return RadiusStats(jnp.mean(r, -1), jnp.std(r, -1), jnp.min(r, -1), jnp.max(r, -1))


def crossing_time(ts: Float[ArrayLike, " T"], y: Float[Array, "*b T"], level) -> Float[Array, "*b"]:
    """First time at which ``y`` reaches ``level`` (y ≥ level), linearly interpolated
    between the two saves around the crossing; ``ts[0]`` if it starts there, inf if it
    never gets there. NaN values (times not computed) never count as reached."""
    ts = jnp.asarray(ts, y.dtype)
    reached = y >= level
    k = jnp.argmax(reached, axis=-1)
    any_reached = jnp.any(reached, axis=-1)
    prev = jnp.maximum(k - 1, 0)
    t_lo, t_hi = ts[prev], ts[k]
    y_lo = jnp.take_along_axis(y, prev[..., None], -1)[..., 0]
    y_hi = jnp.take_along_axis(y, k[..., None], -1)[..., 0]
    gap = y_hi - y_lo
    frac = jnp.where(gap > 0, (level - y_lo) / jnp.where(gap > 0, gap, 1), 1)
    t = jnp.where(k == 0, ts[0], t_lo + jnp.clip(frac, 0, 1) * (t_hi - t_lo))
    return jnp.where(any_reached, t, jnp.inf)


def collapse_time(traj, delta: float = 1e-3) -> Float[Array, "*b"]:
    """τ_δ: the first time every pair has ⟨θ_i, θ_j⟩ ≥ 1 − δ (MODEL.md §4), one per
    batch element of the :class:`~particles.Trajectory`, linearly interpolated between
    saves; inf if it does not happen within the run.

    For a run ended by ``simulate(..., stop_at_collapse=delta)`` with the same δ, an
    element whose saves never reach 1 − δ collapsed last, at ``traj.stats["t_stop"]``
    (the stop is located by root finding, so its last save may sit a hair below 1 − δ).
    """
    stats = traj.stats or {}
    stopped = stats.get("collapsed") and stats.get("stop_delta") == delta
    return collapse_time_of_saves(traj.ts, traj.theta, delta, stats["t_stop"] if stopped else None)


def collapse_time_of_saves(ts, theta, delta: float = 1e-3, t_stop=None) -> Float[Array, "*b"]:
    """The collapse time from the saves ``ts`` and directions ``theta`` (*b, T, n, d);
    ``t_stop``: the time a collapse event ended the run (else None). Works under jit."""
    t = crossing_time(ts, min_cosine(theta), 1 - delta)
    if t_stop is not None:
        t = jnp.where(jnp.isinf(t), jnp.asarray(t_stop, t.dtype), t)
    return t


class CollapseFit(NamedTuple):
    """Fits of 1 − ρ over the tail: C e^{−rate t} and C t^{−exponent}, with the R² of
    each in log space. ``exponential`` is True where the exponential fit explains the
    tail better (usable under jit); ``best`` names the winner ("exponential" or
    "power"; a numpy array of names for a batch), or says "too few points" where fewer
    than 3 saves lie above the floor (rate, exponent and both R² are then NaN).
    ``points`` is the number of saves fitted and ``t_start``, ``t_end`` the first and
    last of them (NaN where none)."""

    rate: Float[Array, "*b"]
    exponent: Float[Array, "*b"]
    r2_exponential: Float[Array, "*b"]
    r2_power: Float[Array, "*b"]
    exponential: Bool[Array, "*b"]
    points: Int[Array, "*b"]
    t_start: Float[Array, "*b"]
    t_end: Float[Array, "*b"]

    @property
    def best(self):
        names = np.where(np.asarray(self.exponential), "exponential", "power")
        names = np.where(np.asarray(self.points) < MIN_FIT_POINTS, "too few points", names)
        return str(names) if names.ndim == 0 else names


MIN_FIT_POINTS = 3


def _weighted_line(x, y, w):
    """Weighted least-squares line y ≈ c + s x along the last axis: (slope, R²)."""
    sw = jnp.sum(w, -1, keepdims=True)
    xm = jnp.sum(w * x, -1, keepdims=True) / sw
    ym = jnp.sum(w * y, -1, keepdims=True) / sw
    sxy = jnp.sum(w * (x - xm) * (y - ym), -1)
    sxx = jnp.sum(w * (x - xm) ** 2, -1)
    syy = jnp.sum(w * (y - ym) ** 2, -1)
    slope = sxy / sxx
    return slope, jnp.where(syy > 0, sxy * sxy / (sxx * syy), 1)


def fit_collapse_rate(
    ts: Float[ArrayLike, " T"], rho: Float[ArrayLike, "*b T"], tail: float = 0.5, floor: float | None = None
) -> CollapseFit:
    """Fit the late-time collapse of ``rho`` (e.g. the mean cosine) to 1 by least squares
    on the last ``tail`` fraction of the saves (MODEL.md §4):

        log(1 − ρ) ≈ log C − rate · t          (exponential; post: rate 2)
        log(1 − ρ) ≈ log C − exponent · log t  (power law; pre/peri: exponent 2)

    Only saves above the floor are fitted: points with 1 − ρ ≤ ``floor`` (default 100 ×
    the dtype's epsilon, where 1 − ρ is round-off: a float32 post run to t = 60 is
    there from t ≈ 5 on) and NaN points are left out, and the tail is the last ``tail``
    fraction of the saves that remain (at least 2); for the power law t ≤ 0 is left out
    too. ``points``, ``t_start`` and ``t_end`` say which saves were fitted; with fewer
    than 3 the fit reports ``best == "too few points"`` and NaN, never R² = 1. The
    late-time rates are those of Karagodin et al., arXiv 2510.22026 (MODEL.md §3). R²
    is that of each line in log space; the better one is ``best``.
    """
    if not 0 < tail <= 1:
        raise ValueError(f"tail={tail!r} must be a fraction in (0, 1] of the saves to fit")
    rho = jnp.asarray(rho)
    ts = jnp.asarray(ts, rho.dtype)
    if ts.ndim != 1 or rho.shape[-1:] != ts.shape:
        raise ValueError(f"rho of shape {rho.shape} must end with the length of ts {ts.shape}")
    T = ts.shape[0]
    if T < 2:
        raise ValueError(f"need at least 2 saves to fit, got {T}")
    floor = 100 * jnp.finfo(rho.dtype).eps if floor is None else floor
    gap = 1 - rho
    valid = (gap > floor) & jnp.isfinite(gap)
    count = jnp.sum(valid, -1, keepdims=True)  # the tail: the last fraction of the valid saves
    size = jnp.maximum(jnp.round(tail * count.astype(rho.dtype)).astype(count.dtype), 2)
    keep = valid & (jnp.cumsum(valid, -1, dtype=count.dtype) > count - size)
    log_gap = jnp.log(jnp.where(keep, gap, 1))
    w = keep.astype(rho.dtype)
    slope_e, r2_e = _weighted_line(ts, log_gap, w)
    w_p = jnp.where(ts > 0, w, 0)
    slope_p, r2_p = _weighted_line(jnp.log(jnp.where(ts > 0, ts, 1)), log_gap, w_p)
    points = jnp.sum(keep, -1)
    few = points < MIN_FIT_POINTS
    nan = lambda v: jnp.where(few, jnp.nan, v)  # noqa: E731
    t_start = jnp.min(jnp.where(keep, ts, jnp.inf), -1)
    t_end = jnp.max(jnp.where(keep, ts, -jnp.inf), -1)
    return CollapseFit(
        nan(-slope_e), nan(-slope_p), nan(r2_e), nan(r2_p), ~few & (r2_e >= r2_p), points,
        jnp.where(points > 0, t_start, jnp.nan), jnp.where(points > 0, t_end, jnp.nan),
    )  # fmt: skip


def fit_depth_profile(
    traj, schemes=None, *, beta: float = 1.0, c_range: tuple[float, float] = (1e-4, 1e2)
) -> DepthFit:
    """Which speed scheme's equiangular collapse, at a fitted time scale, best explains
    the mean cosine of ``traj`` (e.g. :func:`particles.load_hidden_states`) against depth.

    Measured: ρ̄_l, the mean off-diagonal cosine (:func:`mean_cosine`) at depth l (the
    layer index for hidden states and layer runs, else the time since the first save;
    a batch is averaged over its samples with status ok). Predicted by each scheme S:
    ρ_S(c·l), the correlation of the equiangular reduction (MODEL.md §3,
    :func:`particles.equiangular.solve`) of n tokens with Q = K = V = I, β = ``beta``,
    r0 = 1, started at ρ_S(0) = ρ̄_0. Fitted: the time scale c > 0 (model time per
    layer) minimising Σ_l (ρ̄_l − ρ_S(c·l))² over ``c_range``, per scheme, by a scan of
    log c and a bounded Brent refinement (``scipy.optimize.minimize_scalar``); ρ_S is
    solved once per scheme on a log grid of model times, a cubic spline in log t between
    them. The scheme with the smallest residual norm wins; the :class:`DepthFit` holds
    every scheme's c and residual norm, and the best one's residual per save.

    Why c alone: it is the one parameter every scheme has (how far one layer moves), and
    it absorbs those that only rescale time: r0 for pre and peri (their equiangular flows
    are invariant under r → k r, t → k t, so c is h/r0) and α for ngpt (c is α h).
    ``beta`` is fixed, not fitted: for SA it shapes the early profile only (the late
    rates do not depend on it, MODEL.md §3), trades off against c on a short profile,
    and a second free parameter would let every scheme fit better and blur the
    comparison this function exists for. ``schemes``: names or
    :class:`~particles.AbstractScheme` instances; the default, post, pre, peri, ngpt and
    sqrt, are those with no other shape parameter (pass mix's τ or spannorm, whose
    plateau r0 sets, as ``get_scheme("mix", tau=2)``, ``"spannorm"``).

    A layer is one finite step, not the flow: the layer maps of ``simulate(...,
    layers=L)`` converge to it at first order in h = T/L (MODEL.md §7), so on their saves
    c approaches T/L as h → 0 (a post layer moves about h/(1 + h⟨θ, A⟩), not h: at
    h = 0.25 the fitted c is ~15% low). Computed in float64.
    """
    n = traj.theta.shape[-2]
    rho = np.asarray(mean_cosine(traj.theta), dtype=float).reshape(-1, len(traj.ts))
    ok = np.asarray(traj.status).reshape(-1) == 0
    if not ok.any():
        raise ValueError("every trajectory of the batch failed (status != 0): nothing to fit")
    return fit_profile(depth_of(traj), rho[ok].mean(axis=0), n, schemes, beta=beta, c_range=c_range)


# -- the observables as functions of the Gram matrix G = ΘΘᵀ (MODEL.md §8) --


def gram_mean_cosine(G: Float[ArrayLike, "*b n n"]) -> Float[Array, "*b"]:
    """ρ̄ = (1/(n(n−1))) Σ_{i≠j} G_ij (1 for a single token)."""
    n = G.shape[-1]
    if n == 1:
        return jnp.ones(G.shape[:-2], G.dtype)
    return (jnp.sum(G, axis=(-1, -2)) - jnp.trace(G, axis1=-2, axis2=-1)) / (n * (n - 1))


def gram_min_cosine(G: Float[ArrayLike, "*b n n"]) -> Float[Array, "*b"]:
    """min_{i≠j} G_ij (1 for a single token)."""
    n = G.shape[-1]
    if n == 1:
        return jnp.ones(G.shape[:-2], G.dtype)
    return jnp.min(jnp.where(jnp.eye(n, dtype=bool), jnp.inf, G), axis=(-1, -2))


def gram_pair_density(
    G: Float[ArrayLike, "*b n n"], delta: float | Float[Array, ""] = 1e-3
) -> Float[Array, "*b"]:
    """Fraction of pairs i ≠ j with G_ij ≥ 1 − δ (1 for a single token)."""
    n = G.shape[-1]
    if n == 1:
        return jnp.ones(G.shape[:-2], G.dtype)
    return (jnp.sum(_close(G, delta), axis=(-1, -2), dtype=G.dtype) - n) / (n * (n - 1))


def gram_cluster_count(
    G: Float[ArrayLike, "*b n n"], delta: float | Float[Array, ""] = 1e-3
) -> Int[Array, "*b"]:
    """Connected components of {G_ij ≥ 1 − δ}, by label propagation as
    :func:`particles.analysis.cluster_count`."""
    n = G.shape[-1]
    adj = _close(G, delta)
    own = jnp.arange(n)

    def body(state):
        labels, _ = state
        new = jnp.min(jnp.where(adj, labels[..., None, :], n), axis=-1)
        return new, jnp.any(new != labels)

    labels, _ = jax.lax.while_loop(
        lambda s: s[1], body, (jnp.broadcast_to(own, adj.shape[:-1]), jnp.array(True))
    )
    return jnp.sum(labels == own, axis=-1)


def gram_energy(G: Float[ArrayLike, "*b n n"], beta) -> Float[Array, "*b"]:
    """E_β = (1/(2βn²)) Σ_{i,j} e^{βG_ij}."""
    n = G.shape[-1]
    beta = jnp.asarray(beta, G.dtype)
    return jnp.sum(jnp.exp(beta[..., None, None] * G), axis=(-1, -2)) / (2 * beta * n * n)


def gram_effective_rank(G: Float[ArrayLike, "*b n n"]) -> Float[Array, "*b"]:
    """The effective rank of the n × d matrix Θ from G = ΘΘᵀ: its singular values are
    σ_k = √λ_k(G). Eigenvalues below n ε λ_max (rounding: zero for n > d) count as 0.
    A singular value is then known to ~√(n ε) absolutely (1e-7 in float64), against ε
    from an SVD of Θ: the two agree to rounding for well-spread tokens, to ~1e-7 in
    the entropy for collapsed ones."""
    lam = jnp.linalg.eigvalsh(G)
    floor = G.shape[-1] * jnp.finfo(G.dtype).eps * jnp.max(lam, axis=-1, keepdims=True)
    s = jnp.sqrt(jnp.where(lam > floor, lam, 0))
    p = s / jnp.sum(s, axis=-1, keepdims=True)
    plogp = jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1)), 0)
    return jnp.exp(-jnp.sum(plogp, axis=-1))


def gram_collapse_time(ts, G, delta: float = 1e-3, t_stop=None, time_axis: int = -3) -> Float[Array, "*b"]:
    """τ_δ: first time (interpolated between saves) with min_{i≠j} G_ij ≥ 1 − δ, inf if
    never; ``G`` has its time axis at ``time_axis`` (-3: (*b, T, n, n) as in a
    Trajectory; 0 for the saves of :func:`solve_gram`). ``t_stop``: the time a collapse
    stop (with the same δ) ended the solve, as in :func:`particles.analysis.collapse_time`."""
    m = jnp.moveaxis(gram_min_cosine(G), time_axis if time_axis >= 0 else time_axis + 2, -1)
    t = crossing_time(ts, m, 1 - delta)
    if t_stop is not None:
        t = jnp.where(jnp.isinf(t), jnp.asarray(t_stop, t.dtype), t)
    return t


def _radius(field):
    return lambda theta_or_G, r, beta, delta: getattr(radius_stats(r), field)


# Each observable once, in two forms: of the directions θ (*b, n, d), and of their Gram
# matrix G = ΘΘᵀ (*b, n, n) for the Gram flow (MODEL.md §8). Both take (·, r, beta, delta).
_FORMS: dict[str, tuple[Callable, Callable]] = {
    "mean_cosine": (
        lambda theta, r, beta, delta: mean_cosine(theta),
        lambda G, r, beta, delta: gram_mean_cosine(G),
    ),
    "min_cosine": (
        lambda theta, r, beta, delta: min_cosine(theta),
        lambda G, r, beta, delta: gram_min_cosine(G),
    ),
    "pair_density": (
        lambda theta, r, beta, delta: pair_density(theta, delta),
        lambda G, r, beta, delta: gram_pair_density(G, delta),
    ),
    "cluster_count": (
        lambda theta, r, beta, delta: cluster_count(theta, delta),
        lambda G, r, beta, delta: gram_cluster_count(G, delta),
    ),
    "energy": (
        lambda theta, r, beta, delta: energy(theta, beta),
        lambda G, r, beta, delta: gram_energy(G, beta),
    ),
    "effective_rank": (
        lambda theta, r, beta, delta: effective_rank(theta),
        lambda G, r, beta, delta: gram_effective_rank(G),
    ),
    **{f"radius_{field}": (_radius(field), _radius(field)) for field in RadiusStats._fields},
}
OBSERVABLES: dict[str, Callable] = {name: forms[0] for name, forms in _FORMS.items()}
GRAM_OBSERVABLES: dict[str, Callable] = {name: forms[1] for name, forms in _FORMS.items()}


@jax.jit
def final_summary(theta: Float[ArrayLike, "*b T n d"], r: Float[ArrayLike, "*b T n"]):
    """(mean cosine, radii) of the last save, as one compiled program (op by op each
    would be compiled, or looked up in the cache, on every start of the command line)."""
    return mean_cosine(theta[..., -1, :, :]), r[..., -1, :]


def check_observables(names) -> tuple[str, ...]:
    """Validate observable names against :data:`OBSERVABLES` (a list or "a,b,c")."""
    if isinstance(names, str):
        names = [s.strip() for s in names.split(",") if s.strip()]
    names = tuple(names)
    if not names:
        raise ValueError(f"no observables given; choose from: {', '.join(OBSERVABLES)}")
    for name in names:
        if name not in OBSERVABLES:
            raise ValueError(f"unknown observable {name!r}; choose from: {', '.join(OBSERVABLES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"observables {list(names)} contain a duplicate")
    return names


def observe(names, theta, r, beta, delta: float = 1e-3) -> dict[str, Array]:
    """Evaluate the named observables on ``theta`` (*b, n, d) and ``r`` (*b, n) with
    ``beta`` broadcast against ``*b``: a dict name -> array of shape ``*b``."""
    return {name: OBSERVABLES[name](theta, r, beta, delta) for name in check_observables(names)}


def gram_observables(names, G, r, beta, delta: float | Float[Array, ""] = 1e-3) -> dict[str, Array]:
    """The named observables (those of :data:`OBSERVABLES`) on ``G`` (*b, n, n) and
    ``r`` (*b, n): a dict name -> array of shape ``*b``."""
    return {name: GRAM_OBSERVABLES[name](G, r, beta, delta) for name in check_observables(names)}
