r"""The "lost in the middle" retrieval profile (MODEL.md §11): how much the last token
remembers the token at each position, measured over random starts and predicted.

The model is that of Duerinckx, Geshkovski, Rossi, arXiv 2605.09213: tokens on the
circle under attention with a positional prior π that does not depend on the tokens,

    θ̇_j = β Σ_{k<j} π_jk e^{β cos(θ_k − θ_j)} sin(θ_k − θ_j),   π_jk ∝ e^{−λ(j−k)/n},

from i.i.d. uniform starts. Its observable is the retrieval profile
c_m(k, t) = E cos(m(θ_{n−1}(t) − θ_k(0))) (:func:`retrieval_profile`), predicted to
leading order in 1/n by the linear response [exp(a_m t Π)]_{n−1,k}, a_m = m² I_m(β)
(:func:`linear_response_profile`), and as n → ∞ by the paper's continuum profile S_t(s)
(:func:`continuum_profile`), whose right-end slope changes sign at t_crit
(:func:`critical_time`): before it the last positions are remembered best (recency),
after it only the first (primacy).

These are numpy/scipy functions of concrete arrays (not traced under ``jax.jit``); they
return numpy arrays. scipy is imported where it is used, not with ``particles``.
"""

from typing import NamedTuple

import numpy as np
from jaxtyping import ArrayLike, Float

from ._validate import check_finite_array, check_float, check_int


def lost_in_the_middle_prior(n: int, lam: float) -> Float[np.ndarray, "n n"]:
    r"""The positional prior of arXiv 2605.09213: π_jk = e^{−λ(j−k)/n} / Σ_{l<j} e^{−λ(j−l)/n}
    for k < j, zero on and above the diagonal (no self-attention).

    Each row sums to 1, except row 0, all zeros: token 0 attends to no one and does not
    move. λ > 0 favours the nearest earlier tokens, λ = 0 weighs all earlier tokens
    alike, λ < 0 favours the first ones. float64.
    """
    n = check_int("n", n, minimum=1)
    lam = check_float("lam", lam)
    j, k = np.arange(n)[:, None], np.arange(n)[None, :]
    logits = np.where(k < j, -lam * (j - k) / n, -np.inf)
    top = np.max(logits, axis=1, keepdims=True)
    top[0] = 0.0  # row 0 has no earlier token
    w = np.exp(logits - top)  # largest entry of each row 1: no overflow or underflow at any λ
    total = np.sum(w, axis=1, keepdims=True)
    return np.divide(w, total, out=np.zeros_like(w), where=total > 0)


class RetrievalProfile(NamedTuple):
    """The retrieval profile c_m(k, t) per source position k (last axis): ``mean`` over
    the runs and its standard error ``stderr`` (the runs' sample standard deviation over
    √runs). A prediction p agrees with it where |mean − p| is within a few ``stderr``."""

    mean: Float[np.ndarray, "*extra n"]
    stderr: Float[np.ndarray, "*extra n"]


def _directions(name, theta):
    """The angles of the tokens of ``theta`` (..., 2): finite, nonzero vectors."""
    theta = check_finite_array(name, theta)
    if np.any(np.sum(theta * theta, axis=-1) == 0):
        raise ValueError(f"{name} has a zero vector: every token needs a direction on the circle")
    return np.arctan2(theta[..., 1], theta[..., 0])


def retrieval_profile(
    theta0: Float[ArrayLike, "..."], theta_t: Float[ArrayLike, "..."], m: int = 1
) -> RetrievalProfile:
    r"""The retrieval profile of arXiv 2605.09213 (MODEL.md §11), over a batch of runs:

        c_m(k, t) = E cos(m(θ_{n−1}(t) − θ_k(0))),   k = 0..n−1,

    how much the last token at time t still points where the token at position k
    started (1 where it points there, 0 on average where it has forgotten it).

    Args:
        theta0: the starts, shape (runs, n, 2): n tokens on the circle as vectors
            (cos θ, sin θ), one run per row of axis 0 (``traj.theta[:, 0]`` of a batch).
            Only the direction counts (angles ``a`` become vectors with
            ``np.stack([np.cos(a), np.sin(a)], -1)``).
        theta_t: the same runs at time t, shape (runs, n, 2), or (runs, ..., n, 2) for
            several times at once (``traj.theta``, shape (runs, T, n, 2)).
        m: the Fourier mode, a positive integer.

    Returns:
        A :class:`RetrievalProfile`: ``mean`` and ``stderr``, each of shape (n,), or
        (..., n) with theta_t's middle axes.
    """
    m = check_int("m", m, minimum=1)
    x0, xt = np.asarray(theta0), np.asarray(theta_t)
    if x0.ndim != 3:
        raise ValueError(
            f"theta0 has shape {x0.shape}: give (runs, n, 2), a batch of runs of n tokens on the circle"
        )
    runs, n, d = x0.shape
    if d != 2:
        raise ValueError(
            f"theta0 has shape {x0.shape}: the retrieval profile is on the circle, d = 2, not {d}"
        )
    if runs < 2:
        raise ValueError(f"theta0 has {runs} run: the profile is an average over runs, give at least 2")
    if xt.ndim < 3 or xt.shape[0] != runs or xt.shape[-2:] != (n, 2):
        raise ValueError(
            f"theta_t has shape {xt.shape}: give (runs, ..., n, 2) with theta0's runs = {runs} and n = {n}"
        )
    start = _directions("theta0", x0)  # (runs, n)
    last = _directions("theta_t", xt[..., -1, :])  # (runs, *extra)
    start = start.reshape(runs, *(1,) * (xt.ndim - 3), n)
    c = np.cos(m * (last[..., None] - start))  # (runs, *extra, n)
    return RetrievalProfile(np.mean(c, axis=0), np.std(c, axis=0, ddof=1) / np.sqrt(runs))


