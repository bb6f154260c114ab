"""The "lost in the middle" functions of particles.analysis (MODEL.md §11; Duerinckx,
Geshkovski, Rossi, arXiv 2605.09213), checked against the formulas written out here
(series, closed forms, hand-made configurations, §11's published t_crit), and the
independent RK4 reference of tests/_circle_reference.py checked on its own."""

import math

import numpy as np
import pytest
from _circle_reference import circle_velocity, rk4_circle
from scipy.integrate import solve_ivp

from particles import analysis

# I_m(1) from tables (Abramowitz & Stegun, Table 9.8): the rates a_m = m² I_m(β) at β = 1
I1_AT_1 = 0.5651591039924851
I2_AT_1 = 0.1357476697670383


def vectors(angles):
    return np.stack([np.cos(angles), np.sin(angles)], axis=-1)


def window(M, mmax):
    m = np.arange(1, mmax + 1)
    return np.exp(-(np.pi**2) * m**2 / (2 * M**2))


def bessel_series(m, x, terms=60):
    """I_m(x) = Σ_k (x/2)^{2k+m}/(k!(k+m)!)."""
    return sum((x / 2) ** (2 * k + m) / (math.factorial(k) * math.factorial(k + m)) for k in range(terms))


def psi_series(c, y, terms=80):
    """ψ_c(y) = Σ_k c^{k+1} y^k/(k!(k+1)!)."""
    return sum(c ** (k + 1) * y**k / (math.factorial(k) * math.factorial(k + 1)) for k in range(terms))


def continuum_series(s, t, beta, lam, M, mmax):
    """S_t(s) of §11, term by term from the series of I_m and ψ."""
    total = 0.0
    for m, w in zip(range(1, mmax + 1), window(M, mmax)):
        a = m**2 * bessel_series(m, beta)
        y = math.log(math.expm1(lam) / math.expm1(lam * s))  # e^x − 1 without cancellation
        total += w * lam * math.exp(lam * s) / math.expm1(lam) * psi_series(a * t, y)
    return total


# ---------------------------------------------------------------- the prior


def test_prior_is_the_published_one():
    n, lam = 7, 1.3
    pi = analysis.lost_in_the_middle_prior(n, lam)
    assert pi.shape == (n, n)
    assert np.all(pi[0] == 0)  # token 0 attends to no one
    assert np.all(np.triu(pi) == 0)  # no self-attention, nothing later
    np.testing.assert_allclose(pi[1:].sum(axis=1), 1.0, rtol=0, atol=1e-15)
    for j in range(1, n):
        w = np.array([math.exp(-lam * (j - k) / n) for k in range(j)])
        np.testing.assert_allclose(pi[j, :j], w / w.sum(), rtol=1e-14)


def test_prior_limits():
    n = 5
    np.testing.assert_allclose(analysis.lost_in_the_middle_prior(n, 0.0)[3, :3], 1 / 3, rtol=1e-15)
    near = analysis.lost_in_the_middle_prior(n, 1e5)  # e^{−λ/n} underflows: all on the previous token
    far = analysis.lost_in_the_middle_prior(n, -1e5)  # all on token 0
    for j in range(1, n):
        assert near[j, j - 1] == 1.0 and far[j, 0] == 1.0
    assert np.all(np.isfinite(near)) and np.all(np.isfinite(far))
    assert np.array_equal(analysis.lost_in_the_middle_prior(1, 1.0), np.zeros((1, 1)))


# ---------------------------------------------------------------- linear response


def test_linear_response_at_zero_time_is_the_last_token():
    pi = analysis.lost_in_the_middle_prior(9, 1.0)
    np.testing.assert_array_equal(analysis.linear_response_profile(pi, 0.0, beta=1.0), np.eye(9)[-1])


