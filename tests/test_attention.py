"""The attention field: identity and explicit weights, heads, layers, causal mask."""

import numpy as np

import particles


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
