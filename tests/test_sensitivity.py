"""particles.sensitivity: Lyapunov exponents against the closed forms at consensus
(MODEL.md §9, derived per scheme below) and against central differences of the flow
map; gradients through a Pre-LN transformer against finite differences; Hessian
spectra against the dense Hessian of a transformer written out in jax.numpy from the
textbook formulas (not from the package); the one-line errors."""

import math

import jax
import jax.numpy as jnp
import jax.scipy.special
import numpy as np
import pytest
from helpers import random_layer_stack

import particles
from particles import sensitivity as S

TIGHT = dict(rtol=1e-11, atol=1e-13)


def consensus(n, d, r0=1.0, seed=0):
    """n copies of one random direction, at radius r0."""
    e = np.random.default_rng(seed).normal(size=d)
    return np.tile(r0 * e / np.linalg.norm(e), (n, 1))


def spectrum(*parts):
    """Sorted (descending) exponents from (value, multiplicity) pairs."""
    return np.sort(np.concatenate([np.full(m, v, float) for v, m in parts]))[::-1]


# -- consensus: the linearisation in closed form ----------------------------------------
# At consensus θ_i = e the weights are uniform to first order (the logits change at
# second order), A_i = e + ε̄, so P_θ A_i = ε̄ − ε_i: dε_i/dt = (ε̄ − ε_i)/s with the
# scheme's speed s at |A| = 1. Sphere-bound: exponents 0 (d − 1 common rotations) and
# −(1/T)∫dt/s ((n − 1)(d − 1)). Pre and peri (dx/dt = A or A/|A|, radii r0 + t): the
# common tangent part grows by r(T)/r0, deviations and radii are constant in ambient
# coordinates. Mix: post up to τ (deviations × e^{−τ}), then pre from radius r0.

N, D = 3, 4


@pytest.mark.parametrize("beta", [0.5, 2.0])
def test_post_consensus_exponents_are_zero_and_minus_one(beta):
    res = S.lyapunov(consensus(N, D), "post", beta=beta, t1=2.0, ts=[1.0], **TIGHT)
    assert res.method == "jacobian" and res.exponents.shape == (N * (D - 1),)
    np.testing.assert_allclose(res.exponents, spectrum((0, D - 1), (-1, (N - 1) * (D - 1))), atol=1e-6)


@pytest.mark.parametrize(
    "scheme, options, T, rate",
    [
        ("post", dict(attention="usa", beta=1.3), 1.5, math.exp(1.3)),
        ("ngpt", dict(alpha=0.7, beta=2.0), 2.0, 0.7),
        ("sqrt", dict(beta=1.0), 3.0, 2 * (math.sqrt(4.0) - 1) / 3.0),
    ],
)
def test_sphere_bound_consensus_rates(scheme, options, T, rate):
    res = S.lyapunov(consensus(N, D, seed=1), scheme, t1=T, ts=[T / 2], **options, **TIGHT)
    np.testing.assert_allclose(res.exponents, spectrum((0, D - 1), (-rate, (N - 1) * (D - 1))), atol=1e-6)


@pytest.mark.parametrize("scheme", ["pre", "peri"])
@pytest.mark.parametrize("r0", [1.0, 1.7])
def test_pre_and_peri_consensus_grow_the_common_rotation(scheme, r0):
    T = 2.0
    res = S.lyapunov(consensus(N, D, r0, seed=2), scheme, beta=1.5, t1=T, ts=[1.0], **TIGHT)
    assert res.exponents.shape == (N * D,)
    want = spectrum((math.log1p(T / r0) / T, D - 1), (0, (N - 1) * (D - 1) + N))
    np.testing.assert_allclose(res.exponents, want, atol=1e-6)


def test_mix_consensus_is_post_then_pre():
    T, tau, r0 = 2.0, 0.5, 1.3
    res = S.lyapunov(consensus(N, D, r0, seed=3), "mix", tau=tau, beta=1.0, t1=T, ts=[1.0], **TIGHT)
    want = spectrum((math.log1p((T - tau) / r0) / T, D - 1), (-tau / T, (N - 1) * (D - 1)), (0, N))
    np.testing.assert_allclose(res.exponents, want, atol=1e-6)


