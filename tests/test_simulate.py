"""The integrator: exact reductions (Kuramoto), convergence order, symmetries,
weights, batching, dtypes and bad input."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import particles


def test_kuramoto_reduction():
    """d = 2, beta = 0: w_ij = 1/n and θ_i = (cos φ_i, sin φ_i) follows the Kuramoto model
    dφ_i/dt = (1/n) Σ_j sin(φ_j − φ_i), for USA and softmax alike."""
    rng = np.random.default_rng(1)
    n = 7
    phi0 = rng.uniform(0, 2 * np.pi, n)
    ts = np.linspace(0, 6, 13)
    ref = solve_ivp(
        lambda t, phi: np.sin(phi[None, :] - phi[:, None]).mean(axis=1),
        (0, 6),
        phi0,
        t_eval=ts,
        rtol=1e-12,
        atol=1e-13,
    )
    x0 = np.stack([np.cos(phi0), np.sin(phi0)], axis=-1)
    for attention in ("usa", "softmax"):
        traj = particles.simulate(
            x0, "post", beta=0.0, t1=6.0, ts=ts, attention=attention, rtol=1e-11, atol=1e-13
        )
        phi = np.arctan2(traj.theta[..., 1], traj.theta[..., 0])
        np.testing.assert_allclose(np.angle(np.exp(1j * (phi - ref.y.T))), 0, atol=1e-8)


@pytest.mark.parametrize("solver,order", [(diffrax.Tsit5(), 5), (diffrax.Heun(), 2)])
def test_convergence_order_with_constant_steps(solver, order):
    """Global error at t1 falls like h^order (diffrax test_integrate.py::test_ode_order)."""
    x0 = particles.init.uniform_sphere(3, 6, 3)
    kwargs = dict(beta=1.5, t1=1.0, ts=[1.0])
    ref = particles.simulate(x0, "pre", rtol=1e-13, atol=1e-14, **kwargs).x[-1]
    hs = 2.0 ** -np.arange(2, 6) if order == 5 else 2.0 ** -np.arange(4, 9)
    errors = [
        float(
            jnp.max(jnp.abs(particles.simulate(x0, "pre", solver=solver, step_size=h, **kwargs).x[-1] - ref))
        )
        for h in hs
    ]
    slope = np.polyfit(np.log(hs), np.log(errors), 1)[0]
    assert order - 0.4 < slope < order + 0.6, (slope, errors)


def test_sphere_bound_schemes_stay_on_sphere_and_match_float64():
    """Post, ngpt, sqrt keep r ≡ 1 and |x| = 1; a long float32 run stays on the sphere
    and close to the float64 solution."""
    x0 = particles.init.uniform_sphere(0, 8, 5)
    for scheme in ("post", "ngpt", "sqrt"):
        t32 = particles.simulate(np.asarray(x0, np.float32), scheme, beta=1.0, t1=200.0, ts=[50.0, 200.0])
        assert t32.theta.dtype == jnp.float32
        np.testing.assert_array_equal(t32.r, 1.0)
        np.testing.assert_allclose(jnp.linalg.norm(t32.x, axis=-1), 1.0, atol=1e-6)
    t64 = particles.simulate(x0, "post", beta=1.0, t1=5.0, ts=[5.0], rtol=1e-10, atol=1e-12)
    t32 = particles.simulate(np.asarray(x0, np.float32), "post", beta=1.0, t1=5.0, ts=[5.0])
    np.testing.assert_allclose(np.asarray(t32.x, np.float64), t64.x, atol=2e-5)


def test_permutation_equivariance_and_determinism():
    x0 = particles.init.gaussian(4, 6, 4)
    perm = np.array([3, 0, 5, 1, 4, 2])
    kw = dict(beta=2.0, t1=3.0, ts=[1.0, 3.0], rtol=1e-10, atol=1e-12)
    a = particles.simulate(x0, "peri", **kw)
    b = particles.simulate(np.asarray(x0)[perm], "peri", **kw)
    np.testing.assert_allclose(b.x, a.x[:, perm], atol=1e-10)
    again = particles.simulate(x0, "peri", **kw)
    np.testing.assert_array_equal(again.x, a.x)
    np.testing.assert_array_equal(
        particles.init.uniform_sphere(5, 4, 3), particles.init.uniform_sphere(5, 4, 3)
    )


class HalfSpeedPost(particles.AbstractSpeedScheme):
    """A user-defined scheme: post-LN at half speed, s = 2, so θ(t) = θ_post(t/2)."""

    sphere_bound = True

    def speed(self, t, r, a, A_norm):
        return 2.0 * jnp.ones_like(a)


class AmbientPre(particles.AbstractAmbientScheme):
    """Pre-LN given by its ambient velocity dx/dt = A(Θ)."""

    def ambient_velocity(self, t, x, A):
        return A


def test_user_defined_schemes():
    x0 = particles.init.gaussian(6, 5, 4)
    kw = dict(beta=1.5, rtol=1e-10, atol=1e-12)
    half = particles.simulate(x0, HalfSpeedPost(), t1=4.0, ts=[2.0, 4.0], **kw)
    post = particles.simulate(x0, "post", t1=2.0, ts=[1.0, 2.0], **kw)
    np.testing.assert_allclose(half.theta, post.theta, atol=1e-9)
    assert half.config["scheme"] == "HalfSpeedPost"
    ambient = particles.simulate(x0, AmbientPre(), t1=2.0, ts=[1.0, 2.0], **kw)
    pre = particles.simulate(x0, "pre", t1=2.0, ts=[1.0, 2.0], **kw)
    np.testing.assert_allclose(ambient.x, pre.x, atol=1e-9)
    # the reduced model takes user schemes too
    ts = np.linspace(0, 4, 5)
    rho_half, _ = particles.equiangular.solve(HalfSpeedPost(), 6, 1.0, 0.1, ts)
    rho_post, _ = particles.equiangular.solve("post", 6, 1.0, 0.1, ts / 2)
    np.testing.assert_allclose(rho_half, rho_post, atol=1e-9)
    rho_amb, r_amb = particles.equiangular.solve(AmbientPre(), 6, 1.0, 0.1, ts, r0=1.3)
    rho_pre, r_pre = particles.equiangular.solve("pre", 6, 1.0, 0.1, ts, r0=1.3)
    np.testing.assert_allclose(rho_amb, rho_pre, atol=1e-9)
    np.testing.assert_allclose(r_amb, r_pre, rtol=1e-9)


def test_batch_with_beta_array_matches_single_runs():
    x0 = particles.init.uniform_sphere(7, 5, 4, batch=3)
    betas = np.array([0.5, 2.0, 8.0])
    kw = dict(t1=3.0, ts=[1.0, 3.0], rtol=1e-10, atol=1e-12)
    batch = particles.simulate(x0, "pre", beta=betas, **kw)
    assert batch.theta.shape == (3, 2, 5, 4) and batch.r.shape == (3, 2, 5)
    for k in range(3):
        single = particles.simulate(x0[k], "pre", beta=betas[k], **kw)
        np.testing.assert_allclose(batch.x[k], single.x, atol=1e-8)
    # one x0, many betas: the tokens are broadcast
    shared = particles.simulate(x0[0], "pre", beta=betas, **kw)
    assert shared.theta.shape == (3, 2, 5, 4)
    np.testing.assert_allclose(shared.x[0], batch.x[0], atol=1e-8)


def test_weights_identity_heads_layers_and_causal():
    d, n = 4, 5
    x0 = particles.init.uniform_sphere(8, n, d)
    kw = dict(beta=1.2, t1=2.0, ts=[1.0, 2.0], rtol=1e-10, atol=1e-12)
    plain = particles.simulate(x0, "post", **kw)
    eye = np.eye(d)
    explicit = particles.simulate(x0, "post", Q=eye, K=eye, V=eye, **kw)
    np.testing.assert_allclose(explicit.x, plain.x, atol=1e-10)
    three = np.stack([eye] * 3)
    mean_heads = particles.simulate(x0, "post", Q=three, K=three, V=three, heads="mean", **kw)
    np.testing.assert_allclose(mean_heads.x, plain.x, atol=1e-10)

    # two layers: the second acts from t = 1 on, so restarting at t = 1 with it agrees
    Q, K, V = particles.random_weights(0, d, layers=2)
    both = particles.simulate(
        x0, "post", Q=Q, K=K, V=V, beta=1.2, t1=2.0, ts=[1.0, 2.0], rtol=1e-10, atol=1e-12
    )
    first = particles.simulate(
        x0, "post", Q=Q[0], K=K[0], V=V[0], beta=1.2, t1=1.0, ts=[1.0], rtol=1e-10, atol=1e-12
    )
    second = particles.simulate(
        first.x[-1],
        "post",
        Q=Q[1],
        K=K[1],
        V=V[1],
        beta=1.2,
        t0=1.0,
        t1=2.0,
        ts=[2.0],
        rtol=1e-10,
        atol=1e-12,
    )
    np.testing.assert_allclose(both.x[0], first.x[-1], atol=1e-9)
    np.testing.assert_allclose(both.x[1], second.x[-1], atol=1e-8)
    assert not np.allclose(both.x[1], plain.x[1], atol=1e-3)

    # causal: token 0 attends only to itself, A_0 = θ_0, so it never moves
    causal = particles.simulate(x0, "post", causal=True, **kw)
    np.testing.assert_allclose(causal.theta[:, 0], np.broadcast_to(x0[0], (2, d)), atol=1e-12)
    assert not np.allclose(causal.theta[-1, 1:], x0[1:], atol=1e-3)


def test_random_weight_ensembles():
    d = 64
    Q, K, V = particles.random_weights(1, d, heads=2, layers=3)
    assert Q.shape == (3, 2, d, d)
    assert not np.allclose(Q, K)
    assert np.std(np.asarray(Q)) == pytest.approx(1 / np.sqrt(d), rel=0.05)
    G, _, _ = particles.random_weights(2, d, ensemble="goe")
    np.testing.assert_array_equal(G, np.swapaxes(G, -1, -2))
    eig = np.linalg.eigvalsh(np.asarray(G[0, 0]))
    assert 1.6 < eig.max() < 2.4 and -2.4 < eig.min() < -1.6  # semicircle edge at ±2


def test_initial_conditions():
    x = particles.init.uniform_sphere(0, 5, 3, batch=(2, 4))
    assert x.shape == (2, 4, 5, 3)
    np.testing.assert_allclose(jnp.linalg.norm(x, axis=-1), 1, atol=1e-12)
    e = particles.init.equiangular(4, 6, 0.3, r0=2.0)
    gram = np.asarray(e @ e.T)
    np.testing.assert_allclose(np.diag(gram), 4.0, atol=1e-12)
    np.testing.assert_allclose(gram[~np.eye(4, dtype=bool)], 4.0 * 0.3, atol=1e-12)
    c = particles.init.clusters(0, 12, 5, k=3, spread=1e-4)
    cos = np.asarray(c @ c.T)
    assert np.all(cos[np.arange(12)[:, None] % 3 == np.arange(12) % 3] > 0.999)
    np.testing.assert_array_equal(
        particles.init.gaussian(3, 4, 2), particles.init.gaussian(jax.random.key(3), 4, 2)
    )


def test_dtype_float32_default_and_float64_on_request():
    x32 = np.asarray(particles.init.uniform_sphere(0, 4, 3), np.float32)
    assert particles.simulate(x32, "post", beta=1.0, t1=1.0).theta.dtype == jnp.float32
    assert particles.simulate(x32, "post", beta=1.0, t1=1.0, dtype="float64").theta.dtype == jnp.float64


X0 = np.eye(3, 4)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(x0=np.ones((0, 4))), "n=0"),
        (dict(x0=np.ones((3, 1))), "d=1"),
        (dict(x0=np.ones(4)), "x0 has shape"),
        (dict(x0=np.array([[1.0, 0], [np.nan, 1]])), "non-finite"),
        (dict(x0=np.array([[1.0, 0], [0, 0]])), "zero-norm"),
        (dict(beta=np.inf), "beta"),
        (dict(x0=np.stack([X0, X0]), beta=np.ones(5)), "broadcast"),
        (dict(scheme="layernorm"), "scheme='layernorm'"),
        (dict(attention="linear"), "attention='linear'"),
        (dict(t1=0.0), "t1=0.0 must be greater"),
        (dict(ts=[0.5, 0.2]), "increasing"),
        (dict(ts=[0.5, 3.0]), r"\[t0, t1\]"),
        (dict(Q=np.eye(3)), "Q has shape"),
        (dict(V=np.ones((2, 5, 4, 4, 4))), "V has shape"),
        (dict(tau=1.0), "has no parameter 'tau'"),
        (dict(rtol=-1.0), "rtol"),
        (dict(solver=diffrax.Euler()), "step_size"),
        (dict(dtype="int32"), "dtype"),
    ],
)
def test_bad_input_is_a_one_line_value_error(kwargs, match):
    args = dict(x0=X0, scheme="post", beta=1.0, t1=1.0) | kwargs
    with pytest.raises(ValueError, match=match) as info:
        particles.simulate(args.pop("x0"), args.pop("scheme"), **args)
    assert "\n" not in str(info.value)


def test_bad_init_and_scheme_parameters():
    with pytest.raises(ValueError, match="n <= d"):
        particles.init.equiangular(5, 4, 0.0)
    with pytest.raises(ValueError, match="rho0"):
        particles.init.equiangular(3, 5, 1.5)
    with pytest.raises(ValueError, match="alpha"):
        particles.get_scheme("ngpt", alpha=-1.0)
    with pytest.raises(ValueError, match="key"):
        particles.init.uniform_sphere("seed", 3, 3)


def test_max_steps_names_the_knob():
    with pytest.raises(particles.SimulationError, match="max_steps=3"):
        particles.simulate(particles.init.uniform_sphere(0, 4, 3), "post", beta=1.0, t1=10.0, max_steps=3)