def _check_prior(prior):
    p = check_finite_array("prior", prior)
    if p.ndim != 2 or p.shape[0] != p.shape[1] or p.shape[0] == 0:
        raise ValueError(f"prior has shape {p.shape}: it must be a square (n, n) matrix")
    if np.any(p < 0):
        raise ValueError("prior has negative entries: the weights π_jk must be >= 0")
    p = p.astype(np.result_type(p.dtype, np.float32))
    sums = np.sum(p, axis=1)
    tol = max(1e-6, 16 * p.shape[0] * np.finfo(p.dtype).eps)
    bad = (np.abs(sums - 1) > tol) & (np.abs(sums) > tol)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError(
            f"prior row {i} sums to {sums[i]:.6g}: each row must sum to 1 (or 0 for a token that attends to no one)"
        )
    return p


def _check_times(t):
    ts = check_finite_array("t", t).astype(float)
    if ts.ndim > 1:
        raise ValueError(f"t has shape {ts.shape}: give one time or a 1-D array of times")
    if np.any(ts < 0):
        raise ValueError(f"t must be non-negative, got {ts.min():g}")
    return ts


def _rates(beta, M, mmax):
    """The rates a_m = m² I_m(β) and the window ω_m = e^{−π²m²/(2M²)}, m = 1..mmax."""
    from scipy.special import iv

    m = np.arange(1, mmax + 1)
    return m**2 * iv(m, beta), np.exp(-(np.pi**2) * m**2 / (2 * M**2))


def linear_response_profile(
    prior: Float[ArrayLike, "..."], t: float | Float[ArrayLike, "..."], beta: float, m: int = 1
) -> Float[np.ndarray, "*T n"]:
    r"""The linear response of the retrieval profile (MODEL.md §11, to leading order in
    1/n): c_m(k, t) ≈ [exp(a_m t Π)]_{n−1,k}, a_m = m² I_m(β) (modified Bessel function),
    for the circle model θ̇_j = β Σ_k π_jk e^{β cos(θ_k − θ_j)} sin(θ_k − θ_j) of
    Duerinckx, Geshkovski, Rossi, arXiv 2605.09213, from i.i.d. uniform starts.

    The correlations C_jk(t) = E cos(m(θ_j(t) − θ_k(0))) start at the identity and,
    keeping the resonant Fourier term e^{β cos φ} ⊃ I_m(β) e^{imφ}, follow
    Ċ = a_m Π C. With a prior of zero diagonal the entry k = n−1 is 1 at every t.

    Args:
        prior: Π, an (n, n) matrix with entries >= 0 and rows summing to 1 (or 0), such
            as :func:`lost_in_the_middle_prior`.
        t: a time >= 0, or a 1-D array of them.
        beta: β >= 0.
        m: the Fourier mode, a positive integer.

    Returns:
        The row n−1 of exp(a_m t Π): shape (n,), or (len(t), n) for an array of times.
    """
    p = _check_prior(prior)
    ts = _check_times(t)
    beta = check_float("beta", beta, nonnegative=True)
    m = check_int("m", m, minimum=1)
    from scipy.linalg import expm
    from scipy.special import iv

    return expm(m**2 * iv(m, beta) * ts[..., None, None] * p)[..., -1, :]


def _psi(c, y):
    """ψ_c(y) = Σ_{k≥0} c^{k+1} y^k/(k!(k+1)!) = √(c/y) I₁(2√(cy)) for c, y >= 0, with
    ψ_c(0) = c, ψ_0 = 0 and ψ_c(∞) = ∞ for c > 0; the Bessel form through the scaled
    I₁ (no overflow before the value itself), the series where 2√(cy) < 1e-3."""
    from scipy.special import ive

    c, y = np.broadcast_arrays(np.asarray(c, float), np.asarray(y, float))
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        cy = c * y
        z = 2 * np.sqrt(cy)
        bessel = c * (2 * ive(1, z) / z) * np.exp(z)
        series = c * (1 + cy / 2 + cy**2 / 12)
    out = np.where(z < 1e-3, series, bessel)
    out = np.where(np.isinf(y) & (c > 0), np.inf, out)
    return np.where(c == 0, 0.0, out)


