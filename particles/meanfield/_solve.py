"""``solve``: the density flow from ρ0 to t1 (MODEL.md §12), one diffrax solve through
the package's engine with the integrating-factor Dormand–Prince solver (the diffusion
exact, the transport adaptive with its error measured in the density's L²(σ) norm)."""

import dataclasses

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._engine import solve_density
from .._status import SimulationError
from .._validate import check_choice, check_float, check_int, default_dtype
from ._field import Transport, free_energy
from ._lawson import LawsonDopri5
from ._start import check_common, check_modes, check_scheme, initial_coefficients, make_basis


@dataclasses.dataclass(frozen=True)
class MeanFieldSolution:
    """A density flow: ``rho`` (time × angle) against σ (uniform = 1) on ``angle``
    (θ ∈ [0, 2π) for d = 2, the polar angle for zonal densities), with per save the
    order parameter r = |∫ x ρ dσ|, the mass ∫ρ dσ, min ρ (positivity) and, for USA,
    the free energy F (NaN for softmax, which has none); ``coefficients`` are the
    density's harmonics (orthonormal in L²(σ)); ``steps`` the accepted steps."""

    ts: np.ndarray
    angle: np.ndarray
    rho: np.ndarray
    order: np.ndarray
    mass: np.ndarray
    min_rho: np.ndarray
    free_energy: np.ndarray
    coefficients: np.ndarray
    steps: int
    settings: dict

    def to_xarray(self):
        """An xarray Dataset (time, angle) with the settings as attributes."""
        import xarray as xr

        t, a = ("time", self.ts), ("angle", self.angle)
        return xr.Dataset(
            {
                "rho": (("time", "angle"), self.rho),
                "order": ("time", self.order),
                "mass": ("time", self.mass),
                "min_rho": ("time", self.min_rho),
                "free_energy": ("time", self.free_energy),
            },
            coords=dict([t, a]),
            attrs={**{k: str(v) if v is None else v for k, v in self.settings.items()}, "steps": self.steps},
        )


def _observe(transport, cs, noise, beta):
    """(rho, order, mass, min_rho, F) for each row of coefficients."""
    basis = transport.basis

    def one(c):
        rho = basis.values(c)
        F = jnp.where(transport.usa, free_energy(transport, c, noise, beta), jnp.nan)
        mass = jnp.sum(basis.weights(rho.dtype) * rho)
        return rho, basis.order(c), mass, jnp.min(rho), jnp.asarray(F, rho.dtype)

    return jax.vmap(one)(cs)


