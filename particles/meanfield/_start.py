"""The checks of the mean-field entry points and the initial density: "uniform", a
callable of the angle, values on the grid, or tokens (n, d) (their empirical measure
smoothed by the heat kernel). Every refusal is one line naming the argument."""

import math

import jax.numpy as jnp
import numpy as np

from .._validate import check_choice, check_float, check_int
from ..schemes import AbstractSpeedScheme, Mix, get_scheme
from ._circle import Fourier, grid_size
from ._kernel import TAIL, required_modes
from ._zonal import Gegenbauer

ATTENTION = ("softmax", "usa")
#: the heat kernel's time smooths the highest mode of a token start down to e^{−SMOOTH}
SMOOTH = 27.6


def check_scheme(scheme, t1=None, *, stationary=False):
    """The scheme instance, if the mean field takes it: a speed scheme that keeps the
    tokens on the sphere and whose speed depends on (t, A(x)) only."""
    obj = get_scheme(scheme)
    name = obj.name
    ok = isinstance(obj, AbstractSpeedScheme) and type(obj).velocity is AbstractSpeedScheme.velocity
    if isinstance(obj, Mix):
        ok = t1 is not None and t1 <= obj.tau
        if not ok:
            raise ValueError(
                f"scheme={name!r} is pre after tau={obj.tau:g}, whose radii move: the mean field takes mix "
                f"only up to tau; pass t1 <= {obj.tau:g} or scheme='post'"
            )
    elif not (ok and obj.sphere_bound):
        raise ValueError(
            f"scheme={name!r} moves the radii: the mean field takes the sphere-bound speed schemes "
            "(post, ngpt, sqrt, mix before tau)"
        )
    if stationary and name != "post":
        raise ValueError(
            f"scheme={name!r}: stationary states are computed for scheme='post' (its zero-flux states "
            "are closed-form); run solve to long times for the others"
        )
    return obj


def check_common(*, beta, noise, d, attention):
    """(β, D, d, usa) checked."""
    beta = check_float("beta", beta, nonnegative=True)
    noise = check_float("noise", noise, nonnegative=True)
    d = check_int("d", d, minimum=2)
    check_choice("attention", attention, ATTENTION)
    return beta, noise, d, attention == "usa"


def default_modes(d: int, beta: float, noise: float, usa: bool = False) -> int:
    """Twice the kernel's tail, and enough for a stationary cluster, at least 32 and at
    most 2048: about a cluster post's potential Φ (U/β or log Z/β) has curvature
    e^β (USA) or 1 (softmax), so ρ ∝ exp(Φ/D) has the width w = √(D e^{−β}) or √D,
    resolved by K ≥ √(2 log(1/TAIL))/w harmonics."""
    need = 2 * required_modes(d, beta)
    if noise > 0:
        width = math.sqrt(noise * (math.exp(-beta) if usa else 1.0))
        need = max(need, math.ceil(math.sqrt(2 * math.log(1 / TAIL)) / width))
    return max(32, min(need, 2048))


def check_modes(modes, d: int, beta: float, noise: float, usa: bool = False) -> int:
    if modes is None:
        return default_modes(d, beta, noise, usa)
    modes = check_int("modes", modes, minimum=1)
    need = required_modes(d, beta)
    if modes < need:
        what = "I_k(β)/I_0(β)" if d == 2 else "μ_k(β)/μ_0(β)"
        raise ValueError(
            f"modes={modes} is too few for beta={beta:g}: the kernel's harmonics {what} fall below "
            f"{TAIL:g} only beyond k = {need}; pass modes >= {need}"
        )
    return modes


def make_basis(d: int, modes: int, dtype):
    return Fourier(modes, grid_size(modes)) if d == 2 else Gegenbauer(d, modes, dtype)


def grid(*, d: int = 2, modes: int) -> np.ndarray:
    """The angles at which a density is given and returned for ``modes`` harmonics:
    θ ∈ [0, 2π) on the circle, the polar angle ∈ (0, π) for zonal densities (d ≥ 3)."""
    d = check_int("d", d, minimum=2)
    modes = check_int("modes", modes, minimum=1)
    return make_basis(d, modes, np.float64).angle


def _check_density(values, name="rho0"):
    v = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} has non-finite values (NaN or inf)")
    if np.min(v) < 0:
        raise ValueError(f"{name} has negative values (min {np.min(v):.3g}): a density is non-negative")
    return v


def _tokens(x, basis, d):
    """The coefficients of the heat-smoothed empirical measure of tokens x (n, d)."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    n, K, tau = x.shape[0], basis.modes, SMOOTH / (basis.modes * (basis.modes + d - 2))
    if d == 2:
        theta = np.arctan2(x[:, 1], x[:, 0])
        k = np.arange(1, K + 1)
        c = np.concatenate([[1.0], np.sqrt(2) * np.cos(np.outer(theta, k)).mean(0),
                            np.sqrt(2) * np.sin(np.outer(theta, k)).mean(0)])  # fmt: skip
    else:
        transverse, second = x[:, 1:].mean(0), np.cov(x.T, bias=True)
        spread = np.ptp(np.linalg.eigvalsh(second[1:, 1:])) if d > 2 else 0.0
        off = max(np.max(np.abs(transverse)), np.max(np.abs(second[0, 1:])), spread)
        if off > 5 / math.sqrt(n):
            raise ValueError(
                f"rho0: the tokens are not zonal about e_1 (their first moments are off by {off:.3g} > 5/√n): "
                "in d >= 3 the mean field takes densities of the polar angle; rotate the tokens or pass a "
                "callable of the angle"
            )
        from scipy import special

        lam, k = (d - 2) / 2, np.arange(K + 1)
        C = special.eval_gegenbauer(k[None, :], lam, np.clip(x[:, :1], -1, 1))
        norm = np.sqrt(special.eval_gegenbauer(k, lam, 1.0) * lam / (k + lam))  # |C_k|_{L²(σ)}
        c = (C / norm).mean(0)
    return c * np.exp(-tau * basis.degree * (basis.degree + d - 2))


def initial_coefficients(rho0, basis, d: int, dtype) -> np.ndarray:
    """The coefficients of the initial density, of mass 1 (float64)."""
    if isinstance(rho0, str):
        check_choice("rho0", rho0, ("uniform",))
        c = np.zeros(basis.degree.size)
        c[0] = 1.0
        return c
    if callable(rho0):
        values = _check_density(rho0(basis.angle))
        values = np.broadcast_to(values, basis.angle.shape)
    else:
        a = np.asarray(rho0)
        if a.ndim == 2:
            if a.shape[1] != d:
                raise ValueError(f"rho0: tokens of shape {a.shape} are not in d={d}")
            c = _tokens(np.asarray(a, dtype=float), basis, d)
            return c / c[0]
        if a.shape != basis.angle.shape:
            raise ValueError(
                f"rho0 has shape {a.shape}: values on the grid have shape {basis.angle.shape} for these "
                "modes (particles.meanfield.grid(d=..., modes=...)); or pass a callable of the angle"
            )
        values = _check_density(a)
    c = np.asarray(basis.project(jnp.asarray(values, dtype)), dtype=float)
    if not c[0] > 0:
        raise ValueError("rho0 has zero mass: a density needs ∫ρ dσ > 0")
    return c / c[0]
