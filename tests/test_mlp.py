"""The MLP sublayer (particles/_mlp.py) against a hand-written numpy MLP with the exact
(erf) GELU, PyTorch's default nn.GELU()."""

import math
import re

import jax.numpy as jnp
import numpy as np
import pytest

import particles

erf = np.vectorize(math.erf)


def gelu(u):
    return u * (1 + erf(u / math.sqrt(2))) / 2


def gelu_tanh(u):  # the tanh approximation, which the MLP must not use
    return 0.5 * u * (1 + np.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u**3)))


def numpy_mlp(y, W1, b1, W2, b2, sigma=gelu):
    return (W2 @ sigma(W1 @ y[..., None] + b1[:, None]))[..., 0] + b2


def weights(layers, m, d, seed=0):
    rng = np.random.default_rng(seed)
    lead = () if layers is None else (layers,)
    W1 = rng.normal(size=(*lead, m, d))
    b1 = rng.normal(size=(*lead, m))
    W2 = rng.normal(size=(*lead, d, m)) / math.sqrt(m)
    b2 = rng.normal(size=(*lead, d))
    return W1, b1, W2, b2


@pytest.mark.parametrize("shape", [(4,), (5, 4), (2, 3, 4)])
def test_gelu_mlp_is_the_numpy_one(shape):
    W1, b1, W2, b2 = weights(None, 6, 4)
    y = np.random.default_rng(1).normal(size=shape) * 2
    mlp = particles.MLP(W1, W2, b1, b2)
    assert mlp.activation == "gelu" and mlp.num_layers is None and mlp.width == 6
    got = np.asarray(mlp(jnp.asarray(y)))
    assert got.shape == shape
    np.testing.assert_allclose(got, numpy_mlp(y, W1, b1, W2, b2), rtol=1e-12, atol=1e-12)
    # and not the tanh approximation: it is further off than the tolerance above
    assert np.max(np.abs(got - numpy_mlp(y, W1, b1, W2, b2, gelu_tanh))) > 1e-5


def test_relu_mlp_and_zero_biases():
    W1, _, W2, _ = weights(None, 3, 2)
    y = np.random.default_rng(2).normal(size=(7, 2))
    mlp = particles.MLP(W1, W2, activation="relu")  # b1, b2 None: zero
    np.testing.assert_array_equal(mlp.b1, np.zeros(3)) and np.testing.assert_array_equal(mlp.b2, np.zeros(2))
    expected = numpy_mlp(y, W1, np.zeros(3), W2, np.zeros(2), lambda u: np.maximum(u, 0))
    np.testing.assert_allclose(np.asarray(mlp(jnp.asarray(y))), expected, rtol=1e-12, atol=1e-14)


def test_layers_pick_their_own_weights():
    W1, b1, W2, b2 = weights(3, 5, 4)
    y = np.random.default_rng(3).normal(size=(6, 4))
    mlp = particles.MLP(W1, W2, b1, b2)
    assert mlp.num_layers == 3 and mlp.width == 5
    for layer, own in ((0, 0), (1, 1), (2, 2), (7, 2), (-1, 0)):  # past either end: clipped
        want = numpy_mlp(y, W1[own], b1[own], W2[own], b2[own])
        got = mlp.at_layer(jnp.asarray(layer))(jnp.asarray(y))
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-12)
    with pytest.raises(
        ValueError, match=re.escape("this MLP has 3 layers; apply mlp.at_layer(l) to one layer")
    ):
        mlp(jnp.asarray(y))
    # one layer given with its layer axis is the same MLP as without it
    one = particles.MLP(W1[:1], W2[:1], b1[:1], b2[:1])
    assert one.num_layers == 1 and one.at_layer(5).num_layers is None  # the layer, clipped to 0
    np.testing.assert_allclose(
        np.asarray(one(jnp.asarray(y))), numpy_mlp(y, W1[0], b1[0], W2[0], b2[0]), rtol=1e-12, atol=1e-12
    )


def test_shapes_and_choices_are_checked():
    W1, b1, W2, b2 = weights(2, 5, 4)
    with pytest.raises(
        ValueError, match=re.escape("W2 has shape (2, 5, 4); expected (2, 4, 5) (from W1 of shape (2, 5, 4))")
    ):
        particles.MLP(W1, W1, b1, b2)
    with pytest.raises(ValueError, match=re.escape("b1 has shape (2, 4); expected (2, 5)")):
        particles.MLP(W1, W2, b2, b2)
    with pytest.raises(ValueError, match=re.escape("W1 has shape (5,); expected (layers, m, d) or (m, d)")):
        particles.MLP(b1[0], W2)
    with pytest.raises(
        ValueError, match=re.escape("activation='tanh' is not one of: gelu, gelu_tanh, relu, silu")
    ):
        particles.MLP(W1, W2, activation="tanh")
    mlp = particles.MLP(W1, W2, b1, b2)
    assert mlp.validate(4) is mlp and mlp.validate(4, layers=2) is mlp
    with pytest.raises(ValueError, match=re.escape("W1 has shape (2, 5, 4); its last axis must be d=3")):
        mlp.validate(3)
    with pytest.raises(
        ValueError, match=re.escape("W1 has shape (2, 5, 4); expected 6 layers (layers, m, d)")
    ):
        mlp.validate(4, layers=6)
    with pytest.raises(ValueError, match=re.escape("its last axis must be d=3")):
        mlp.at_layer(0)(jnp.ones(3))
