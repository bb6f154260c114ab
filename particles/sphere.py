"""Geometry of the unit sphere S^{d-1}, written for one point and lifted by broadcasting.

The double-``where`` trick (jax-md ``space.py::distance``) keeps gradients finite at
the origin, where the norm is not differentiable.
"""

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float


def safe_norm(y: Float[ArrayLike, "... d"]) -> Float[Array, "..."]:
    """|y| along the last axis, with a zero (not NaN) gradient at y = 0."""
    sq = jnp.sum(y * y, axis=-1)
    positive = sq > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1)), 0)


def normalize(y: Float[ArrayLike, "... d"]) -> Float[Array, "... d"]:
    """The projection N(y) = y / |y| onto the sphere."""
    return y / safe_norm(y)[..., None]


def tangent_projection(theta: Float[ArrayLike, "... d"], v: Float[Array, "... d"]) -> Float[Array, "... d"]:
    """P_θ v = v − ⟨θ, v⟩ θ, the component of v tangent to the sphere at θ."""
    return v - jnp.sum(theta * v, axis=-1, keepdims=True) * theta


def cosine_matrix(theta: Float[ArrayLike, "... n d"]) -> Float[Array, "... n n"]:
    """Gram matrix ⟨θ_i, θ_j⟩ of unit vectors."""
    return jnp.einsum("...id,...jd->...ij", theta, theta)


def span_basis(theta: Float[ArrayLike, "... n d"]) -> Float[Array, "... m d"]:
    """Orthonormal rows spanning the tokens θ_1..θ_n (m = min(n, d) rows), from the
    QR factorization Θᵀ = B̃ R; Θ = (Θ Bᵀ) B exactly when B's rows span the tokens."""
    q, _ = jnp.linalg.qr(jnp.swapaxes(theta, -1, -2), mode="reduced")
    return jnp.swapaxes(q, -1, -2)
