"""The circle (d = 2): a density as a real Fourier series with K modes, evaluated on
a grid of N ≥ 3K + 1 points (the 3/2 rule: the quadratic flux ρ v has degree 2K, so its
first K modes are computed without aliasing).

The coefficients c = (a_0, a_1..a_K, b_1..b_K) are orthonormal in L²(σ), σ = dθ/2π:

    ρ(θ) = a_0 + √2 Σ_{k=1}^{K} (a_k cos kθ + b_k sin kθ),

so the density's L² norm is |c| and its mass ∫ρ dσ is a_0.
"""

import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import lax


def grid_size(modes: int) -> int:
    """The smallest N = 2^a 3^b 5^c (a fast FFT length) with N ≥ 3·modes + 1."""
    n = 3 * modes + 1
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


class Fourier(eqx.Module):
    """The circle's basis: K modes on an N-point grid."""

    modes: int = eqx.field(static=True)
    size: int = eqx.field(static=True)
    d: int = eqx.field(static=True, default=2)

    @property
    def degree(self) -> np.ndarray:
        """The degree k of each coefficient (0, 1..K, 1..K)."""
        k = np.arange(1, self.modes + 1)
        return np.concatenate([[0], k, k])

    @property
    def angle(self) -> np.ndarray:
        """The grid θ_j = 2πj/N ∈ [0, 2π)."""
        return 2 * np.pi * np.arange(self.size) / self.size

    def weights(self, dtype) -> jnp.ndarray:
        """Quadrature weights of σ on the grid (1/N each)."""
        return jnp.full((self.size,), 1 / self.size, dtype)

    def _complex(self, c):
        """ρ̂_k = ∫ ρ e^{−ikθ} dσ for k = 0..K."""
        K = self.modes
        re = jnp.concatenate([c[:1], c[1 : K + 1] / math.sqrt(2)])
        im = jnp.concatenate([jnp.zeros_like(c[:1]), -c[K + 1 :] / math.sqrt(2)])
        return lax.complex(re, im)

    def _real(self, hat):
        h = hat[: self.modes + 1]
        return jnp.concatenate([h[:1].real, math.sqrt(2) * h[1:].real, -math.sqrt(2) * h[1:].imag])

    def _times_ik(self, hat, sign=1):
        """(±ik) ρ̂_k."""
        k = sign * jnp.arange(self.modes + 1).astype(hat.real.dtype)
        return lax.complex(-k * hat.imag, k * hat.real)

    def _to_grid(self, hat):
        full = jnp.zeros(self.size // 2 + 1, hat.dtype).at[: self.modes + 1].set(hat)
        return jnp.fft.irfft(full, n=self.size) * self.size

    def values(self, c):
        """ρ on the grid."""
        return self._to_grid(self._complex(c))

    def dtheta_values(self, c):
        """∂_θ ρ on the grid."""
        return self._to_grid(self._times_ik(self._complex(c)))

    def project(self, f):
        """The first K modes of grid values f (exact for a trigonometric polynomial of
        degree < N − K)."""
        return self._real(jnp.fft.rfft(f) / self.size)

    def weak_divergence(self, flux):
        """The coefficients of −∂_θ(flux), flux the tangential component on the grid."""
        hat = jnp.fft.rfft(flux)[: self.modes + 1] / self.size
        return self._real(self._times_ik(hat, sign=-1))

    def order(self, c):
        """r = |∫ e^{iθ} ρ dσ| = |ρ̂_1|."""
        return jnp.hypot(c[1], c[self.modes + 1]) / math.sqrt(2)
