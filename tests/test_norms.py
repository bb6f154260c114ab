"""Discrete transformer layers (particles/_norms.py, _mlp.py, the schemes' layer maps)
against a plain numpy transformer block written here from MODEL.md §7, their first-order
consistency with the flows of §2, and the ODE limits of LayerNorm layers."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import erf

import particles
from particles import MLP, Norm, ode_limit_exists
from particles.schemes import AbstractAmbientScheme, AbstractSpeedScheme

# ---- the textbook block in numpy ---------------------------------------------------


def np_layernorm(x, gamma, bias, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)  # biased, as PyTorch
    return gamma * (x - mu) / np.sqrt(var + eps) + bias


def np_rmsnorm(x, gamma, eps=1e-5):
    return gamma * x / np.sqrt((x**2).mean(-1, keepdims=True) + eps)


def np_projection(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def np_gelu(u):
    return 0.5 * u * (1.0 + erf(u / math.sqrt(2.0)))


def np_softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def np_attention(y, beta, Q, K, V):
    """Σ_h Σ_j softmax_j(β⟨Q_h y_i, K_h y_j⟩) V_h y_j, tokens as rows of y."""
    out = np.zeros_like(y)
    for Qh, Kh, Vh in zip(Q, K, V):
        w = np_softmax(beta * (y @ Qh.T) @ (y @ Kh.T).T)
        out += w @ (y @ Vh.T)
    return out


def np_mlp(y, W1, b1, W2, b2, act="gelu"):
    u = y @ W1.T + b1
    u = np_gelu(u) if act == "gelu" else np.maximum(u, 0.0)
    return u @ W2.T + b2


def np_block(x, h, placement, N, attn, ffn):
    for f in (attn, ffn):
        if placement == "pre":
            x = x + h * f(N(x))
        elif placement == "post":
            x = N(x + h * f(x))
        elif placement == "peri":
            x = x + h * N(f(N(x)))
    return x


def np_centred_tangent(x, v, b0=0.0):
    """P^c_x v: drop the mean of v, then its component along the centred x − b₀1."""
    pv = v - v.mean(-1, keepdims=True)
    z = np_projection(x - b0)
    return pv - (z * pv).sum(-1, keepdims=True) * z


def np_sphere_tangent(x, v):
    z = np_projection(x)
    return v - (z * v).sum(-1, keepdims=True) * z


def rk4(f, x, T, steps):
    dt = T / steps
    for k in range(steps):
        t = k * dt
        k1 = f(t, x)
        k2 = f(t + dt / 2, x + dt / 2 * k1)
        k3 = f(t + dt / 2, x + dt / 2 * k2)
        k4 = f(t + dt, x + dt * k3)
        x = x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


# ---- fixtures ------------------------------------------------------------------------

N_TOK, D, HEADS, WIDTH = 5, 4, 3, 7


@pytest.fixture(scope="module")
def block():
    rng = np.random.default_rng(0)
    w = lambda *s, scale=1.0: scale * rng.standard_normal(s)
    return dict(
        x=w(N_TOK, D),
        beta=0.7,
        Q=w(HEADS, D, D, scale=D**-0.5),
        K=w(HEADS, D, D, scale=D**-0.5),
        V=w(HEADS, D, D, scale=D**-0.5),
        W1=w(WIDTH, D, scale=D**-0.5),
        b1=w(WIDTH, scale=0.1),
        W2=w(D, WIDTH, scale=WIDTH**-0.5),
        b2=w(D, scale=0.1),
        gamma=1 + w(D, scale=0.2),
        bias=w(D, scale=0.2),
    )


def package_parts(p, act="gelu"):
    att = particles.Attention(p["beta"], p["Q"][None], p["K"][None], p["V"][None])
    return (lambda y: att(0.0, y)), MLP(p["W1"], p["W2"], p["b1"], p["b2"], activation=act)


def numpy_parts(p, act="gelu"):
    attn = lambda y: np_attention(y, p["beta"], p["Q"], p["K"], p["V"])
    return attn, lambda y: np_mlp(y, p["W1"], p["b1"], p["W2"], p["b2"], act)


# ---- the textbook block --------------------------------------------------------------


@pytest.mark.parametrize(
    "scheme, kind, act, h",
    [
        ("pre", "layernorm", "gelu", 1.0),
        ("post", "layernorm", "gelu", 1.0),
        ("peri", "layernorm", "gelu", 0.3),
        ("pre", "rmsnorm", "gelu", 1.0),
        ("post", "rmsnorm", "relu", 0.5),
        ("pre", "projection", "gelu", 0.5),
    ],
)
def test_layer_matches_numpy_block(block, scheme, kind, act, h):
    p = block
    if kind == "layernorm":
        norm, N = (
            Norm(kind, gamma=p["gamma"], bias=p["bias"]),
            lambda y: np_layernorm(y, p["gamma"], p["bias"]),
        )
    elif kind == "rmsnorm":
        norm, N = Norm(kind, gamma=p["gamma"]), lambda y: np_rmsnorm(y, p["gamma"])
    else:
        norm, N = None, np_projection
    attend, mlp = package_parts(p, act)
    got = particles.get_scheme(scheme).layer(0.0, jnp.asarray(p["x"]), h, attend, mlp, norm)
    want = np_block(p["x"], h, scheme, N, *numpy_parts(p, act))
    np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=1e-10)


def test_norm_functions_match_numpy(block):
    x, g, b = block["x"], block["gamma"], block["bias"]
    for norm, want in [
        (Norm("layernorm", gamma=g, bias=b, eps=1e-3), np_layernorm(x, g, b, 1e-3)),
        (Norm("layernorm"), np_layernorm(x, 1.0, 0.0)),
        (Norm("rmsnorm", gamma=g), np_rmsnorm(x, g)),
        (Norm(), np_projection(x)),
    ]:
        np.testing.assert_allclose(np.asarray(norm(jnp.asarray(x))), want, rtol=0, atol=1e-12)
    # batch axes broadcast, γ of one layer given with its layer axis
    xb = np.stack([x, 2 * x + 1])
    got = Norm("layernorm", gamma=g[None], bias=b[None])(jnp.asarray(xb))
    np.testing.assert_allclose(np.asarray(got), np_layernorm(xb, g, b), rtol=0, atol=1e-12)


def test_layer_stack_in_scan_with_per_layer_parameters():
    """The integrator's use: lax.scan over layers, Q/K/V, γ, b and the MLP of layer l."""
    L, n, d, m, h, beta = 3, 4, 5, 6, 0.4, 0.9
    key = jax.random.key(3)
    kw, km, kg, kb, kx = jax.random.split(key, 5)
    Q, K, V = particles.random_weights(kw, d, heads=2, layers=L)
    mlp = particles.random_mlp(km, d, m, layers=L, bias_std=0.1)
    gamma = 1 + 0.2 * jax.random.normal(kg, (L, d))
    bias = 0.2 * jax.random.normal(kb, (L, d))
    norm = Norm("layernorm", gamma=gamma, bias=bias).validate(d, layers=L)
    mlp.validate(d, layers=L)
    att = particles.Attention(beta, Q, K, V)
    x0 = jax.random.normal(kx, (n, d))
    scheme = particles.get_scheme("pre")

    @jax.jit
    def stack(x):
        def body(x, l):
            tl = l.astype(x.dtype)
            attend = lambda y: att(tl, y)  # Attention picks the weights of layer floor(t)
            return scheme.layer(tl * h, x, h, attend, mlp.at_layer(l), norm.at_layer(l)), None

        return jax.lax.scan(body, x, jnp.arange(L))[0]

    x = np.asarray(x0)
    Qn, Kn, Vn, gn, bn = (np.asarray(a) for a in (Q, K, V, gamma, bias))
    W1, b1, W2, b2 = (np.asarray(a) for a in (mlp.W1, mlp.b1, mlp.W2, mlp.b2))
    for l in range(L):
        x = np_block(
            x,
            h,
            "pre",
            lambda y: np_layernorm(y, gn[l], bn[l]),
            lambda y: np_attention(y, beta, Qn[l], Kn[l], Vn[l]),
            lambda y: np_mlp(y, W1[l], b1[l], W2[l], b2[l]),
        )
    np.testing.assert_allclose(np.asarray(stack(x0)), x, rtol=0, atol=1e-10)