def test_layers_at_consensus():
    """Post layer N(x + hA(x)): deviations × 1/(1 + h) per layer, exponent −log(1 + h)/h;
    pre layers: the common rotation × (r0 + (l + 1)h)/(r0 + l h), telescoping to the ODE's."""
    L, T = 4, 2.0
    h = T / L
    post = S.lyapunov(consensus(N, D), "post", beta=1.0, t1=T, layers=L)
    want = spectrum((0, D - 1), (-math.log1p(h) / h, (N - 1) * (D - 1)))
    np.testing.assert_allclose(post.exponents, want, atol=1e-10)
    assert len(post.ts) == L + 1
    pre = S.lyapunov(consensus(N, D, 1.4), "pre", beta=1.0, t1=T, layers=L)
    want = spectrum((math.log1p(T / 1.4) / T, D - 1), (0, (N - 1) * (D - 1) + N))
    np.testing.assert_allclose(pre.exponents, want, atol=1e-10)


def test_local_exponents_at_consensus():
    """The symmetrised linearisation of the field: post 0 and −1, sqrt −1/√(t + 1)."""
    ts = np.array([0.0, 1.0, 3.0])
    post = S.lyapunov(consensus(N, D), "post", beta=1.0, t1=3.0, ts=ts, local=True, **TIGHT)
    want = spectrum((0, D - 1), (-1, (N - 1) * (D - 1)))
    np.testing.assert_allclose(post.local, np.broadcast_to(want, (3, len(want))), atol=1e-9)
    sq = S.lyapunov(consensus(N, D), "sqrt", beta=1.0, t1=3.0, ts=ts, local=True, k=D, **TIGHT)
    assert sq.local.shape == (3, D)
    np.testing.assert_allclose(sq.local[:, -1], -1 / np.sqrt(ts + 1), atol=1e-9)


def test_qr_at_consensus_sums_to_the_log_determinant():
    """Benettin with the whole frame: Σλ_i = log|det DΦ|/T exactly, whatever the frame."""
    res = S.lyapunov(consensus(N, D), "post", beta=1.0, t1=2.0, method="qr", **TIGHT)
    assert res.method == "qr"
    np.testing.assert_allclose(np.sum(res.exponents), -(N - 1) * (D - 1), atol=1e-8)


@pytest.mark.slow
def test_qr_frame_stays_orthonormal_over_a_long_horizon():
    """Once tokens cluster, the frame's directions decay relative to each other, and a
    Runge–Kutta step drifts off QᵀQ = I, which then grows at that rate unless damped
    (_continuous_qr_field): undamped, this solve (n = 8, d = 16, β = 4, T = 30) ran
    out of steps at t ≈ 21 with the drift at 2. Damped, it finishes, and Benettin's
    top exponent stays below the exact finite-time one (σ_1(DΦ Q) ≤ σ_1(DΦ))."""
    x0 = np.asarray(particles.init.uniform_sphere(0, 8, 16))
    kw = dict(beta=4.0, t1=30.0, k=8, max_steps=4000)
    qr = S.lyapunov(x0, "post", method="qr", **kw).exponents
    exact = S.lyapunov(x0, "post", method="jacobian", **kw).exponents
    assert np.all(np.isfinite(qr)) and qr[0] <= exact[0] + 1e-9


# -- away from consensus: central differences of the flow map ---------------------------


def fd_exponents(x0, scheme, T, options, eps=1e-5):
    """log σ/T of the central-difference Jacobian of x0 ↦ x(T) from simulate, on the
    tangent space (the spheres' tangent basis for sphere-bound schemes)."""
    sphere = particles.get_scheme(scheme, **{k: options[k] for k in ("alpha",) if k in options}).sphere_bound
    opts = {k: v for k, v in options.items()}
    if sphere:
        x0 = x0 / np.linalg.norm(x0, axis=-1, keepdims=True)
        basis = np.asarray(S.tangent_basis(x0))  # (n, d−1, d)
        dirs = [
            np.eye(len(x0))[i][:, None] * basis[i, j] for i in range(len(x0)) for j in range(basis.shape[1])
        ]
    else:
        dirs = [np.eye(x0.size)[i].reshape(x0.shape) for i in range(x0.size)]

    def flow(x):
        return np.asarray(particles.simulate(x, scheme, t1=T, ts=[0.0, T], **opts, **TIGHT).x[-1]).ravel()

    J = np.stack([(flow(x0 + eps * u) - flow(x0 - eps * u)) / (2 * eps) for u in dirs])
    return np.log(np.linalg.svd(J, compute_uv=False)) / T


