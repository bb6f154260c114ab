"""The equiangular reduced model (MODEL.md §3).

With Q = K = V = I and an equiangular start (⟨θ_i, θ_j⟩ = ρ for all i ≠ j, equal
radii r), the symmetry is kept by every scheme: the n-token flow reduces to two
scalars ρ(t), r(t). With Z = e^β + (n−1)e^{βρ} (USA: Z = n),

    g(ρ)  = 2 e^{βρ} (1−ρ)(1 + (n−1)ρ) / Z           (= 2⟨θ_j, P_{θ_i} A_i⟩)
    a(ρ)  = (e^β + (n−1) ρ e^{βρ}) / Z               (= ⟨θ_i, A_i⟩)
    |A|²  = [e^{2β} + 2(n−1)ρ e^{β(1+ρ)} + (n−1)(1+(n−2)ρ) e^{2βρ}] / Z²

and dρ/dt = g / s, dr/dt = the scheme's radial rate, with s and dr/dt evaluated at
(t, r, a, |A|). (Geshkovski et al., arXiv 2312.10794; Karagodin et al., arXiv 2510.22026.)

The scheme's own ``velocity`` is evaluated on one representative token, so every
scheme, user-defined ones included, has its reduced model without extra code.
"""

import diffrax
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._loop import run
from ._model import AbstractKernel, as_kernel
from ._solver import step_controller
from ._validate import check_float, check_int
from .schemes import AbstractScheme, get_scheme


def moments(rho, n: int | Float[Array, ""], beta, attention="softmax"):
    """(a, |A|, g) of the equiangular configuration with correlation ``rho``
    (``attention``: a kernel name or :class:`~particles.AbstractKernel`)."""
    m = n - 1
    e1, er = as_kernel(attention).equiangular_weights(beta, rho, n)
    g = 2 * er * (1 - rho) * (1 + m * rho)
    a = e1 + m * rho * er
    A_sq = e1 * e1 + 2 * m * rho * e1 * er + m * (1 + (m - 1) * rho) * er * er
    return a, jnp.sqrt(A_sq), g


def _rates(t, rho, r, scheme: AbstractScheme, n, beta, attention):
    """(dρ/dt, dr/dt) from the scheme's velocity at one representative token θ = e_1,
    with attention vector a e_1 + b e_2, b = |P_θ A| = √(|A|² − a²)."""
    dtype = rho.dtype
    theta = jnp.broadcast_to(jnp.array([1.0, 0.0], dtype), (*rho.shape, 1, 2))
    scale = r if scheme.attends_to_tokens else jnp.ones_like(r)
    a, A_norm, g = moments(rho, n, beta * scale * scale, attention)
    a, A_norm, g = scale * a, scale * A_norm, scale * g
    b = jnp.sqrt(jnp.maximum(A_norm * A_norm - a * a, 0))
    A = jnp.stack([a, b], axis=-1)[..., None, :]
    dtheta, dr = scheme.velocity(t, theta, r[..., None], lambda _t, _x: A)
    safe_b = jnp.where(b > 0, b, 1)
    drho = jnp.where(b > 0, g * dtheta[..., 0, 1] / safe_b, 0)
    return drho, dr[..., 0]


def solve(
    scheme,
    n: int,
    beta,
    rho0: float,
    ts,
    r0: float = 1.0,
    attention: "str | AbstractKernel" = "softmax",
    *,
    t0: float = 0.0,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int = 100_000,
    **scheme_params,
) -> tuple[Float[Array, "*beta T"], Float[Array, "*beta T"]]:
    """Integrate the reduced model; return (ρ, r) at times ``ts``.

    ``beta`` may be an array: the result then has shape ``beta.shape + (len(ts),)``.
    Tolerances default to 1e-11/1e-13 in float64 and 1e-6/1e-8 in float32.
    """
    scheme = get_scheme(scheme, **scheme_params)
    n = check_int("n", n, minimum=2)
    attention = as_kernel(attention)
    rho0 = check_float("rho0", rho0)
    r0 = check_float("r0", r0, positive=True)
    if not -1 / (n - 1) <= rho0 <= 1:
        raise ValueError(f"rho0={rho0!r} must lie in [-1/(n-1), 1]")
    beta = jnp.asarray(beta, dtype=jnp.result_type(float))
    if not bool(jnp.all(jnp.isfinite(beta))):
        raise ValueError(f"beta={beta!r} must be finite")
    ts = jnp.asarray(ts, dtype=beta.dtype)
    if ts.ndim != 1 or ts.size == 0 or bool(jnp.any(jnp.diff(ts) <= 0)) or float(ts[0]) < t0:
        raise ValueError(f"ts must be a non-empty increasing 1-d array of times >= t0={t0}")
    f64 = beta.dtype == jnp.float64
    rtol = rtol or (1e-11 if f64 else 1e-6)
    atol = atol or (1e-13 if f64 else 1e-8)
    r_start = 1.0 if scheme.sphere_bound else r0
    y0 = (jnp.full(beta.shape, rho0, beta.dtype), jnp.full(beta.shape, r_start, beta.dtype))
    n = jnp.asarray(n, beta.dtype)
    (rho, r), ok = _solve(
        y0, beta, n, ts, jnp.asarray(t0, beta.dtype), rtol, atol, scheme, attention, max_steps
    )
    if not bool(ok):
        raise RuntimeError(
            f"the reduced model's solve did not reach t={float(ts[-1]):g} in max_steps={max_steps} steps "
            "(or its state became non-finite): raise max_steps or loosen rtol/atol"
        )
    return jnp.moveaxis(rho, 0, -1), jnp.moveaxis(r, 0, -1)


@jax.jit(static_argnames=("scheme", "attention", "max_steps"))
def _solve(y0, beta, n, ts, t0, rtol, atol, scheme, attention, max_steps):
    """Tsit5 under PI control, by the package's forward engine (``diffeqsolve``'s loop
    written out, :mod:`particles._loop`: its steps and numbers, compiled faster).
    Returns the saves and whether the solve reached the last save."""

    def field(t, y, args):
        return _rates(t, *y, scheme, n, beta, attention)

    jumps = [tau for tau in scheme.jump_times() if tau > 0]
    controller = step_controller(rtol, atol, jump_ts=jumps)
    sol = run(
        diffrax.ODETerm(field), diffrax.Tsit5(), controller, y0, None, ts=ts, t0=t0, t1=ts[-1], dt0=None,
        max_steps=max_steps,
    )  # fmt: skip
    return sol.ys, sol.result == diffrax.RESULTS.successful