# ---- first-order consistency with the flows (projection norm, attention only) ----------


@pytest.mark.parametrize(
    "name, params, t, on_sphere",
    [
        ("post", {}, 0.0, True),
        ("pre", {}, 0.0, False),
        ("peri", {}, 0.0, False),
        ("mix", {"tau": 1.0}, 0.5, True),
        ("mix", {"tau": 1.0}, 1.5, False),
        ("ngpt", {"alpha": 0.7}, 0.0, True),
        ("sqrt", {}, 0.8, True),
        ("none", {}, 0.0, False),
        ("spannorm", {}, 0.0, False),
    ],
)
def test_layer_is_euler_step_of_the_flow(block, name, params, t, on_sphere):
    """|layer(x) − (x + h v(x))| = O(h²), v the scheme's ambient velocity: the error
    drops by 4 when h halves (post-type layers); pre-type ones (off the sphere) are
    exactly that Euler step."""
    p = block
    scheme = particles.get_scheme(name, **params)
    att = particles.Attention(p["beta"], p["Q"][None], p["K"][None], p["V"][None])
    x = p["x"] / np.linalg.norm(p["x"], axis=-1, keepdims=True)
    if not on_sphere:
        x = x * np.linspace(0.6, 1.8, N_TOK)[:, None]
    x = jnp.asarray(x)
    r = jnp.linalg.norm(x, axis=-1)
    dtheta, dr = scheme.velocity(t, x / r[:, None], r, att)
    v = dr[:, None] * x / r[:, None] + r[:, None] * dtheta
    errors = [
        float(jnp.max(jnp.abs(scheme.layer(t, x, h, lambda y: att(t, y)) - (x + h * v))))
        for h in (2e-3, 1e-3)
    ]
    if on_sphere:
        assert 3.8 < errors[0] / errors[1] < 4.2, errors
    else:
        assert max(errors) < 1e-14, errors


