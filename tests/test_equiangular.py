"""The full particle simulation against the equiangular reduced model (MODEL.md §3),
and the reduced model against the formulas of MODEL.md written out independently."""

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import particles
from particles import equiangular

SCHEMES = list(particles.SCHEMES)
N, D = 5, 7
# Two configurations (beta, rho0, r0) solved as one batch of the full model.
CONFIGS = [(2.0, 0.0, 1.0), (0.7, 0.35, 1.8)]
TS = np.linspace(0.0, 4.0, 9)


def _batch_start():
    return np.stack([np.asarray(particles.init.equiangular(N, D, rho0, r0)) for _, rho0, r0 in CONFIGS])


@pytest.mark.parametrize("scheme", SCHEMES)
def test_full_simulation_matches_reduced_model(scheme):
    params = {"tau": 1.5} if scheme == "mix" else {}
    beta = np.array([c[0] for c in CONFIGS])
    traj = particles.simulate(
        _batch_start(), scheme, beta=beta, t1=TS[-1], ts=TS, rtol=1e-11, atol=1e-13, **params
    )
    gram = np.einsum("btid,btjd->btij", traj.theta, traj.theta)
    off = ~np.eye(N, dtype=bool)
    for b, (beta_b, rho0, r0) in enumerate(CONFIGS):
        rho, r = equiangular.solve(scheme, N, beta_b, rho0, TS, r0=r0, **params)
        # every pair keeps the same cosine, every token the same radius, and both follow the reduced model
        np.testing.assert_allclose(
            gram[b][:, off], np.broadcast_to(np.asarray(rho)[:, None], (len(TS), off.sum())), atol=1e-8
        )
        np.testing.assert_allclose(
            traj.r[b], np.broadcast_to(np.asarray(r)[:, None], (len(TS), N)), rtol=1e-8
        )
        if particles.get_scheme(scheme, **params).sphere_bound:
            np.testing.assert_array_equal(np.asarray(r), 1.0)


def _table_rhs(scheme, n, beta, alpha=1.0, tau=1.5, usa=False):
    """MODEL.md §3 written out term by term (independent of particles.equiangular)."""

    def rhs(t, y):
        rho, r = y
        Z = n if usa else math.exp(beta) + (n - 1) * math.exp(beta * rho)
        g = 2 * math.exp(beta * rho) * (1 - rho) * (1 + (n - 1) * rho) / Z
        a = (math.exp(beta) + (n - 1) * rho * math.exp(beta * rho)) / Z
        A = (
            math.sqrt(
                math.exp(2 * beta)
                + 2 * (n - 1) * rho * math.exp(beta * (1 + rho))
                + (n - 1) * (1 + (n - 2) * rho) * math.exp(2 * beta * rho)
            )
            / Z
        )
        m = math.sqrt(r * r + 2 * r * a + A * A)
        return {
            "post": (g, 0.0),
            "pre": (g / r, a),
            "peri": (g / (r * A), a / A),
            "mix": (g, 0.0) if t <= tau else (g / r, a),
            "ngpt": (alpha * g / A, 0.0),
            "sqrt": (g / math.sqrt(t + 1), 0.0),
            "spannorm": (g / (r * m), (r + a) / m),
        }[scheme]

    return rhs


@pytest.mark.parametrize(
    "scheme,usa",
    [(s, False) for s in ("post", "pre", "peri", "mix", "ngpt", "sqrt", "spannorm")]
    + [("post", True), ("peri", True)],
)
def test_reduced_model_matches_model_table(scheme, usa):
    n, beta, rho0, r0 = 6, 1.3, 0.2, 1.4
    params = {"tau": 1.5} if scheme == "mix" else {"alpha": 1.7} if scheme == "ngpt" else {}
    ts = np.linspace(0, 5, 11)
    rho, r = equiangular.solve(
        scheme, n, beta, rho0, ts, r0=r0, attention="usa" if usa else "softmax", **params
    )
    r_start = 1.0 if scheme in ("post", "ngpt", "sqrt") else r0
    ref = solve_ivp(
        _table_rhs(scheme, n, beta, usa=usa, **params),
        (0, 5),
        [rho0, r_start],
        t_eval=ts,
        rtol=1e-12,
        atol=1e-14,
        method="DOP853",
        max_step=0.05,
    )
    np.testing.assert_allclose(rho, ref.y[0], atol=1e-9)
    np.testing.assert_allclose(r, ref.y[1], rtol=1e-9)


@pytest.mark.parametrize(
    "scheme,expected",
    [
        ("post", lambda b, n, r0: 2 / (math.exp(b) + n - 1)),
        ("pre", lambda b, n, r0: 2 / (r0 * (math.exp(b) + n - 1))),
        ("peri", lambda b, n, r0: 2 / (r0 * math.sqrt(math.exp(2 * b) + n - 1))),
        ("ngpt", lambda b, n, r0: 2 / math.sqrt(math.exp(2 * b) + n - 1)),
    ],
)
def test_initial_speed_from_orthonormal_tokens(scheme, expected):
    """MODEL.md §3: dρ/dt(0) from orthonormal tokens, by a forward difference."""
    n, beta, r0, h = 10, 2.5, 1.7, 1e-7
    rho, _ = equiangular.solve(scheme, n, beta, 0.0, [0.0, h], r0=r0)
    assert float(rho[1] - rho[0]) / h == pytest.approx(expected(beta, n, r0), rel=1e-5)


def test_beta_array_broadcasts():
    betas = np.array([0.5, 2.0, 6.0])
    ts = np.linspace(0, 3, 4)
    rho_all, _ = equiangular.solve("post", 8, betas, 0.0, ts)
    assert rho_all.shape == (3, 4)
    for k, b in enumerate(betas):
        np.testing.assert_allclose(rho_all[k], equiangular.solve("post", 8, b, 0.0, ts)[0], atol=1e-9)
    # higher temperature (smaller beta) collapses faster from orthonormal tokens
    assert rho_all[0, -1] > rho_all[1, -1] > rho_all[2, -1]