@pytest.mark.parametrize(
    "scheme, options",
    [
        ("post", {}),
        ("pre", {}),
        ("peri", {}),
        ("ngpt", {"alpha": 0.8}),
        ("sqrt", {}),
        ("post", {"attention": "usa"}),
    ],
)
def test_random_start_matches_central_differences(scheme, options):
    n, d, T = 3, 3, 1.0
    rng = np.random.default_rng(4)
    x0 = rng.normal(size=(n, d))
    Q, K, V = (np.asarray(w) for w in particles.random_weights(5, d))
    opts = dict(beta=1.2, Q=Q, K=K, V=V, **options)
    res = S.lyapunov(x0, scheme, t1=T, ts=[0.5], **opts, **TIGHT)
    np.testing.assert_allclose(res.exponents, fd_exponents(x0, scheme, T, opts), atol=1e-5)


def test_layers_random_start_matches_central_differences():
    n, d, L = 3, 3, 3
    x0 = np.random.default_rng(6).normal(size=(n, d))
    w = particles.random_transformer(7, d, layers=L, heads=2, mlp_width=5)
    opts = dict(
        beta=0.9, layers=L, norm="layernorm", **{k: np.asarray(v) for k, v in w.items() if k != "mlp"}
    )
    opts["mlp"] = w["mlp"]
    res = S.lyapunov(x0, "pre", t1=float(L), **opts)

    def flow(x):
        return np.asarray(particles.simulate(x, "pre", t1=float(L), **opts).x[-1]).ravel()

    eps = 1e-6
    J = np.stack(
        [
            (flow(x0 + eps * u.reshape(n, d)) - flow(x0 - eps * u.reshape(n, d))) / (2 * eps)
            for u in np.eye(n * d)
        ]
    )
    np.testing.assert_allclose(res.exponents, np.log(np.linalg.svd(J, compute_uv=False)) / L, atol=1e-6)


@pytest.mark.parametrize("scheme", ["post", "pre"])
def test_span_reduction_is_the_ambient_computation(scheme):
    """n < d, identity weights: the span's block and the n × n map repeated d − n times
    give the spectrum of the solve in R^{n×d}."""
    x0 = np.random.default_rng(14).normal(size=(3, 6))
    kw = dict(beta=1.5, t1=2.0, **TIGHT)
    span = S.lyapunov(x0, scheme, **kw)
    ambient = S.lyapunov(x0, scheme, reduce_span=False, **kw)
    np.testing.assert_allclose(span.exponents, ambient.exponents, atol=1e-9)
    np.testing.assert_allclose(span.ts, [0.0, 1.0, 2.0])  # re-orthonormalised once per unit time


def test_batch_over_x0_and_beta_is_each_single_run():
    rng = np.random.default_rng(8)
    x0 = rng.normal(size=(2, 3, 3))
    beta = np.array([0.5, 2.0])
    batch = S.lyapunov(x0, "post", beta=beta, t1=1.0, k=2, ts=[0.5], **TIGHT)
    assert batch.exponents.shape == (2, 2)
    for i in range(2):
        one = S.lyapunov(x0[i], "post", beta=beta[i], t1=1.0, k=2, ts=[0.5], **TIGHT)
        np.testing.assert_allclose(batch.exponents[i], one.exponents, atol=1e-9)


@pytest.mark.slow
def test_qr_top_exponent_converges_to_the_jacobian_one():
    """Benettin's top exponent approaches the finite-time one as T grows (offset O(1/T))."""
    x0 = np.random.default_rng(9).normal(size=(3, 3))
    kw = dict(beta=1.0, **TIGHT)
    gaps = []
    for T in (2.0, 8.0):
        jac = S.lyapunov(x0, "pre", t1=T, k=1, method="jacobian", ts=np.arange(1.0, T), **kw)
        qr = S.lyapunov(x0, "pre", t1=T, k=1, method="qr", ts=np.arange(1.0, T), **kw)
        assert qr.exponents[0] <= jac.exponents[0] + 1e-9  # σ_1(DΦ Q) ≤ σ_1(DΦ)
        gaps.append(jac.exponents[0] - qr.exponents[0])
    assert gaps[1] < gaps[0] / 2