@pytest.mark.parametrize("name", ["pre", "peri", "spannorm", "none"])
def test_pre_type_layernorm_layer_is_euler_step(block, name):
    """Pre-type layers with LayerNorm (γ, b) and the MLP are Euler steps of
    dx/dt = g_A(x) + g_F(x), g the placement of each sublayer."""
    p = block
    attend, mlp = package_parts(p)
    attn, ffn = numpy_parts(p)
    if name == "none":
        norm, N = None, None
    else:
        norm, N = (
            Norm("layernorm", gamma=p["gamma"], bias=p["bias"]),
            lambda y: np_layernorm(y, p["gamma"], p["bias"]),
        )
    g = {
        "pre": lambda f, x: f(N(x)),
        "peri": lambda f, x: N(f(N(x))),
        "spannorm": lambda f, x: N(x + f(N(x))),
        "none": lambda f, x: f(x),
    }[name]
    x = p["x"]
    v = g(attn, x) + g(ffn, x)
    scheme = particles.get_scheme(name)
    errors = [
        np.max(np.abs(np.asarray(scheme.layer(0.0, jnp.asarray(x), h, attend, mlp, norm)) - (x + h * v)))
        for h in (2e-3, 1e-3)
    ]
    assert 3.8 < errors[0] / errors[1] < 4.2, errors


# ---- the LayerNorm ODE limits of post-type layers --------------------------------------


def on_manifold(x, c, b0, eps=1e-5, centred=True):
    """The fixed set of N: b₀1 + √(d(c² − ε)) times the (centred) direction of x."""
    z = x - x.mean(-1, keepdims=True) if centred else x
    return b0 + math.sqrt(x.shape[-1] * (c * c - eps)) * np_projection(z)