def test_linear_response_on_a_chain_is_the_exponential_series():
    """Π the chain k → k+1 is nilpotent: exp(aΠ) = I + aΠ + (aΠ)²/2, row 2 = ((at)²/2, at, 1)."""
    chain = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    t = 0.7
    for m, a in ((1, I1_AT_1), (2, 4 * I2_AT_1)):
        expected = [(a * t) ** 2 / 2, a * t, 1.0]
        got = analysis.linear_response_profile(chain, t, beta=1.0, m=m)
        np.testing.assert_allclose(got, expected, rtol=1e-13)


def test_linear_response_first_order_in_t():
    n, t, beta = 12, 1e-5, 1.0
    pi = analysis.lost_in_the_middle_prior(n, 1.0)
    first_order = (np.eye(n) + I1_AT_1 * t * pi)[-1]
    got = analysis.linear_response_profile(pi, t, beta=beta)
    np.testing.assert_allclose(got, first_order, rtol=0, atol=(I1_AT_1 * t) ** 2)
    assert np.max(np.abs(got - np.eye(n)[-1])) > 100 * (I1_AT_1 * t) ** 2  # the first-order term is seen


def test_linear_response_for_several_times():
    pi = analysis.lost_in_the_middle_prior(10, 1.0)
    ts = np.array([0.0, 0.5, 2.0])
    got = analysis.linear_response_profile(pi, ts, beta=2.0, m=3)
    assert got.shape == (3, 10)
    for row, t in zip(got, ts):
        np.testing.assert_allclose(row, analysis.linear_response_profile(pi, t, beta=2.0, m=3), rtol=1e-14)


def test_linear_response_against_monte_carlo():
    """The reference RK4 from uniform starts (n = 16, 2000 runs, t = 1, β = λ = 1): the mass
    Σ_{k<n−1} c_1(k, t) the last token has taken from the others, and c_1(n−1, t), both
    within the statistical error plus a 1/n allowance of the linear response."""
    n, runs, t = 16, 2000, 1.0
    pi = analysis.lost_in_the_middle_prior(n, 1.0)
    start = np.random.default_rng(1).uniform(0, 2 * np.pi, (runs, n))
    end = rk4_circle(start, pi, 1.0, t, steps=8)
    taken = np.sum(np.cos(end[:, -1:] - start[:, :-1]), axis=-1)  # per run
    mc, se = taken.mean(), taken.std(ddof=1) / math.sqrt(runs)
    lr = analysis.linear_response_profile(pi, t, beta=1.0)
    assert abs(mc - lr[:-1].sum()) < 4 * se + 2 / n
    profile = analysis.retrieval_profile(vectors(start), vectors(end))
    assert abs(profile.mean[-1] - lr[-1]) < 4 * profile.stderr[-1] + 1 / n


# ---------------------------------------------------------------- continuum profile


@pytest.mark.parametrize(("beta", "expected"), [(1.0, 2.4575), (2.0, 0.6007), (3.0, 0.1740)])
def test_critical_time_matches_model_md(beta, expected):
    assert abs(analysis.critical_time(beta=beta, lam=1.0, M=8, mmax=20) - expected) < 1e-4


def test_critical_time_from_series():
    """t_crit = 2(1 − e^{−λ}) Σ ω_m a_m / Σ ω_m a_m², with I_m from its series."""
    beta, lam, M, mmax = 1.7, 0.6, 5.0, 12
    w = window(M, mmax)
    a = np.array([m**2 * bessel_series(m, beta) for m in range(1, mmax + 1)])
    expected = 2 * (1 - math.exp(-lam)) * np.sum(w * a) / np.sum(w * a * a)
    assert analysis.critical_time(beta=beta, lam=lam, M=M, mmax=mmax) == pytest.approx(expected, rel=1e-12)
    assert analysis.critical_time(beta=1.0, lam=0.0) == 0.0


@pytest.mark.parametrize("mmax", [1, 20])
def test_continuum_profile_against_series(mmax):
    beta, lam, M = 1.0, 1.0, 8.0
    s = np.array([1e-6, 0.05, 0.3, 0.5, 0.9, 0.999])
    ts = np.array([0.5, 2.0, 6.0])
    got = analysis.continuum_profile(s, ts, beta=beta, lam=lam, M=M, mmax=mmax)
    assert got.shape == (3, 6)
    for i, t in enumerate(ts):
        for j, sj in enumerate(s):
            assert got[i, j] == pytest.approx(continuum_series(sj, t, beta, lam, M, mmax), rel=1e-12)


