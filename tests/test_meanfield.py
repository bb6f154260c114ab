"""The mean-field solver (particles.meanfield) against the closed forms of MODEL.md §12:
the linear rates about the uniform state (circle and zonal), mass, positivity, the
free energy, the von Mises–Fisher states at β = 0, the table of stationary branches,
β_*, and one-line refusals. Expected values are computed here from scipy, not by the
code under test."""

import math

import numpy as np
import pytest
from scipy import optimize, special

import particles
from particles import meanfield as mf

EPS = 1e-8  # small enough that the modes do not couple over the fitted time
TOL = dict(rtol=1e-10, atol=1e-18)
MODES = 24  # one compiled solve for the circle tests (same modes, same number of saves)
SAVES = 11


def circle_rate(k, beta, noise, usa):
    """λ_k on the circle (MODEL.md §12): k²(I_k/(β I_0) − D) (SA), k²(I_k/β − D) (USA)."""
    drift = special.iv(k, beta) / beta if usa else special.iv(k, beta) / (beta * special.iv(0, beta))
    return k * k * (drift - noise)


def funk_hecke(k, beta, d):
    """μ_k(β) = Γ(d/2)(2/β)^{d/2−1} I_{k+d/2−1}(β)."""
    return math.gamma(d / 2) * (2 / beta) ** (d / 2 - 1) * special.iv(k + d / 2 - 1, beta)


def fitted_rates(sol, ks, index):
    """log(c_k(T)/c_k(0))/T for the coefficients c[:, index(k)]."""
    c = sol.coefficients
    T = sol.ts[-1] - sol.ts[0]
    return np.array([np.log(c[-1, index(k)] / c[0, index(k)]) / T for k in ks])


@pytest.mark.parametrize("attention", ["softmax", "usa"])
def test_circle_rates_match_the_closed_form(attention):
    """From ρ0 = 1 + ε Σ_{k≤6} cos kθ each mode grows at λ_k within 1e-3 max(|λ_k|, 0.1),
    for β = 1, 2, 5 with and without noise."""
    ks = np.arange(1, 7)
    rho0 = lambda th: 1 + EPS * sum(np.cos(k * th) for k in ks)
    usa = attention == "usa"
    for beta in (1.0, 2.0, 5.0):
        for noise in (0.0, 0.3):
            exact = np.array([circle_rate(k, beta, noise, usa) for k in ks])
            T = min(1.0, 4.0 / np.max(np.abs(exact)))
            sol = mf.solve(rho0, beta=beta, t1=T, ts=np.linspace(0, T, SAVES), attention=attention, noise=noise,
                           modes=MODES, **TOL)  # fmt: skip
            got = fitted_rates(sol, ks, lambda k: k)  # a_k, the cos coefficients
            assert np.all(np.abs(got - exact) <= 1e-3 * np.maximum(np.abs(exact), 0.1)), (
                beta,
                noise,
                got - exact,
            )


def test_linear_rates_closed_form():
    for usa in (False, True):
        for d in (2, 3, 5):
            beta, noise = 2.5, 0.05
            got = mf.linear_rates(beta=beta, noise=noise, d=d, attention="usa" if usa else "softmax", kmax=6)
            k = np.arange(7)
            drift = funk_hecke(k, beta, d) / beta / (1 if usa else funk_hecke(0, beta, d))
            np.testing.assert_allclose(got, k * (k + d - 2) * (drift - noise), rtol=1e-12, atol=1e-14)
    # nGPT's speed |A|/α at the uniform state: |A| = I_1/I_0 (softmax, circle)
    got = mf.linear_rates(particles.schemes.NGPT(alpha=2.0), beta=3.0, kmax=3)
    k = np.arange(4)
    s0 = special.iv(1, 3.0) / special.iv(0, 3.0) / 2.0
    np.testing.assert_allclose(got, k * k * special.iv(k, 3.0) / (3.0 * special.iv(0, 3.0)) / s0, rtol=1e-12)