@pytest.mark.parametrize("c, b0", [(1.0, 0.0), (1.5, 0.2)])
def test_post_layernorm_one_step_limit(block, c, b0):
    """x on M: (LN(x + hA) − x)/h → P^c_x A + (ε/c²) ẑ⟨ẑ, PA⟩ at first order in h; the
    off-manifold part is O(ε) (and is contracted by ε/c² at the next layer)."""
    eps = 1e-5
    x = on_manifold(block["x"], c, b0)
    A = np_attention(x, 0.3, block["Q"], block["K"], block["V"])
    norm = Norm("layernorm", gamma=np.full(D, c), bias=np.full(D, b0), eps=eps)
    z = np_projection(x - b0)
    PA = A - A.mean(-1, keepdims=True)
    tangent = np_centred_tangent(x, A, b0)
    normal = (eps / c**2) * (z * PA).sum(-1, keepdims=True) * z
    errors = []
    for h in (1e-3, 5e-4):
        D_h = (np.asarray(norm(jnp.asarray(x + h * A))) - x) / h
        errors.append(np.max(np.abs(D_h - tangent - normal)))
        assert np.max(np.abs(D_h.mean(-1))) < 1e-9  # no motion along 1
        assert np.max(np.abs(D_h - tangent)) < 2 * eps * np.max(np.abs(PA)) / c**2 + 10 * h
    assert 1.8 < errors[0] / errors[1] < 2.2, errors
    # the norm's own description of the limit
    # the norm's own description of the limit, traceable (the integrator's ODE calls it under jit)
    tangent_jit = eqx.filter_jit(lambda n, x, v: n.tangent(x, v))
    fixed_jit = eqx.filter_jit(lambda n, x: n.fixed_point(x))
    np.testing.assert_allclose(
        np.asarray(tangent_jit(norm, jnp.asarray(x), jnp.asarray(A))), tangent, atol=1e-12
    )
    np.testing.assert_allclose(np.asarray(fixed_jit(norm, jnp.asarray(block["x"]))), x, atol=1e-12)


@pytest.mark.parametrize(
    "name, kind, c, b0",
    [
        ("post", "layernorm", 1.0, 0.0),
        ("post", "layernorm", 1.5, 0.2),
        ("sqrt", "layernorm", 1.0, 0.0),
        ("post", "rmsnorm", 1.0, 0.0),
    ],
)
def test_post_type_stack_converges_to_manifold_ode(block, name, kind, c, b0):
    """L post-type layers of step T/L from a generic x₀ (attention and MLP) converge at
    first order to dx/dt = s(t) P^c_x (A + F) on M, started from the fixed point of x₀."""
    p = block
    T, beta = 1.0, 0.3
    pq = dict(p, beta=beta)
    attend, mlp = package_parts(pq)
    attn, ffn = numpy_parts(pq)
    bias = np.full(D, b0) if kind == "layernorm" else None
    norm = Norm(kind, gamma=np.full(D, c), bias=bias)
    scheme = particles.get_scheme(name)
    assert ode_limit_exists(scheme, norm) == (True, "")
    speed = (lambda t: 1 / math.sqrt(t + 1)) if name == "sqrt" else (lambda t: 1.0)
    if kind == "layernorm":
        tangent = lambda x, v: np_centred_tangent(x, v, b0)
    else:
        tangent = np_sphere_tangent
    x_ref = rk4(
        lambda t, x: speed(t) * tangent(x, attn(x) + ffn(x)),
        on_manifold(p["x"], c, b0, centred=kind == "layernorm"),
        T,
        2000,
    )

    @eqx.filter_jit
    def stack(x, L):
        h = T / L
        body = lambda x, l: (scheme.layer(l.astype(x.dtype) * h, x, h, attend, mlp, norm), None)
        return jax.lax.scan(body, x, jnp.arange(L))[0]

    errors = [np.max(np.abs(np.asarray(stack(jnp.asarray(p["x"]), L)) - x_ref)) for L in (64, 128, 256)]
    assert all(1.8 < a / b < 2.2 for a, b in zip(errors, errors[1:])), errors


@pytest.mark.parametrize("kind", ["layernorm", "rmsnorm"])
def test_post_with_general_gain_has_no_limit(block, kind):
    """γ ≠ c1: N(x + hA) → N(x) ≠ x for x = N(x₀) as h → 0, an O(1) move per layer."""
    g = block["gamma"]
    norm = Norm(kind, gamma=g, bias=block["bias"] if kind == "layernorm" else None)
    x = norm(jnp.asarray(block["x"]))
    A = jnp.asarray(np_attention(np.asarray(x), 0.3, block["Q"], block["K"], block["V"]))
    moves = [float(jnp.max(jnp.abs(norm(x + h * A) - x))) for h in (1e-2, 1e-4, 1e-6)]
    assert min(moves) > 0.05 and abs(moves[-1] - float(jnp.max(jnp.abs(norm(x) - x)))) < 1e-5, moves
    ok, reason = ode_limit_exists(particles.get_scheme("post"), norm)
    assert not ok and "layers=" in reason and "\n" not in reason
    assert ode_limit_exists(particles.get_scheme("pre"), norm) == (True, "")