def solve(
    rho0,
    scheme="post",
    *,
    beta,
    t1,
    ts=None,
    d=2,
    attention="softmax",
    noise=0.0,
    modes=None,
    rtol=None,
    atol=None,
    max_steps=1_000_000,
    method="integrating-factor",
) -> MeanFieldSolution:
    """The mean-field density flow ∂_t ρ = −∇·(ρ v[ρ]) + D Δρ on S^{d−1} (MODEL.md §12).

    ``rho0``: "uniform", a callable of the angle, values on :func:`grid`, or tokens
    (n, d) (their empirical measure, heat-smoothed so that mode ``modes`` is damped to
    e^{−27.6}); normalised to mass 1. d = 2: Fourier, any density; d ≥ 3: zonal
    densities (of the polar angle from e_1). ``scheme``: post, ngpt, sqrt, mix up to
    its tau, or a sphere-bound :class:`particles.AbstractSpeedScheme`. ``noise``: D.
    ``modes``: harmonics kept (default from β and D). ``rtol``, ``atol``: the local
    error in the L²(σ) norm of the density (default 1e−8, 1e−10 in float64; 1e−5, 1e−7
    in float32). ``ts``: save times (default 101 in [0, t1]).
    ``method``: "integrating-factor" (the diffusion exact, Dormand–Prince on the
    transport: its steps do not shrink with D K²) or "explicit" (Dormand–Prince on the
    whole right-hand side, for comparison: stiff once D K² dominates).
    """
    beta, noise, d, usa = check_common(beta=beta, noise=noise, d=d, attention=attention)
    t1 = check_float("t1", t1, positive=True)
    obj = check_scheme(scheme, t1)
    modes = check_modes(modes, d, beta, noise, usa)
    check_choice("method", method, ("integrating-factor", "explicit"))
    dtype = default_dtype()
    tol = _tolerances(rtol, atol, dtype)
    max_steps = check_int("max_steps", max_steps, minimum=1)
    ts = _save_times(ts, t1)
    basis = make_basis(d, modes, dtype)
    c0 = jnp.asarray(initial_coefficients(rho0, basis, d, dtype), dtype)
    transport = Transport(basis, obj, beta, usa, dtype)
    rate = jnp.asarray(-noise * basis.degree * (basis.degree + d - 2), dtype)
    if method == "explicit":
        term, solver = diffrax.ODETerm(_WithDiffusion(transport, rate)), diffrax.Dopri5()
    else:
        term, solver = diffrax.ODETerm(transport), LawsonDopri5(rate)
    controller = diffrax.ClipStepSizeController(
        diffrax.PIDController(**{k: jnp.asarray(v, dtype) for k, v in tol.items()}, norm=_l2),
        step_ts=jnp.asarray(ts, dtype),
    )  # tolerances as arrays: traced, no recompiling
    sol = solve_density(
        term, solver, c0, None, jnp.asarray(ts, dtype), jnp.asarray(t1, dtype), controller, max_steps
    )
    _check_result(sol.result, t1, max_steps)
    rho, order, mass, low, F = map(np.asarray, _observe(transport, sol.ys, noise, beta))
    settings = dict(method=method, scheme=obj.name, beta=beta, noise=noise, d=d, attention=attention,
                    modes=modes, **tol)  # fmt: skip
    return MeanFieldSolution(
        ts=ts, angle=basis.angle, rho=rho, order=order, mass=mass, min_rho=low, free_energy=F,
        coefficients=np.asarray(sol.ys), steps=int(sol.stats["num_accepted_steps"]), settings=settings,
    )  # fmt: skip


def _tolerances(rtol, atol, dtype) -> dict:
    """rtol, atol checked; defaults 1e−8, 1e−10 in float64 and 1e−5, 1e−7 in float32."""
    x64 = dtype == np.float64
    rtol = check_float("rtol", (1e-8 if x64 else 1e-5) if rtol is None else rtol, positive=True)
    atol = check_float("atol", (1e-10 if x64 else 1e-7) if atol is None else atol, positive=True)
    return dict(rtol=rtol, atol=atol)


def _save_times(ts, t1) -> np.ndarray:
    ts = np.linspace(0.0, t1, 101) if ts is None else np.asarray(ts, dtype=float)
    if ts.ndim != 1 or ts.size == 0 or ts[0] < 0 or ts[-1] > t1 or np.any(np.diff(ts) <= 0):
        raise ValueError(f"ts must be increasing times in [0, t1={t1:g}]")
    return ts


def _check_result(result, t1, max_steps) -> None:
    """Raise :class:`particles.SimulationError` in one line if the solve stopped early."""
    if diffrax.is_successful(result):
        return
    if result == diffrax.RESULTS.max_steps_reached:
        why = f"the step budget max_steps={max_steps} was spent; raise it"
    else:
        why = "the solver failed (a NaN or inf in the density: add modes)"
    raise SimulationError(f"the mean-field solve stopped before t1={t1:g}: {why}")


class _WithDiffusion(eqx.Module):
    """The whole right-hand side N(t, c) + L c (the explicit method)."""

    transport: Transport
    rate: jnp.ndarray

    def __call__(self, t, c, args):
        return self.transport(t, c, args) + self.rate * c


def _l2(x):
    """The L²(σ) norm of a density from its orthonormal coefficients."""
    return jnp.sqrt(jnp.sum(x * x))