def test_continuum_profile_endpoints():
    beta, lam = 2.0, 1.5
    w = window(8.0, 20)
    a = np.array([m**2 * bessel_series(m, beta) for m in range(1, 21)])
    t = 0.8
    at_one = np.sum(w * a * t) * lam * math.exp(lam) / math.expm1(lam)  # ψ_c(0) = c
    kw = dict(beta=beta, lam=lam)
    assert analysis.continuum_profile(1.0, t, **kw) == pytest.approx(at_one, rel=1e-14)
    # the series branch near y = 0 joins the Bessel form
    for s in (1 - 1e-13, 1 - 1e-9, 1 - 1e-7, 1 - 1e-5):
        assert analysis.continuum_profile(s, t, **kw) == pytest.approx(
            continuum_series(s, t, beta, lam, 8.0, 20)
        )
    assert analysis.continuum_profile(0.0, t, **kw) == np.inf  # the integrable singularity
    assert analysis.continuum_profile(1e-300, t, **kw) > analysis.continuum_profile(1e-3, t, **kw)
    np.testing.assert_array_equal(analysis.continuum_profile(np.array([0.0, 0.5, 1.0]), 0.0, **kw), 0.0)
    assert analysis.continuum_profile(0.5, 1.0, beta=1.0, lam=0.0) == pytest.approx(
        analysis.continuum_profile(0.5, 1.0, beta=1.0, lam=1e-9), rel=1e-8
    )


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_right_end_slope_changes_sign_at_critical_time(beta):
    tc = analysis.critical_time(beta=beta, lam=1.0)
    s = np.array([1 - 1e-5, 1.0])
    for factor, sign in ((0.9, 1), (1.1, -1)):
        left, right = analysis.continuum_profile(s, factor * tc, beta=beta, lam=1.0)
        assert sign * (right - left) > 0