def test_layernorm_iterates_are_power_iterations():
    """b = 0, γ ≠ c1: the iterates of LN drive a token to ± the top eigenvector of PΓP
    (what the L = T/h post layers do as h → 0)."""
    rng = np.random.default_rng(1)
    d = 6
    gamma = 1 + 0.5 * rng.random(d)
    P = np.eye(d) - 1 / d
    w, U = np.linalg.eigh(P @ np.diag(gamma) @ P)
    top = U[:, np.argmax(w)]
    norm = Norm("layernorm", gamma=gamma)
    x = jax.lax.fori_loop(0, 400, lambda _, x: norm(x), jnp.asarray(rng.standard_normal((3, d))))
    z = np_projection(np.asarray(x) / gamma)
    np.testing.assert_allclose(np.abs(z @ top), 1.0, atol=1e-9)


def test_ode_limit_rules():
    ln = Norm("layernorm", gamma=2.0 * np.ones(4))
    bad = Norm("layernorm", gamma=np.array([1.0, 2.0, 1.0, 1.0]))
    mix = particles.get_scheme("mix", tau=1.0)
    assert ode_limit_exists(mix, ln)[0] and ode_limit_exists(mix, None)[0]
    assert not ode_limit_exists(mix, bad)[0] and ode_limit_exists(mix, bad, t0=1.5)[0]
    assert ode_limit_exists("spannorm" and particles.get_scheme("spannorm"), bad)[0]
    assert not ode_limit_exists(particles.get_scheme("post"), Norm("layernorm", bias=np.arange(4.0)))[0]
    assert not ode_limit_exists(particles.get_scheme("post"), Norm("layernorm", gamma=-np.ones(4)))[0]
    assert ode_limit_exists(particles.get_scheme("post"), Norm("rmsnorm", gamma=3 * np.ones((2, 4))))[0]
    ok, reason = ode_limit_exists(particles.get_scheme("ngpt"), ln)
    assert not ok and "projection" in reason
    assert bool(mix.post_normalized(1.0)) and not bool(mix.post_normalized(1.5))
    assert bool(particles.get_scheme("sqrt").post_normalized(0.0)) and not bool(
        particles.get_scheme("pre").post_normalized(0.0)
    )


# ---- the pieces ----------------------------------------------------------------------


def test_mlp_matches_numpy_and_gelu_is_exact(block):
    p = block
    y = 3 * p["x"]
    for act in ("gelu", "relu"):
        got = MLP(p["W1"][None], p["W2"][None], p["b1"][None], p["b2"][None], activation=act)(jnp.asarray(y))
        np.testing.assert_allclose(
            np.asarray(got), np_mlp(y, p["W1"], p["b1"], p["W2"], p["b2"], act), atol=1e-12
        )
    u = jnp.linspace(-4, 4, 9)
    identity = MLP(jnp.eye(9), jnp.eye(9), activation="gelu")
    np.testing.assert_allclose(np.asarray(identity(u)), np_gelu(np.asarray(u)), atol=1e-14)


def test_random_mlp_is_kaiming_and_random_weights_unchanged():
    d, m = 64, 96
    mlp = particles.random_mlp(0, d, m, layers=2)
    W1, W2, b1, b2 = (np.asarray(w) for w in (mlp.W1, mlp.W2, mlp.b1, mlp.b2))
    assert W1.shape == (2, m, d) and W2.shape == (2, d, m) and mlp.num_layers == 2 and mlp.width == m
    assert abs(W1.var() * d - 1) < 0.05 and abs(W2.var() * m - 1) < 0.05
    assert not b1.any() and not b2.any()
    assert np.asarray(particles.random_mlp(0, d, m, bias_std=0.5).b1).std() > 0.3
    Q, K, V = particles.random_weights(0, 4, heads=2, layers=3)
    assert Q.shape == K.shape == V.shape == (3, 2, 4, 4)