@pytest.mark.parametrize("d", [3, pytest.param(4, marks=pytest.mark.slow)])
def test_zonal_rates_match_funk_hecke(d):
    """Zonal ρ0 = 1 + ε(P_1 + P_2): modes 1, 2 grow at k(k+d−2)(μ_k/(β μ_0) − D); at β = 0
    the first harmonic's rate is (d − 1)(1/d − D): the threshold 1/d."""
    rho0 = lambda th: 1 + EPS * (np.cos(th) + np.cos(th) ** 2)
    for beta, noise in ((2.0, 0.1), (0.0, 0.1), (0.0, 0.5)):
        sol = mf.solve(
            rho0, beta=beta, t1=1.0, ts=np.linspace(0, 1, SAVES), d=d, noise=noise, modes=12, **TOL
        )
        got = fitted_rates(sol, (1, 2), lambda k: k)
        if beta == 0:
            exact = np.array([(d - 1) * (1 / d - noise), 2 * d * (0 - noise)])
        else:
            mu = [funk_hecke(k, beta, d) for k in (0, 1, 2)]
            exact = np.array([k * (k + d - 2) * (mu[k] / (beta * mu[0]) - noise) for k in (1, 2)])
        assert np.all(np.abs(got - exact) <= 1e-3 * np.maximum(np.abs(exact), 0.1)), (beta, noise, got, exact)
    assert mf.threshold(beta=0.0, d=d) == pytest.approx(1 / d, abs=1e-15)


def test_ngpt_rates():
    """nGPT divides the rate by its speed s = |A|/α at the uniform state (|A| = I_1/I_0)."""
    beta, k, T = 3.0, np.arange(1, 4), 1.0
    rho0 = lambda th: 1 + EPS * sum(np.cos(j * th) for j in k)
    drift = special.iv(k, beta) / (beta * special.iv(0, beta))
    ngpt = mf.solve(rho0, particles.schemes.NGPT(alpha=0.5), beta=beta, t1=T, ts=np.linspace(0, T, SAVES),
                    modes=MODES, **TOL)  # fmt: skip
    s0 = special.iv(1, beta) / special.iv(0, beta) / 0.5
    np.testing.assert_allclose(fitted_rates(ngpt, k, lambda j: j), k * k * drift / s0, rtol=1e-3)


@pytest.mark.slow
def test_sqrt_rates():
    """sqrt's speed √(t+1): the amplitude grows by exp(k² drift_k 2(√(T+1) − 1) − D k² T)."""
    beta, k, T = 3.0, np.arange(1, 4), 1.0
    rho0 = lambda th: 1 + EPS * sum(np.cos(j * th) for j in k)
    drift = special.iv(k, beta) / (beta * special.iv(0, beta))
    sqrt = mf.solve(rho0, "sqrt", beta=beta, t1=T, ts=np.linspace(0, T, SAVES), noise=0.1, modes=MODES, **TOL)
    exponent = k * k * drift * 2 * (math.sqrt(T + 1) - 1) - 0.1 * k * k * T
    np.testing.assert_allclose(fitted_rates(sqrt, k, lambda j: j) * T, exponent, rtol=1e-3)


def test_mass_positivity_and_free_energy():
    """USA β = 3 below D_# = 1.315: mass conserved to 1e-12, ρ > 0, F never increases,
    and the density leaves the uniform state (r grows)."""
    sol = mf.solve(lambda th: 1 + 0.1 * np.cos(th) + 0.05 * np.cos(3 * th), beta=3.0, t1=2.0, attention="usa",
                   noise=1.0, ts=np.linspace(0, 2.0, SAVES), modes=MODES)  # fmt: skip
    assert np.max(np.abs(sol.mass - 1)) < 1e-12
    assert np.min(sol.min_rho) > 0
    assert np.all(np.diff(sol.free_energy) <= 1e-12)
    assert sol.order[-1] > 1.5 * sol.order[0]  # λ_1 = I_1(3)/3 − 1 = 0.32: r × 1.9 by t = 2
    ds = sol.to_xarray()
    assert ds["rho"].dims == ("time", "angle") and ds.attrs["attention"] == "usa"
    np.testing.assert_allclose(ds["rho"].mean("angle"), 1, atol=1e-12)  # uniform grid: mean = mass


@pytest.mark.parametrize("d", [2, 3, 8])
def test_stationary_at_beta0_is_von_mises_fisher(d):
    """β = 0, D = 1/(2d): r solves r = I_{d/2}(r/D)/I_{d/2−1}(r/D) to 1e-6."""
    D = 1 / (2 * d)
    exact = optimize.brentq(lambda r: r - special.iv(d / 2, r / D) / special.iv(d / 2 - 1, r / D), 1e-3, 1 - 1e-12,
                            xtol=1e-14)  # fmt: skip
    st = mf.stationary(beta=0.0, noise=D, d=d)
    assert st.converged and st.stable
    assert abs(st.order - exact) < 1e-6


