"""Stationary densities of post (MODEL.md §12) and their continuation in D.

Post's velocity is a gradient, v = ∇Φ with Φ = U/β (USA, U = ∫ e^{β⟨x,y⟩} ρ dσ) or
log Z/β (softmax), so the zero-flux states are ρ ∝ exp(Φ[ρ]/D): found by the
fixed-point iteration ρ ← exp(Φ[ρ]/D)/∫exp(Φ[ρ]/D) dσ in the harmonics (which converges
to the states that attract it, not to saddles). Stability: the spectrum of the
linearised flow (transport and diffusion, jax.jacfwd in the harmonics) without the mass
mode and, on the circle for a non-uniform state, the rotation mode (eigenvalue 0).
"""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._validate import check_float, check_int, default_dtype
from ._field import Transport, free_energy
from ._start import check_common, check_modes, check_scheme, initial_coefficients, make_basis

#: a cluster start: ρ ∝ exp(CLUSTER cos θ) about θ = 0 (r ≈ 0.95 on the circle)
CLUSTER = 10.0
#: a uniform start (and each seed of a branch) is multiplied by 1 + NUDGE cos θ, so that an
#: unstable uniform state is left (multiplied, not added: a density stays positive)
NUDGE = 1e-3


@dataclasses.dataclass(frozen=True)
class Stationary:
    """A stationary density of post: ``rho`` on ``angle``, r = ``order``, F =
    ``free_energy`` (USA; NaN for softmax), ``converged`` (the fixed-point iteration
    reached ``tol``), ``stable`` and ``growth`` (the largest growth rate of a
    perturbation, mass and rotation excluded), ``iterations``."""

    rho: np.ndarray
    angle: np.ndarray
    order: float
    free_energy: float
    converged: bool
    stable: bool
    growth: float
    iterations: int
    coefficients: np.ndarray


def _potential(transport: Transport, c, beta, noise):
    """Φ[ρ]/D on the grid (``beta`` traced: one compiled iteration for every β)."""
    basis = transport.basis
    usa = transport.scale * basis.values(c * transport.first) / noise
    softmax = jnp.log(basis.values(c * transport.mu)) / (jnp.where(beta > 0, beta, 1) * noise)
    return jnp.where(transport.usa | (beta == 0), usa, softmax)  # at β = 0 softmax = USA


@eqx.filter_jit
def _iterate(transport, c, beta, noise, tol, maxiter):
    basis = transport.basis

    def update(c):
        phi = _potential(transport, c, beta, noise)
        rho = jnp.exp(phi - jnp.max(phi))
        return basis.project(rho / jnp.sum(basis.weights(rho.dtype) * rho))

    def cond(state):
        _, err, i = state
        return (err > tol) & (i < maxiter)

    def body(state):
        c, _, i = state
        new = update(c)
        return new, jnp.sqrt(jnp.sum((new - c) ** 2)), i + 1

    c, err, i = lax.while_loop(cond, body, (c, jnp.asarray(jnp.inf, c.dtype), 0))
    return c, err, i


@eqx.filter_jit
def _jacobian(transport, c, rate):
    return jax.jacfwd(lambda y: transport(0.0, y, None) + rate * y)(c)


def _growth(transport, c, noise, d):
    """The largest real part of the linearised flow's spectrum at c (mass mode and,
    for a non-uniform density on the circle, the rotation mode removed), and the
    spectral radius."""
    basis = transport.basis
    rate = jnp.asarray(-noise * basis.degree * (basis.degree + d - 2), c.dtype)
    J = np.asarray(_jacobian(transport, c, rate), dtype=float)[1:, 1:]
    if not np.all(np.isfinite(J)):
        return np.nan, np.nan
    eig = np.linalg.eigvals(J)
    if d == 2 and float(basis.order(c)) > 1e-6:
        eig = np.delete(eig, np.argmin(np.abs(eig)))
    return float(np.max(eig.real)), float(np.max(np.abs(eig)))


def _nudge(basis, c, dtype):
    """The coefficients of ρ (1 + NUDGE cos θ) (θ the polar angle for zonal densities)."""
    c = jnp.asarray(c, dtype)
    return basis.project(basis.values(c) * jnp.asarray(1 + NUDGE * np.cos(basis.angle), dtype))


def _start(start, basis, d, dtype):
    if isinstance(start, str) and start == "cluster":
        cos = np.cos(basis.angle)
        return initial_coefficients(np.exp(CLUSTER * (cos - 1)), basis, d, dtype)
    c = initial_coefficients(start, basis, d, dtype)
    if isinstance(start, str):  # uniform
        c = np.asarray(_nudge(basis, c, dtype), float)
    return c