def test_user_schemes():
    class Plain(AbstractSpeedScheme):
        sphere_bound = False

        def speed(self, t, r, a, A_norm):
            return r

    x = jnp.ones((2, 3))
    with pytest.raises(NotImplementedError, match="defines no layer map; override"):
        Plain().layer(0.0, x, 0.1, lambda y: y)

    class Ambient(AbstractAmbientScheme):  # ẋ = A(N x): its default layer is Pre's
        def ambient_velocity(self, t, x, A):
            return A

    y = jnp.asarray(np.random.default_rng(0).standard_normal((4, 3)))
    f = lambda y: jnp.roll(y, 1, axis=0) * 2.0
    norm = Norm("rmsnorm", gamma=jnp.asarray([1.0, 2.0, 0.5]))
    np.testing.assert_allclose(
        np.asarray(Ambient().layer(0.0, y, 0.3, f, f, norm)),
        np.asarray(particles.get_scheme("pre").layer(0.0, y, 0.3, f, f, norm)),
        atol=1e-14,
    )


def test_errors(block):
    x = jnp.asarray(block["x"])  # d = 4
    cases = [
        (lambda: Norm("batchnorm"), "kind='batchnorm' is not one of: projection, layernorm, rmsnorm"),
        (lambda: Norm("layernorm", gamma=np.ones((2, 3, 4))), "gamma has shape"),
        (lambda: Norm("layernorm", gamma=np.ones(4), bias=np.ones(5)), "last axes"),
        (lambda: Norm("layernorm", gamma=np.ones(5))(x), "gamma has shape"),
        (lambda: Norm("layernorm", bias=np.ones((3, 4))).validate(4, layers=2), "bias has shape"),
        (lambda: Norm("layernorm", gamma=np.ones((3, 4)))(x), "at_layer"),
        (lambda: Norm("layernorm", eps=0.0), "eps=0.0 must be positive"),
        (lambda: Norm("rmsnorm", eps=-1e-5), "eps"),
        (lambda: Norm("layernorm", eps=float("nan")), "eps=nan must be finite"),
        (lambda: Norm("layernorm", eps=float("inf")), "eps"),
        (lambda: Norm("layernorm")(jnp.ones((3, 1))), "layernorm needs d >= 2"),
        (lambda: Norm("layernorm").validate(1), "layernorm needs d >= 2"),
        (lambda: Norm("projection", gamma=np.ones(4)), "gamma and bias"),
        (lambda: Norm("rmsnorm", bias=np.ones(4)), "rmsnorm has no bias"),
        (
            lambda: MLP(np.ones((2, 7, 4)), np.ones((2, 7, 4))),
            r"W2 has shape \(2, 7, 4\); expected \(2, 4, 7\)",
        ),
        (lambda: MLP(np.ones((7, 4)), np.ones((4, 7)), b1=np.ones(4)), "b1 has shape"),
        (lambda: MLP(np.ones((7, 4)), np.ones((4, 7)), b2=np.ones((1, 4))), "b2 has shape"),
        (lambda: MLP(np.ones(4), np.ones(4)), "W1 has shape"),
        (lambda: MLP(np.ones((7, 4)), np.ones((4, 7)), activation="tanh"), "activation='tanh'"),
        (lambda: MLP(np.ones((7, 3)), np.ones((3, 7)))(x), "last axis must be d=4"),
        (lambda: MLP(np.ones((2, 7, 4)), np.ones((2, 4, 7)))(x), "at_layer"),
        (lambda: MLP(np.ones((2, 7, 4)), np.ones((2, 4, 7))).validate(4, layers=3), "expected 3 layers"),
        (lambda: particles.random_mlp(0, 4, 0), "m=0"),
        (lambda: particles.get_scheme("ngpt").layer(0.0, x, 0.1, lambda y: y, norm="layernorm"), "ngpt"),
        (
            lambda: particles.get_scheme("none").layer(0.0, x, 0.1, lambda y: y, norm="rmsnorm"),
            "no normalization",
        ),
        (lambda: particles.get_scheme("pre").layer(0.0, x, 0.1, lambda y: y, norm=3), "norm=3"),
    ]
    for make, match in cases:
        with pytest.raises(ValueError, match=match) as info:
            make()
        assert "\n" not in str(info.value)
