"""Discrete layers (particles._layers): the textbook transformer block written in plain
numpy from MODEL.md §7 (not from the package), first-order convergence of the layers to
the ODE for every scheme, the ODE of LayerNorm layers, and the errors."""

import math

import numpy as np
import pytest
from helpers import random_layer_stack

import particles

# -- the textbook block, plain numpy ----------------------------------------------------


def np_layernorm(x, gamma, bias, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return gamma * (x - mu) / np.sqrt(var + eps) + bias


def np_rmsnorm(x, gamma, eps=1e-5):
    return gamma * x / np.sqrt((x**2).mean(-1, keepdims=True) + eps)


def np_attention(y, beta, Q, K, V):
    """Σ_h Σ_j softmax_j(β⟨Q_h y_i, K_h y_j⟩) V_h y_j for y (n, d), weights (heads, d, d)."""
    out = np.zeros_like(y)
    for q, k, v in zip(Q, K, V):
        logits = beta * (y @ q.T) @ (y @ k.T).T
        w = np.exp(logits - logits.max(-1, keepdims=True))
        w /= w.sum(-1, keepdims=True)
        out += w @ (y @ v.T)
    return out


def np_gelu(u):
    return 0.5 * u * (1 + np.vectorize(math.erf)(u / math.sqrt(2)))


def np_mlp(y, W1, b1, W2, b2):
    return np_gelu(y @ W1.T + b1) @ W2.T + b2


def np_transformer(x, placement, norm, beta, Q, K, V, mlp, h=1.0):
    """x after each layer: pre x + hA(N x), x + hF(N x); post N(x + hA(x)), N(x + hF(x))."""
    states = [x]
    for l in range(Q.shape[0]):
        N = lambda y: norm(y, l)
        subs = (lambda y: np_attention(y, beta, Q[l], K[l], V[l]), lambda y: np_mlp(y, *(w[l] for w in mlp)))
        for f in subs:
            x = x + h * f(N(x)) if placement == "pre" else N(x + h * f(x))
        states.append(x)
    return np.stack(states)


@pytest.fixture
def transformer():
    return dict(L=4, **random_layer_stack(L=4, heads=3, n=6, d=8, m=16, gain_spread=0.2, bias_spread=0.1))


@pytest.mark.parametrize("placement", ["pre", "post"])
def test_layernorm_transformer_with_heads_and_gelu_mlp_matches_numpy(transformer, placement):
    T = transformer
    beta = 0.7
    ref = np_transformer(
        T["x0"],
        placement,
        lambda y, l: np_layernorm(y, T["gamma"][l], T["bias"][l]),
        beta,
        T["Q"],
        T["K"],
        T["V"],
        T["mlp"],
    )
    traj = particles.simulate(
        T["x0"], placement, beta=beta, t1=float(T["L"]), layers=T["L"], Q=T["Q"], K=T["K"], V=T["V"],
        mlp=T["mlp"], norm="layernorm", gamma=T["gamma"], bias=T["bias"],
    )  # fmt: skip
    np.testing.assert_allclose(np.asarray(traj.x), ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.asarray(traj.ts), np.arange(T["L"] + 1.0))


def test_pre_rmsnorm_transformer_matches_numpy(transformer):
    T = transformer
    ref = np_transformer(
        T["x0"],
        "pre",
        lambda y, l: np_rmsnorm(y, T["gamma"][l]),
        1.3,
        T["Q"],
        T["K"],
        T["V"],
        T["mlp"],
        h=0.5,
    )
    traj = particles.simulate(
        T["x0"], "pre", beta=1.3, t1=0.5 * T["L"], layers=T["L"], Q=T["Q"], K=T["K"], V=T["V"],
        mlp=T["mlp"], norm="rmsnorm", gamma=T["gamma"],
    )  # fmt: skip
    np.testing.assert_allclose(np.asarray(traj.x), ref, rtol=0, atol=1e-10)


def test_batch_and_heterogeneous_beta_are_each_the_single_run(transformer):
    T = transformer
    x0 = np.stack([T["x0"], T["x0"][::-1]])
    kw = dict(t1=2.0, layers=T["L"], Q=T["Q"], K=T["K"], V=T["V"], mlp=T["mlp"], norm="layernorm")
    batch = particles.simulate(x0, "peri", beta=np.array([0.5, 2.0]), **kw)
    for i, beta in enumerate((0.5, 2.0)):
        one = particles.simulate(x0[i], "peri", beta=beta, **kw)
        np.testing.assert_allclose(np.asarray(batch.x[i]), np.asarray(one.x), rtol=0, atol=1e-12)


# -- the ODE as the limit of the layers -------------------------------------------------

SCHEMES = ["post", "pre", "peri", "mix", "ngpt", "sqrt", "none", "spannorm"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_layers_converge_to_the_ode_at_first_order(scheme):
    """Projection norm, attention only: the error of L layers against the ODE at t1 halves
    when L doubles (fitted slope of log error against log L within [0.85, 1.15])."""
    x0 = np.asarray(particles.init.gaussian(3, 6, 4, scale=1.5))
    if particles.get_scheme(scheme).sphere_bound or scheme == "mix":  # post-type layers start on the sphere
        x0 = x0 / np.linalg.norm(x0, axis=-1, keepdims=True)
    kw = dict(beta=1.5, t1=2.0, **({"tau": 0.75} if scheme == "mix" else {}))
    ode = particles.simulate(x0, scheme, ts=[2.0], rtol=1e-12, atol=1e-12, **kw)
    Ls = np.array([16, 32, 64, 128])
    errors = [
        float(np.max(np.abs(particles.simulate(x0, scheme, layers=int(L), ts=[2.0], **kw).x[-1] - ode.x[-1])))
        for L in Ls
    ]
    slope = -np.polyfit(np.log(Ls), np.log(errors), 1)[0]
    assert 0.85 < slope < 1.15, (errors, slope)


def test_layernorm_pre_layers_converge_to_their_ode():
    """Pre-LN with LayerNorm (γ, b) and a GELU MLP: the ODE mode is dx/dt = A(LN x) + F(LN x)
    (particles._norms); the layers reach it at first order."""
    rng = np.random.default_rng(2)
    n, d, m = 5, 6, 12
    mlp = particles.random_mlp(4, d, m, bias_std=0.1)
    norm = dict(norm="layernorm", gamma=1 + 0.3 * rng.normal(size=d), bias=0.2 * rng.normal(size=d))
    x0 = rng.normal(size=(n, d))
    ode = particles.simulate(x0, "pre", beta=1.0, t1=1.0, ts=[1.0], rtol=1e-12, atol=1e-12, mlp=mlp, **norm)
    errors = [
        float(
            np.max(
                np.abs(
                    particles.simulate(x0, "pre", beta=1.0, t1=1.0, layers=L, mlp=mlp, **norm).x[-1]
                    - ode.x[-1]
                )
            )
        )
        for L in (16, 32, 64)
    ]
    assert 1.8 < errors[0] / errors[1] < 2.2 and 1.8 < errors[1] / errors[2] < 2.2, errors


def test_post_layernorm_with_unit_gain_converges_on_the_centred_sphere():
    """Post-LN with γ = 1, b = 0: tokens live on the centred sphere of radius √(d(1 − ε)),
    and the layers converge to the ODE that starts there."""
    x0 = np.asarray(particles.init.gaussian(5, 5, 6, scale=2.0))
    ode = particles.simulate(x0, "post", beta=1.0, t1=1.0, ts=[1.0], rtol=1e-12, atol=1e-12, norm="layernorm")
    x = np.asarray(ode.x[-1])
    np.testing.assert_allclose(x.mean(-1), 0, atol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(x, axis=-1), math.sqrt(6 * (1 - 1e-5)), rtol=1e-9)
    errors = [
        float(
            np.max(
                np.abs(particles.simulate(x0, "post", beta=1.0, t1=1.0, layers=L, norm="layernorm").x[-1] - x)
            )
        )
        for L in (32, 64, 128)
    ]
    assert errors[2] < errors[1] < errors[0] and errors[0] / errors[2] > 3, errors


# -- results and errors -----------------------------------------------------------------


def test_saves_pick_layers_and_xarray_has_the_layer_index(tmp_path):
    x0 = np.asarray(particles.init.uniform_sphere(0, 4, 3))
    traj = particles.simulate(x0, "post", beta=1.0, t1=8.0, layers=8, ts=[0.0, 2.0, 8.0])
    assert traj.theta.shape == (3, 4, 3)
    ds = traj.to_xarray()
    assert list(ds["layer"].values) == [0, 2, 8]
    traj.save(tmp_path / "run.nc")
    assert particles.load(tmp_path / "run.nc").config["layers"] == 8


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(layers=0), "layers=0 must be at least 1"),
        (dict(layers=2.5), "layers=2.5 must be an integer"),
        (dict(layers=4, norm="batchnorm"), "norm='batchnorm' is not one of"),
        (dict(layers=4, norm="layernorm", gamma=np.ones(5)), "gamma has shape"),
        (dict(layers=4, norm="layernorm", bias=np.ones((3, 3))), "bias has shape"),
        (dict(layers=4, ts=[0.5]), "ts must lie on the layer grid"),
        (dict(layers=4, norm="layernorm", ln_eps=0.0), "ln_eps=0.0 must be positive"),
        (dict(norm="layernorm", gamma=2 * np.ones(3) + np.arange(3)), "no ODE limit; run discrete layers"),
        (dict(residual="inv_depth"), "give layers=L"),
        (dict(layers=4, residual="sqrt"), "residual='sqrt' is not one of"),
        (
            dict(layers=4, mlp=(np.ones((4, 2, 3)), np.ones((4, 2)), np.ones((4, 3, 3)), np.ones((4, 3)))),
            "W2 has shape",
        ),
    ],
)
def test_bad_layer_arguments_get_one_line_errors(kw, match):
    x0 = np.asarray(particles.init.uniform_sphere(0, 4, 3))
    with pytest.raises(ValueError, match=match) as info:
        particles.simulate(x0, "post", beta=1.0, t1=4.0, **kw)
    assert "\n" not in str(info.value)