def test_lyapunov_to_xarray():
    res = S.lyapunov(consensus(N, D), "post", beta=1.0, t1=1.0, ts=[0.5], k=2, local=True, **TIGHT)
    ds = res.to_xarray()
    assert ds["exponents"].dims == ("index",) and ds["local"].dims == ("time", "index")
    np.testing.assert_allclose(ds["exponents"].values, res.exponents)


# -- gradients: a Pre-LN transformer with LayerNorm, heads and a GELU MLP ---------------


@pytest.fixture
def transformer():
    w = random_layer_stack(L=3, heads=2, n=4, d=5, m=8, gain_spread=0.3, bias_spread=0.2)
    x0 = w.pop("x0")
    return dict(L=3, x0=x0, kw=dict(beta=0.7, norm="layernorm", **w))


def weighted(x):
    return jnp.sum(jnp.sin(x) * jnp.arange(1.0, x.size + 1).reshape(x.shape))


def _fd(f, x, eps=1e-6):
    out = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[idx] = eps
        out[idx] = (f(x + e) - f(x - e)) / (2 * eps)
    return out


def _relerr(a, b):
    return np.max(np.abs(np.asarray(a) - b)) / np.max(np.abs(b))


def test_layer_gradients_match_finite_differences(transformer):
    T = transformer
    L, kw = T["L"], T["kw"]
    g = S.layer_gradients(T["x0"], "pre", loss=weighted, t1=float(L), layers=L, **kw)
    assert g.shape == (L + 1, *T["x0"].shape)
    traj = particles.simulate(T["x0"], "pre", t1=float(L), layers=L, **kw)
    xs = np.asarray(traj.x)
    np.testing.assert_allclose(g[-1], jax.grad(weighted)(jnp.asarray(xs[-1])), rtol=1e-12)
    for l in range(L):  # ∂ℓ/∂x_l: perturb the input of layer l + 1, run layers l + 1..L

        def rest(x, l=l):
            sliced = {k: v[l:] if k in ("Q", "K", "V", "gamma", "bias") else v for k, v in kw.items()}
            sliced["mlp"] = tuple(w[l:] for w in kw["mlp"])
            out = particles.simulate(x, "pre", t0=float(l), t1=float(L), layers=L - l, **sliced)
            return float(weighted(jnp.asarray(out.x[-1])))

        assert _relerr(g[l], _fd(rest, xs[l])) < 1e-6, l


def test_weight_gradients_match_finite_differences(transformer):
    T = transformer
    L, kw = T["L"], T["kw"]
    wg = S.weight_gradients(T["x0"], "pre", loss=weighted, t1=float(L), layers=L, **kw)
    assert set(wg.norms) == {"Q", "K", "V", "mlp", "gamma", "bias"}
    assert wg.norms["V"].shape == (L,)

    def loss_with(name, index, value):
        opts = dict(kw, mlp=list(kw["mlp"]))
        if name in ("W1", "b1", "W2", "b2"):
            i = ("W1", "b1", "W2", "b2").index(name)
            opts["mlp"][i] = opts["mlp"][i].copy()
            opts["mlp"][i][index] = value
        else:
            opts[name] = opts[name].copy()
            opts[name][index] = value
        opts["mlp"] = tuple(opts["mlp"])
        return float(
            weighted(jnp.asarray(particles.simulate(T["x0"], "pre", t1=float(L), layers=L, **opts).x[-1]))
        )

    original = {"W1": kw["mlp"][0], "b1": kw["mlp"][1], "W2": kw["mlp"][2], "b2": kw["mlp"][3], **kw}
    for name, index in [("V", (1, 0, 2, 3)), ("Q", (2, 1, 0, 4)), ("gamma", (0, 3)), ("bias", (2, 1)),
                        ("W1", (1, 5, 2)), ("b2", (0, 4))]:  # fmt: skip
        w0, eps = original[name][index], 1e-6
        fd = (loss_with(name, index, w0 + eps) - loss_with(name, index, w0 - eps)) / (2 * eps)
        assert abs(float(wg.grads[name][index]) - fd) < 1e-6 * max(1.0, abs(fd)), name
    layer_norm = np.sqrt(sum(np.sum(np.asarray(wg.grads[n][1]) ** 2) for n in ("W1", "b1", "W2", "b2")))
    np.testing.assert_allclose(wg.norms["mlp"][1], layer_norm, rtol=1e-12)