def _scaled_expm1(lam, x):
    """(e^{λx} − 1)/λ, and its limit x at λ = 0."""
    return x if lam == 0 else np.expm1(lam * x) / lam


def continuum_profile(
    s: float | Float[ArrayLike, "..."],
    t: float | Float[ArrayLike, "..."],
    *,
    beta: float,
    lam: float,
    M: float = 8.0,
    mmax: int = 20,
) -> Float[np.ndarray, "..."]:
    r"""The continuum retrieval profile of Duerinckx, Geshkovski, Rossi, arXiv 2605.09213
    (MODEL.md §11), at relative source position s = k/n and time t:

        S_t(s) = Σ_{m=1}^{mmax} ω_m · λe^{λs}/(e^λ − 1) · ψ_{a_m t}(Y_λ(s)),
        Y_λ(s) = log((e^λ − 1)/(e^{λs} − 1)),
        ψ_c(y) = Σ_{k≥0} c^{k+1} y^k/(k!(k+1)!) = √(c/y) I₁(2√(cy)),

    with a_m = m² I_m(β) and the window of Fourier weights ω_m = e^{−π²m²/(2M²)}.

    It is the density in s of the linear response Σ_m ω_m exp(a_m t Π) of
    :func:`linear_response_profile` with the prior of :func:`lost_in_the_middle_prior`
    as n → ∞, less its atom at s = 1 (the last token's own start, weight Σ_m ω_m):
    S_t((k + ½)/n) ≈ n Σ_m ω_m [exp(a_m t Π)]_{n−1,k} for k < n−1, to O(1/n) away from
    s = 0.

    Endpoints: at s = 1, Y = 0 and ψ_c(0) = c, so S_t(1) = Σ ω_m a_m t · λe^λ/(e^λ − 1)
    (finite); as s → 0, Y → ∞ and S_t(s) grows without bound (slowly, an integrable
    singularity): s = 0 gives inf for t > 0. At t = 0 the profile is 0 (everything is in
    the atom). λ = 0 is the limit λ → 0 (Y = −log s, prefactor 1).

    Args:
        s: relative positions in [0, 1], any shape.
        t: a time >= 0, or a 1-D array of them.
        beta: β >= 0.
        lam: λ, the prior's decay rate (finite).
        M: the width of the Fourier window, > 0.
        mmax: the number of Fourier modes, m = 1..mmax.

    Returns:
        S_t(s) of shape t.shape + s.shape.
    """
    sv = check_finite_array("s", s).astype(float)
    if np.any((sv < 0) | (sv > 1)):
        bad = sv[(sv < 0) | (sv > 1)].flat[0]
        raise ValueError(f"s must lie in [0, 1] (relative source positions k/n), got {bad:g}")
    ts = _check_times(t)
    beta = check_float("beta", beta, nonnegative=True)
    lam = check_float("lam", lam)
    M = check_float("M", M, positive=True)
    mmax = check_int("mmax", mmax, minimum=1)
    a, w = _rates(beta, M, mmax)
    with np.errstate(divide="ignore"):
        y = np.log(_scaled_expm1(lam, 1.0) / _scaled_expm1(lam, sv))  # inf at s = 0
    front = np.exp(lam * sv) / _scaled_expm1(lam, 1.0)
    c = a.reshape((-1,) + (1,) * (ts.ndim + sv.ndim)) * ts.reshape(ts.shape + (1,) * sv.ndim)
    terms = _psi(c, y) * w.reshape(c.shape[:1] + (1,) * (c.ndim - 1))
    return np.asarray(front * np.sum(terms, axis=0))


def critical_time(*, beta: float, lam: float, M: float = 8.0, mmax: int = 20) -> float:
    r"""The time at which the right-end slope ∂_s S_t(1) of :func:`continuum_profile`
    changes sign (arXiv 2605.09213; MODEL.md §11):

        t_crit = 2(1 − e^{−λ}) Σ_m ω_m a_m / Σ_m ω_m a_m²,

    a_m = m² I_m(β), ω_m = e^{−π²m²/(2M²)}, m = 1..mmax. Before t_crit the profile rises
    towards the last positions (recency), after it it falls there. λ = 1, M = 8,
    mmax = 20: 2.4575 at β = 1, 0.6007 at β = 2, 0.1740 at β = 3. For λ <= 0 it is
    <= 0: no recency at any t > 0.

    From ∂_s S_t(1) = λ²e^λ/(e^λ − 1) Σ_m ω_m (c_m − c_m² e^λ/(2(e^λ − 1))), c_m = a_m t,
    using ψ_c(0) = c and ψ_c'(0) = c²/2.
    """
    beta = check_float("beta", beta, positive=True)
    lam = check_float("lam", lam)
    M = check_float("M", M, positive=True)
    mmax = check_int("mmax", mmax, minimum=1)
    a, w = _rates(beta, M, mmax)
    return float(-2 * np.expm1(-lam) * np.sum(w * a) / np.sum(w * a * a))
