"""The coordinates of the state (particles/_chart.py): the ambient R^d, and the
orthonormal coordinates of the span of the initial tokens."""

import jax.numpy as jnp
import numpy as np
import pytest

import particles


def tokens(n, d, batch=(), seed=0):
    x = np.random.default_rng(seed).normal(size=(*batch, n, d))
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def gram(x):
    return np.einsum("...id,...jd->...ij", x, x)


@pytest.mark.parametrize("batch", [(), (3,), (2, 2)])
def test_span_chart_round_trips_and_keeps_inner_products(batch):
    n, d = 4, 9
    theta = tokens(n, d, batch)
    chart = particles.SpanChart.of(jnp.asarray(theta))
    assert chart.basis.shape == (*batch, n, d) and chart.ambient_dim == d
    basis = np.asarray(chart.basis)
    np.testing.assert_allclose(gram(basis), np.broadcast_to(np.eye(n), (*batch, n, n)), atol=1e-14)
    c = np.asarray(chart.encode(jnp.asarray(theta)))
    assert c.shape == (*batch, n, n)  # n numbers per token instead of d
    np.testing.assert_allclose(gram(c), gram(theta), atol=1e-14)  # inner products, so norms too
    # decode_saves takes saves with a time axis before the tokens
    saves = np.stack([c, 2 * c, -c], axis=-3)  # (*batch, T=3, n, n)
    back = np.asarray(chart.decode_saves(jnp.asarray(saves)))
    assert back.shape == (*batch, 3, n, d)
    np.testing.assert_allclose(back, np.stack([theta, 2 * theta, -theta], axis=-3), atol=1e-14)


def test_span_chart_encodes_other_vectors_by_their_projection_on_the_span():
    n, d = 3, 7
    theta = tokens(n, d)
    chart = particles.SpanChart.of(jnp.asarray(theta))
    y = np.random.default_rng(1).normal(size=(5, d))
    decoded = np.asarray(chart.decode_saves(chart.encode(jnp.asarray(y))[None]))[0]
    # the orthogonal projection on span(θ_1..θ_n), computed by least squares
    coef, *_ = np.linalg.lstsq(theta.T, y.T, rcond=None)
    np.testing.assert_allclose(decoded, (theta.T @ coef).T, atol=1e-13)
    assert np.max(np.abs(decoded - y)) > 0.1  # y is not in the span: the chart drops the rest


def test_span_chart_of_tokens_of_lower_rank():
    """Repeated tokens: the basis still has n orthonormal rows, the first of which span
    the tokens, and the round trip is exact."""
    theta = tokens(3, 8)
    theta = np.concatenate([theta, theta[:2]], axis=0)  # n = 5, rank 3
    chart = particles.SpanChart.of(jnp.asarray(theta))
    c = chart.encode(jnp.asarray(theta))
    np.testing.assert_allclose(np.asarray(chart.decode_saves(c[None]))[0], theta, atol=1e-14)
    np.testing.assert_allclose(gram(np.asarray(c)), gram(theta), atol=1e-14)


def test_ambient_chart_is_the_identity():
    x = tokens(5, 3, (2,))
    chart = particles.AmbientChart(3)
    assert chart.ambient_dim == 3
    np.testing.assert_array_equal(chart.encode(x), x)
    np.testing.assert_array_equal(chart.decode_saves(x[:, None]), x[:, None])