@pytest.mark.slow
def test_ode_gradients_match_finite_differences():
    x0 = np.random.default_rng(10).normal(size=(3, 4))
    kw = dict(beta=1.1, **TIGHT)
    g = S.gradients(x0, "pre", loss=weighted, t1=1.0, ts=[0.0, 0.5, 1.0], **kw)
    assert g.shape == (3, 3, 4)
    traj = particles.simulate(x0, "pre", t1=1.0, ts=[0.0, 0.5, 1.0], **kw)
    np.testing.assert_allclose(g[-1], jax.grad(weighted)(jnp.asarray(traj.x[-1])), rtol=1e-12)

    def from_time(t):
        return lambda x: float(
            weighted(jnp.asarray(particles.simulate(x, "pre", t0=t, t1=1.0, ts=[t, 1.0], **kw).x[-1]))
        )

    assert _relerr(g[0], _fd(from_time(0.0), x0, 1e-5)) < 1e-6
    assert _relerr(g[1], _fd(from_time(0.5), np.asarray(traj.x[1]), 1e-5)) < 1e-6


# -- Hessians: a transformer written out in jax.numpy -----------------------------------


def jnp_layernorm(y, gamma, bias, eps=1e-5):
    mu = y.mean(-1, keepdims=True)
    var = ((y - mu) ** 2).mean(-1, keepdims=True)
    return gamma * (y - mu) / jnp.sqrt(var + eps) + bias


def jnp_pre_ln(x, beta, Q, K, V, mlp, gamma, bias):
    """x + A(LN x), then x + F(LN x), per layer (h = 1), from MODEL.md §7."""
    for l in range(Q.shape[0]):
        y = jnp_layernorm(x, gamma[l], bias[l])
        att = 0
        for q, k, v in zip(Q[l], K[l], V[l]):
            w = jax.nn.softmax(beta * (y @ q.T) @ (y @ k.T).T, axis=-1)
            att = att + w @ (y @ v.T)
        x = x + att
        y = jnp_layernorm(x, gamma[l], bias[l])
        W1, b1, W2, b2 = (w[l] for w in mlp)
        u = y @ W1.T + b1
        x = x + (0.5 * u * (1 + jax.scipy.special.erf(u / math.sqrt(2)))) @ W2.T + b2
    return x


@pytest.mark.slow
def test_hessian_spectrum_matches_the_dense_hessian(transformer):
    T = transformer
    L, kw = T["L"], T["kw"]
    args = {k: jnp.asarray(v) for k, v in kw.items() if k in ("Q", "K", "V", "gamma", "bias")}
    mlp = tuple(jnp.asarray(w) for w in kw["mlp"])
    x0 = jnp.asarray(T["x0"])

    def loss_of_v1(v1):  # the value weights of layer 1
        V = args["V"].at[1].set(v1)
        return weighted(jnp_pre_ln(x0, kw["beta"], args["Q"], args["K"], V, mlp, args["gamma"], args["bias"]))

    v1 = args["V"][1]
    dense = np.linalg.eigvalsh(np.asarray(jax.hessian(loss_of_v1)(v1)).reshape(v1.size, v1.size))[::-1]
    res = S.hessian_spectrum(
        T["x0"], "pre", loss=weighted, wrt="V", layer=1, k=4, method="lanczos", t1=float(L), layers=L, **kw
    )
    assert res.method == "lanczos" and res.eigenvalues.shape == (4,)
    np.testing.assert_allclose(res.eigenvalues, dense[:4], rtol=1e-8)

    def loss_of_x(x):
        return weighted(
            jnp_pre_ln(x, kw["beta"], args["Q"], args["K"], args["V"], mlp, args["gamma"], args["bias"])
        )

    dense_x = np.linalg.eigvalsh(np.asarray(jax.hessian(loss_of_x)(x0)).reshape(x0.size, x0.size))[::-1]
    res = S.hessian_spectrum(
        T["x0"], "pre", loss=weighted, wrt="x0", k=3, vectors=True, iters=x0.size, t1=float(L), layers=L, **kw
    )
    np.testing.assert_allclose(res.eigenvalues, dense_x[:3], rtol=1e-8)
    H = np.asarray(jax.hessian(loss_of_x)(x0)).reshape(x0.size, x0.size)
    v = np.asarray(res.vectors[0])
    np.testing.assert_allclose(H @ v, res.eigenvalues[0] * v, atol=1e-6 * abs(res.eigenvalues[0]))