def _solve_one(transport, c0, beta, noise, d, tol, maxiter):
    c, err, iterations = _iterate(
        transport, c0, jnp.asarray(beta, c0.dtype), jnp.asarray(noise, c0.dtype), tol, maxiter
    )
    growth, radius = _growth(transport, c, noise, d)
    basis = transport.basis
    F = free_energy(transport, c, noise, beta) if bool(transport.usa) else np.nan
    return Stationary(
        rho=np.asarray(basis.values(c)), angle=basis.angle, order=float(basis.order(c)),
        free_energy=float(F), converged=bool(err <= tol), stable=bool(growth <= 1e-9 * max(radius, 1.0)),
        growth=growth, iterations=int(iterations), coefficients=np.asarray(c),
    )  # fmt: skip


def _setup(scheme, beta, noise_values, d, attention, modes):
    beta, _, d, usa = check_common(beta=beta, noise=0.0, d=d, attention=attention)
    obj = check_scheme(scheme, stationary=True)
    for D in noise_values:
        if check_float("noise", D, nonnegative=True) == 0:
            raise ValueError(
                "noise=0 has no stationary density (the clusters collapse to points); pass noise > 0"
            )
    modes = check_modes(modes, d, beta, min(noise_values), usa)
    dtype = default_dtype()
    basis = make_basis(d, modes, dtype)
    return beta, d, Transport(basis, obj, beta, usa, dtype), dtype


def _iteration_settings(tol, maxiter, dtype):
    """``tol`` (default 1e−11 in float64, 1e−5 in float32: the L² change of one
    iteration) and ``maxiter``, checked."""
    tol = (1e-11 if dtype == np.float64 else 1e-5) if tol is None else tol
    return check_float("tol", tol, positive=True), check_int("maxiter", maxiter, minimum=1)


def stationary(
    scheme="post", *, beta, noise, d=2, attention="softmax", start="cluster", modes=None, tol=None,
    maxiter=50_000,
) -> Stationary:  # fmt: skip
    """A stationary density of the mean-field flow of post (MODEL.md §12), reached by
    the fixed-point iteration ρ ← exp(Φ[ρ]/D)/∫ from ``start``: "cluster" (ρ ∝
    exp(10 cos θ)), "uniform" (times 1 + 1e−3 cos θ, so that an unstable uniform state
    is left), or a density as :func:`solve`'s ``rho0`` takes it."""
    beta, d, transport, dtype = _setup(scheme, beta, [noise], d, attention, modes)
    tol, maxiter = _iteration_settings(tol, maxiter, dtype)
    c0 = jnp.asarray(_start(start, transport.basis, d, dtype), dtype)
    return _solve_one(transport, c0, beta, float(noise), d, tol, maxiter)


def branch(
    scheme="post", *, beta, noise, d=2, attention="softmax", start="cluster", modes=None, tol=None,
    maxiter=50_000,
):  # fmt: skip
    """Continuation of :func:`stationary` along D: direction "up" starts from ``start``
    at the smallest D and seeds each D with the state of the one before; "down" comes
    back from the largest D, seeded by where "up" ended (each seed times 1 + 1e−3 cos θ).
    A state that survives in one direction and not the other is the hysteresis of a
    discontinuous transition. An xarray Dataset (direction, noise): order, free_energy,
    stable, growth, converged, rho (direction, noise, angle); ``ratio`` = D/threshold."""
    import xarray as xr

    from ._kernel import threshold

    noise = sorted(float(D) for D in np.atleast_1d(noise))
    beta, d, transport, dtype = _setup(scheme, beta, noise, d, attention, modes)
    tol, maxiter = _iteration_settings(tol, maxiter, dtype)
    rows, c = {}, _start(start, transport.basis, d, dtype)
    for direction, order in (("up", noise), ("down", noise[::-1])):
        out = []
        for D in order:
            state = _solve_one(transport, _nudge(transport.basis, c, dtype), beta, D, d, tol, maxiter)
            c = np.asarray(state.coefficients, float)
            out.append(state)
        rows[direction] = out if direction == "up" else out[::-1]
    get = lambda name: (("direction", "noise"), [[getattr(s, name) for s in rows[k]] for k in ("up", "down")])
    D_c = threshold(transport.scheme, beta, d, bool(transport.usa))
    return xr.Dataset(
        {name: get(name) for name in ("order", "free_energy", "stable", "growth", "converged", "iterations")}
        | {"rho": (("direction", "noise", "angle"), [[s.rho for s in rows[k]] for k in ("up", "down")])},
        coords={"direction": ["up", "down"], "noise": noise, "ratio": ("noise", np.asarray(noise) / D_c),
                "angle": transport.basis.angle},
        attrs=dict(scheme=transport.scheme.name, beta=beta, d=d, attention="usa" if bool(transport.usa) else "softmax",
                   threshold=D_c, modes=transport.basis.modes),
    )  # fmt: skip
