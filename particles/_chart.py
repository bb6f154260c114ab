"""Coordinates of the state: the ambient R^d, or the span of the initial tokens.

With n < d, identity Q, K, V and a scheme that keeps the span (``keeps_span``: every
speed scheme, whose dθ_i/dt ∝ P_{θ_i} A_i is a combination of θ_1..θ_n), the tokens
stay in the span of the initial tokens, so the solve can run in n orthonormal
coordinates of that span: θ_i = Σ_k c_ik b_k with the rows b_k of :func:`span_basis`.
Every observable depends on inner products only, which the chart keeps.
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .kernels import PRECISION
from .sphere import span_basis


class AbstractChart(eqx.Module):
    """Coordinates of token vectors: ``encode`` R^d → chart, ``decode_saves`` maps saves (*batch, T, n, m) back (norms and
    inner products kept); ``ambient_dim`` is d, the dimension the error is measured in."""

    ambient_dim: eqx.AbstractVar[int]

    def encode(self, x: Float[Array, "*b n d"]) -> Float[Array, "*b n m"]:
        raise NotImplementedError

    def decode_saves(self, c: Float[Array, "*b T n m"]) -> Float[Array, "*b T n d"]:
        raise NotImplementedError


class AmbientChart(AbstractChart):
    """The identity: the state is in R^d."""

    ambient_dim: int = eqx.field(static=True)

    def encode(self, x):
        return x

    def decode_saves(self, c):
        return c


class SpanChart(AbstractChart):
    """Orthonormal coordinates of the span of the initial tokens of each trajectory:
    ``basis`` (*batch, m, d) with orthonormal rows, from a QR factorization of Θ(t0)ᵀ."""

    basis: Float[Array, "*batch m d"]

    @property
    def ambient_dim(self) -> int:
        return self.basis.shape[-1]

    @classmethod
    def of(cls, theta: Float[Array, "*batch n d"]) -> "SpanChart":
        return cls(span_basis(theta))

    def encode(self, x):
        return jnp.einsum("...id,...kd->...ik", x, self.basis, precision=PRECISION)

    def decode_saves(self, c):
        # c may carry a time axis before the tokens: (*batch, T, n, m)
        return jnp.einsum("...tik,...kd->...tid", c, self.basis, precision=PRECISION)