def test_stationary_reproduces_the_table():
    """MODEL.md §12: USA β = 6 at 1.1 D_#: r = 0.849 with F below the uniform state's;
    USA β = 1 and SA β = 8 at 1.05 times their thresholds: the cluster dissolves;
    SA β = 1 at 0.9 D_1: r = 0.436."""
    D_sharp = special.iv(1, 6.0) / 6.0
    kw = dict(modes=64)  # one compiled iteration
    cluster = mf.stationary(beta=6.0, noise=1.1 * D_sharp, attention="usa", **kw)
    assert cluster.converged and cluster.stable
    assert abs(cluster.order - 0.849) <= 0.005
    assert cluster.free_energy < -(special.iv(0, 6.0) - 1) / 12  # F(uniform) = −(I_0(β) − 1)/(2β)
    uniform = mf.stationary(beta=1.0, noise=1.05 * special.iv(1, 1.0), attention="usa", **kw)
    assert uniform.converged and uniform.order < 1e-3
    D1 = lambda b: special.iv(1, b) / (b * special.iv(0, b))
    assert mf.stationary(beta=8.0, noise=1.05 * D1(8.0), **kw).order < 1e-3
    assert abs(mf.stationary(beta=1.0, noise=0.9 * D1(1.0), **kw).order - 0.436) <= 0.005


def test_critical_beta():
    assert mf.critical_beta(2) == pytest.approx(2.4469, abs=1e-4)
    for d in (3, 4):
        b = mf.critical_beta(d)
        assert special.iv(d / 2 + 1, b) / special.iv(d / 2, b) == pytest.approx(1 / d, abs=1e-12)
    assert mf.critical_beta(3) == pytest.approx(1.8162, abs=1e-4)