def test_hessian_of_layers_lanczos_equals_dense():
    """The default run's Hessian check (1 s): two post layers; the ODE mode's below is slow."""
    x0 = np.random.default_rng(11).normal(size=(3, 3))
    kw = dict(beta=1.0, t1=2.0, layers=2, wrt="x0", k=2, loss=weighted)
    dense = S.hessian_spectrum(x0, "post", method="dense", **kw)
    lanczos = S.hessian_spectrum(x0, "post", method="lanczos", iters=9, **kw)
    np.testing.assert_allclose(lanczos.eigenvalues, dense.eigenvalues, rtol=1e-8)


@pytest.mark.slow  # 19 s alone: forward-over-reverse through diffeqsolve, compiled twice
def test_hessian_in_the_ode_mode_lanczos_equals_dense():
    x0 = np.random.default_rng(11).normal(size=(3, 3))
    kw = dict(beta=1.0, t1=1.0, wrt="x0", k=2, loss=weighted, step_size=0.1, max_steps=16)
    dense = S.hessian_spectrum(x0, "post", method="dense", **kw)
    lanczos = S.hessian_spectrum(x0, "post", method="lanczos", iters=9, **kw)
    np.testing.assert_allclose(lanczos.eigenvalues, dense.eigenvalues, rtol=1e-8)


def test_lanczos_finds_repeated_eigenvalues():
    A = np.diag([5.0, 5.0, 3.0, 1.0, 1.0, -2.0])
    vals, _ = S.lanczos(lambda v: jnp.asarray(A) @ v, 6, 4, iters=6, dtype=jnp.float64)
    np.testing.assert_allclose(vals, [5, 5, 3, 1], atol=1e-10)


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x: S.lyapunov(x, "post", beta=1.0, t1=1.0, k=0), "k=0 must be at least 1"),
        (lambda x: S.lyapunov(x, "post", beta=1.0, t1=1.0, k=7), "k=7 is out of range.*6 directions"),
        (lambda x: S.lyapunov(x, "post", beta=1.0, t1=1.0, method="svd"), "method='svd' is not one of"),
        (lambda x: S.lyapunov(x, "post", beta=1.0, t1=1.0, layers=2, local=True), "local=True applies"),
        (lambda x: S.lyapunov(x, "post", beta=1.0, t1=1.0, noise=0.1), "noise > 0"),
        (
            lambda x: S.layer_gradients(x, "pre", loss=lambda y: y, beta=1.0, t1=1.0, layers=2),
            "loss must return a scalar",
        ),
        (
            lambda x: S.layer_gradients(x, "pre", loss=3.0, beta=1.0, t1=1.0, layers=2),
            "loss=3.0 must be a function",
        ),
        (lambda x: S.gradients(x, "pre", loss=weighted, beta=1.0, t1=1.0, layers=2), "use layer_gradients"),
        (
            lambda x: S.hessian_spectrum(x, "pre", loss=weighted, wrt="W", k=1, beta=1.0, t1=1.0),
            "wrt='W' is not one of",
        ),
        (
            lambda x: S.hessian_spectrum(x, "pre", loss=weighted, wrt="mlp", k=1, beta=1.0, t1=1.0),
            "wrt='mlp'.*no such",
        ),
        (
            lambda x: S.hessian_spectrum(x, "pre", loss=weighted, wrt="x0", k=10, beta=1.0, t1=1.0),
            "k=10 is out of range",
        ),
        (
            lambda x: S.hessian_spectrum(x, "pre", loss=weighted, wrt="x0", k=1, layer=0, beta=1.0, t1=1.0),
            "wrt='x0' has none",
        ),
    ],
)
def test_errors_are_one_line(call, match):
    x0 = np.random.default_rng(12).normal(size=(2, 4))  # post: 2 × 3 = 6 tangent directions
    with pytest.raises(ValueError, match=match) as info:
        call(x0)
    assert "\n" not in str(info.value)


def test_layer_out_of_range_is_refused():
    x0 = np.random.default_rng(13).normal(size=(2, 3))
    w = particles.random_weights(0, 3, layers=2)
    with pytest.raises(ValueError, match="layer=2 is out of range"):
        S.hessian_spectrum(
            x0,
            "pre",
            loss=weighted,
            wrt="V",
            k=1,
            layer=2,
            beta=1.0,
            t1=2.0,
            layers=2,
            Q=w[0],
            K=w[1],
            V=w[2],
        )