def test_continuum_is_the_large_n_limit_of_the_linear_response():
    """n Σ_m ω_m [exp(a_m t Π)]_{n−1,k} → S_t((k + ½)/n) for s >= 1/8: the gap halves with n."""
    beta, lam, t = 1.0, 1.0, 1.0
    w = window(8.0, 20)
    gaps = []
    for n in (32, 64, 128):
        pi = analysis.lost_in_the_middle_prior(n, lam)
        discrete = n * sum(
            wm * analysis.linear_response_profile(pi, t, beta=beta, m=m) for m, wm in enumerate(w, start=1)
        )
        k = np.arange(n // 8, n - 1)
        gaps.append(
            np.max(np.abs(discrete[k] - analysis.continuum_profile((k + 0.5) / n, t, beta=beta, lam=lam)))
        )
    assert gaps[0] < 0.1
    for coarse, fine in zip(gaps, gaps[1:]):
        assert 1.6 < coarse / fine < 2.4


# ---------------------------------------------------------------- the observable


def test_retrieval_profile_of_known_shifts():
    """θ_k(0) = φ_b + kα and θ_{n−1}(t) = φ_b + γ (+ whole turns): c_m(k) = cos(m(γ − kα))
    in every run, with zero standard error."""
    runs, n, alpha, gamma = 5, 6, 0.4, 1.1
    phi = np.linspace(0.0, 5.0, runs)
    start = phi[:, None] + alpha * np.arange(n)
    end = np.random.default_rng(0).uniform(0, 2 * np.pi, (runs, n))
    end[:, -1] = phi + gamma + 2 * np.pi * np.arange(runs)
    for m in (1, 3):
        got = analysis.retrieval_profile(vectors(start), vectors(end), m=m)
        np.testing.assert_allclose(got.mean, np.cos(m * (gamma - alpha * np.arange(n))), rtol=0, atol=1e-13)
        np.testing.assert_allclose(got.stderr, 0.0, rtol=0, atol=1e-7)
    # only the directions count
    scale = np.random.default_rng(1).uniform(0.5, 3.0, (runs, n, 1))
    scaled = analysis.retrieval_profile(scale * vectors(start), 2 * vectors(end))
    np.testing.assert_allclose(scaled.mean, np.cos(gamma - alpha * np.arange(n)), rtol=0, atol=1e-13)


def test_retrieval_profile_mean_and_standard_error():
    """Two runs whose last token ends δ_1, δ_2 from token k's start: mean (cos δ_1 +
    cos δ_2)/2 and standard error |cos δ_1 − cos δ_2|/2."""
    start = np.array([[0.0, 1.0, 2.0], [0.5, 0.5, 0.5]])
    end = np.array([[9.0, 9.0, 0.3], [9.0, 9.0, 2.0]])
    got = analysis.retrieval_profile(vectors(start), vectors(end), m=2)
    d = end[:, -1:] - start
    np.testing.assert_allclose(got.mean, np.cos(2 * d).mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(got.stderr, np.abs(np.cos(2 * d[0]) - np.cos(2 * d[1])) / 2, rtol=1e-13)


def test_retrieval_profile_at_several_times():
    rng = np.random.default_rng(3)
    start = vectors(rng.uniform(0, 2 * np.pi, (4, 5)))
    saves = vectors(rng.uniform(0, 2 * np.pi, (4, 3, 5)))  # (runs, T, n, 2), as traj.theta
    got = analysis.retrieval_profile(start, saves)
    assert got.mean.shape == got.stderr.shape == (3, 5)
    for i in range(3):
        one = analysis.retrieval_profile(start, saves[:, i])
        np.testing.assert_allclose(got.mean[i], one.mean, rtol=1e-14)
        np.testing.assert_allclose(got.stderr[i], one.stderr, rtol=1e-14)


# ---------------------------------------------------------------- bad input


def one_line_error(match, fn, *args, **kwargs):
    with pytest.raises(ValueError, match=match) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)


def test_bad_input_one_line_errors():
    x = vectors(np.zeros((3, 4)))
    one_line_error("theta0 has shape .*runs, n, 2", analysis.retrieval_profile, x[0], x[0])  # no batch
    one_line_error("on the circle, d = 2, not 3", analysis.retrieval_profile, np.ones((3, 4, 3)), x)
    one_line_error("theta_t has shape .*runs = 3", analysis.retrieval_profile, x, x[:2])
    one_line_error("theta_t has shape .*n = 4", analysis.retrieval_profile, x, x[:, :3])
    one_line_error("theta_t has shape", analysis.retrieval_profile, x, x[..., :1])
    one_line_error("at least 2", analysis.retrieval_profile, x[:1], x[:1])
    one_line_error("^m=0", analysis.retrieval_profile, x, x, m=0)
    one_line_error("theta_t contains non-finite", analysis.retrieval_profile, x, np.where(x > 0.5, np.nan, x))
    one_line_error("theta0 has a zero vector", analysis.retrieval_profile, 0 * x, x)

    pi = analysis.lost_in_the_middle_prior(4, 1.0)
    lr = analysis.linear_response_profile
    one_line_error("prior has shape", lr, pi[:3], 1.0, beta=1.0)
    one_line_error("prior has shape", lr, pi[0], 1.0, beta=1.0)
    one_line_error("prior has negative", lr, pi - 0.1 * np.eye(4), 1.0, beta=1.0)
    one_line_error("prior row 2 sums to 0.5", lr, pi * np.array([[1.0], [1], [0.5], [1]]), 1.0, beta=1.0)
    one_line_error("prior contains non-finite", lr, pi * np.nan, 1.0, beta=1.0)
    one_line_error("t must be non-negative, got -1", lr, pi, np.array([0.0, -1.0]), beta=1.0)
    one_line_error("t has shape", lr, pi, np.ones((2, 2)), beta=1.0)
    one_line_error("^beta=-1", lr, pi, 1.0, beta=-1.0)
    one_line_error("^m=0", lr, pi, 1.0, beta=1.0, m=0)

    one_line_error("^n=0", analysis.lost_in_the_middle_prior, 0, 1.0)
    one_line_error("^lam=nan", analysis.lost_in_the_middle_prior, 4, float("nan"))
    cp = analysis.continuum_profile
    one_line_error("s must lie in .*got 1.5", cp, np.array([0.5, 1.5]), 1.0, beta=1.0, lam=1.0)
    one_line_error("t must be non-negative", cp, 0.5, -1.0, beta=1.0, lam=1.0)
    one_line_error("^M=0", cp, 0.5, 1.0, beta=1.0, lam=1.0, M=0.0)
    one_line_error("^mmax=0", cp, 0.5, 1.0, beta=1.0, lam=1.0, mmax=0)
    one_line_error("^lam=inf", cp, 0.5, 1.0, beta=1.0, lam=float("inf"))
    one_line_error("^beta=0", analysis.critical_time, beta=0.0, lam=1.0)


# ---------------------------------------------------------------- the reference RK4


def test_reference_velocity_by_hand():
    """θ̇_j = β Σ_k π_jk e^{β cos(θ_k − θ_j)} sin(θ_k − θ_j), written as a double loop."""
    rng = np.random.default_rng(4)
    n, beta = 5, 1.3
    theta = rng.uniform(0, 2 * np.pi, n)
    pi = analysis.lost_in_the_middle_prior(n, 0.7)
    by_hand = [
        beta
        * sum(
            pi[j, k] * math.exp(beta * math.cos(theta[k] - theta[j])) * math.sin(theta[k] - theta[j])
            for k in range(n)
        )
        for j in range(n)
    ]
    np.testing.assert_allclose(circle_velocity(theta, pi, beta), by_hand, rtol=1e-13, atol=1e-15)
    # token 1 attends only to token 0 and moves towards it
    assert np.sign(circle_velocity(np.array([0.3, 0.0]), pi[:2, :2], beta)[1]) == 1


def test_reference_rk4_token_zero_still_and_batched():
    pi = analysis.lost_in_the_middle_prior(6, 1.0)
    start = np.random.default_rng(5).uniform(0, 2 * np.pi, (3, 6))
    end = rk4_circle(start, pi, 1.0, 2.0, steps=20)
    np.testing.assert_array_equal(end[:, 0], start[:, 0])
    assert np.max(np.abs(end[:, 1:] - start[:, 1:])) > 0.05
    for b in range(3):
        np.testing.assert_allclose(end[b], rk4_circle(start[b], pi, 1.0, 2.0, steps=20), rtol=1e-14)


def test_reference_rk4_is_fourth_order():
    """Halving the step divides the error by ~2⁴ = 16 (Richardson differences)."""
    pi = analysis.lost_in_the_middle_prior(6, 1.0)
    start = np.random.default_rng(6).uniform(0, 2 * np.pi, 6)
    runs = [rk4_circle(start, pi, 1.0, 1.0, steps) for steps in (16, 32, 64, 128)]
    errors = [np.max(np.abs(a - b)) for a, b in zip(runs, runs[1:])]
    for coarse, fine in zip(errors, errors[1:]):
        assert 14 < coarse / fine < 19


def test_reference_rk4_against_scipy():
    pi = analysis.lost_in_the_middle_prior(6, 1.0)
    start = np.random.default_rng(7).uniform(0, 2 * np.pi, 6)
    exact = solve_ivp(
        lambda t, y: circle_velocity(y, pi, 1.5), (0.0, 3.0), start, method="DOP853", rtol=1e-13, atol=1e-13
    ).y[:, -1]
    np.testing.assert_allclose(rk4_circle(start, pi, 1.5, 3.0, steps=1000), exact, rtol=0, atol=1e-9)