def test_tokens_start():
    """The heat-smoothed empirical measure of tokens: mass 1, positive, r near the tokens'
    mean; in d = 3 tokens that are not zonal about e_1 are refused."""
    rng = np.random.default_rng(0)
    theta = rng.vonmises(0.0, 2.0, 4096)
    x = np.stack([np.cos(theta), np.sin(theta)], 1)
    sol = mf.solve(x, beta=1.0, t1=0.01, ts=np.linspace(0, 0.01, SAVES), modes=MODES)
    assert sol.mass[0] == pytest.approx(1, abs=1e-12) and sol.min_rho[0] > 0
    r = np.hypot(*x.mean(0))
    assert sol.order[0] == pytest.approx(r * math.exp(-27.6 / MODES**2), abs=1e-9)  # smoothed by e^{−τ}
    y = rng.normal(size=(4000, 3)) + [1.0, 0.0, 0.0]  # zonal about e_1
    sol = mf.solve(y, d=3, beta=2.0, t1=0.01, ts=np.linspace(0, 0.01, SAVES), noise=0.1, modes=12, **TOL)
    s = (y / np.linalg.norm(y, axis=1, keepdims=True))[:, 0]
    assert sol.order[0] == pytest.approx(s.mean() * math.exp(-27.6 * 2 / (12 * 13)), abs=1e-9)  # k(k+d−2) = 2
    with pytest.raises(ValueError, match="not zonal"):
        mf.solve(y[:, [1, 0, 2]], d=3, beta=1.0, t1=1.0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: mf.solve("uniform", beta=1.0, t1=1.0, noise=-0.1), "^noise=-0.1 must be non-negative$"),
        (lambda: mf.solve("uniform", beta=1.0, t1=1.0, d=1), "^d=1 must be at least 2$"),
        (
            lambda: mf.solve("uniform", beta=36.0, t1=1.0, modes=8),
            "^modes=8 is too few for beta=36.*modes >= ",
        ),
        (lambda: mf.solve(lambda th: np.cos(th), beta=1.0, t1=1.0), "^rho0 has negative values"),
        (lambda: mf.solve(lambda th: 0 * th, beta=1.0, t1=1.0), "^rho0 has zero mass"),
        (lambda: mf.solve("uniform", "pre", beta=1.0, t1=1.0), "^scheme='pre' moves the radii"),
        (lambda: mf.solve("uniform", "mix", beta=1.0, t1=2.0), "^scheme='mix' is pre after tau=1"),
        (
            lambda: mf.solve(np.ones((100, 3)) * [0, 0, 1.0], d=3, beta=1.0, t1=1.0),
            "^rho0: the tokens are not zonal",
        ),
        (
            lambda: mf.stationary("ngpt", beta=1.0, noise=0.1),
            "^scheme='ngpt': stationary states are computed",
        ),
        (lambda: mf.stationary(beta=1.0, noise=0.0), "^noise=0 has no stationary density"),
        (lambda: mf.linear_rates(beta=1.0, attention="hard"), "^attention='hard' is not one of"),
    ],
)
def test_bad_input_one_line(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def _sample(rng, n, density, bound):
    """n angles drawn from ``density`` (≤ ``bound``) by rejection."""
    out = np.empty(0)
    while out.size < n:
        th, u = rng.uniform(0, 2 * np.pi, n), rng.uniform(0, bound, n)
        out = np.concatenate([out, th[u < density(th)]])
    return out[:n]


@pytest.mark.slow
def test_particles_follow_the_pde():
    """n = 2^14 tokens (post, SA, β = 5, D = 0) drawn from 1 + 0.1 cos 3θ, and the PDE
    from their (smoothed) empirical measure: the first six Fourier coefficients stay
    within 5/√n of each other until |c_3| first reaches 0.3."""
    n = 2**14
    theta = _sample(np.random.default_rng(1), n, lambda th: 1 + 0.1 * np.cos(3 * th), 1.1)
    x0 = np.stack([np.cos(theta), np.sin(theta)], 1)
    ts = np.linspace(0.0, 4.0, 41)
    traj = particles.simulate(x0, "post", beta=5.0, t1=4.0, ts=ts, block_size=1024, rtol=1e-7, atol=1e-9)
    th = np.asarray(traj.theta)
    k = np.arange(1, 7)
    tokens = np.exp(1j * k * np.arctan2(th[..., 1], th[..., 0])[..., None]).mean(1)  # (time, k)
    K = 256
    c = mf.solve(x0, beta=5.0, t1=4.0, ts=ts, modes=K).coefficients
    pde = (c[:, 1:7] + 1j * c[:, K + 1 : K + 7]) / np.sqrt(2)  # ∫ e^{ikθ} ρ dσ
    reached = np.nonzero(np.abs(tokens[:, 2]) >= 0.3)[0]
    assert reached.size, "|c_3| never reached 0.3: the test would check nothing"
    upto = reached[0] + 1
    assert np.max(np.abs(tokens[:upto] - pde[:upto])) <= 5 / np.sqrt(n)


@pytest.mark.parametrize(("d", "beta_above"), [(2, 6.0), pytest.param(3, 5.0, marks=pytest.mark.slow)])
def test_branch_hysteresis_only_above_beta_star(d, beta_above):
    """USA, continued up in D from a cluster and back down: above β_* the cluster
    survives past D_# while the uniform state is stable there (a loop); below β_*
    (β = 1) both directions agree."""
    ratios = np.array([0.8, 1.1, 1.5])
    for beta, loop in ((beta_above, True), (1.0, False)):
        D = ratios * mf.threshold(beta=beta, d=d, attention="usa")
        ds = mf.branch(beta=beta, noise=D, d=d, attention="usa", modes=64)
        up, down = ds["order"].sel(direction="up").values, ds["order"].sel(direction="down").values
        assert bool(ds["converged"].all()) and bool(ds["stable"].all())
        assert up[0] > 0.3 and down[0] > 0.3 and up[2] < 1e-3 and down[2] < 1e-3
        assert (up[1] > 0.3 and down[1] < 1e-3) if loop else abs(up[1] - down[1]) < 1e-6


def test_step_budget_spent_is_one_line():
    with pytest.raises(particles.SimulationError, match="max_steps=3 was spent") as info:
        mf.solve(lambda th: 1 + 0.1 * np.cos(th), beta=5.0, t1=5.0, ts=np.linspace(0, 5, SAVES), modes=MODES,
                 max_steps=3)  # fmt: skip
    assert "\n" not in str(info.value)
