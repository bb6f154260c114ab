"""The attention kernel e^{β⟨x,y⟩} on S^{d−1} in the harmonics that diagonalise it
(MODEL.md §12), and the closed forms built on it: the linear rates about the uniform
state, the thresholds and Mun and Rosenzweig's β_*.

Funk–Hecke: with σ the uniform probability measure on S^{d−1} and Y_k a spherical
harmonic of degree k,

    ∫ e^{β⟨x,y⟩} Y_k(y) dσ(y) = μ_k(β) Y_k(x),   μ_k(β) = Γ(d/2) (2/β)^{d/2−1} I_{k+d/2−1}(β)

(d = 2: μ_k = I_k, the circle's Fourier coefficients). Everything here is numpy/scipy
on the host: β is a number, not a traced value.
"""

import math

import numpy as np

#: the kernel's harmonics are dropped below this fraction of μ_0 (the Fourier tail)
TAIL = 1e-8


def kernel_coefficients(d: int, beta: float, kmax: int):
    """(μ_k, μ_k/β, ∂_β μ_k) for k = 0..kmax, each times e^{−β} (so that large β does
    not overflow), float64. At β = 0 their limits: μ_k = δ_k0, μ_k/β = ∂_β μ_k = δ_k1/d.

    ∂_β μ_k = Γ(d/2) (2/β)^{ν} (I_{k+ν+1}(β) + (k/β) I_{k+ν}(β)), ν = d/2 − 1, from
    I'_m = I_{m+1} + (m/β) I_m."""
    from scipy import special  # imported when used: `import particles` stays light

    k = np.arange(kmax + 1, dtype=float)
    if beta == 0:
        mu = (k == 0).astype(float)
        first = (k == 1) / d
        return mu, first, first.copy()
    nu = d / 2 - 1
    pref = math.exp(math.lgamma(d / 2) + nu * math.log(2 / beta))
    mu = pref * special.ive(k + nu, beta)
    dmu = pref * (special.ive(k + nu + 1, beta) + (k / beta) * special.ive(k + nu, beta))
    return mu, mu / beta, dmu


def required_modes(d: int, beta: float, tail: float = TAIL) -> int:
    """The smallest K such that μ_k(β)/μ_0(β) < ``tail`` for every k > K: the harmonics
    the kernel carries (its Fourier tail on the circle), at least 1."""
    kmax = 16
    while True:
        mu = kernel_coefficients(d, beta, kmax)[0]
        small = mu / mu[0] < tail
        if small[-1]:
            big = np.nonzero(~small)[0]
            return max(1, int(big[-1]) if big.size else 1)
        kmax *= 2


def uniform_speed(scheme, beta: float, d: int, usa: bool, t: float = 0.0) -> float:
    """The scheme's speed factor s at the uniform state, where A(x) = a x with
    a = ∂_β μ_0/μ_0 (softmax) or ∂_β μ_0 (USA; μ_0 and its derivative unscaled)."""
    mu, _, dmu = kernel_coefficients(d, beta, 1)
    a = dmu[0] * math.exp(beta) if usa else dmu[0] / mu[0]
    one = np.ones(())
    return float(np.asarray(scheme.speed(t, one, a * one, abs(a) * one)))


def drift_rates(d: int, beta: float, kmax: int, usa: bool) -> np.ndarray:
    """μ_k/(β μ_0) (softmax) or μ_k/β (USA) for k = 0..kmax: mode k of a perturbation of
    the uniform state is moved at this rate (times k(k+d−2), divided by the speed)."""
    mu, first, _ = kernel_coefficients(d, beta, kmax)
    return first * math.exp(beta) if usa else first / mu[0]


def rates(scheme, beta: float, noise: float, d: int, usa: bool, kmax: int, t: float = 0.0) -> np.ndarray:
    """λ_k = k(k+d−2) (drift_k / s − D), k = 0..kmax (MODEL.md §12)."""
    k = np.arange(kmax + 1, dtype=float)
    s = uniform_speed(scheme, beta, d, usa, t)
    drift = drift_rates(d, beta, kmax, usa)
    with np.errstate(divide="ignore", invalid="ignore"):
        moved = np.where(drift == 0, 0.0, drift / s)
    return k * (k + d - 2) * (moved - noise)


def threshold(scheme, beta: float, d: int, usa: bool, t: float = 0.0) -> float:
    """The noise at which the first harmonic of the uniform state turns stable:
    D_1(β) = μ_1/(β μ_0 s) (softmax), D_#(β) = μ_1/(β s) (USA); 1/d at β = 0 (post)."""
    return float(drift_rates(d, beta, 1, usa)[1] / uniform_speed(scheme, beta, d, usa, t))


def critical_beta(d: int) -> float:
    """β_*^{(d)}: the root of I_{d/2+1}(β)/I_{d/2}(β) = 1/d (Mun and Rosenzweig, arXiv
    2606.05140), above which USA's noisy transition is discontinuous."""
    from scipy import optimize, special

    f = lambda b: special.ive(d / 2 + 1, b) / special.ive(d / 2, b) - 1 / d
    return float(optimize.brentq(f, 1e-6, 10.0 * d + 10.0, xtol=1e-14, rtol=1e-15))
