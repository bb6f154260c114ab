"""The entry point simulate: an exact reduction (Kuramoto), symmetries and determinism,
batching and broadcasting of beta, dtypes."""

import jax.numpy as jnp
import numpy as np
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


def test_dtype_float32_default_and_float64_on_request():
    x32 = np.asarray(particles.init.uniform_sphere(0, 4, 3), np.float32)
    assert particles.simulate(x32, "post", beta=1.0, t1=1.0).theta.dtype == jnp.float32
    assert particles.simulate(x32, "post", beta=1.0, t1=1.0, dtype="float64").theta.dtype == jnp.float64
