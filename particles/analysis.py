"""Observables of a configuration of directions (MODEL.md §4)."""

import jax.numpy as jnp
from jaxtyping import Array, Float

from ._sphere import cosine_matrix


def mean_cosine(theta: Float[Array, "*b n d"]) -> Float[Array, "*b"]:
    """ρ̄ = (1/(n(n−1))) Σ_{i≠j} ⟨θ_i, θ_j⟩ (1 for a single token)."""
    n = theta.shape[-2]
    if n == 1:
        return jnp.ones(theta.shape[:-2], theta.dtype)
    s = jnp.sum(theta, axis=-2)
    return (jnp.sum(s * s, axis=-1) - jnp.sum(theta * theta, axis=(-1, -2))) / (n * (n - 1))


def min_cosine(theta: Float[Array, "*b n d"]) -> Float[Array, "*b"]:
    """min_{i≠j} ⟨θ_i, θ_j⟩ (1 for a single token)."""
    n = theta.shape[-2]
    gram = cosine_matrix(theta)
    return (
        jnp.min(jnp.where(jnp.eye(n, dtype=bool), jnp.inf, gram), axis=(-1, -2))
        if n > 1
        else jnp.ones(theta.shape[:-2], theta.dtype)
    )
