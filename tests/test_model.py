"""The model's pluggable parts (particles/_model/): attention kernels and position parts,
each against its formula, and a kernel written by a user plugged into simulate."""

from typing import ClassVar

import jax.numpy as jnp
import numpy as np
import pytest

import particles
from particles import equiangular


def _logits(seed=0, n=5):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(2, n, n)))


def test_softmax_weights_are_the_normalised_exponentials_and_ignore_a_row_shift():
    logits = _logits()
    w = particles.Softmax().weights(logits, 5)
    e = np.exp(np.asarray(logits))
    np.testing.assert_allclose(w, e / e.sum(-1, keepdims=True), rtol=1e-14)
    shifted = particles.Softmax().weights(logits, 5, shift=jnp.asarray(3.0))
    np.testing.assert_array_equal(shifted, w)


def test_usa_weights_are_the_exponentials_over_n_with_the_shift_exponentiated():
    logits = _logits(1)
    e = np.exp(np.asarray(logits))
    np.testing.assert_allclose(particles.USA().weights(logits, 5), e / 5, rtol=1e-14)
    np.testing.assert_allclose(
        particles.USA().weights(logits, 5, shift=jnp.asarray(2.0)), e * np.exp(2.0) / 5, rtol=1e-14
    )


@pytest.mark.parametrize("beta,rho,n", [(4.0, 0.3, 16), (1.0, 0.0, 3), (9.0, 0.9, 256)])
def test_equiangular_weights_are_the_rows_of_the_equiangular_configuration(beta, rho, n):
    # MODEL.md §3: Z = e^β + (n − 1) e^{βρ} (SA), Z = n (USA)
    self_sa, other_sa = particles.Softmax().equiangular_weights(beta, jnp.asarray(rho), n)
    Z = np.exp(beta) + (n - 1) * np.exp(beta * rho)
    np.testing.assert_allclose([self_sa, other_sa], [np.exp(beta) / Z, np.exp(beta * rho) / Z], rtol=1e-13)
    self_usa, other_usa = particles.USA().equiangular_weights(beta, jnp.asarray(rho), n)
    np.testing.assert_allclose([self_usa, other_usa], [np.exp(beta) / n, np.exp(beta * rho) / n], rtol=1e-13)


def test_from_sums_normalises_by_the_row_totals_or_by_n():
    weighted, totals = jnp.asarray([[2.0, 4.0], [3.0, 9.0]]), jnp.asarray([2.0, 3.0])
    real = jnp.asarray([1.0, 0.0])  # the second row is padding
    np.testing.assert_allclose(particles.Softmax().from_sums(weighted, totals, 7, real), [[1, 2], [3, 9]])
    np.testing.assert_allclose(particles.USA().from_sums(weighted, totals, 2, real), [[1, 2], [1.5, 4.5]])


def test_logit_limits_are_where_the_kernel_overflows():
    assert particles.USA().logit_limit(np.float32) == pytest.approx(88.7228, abs=1e-4)
    assert particles.USA().logit_limit(np.float64) == pytest.approx(709.7827, abs=1e-4)
    assert np.isfinite(np.exp(np.float32(particles.USA().logit_limit(np.float32)) - np.float32(1e-3)))
    assert particles.Softmax().logit_limit(np.float32) == float(np.finfo(np.float32).max) / 2


def test_kernels_from_names_and_one_line_errors():
    from particles._model import as_kernel

    assert isinstance(as_kernel("usa"), particles.USA) and isinstance(as_kernel("softmax"), particles.Softmax)
    usa = particles.USA()
    assert as_kernel(usa) is usa
    with pytest.raises(ValueError, match=r"^attention='sigmoid' is not one of: softmax, usa"):
        as_kernel("sigmoid")


def test_causal_masks_the_keys_after_each_query_and_no_position_masks_nothing():
    logits = _logits(2, n=4)[0]
    index = jnp.arange(4)
    masked = np.asarray(particles.Causal().logits(logits, index, index))
    above = np.triu(np.ones((4, 4), bool), k=1)
    assert np.all(np.isneginf(masked[above]))
    np.testing.assert_array_equal(masked[~above], np.asarray(logits)[~above])
    # rows 1..2 of a block: the query index is the token index
    block = np.asarray(particles.Causal().logits(logits[1:3], index[1:3], index))
    np.testing.assert_array_equal(block, masked[1:3])
    np.testing.assert_array_equal(particles.NoPosition().logits(logits, index, index), logits)
    assert particles.NoPosition.permutation_equivariant and not particles.Causal.permutation_equivariant


def test_position_from_the_causal_shortcut():
    from particles._model import as_position

    assert isinstance(as_position(causal=True), particles.Causal)
    assert isinstance(as_position(), particles.NoPosition)
    with pytest.raises(ValueError, match="causal=True was given with position='none'"):
        as_position(particles.NoPosition(), causal=True)
    att = particles.Attention(jnp.asarray(1.0), position=particles.Causal())
    assert att.causal and att == particles.Attention(jnp.asarray(1.0), causal=True)


class HalfUSA(particles.USA):
    """w_ij = e^{ℓ_ij}/(2n): a user's kernel. Post moves directions at speed P A, so
    this flow is the USA flow at half speed: θ_half(2t) = θ_usa(t)."""

    name: ClassVar[str] = "half_usa"

    def weights(self, logits, num_keys, shift=None):
        return super().weights(logits, num_keys, shift) / 2

    def from_sums(self, weighted, totals, num_keys, real):
        return super().from_sums(weighted, totals, num_keys, real) / 2

    def equiangular_weights(self, beta, rho, n):
        return tuple(w / 2 for w in super().equiangular_weights(beta, rho, n))


@pytest.mark.parametrize("causal", [False, True])
def test_a_new_kernel_is_one_class(causal):
    x0 = particles.init.uniform_sphere(0, 6, 4, dtype=np.float64)
    kw = dict(beta=2.0, rtol=1e-10, atol=1e-12, causal=causal)
    half = particles.simulate(x0, "post", attention=HalfUSA(), t1=2.0, ts=[0.0, 2.0], **kw)
    full = particles.simulate(x0, "post", attention="usa", t1=1.0, ts=[0.0, 1.0], **kw)
    np.testing.assert_allclose(half.theta[-1], full.theta[-1], atol=1e-8)
    assert half.config["attention"] == "half_usa"
    # the equiangular reduction takes it too: the same correlation at twice the time
    rho_half, _ = equiangular.solve("post", 8, 2.0, 0.0, jnp.asarray([2.0]), attention=HalfUSA())
    rho_full, _ = equiangular.solve("post", 8, 2.0, 0.0, jnp.asarray([1.0]), attention="usa")
    np.testing.assert_allclose(rho_half, rho_full, rtol=1e-9)
