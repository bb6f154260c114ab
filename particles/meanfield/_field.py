"""The transport term of the mean-field equation (MODEL.md §12)

    ∂_t ρ = −∇·(ρ v[ρ]) + D Δρ,   v[ρ](x) = P_x A[ρ](x) / s(t, A),
    A[ρ](x) = ∫ e^{β⟨x,y⟩} y ρ(dy) / Z[ρ](x),   Z = ∫ e^{β⟨x,y⟩} ρ(dy) (SA), 1 (USA),

in a basis of harmonics (:class:`Fourier` on the circle, :class:`Gegenbauer` for zonal
densities), with the kernel diagonal (Funk–Hecke): U = ∫ e^{β⟨x,y⟩} ρ dσ has the
coefficients μ_k c_k, the tangential part of ∫ e^{β⟨x,y⟩} y ρ dσ is ∂_θ U/β and its
normal part ⟨x, A⟩ Z = ∂_β U. The speed s is the scheme's
(:meth:`particles.AbstractSpeedScheme.speed` at r = 1, a = ⟨x, A⟩, |A|).
"""

import math

import equinox as eqx
import jax.numpy as jnp

from ..schemes import AbstractSpeedScheme
from ._kernel import kernel_coefficients


class Transport(eqx.Module):
    """N(t, c): the coefficients of −∇·(ρ v[ρ]) for the coefficients c of ρ."""

    basis: eqx.Module
    scheme: AbstractSpeedScheme
    mu: jnp.ndarray  # μ_k e^{−β} per coefficient (Z)
    first: jnp.ndarray  # μ_k e^{−β}/β (∂_θ U / β)
    dmu: jnp.ndarray  # ∂_β μ_k e^{−β} (⟨x, A⟩ Z)
    usa: jnp.ndarray  # a traced flag: one compiled solve serves SA and USA
    scale: jnp.ndarray  # e^β (USA; softmax divides it out)

    def __init__(self, basis, scheme, beta: float, usa: bool, dtype):
        self.basis, self.scheme, self.usa = basis, scheme, jnp.asarray(usa)
        k = basis.degree
        mu, first, dmu = kernel_coefficients(basis.d, beta, basis.modes)
        self.mu, self.first, self.dmu = (jnp.asarray(v[k], dtype) for v in (mu, first, dmu))
        self.scale = jnp.asarray(math.exp(beta) if usa else 1.0, dtype)

    def attention(self, c):
        """(tangential component of A along ∂_θ, ⟨x, A⟩) on the grid."""
        tangential = self.basis.dtheta_values(c * self.first)
        normal = self.basis.values(c * self.dmu)
        Z = jnp.where(self.usa, 1 / self.scale, self.basis.values(c * self.mu))
        return tangential / Z, normal / Z

    def velocity(self, t, c):
        """v_θ on the grid."""
        tangential, normal = self.attention(c)
        one = jnp.ones_like(normal)
        s = jnp.broadcast_to(self.scheme.speed(t, one, normal, jnp.hypot(tangential, normal)), normal.shape)
        moving = s != 0  # s = 0 only where A = 0 (ngpt): no motion, not 0/0
        return jnp.where(moving, tangential / jnp.where(moving, s, 1), 0)

    def __call__(self, t, c, args):
        return self.basis.weak_divergence(self.basis.values(c) * self.velocity(t, c))


def free_energy(transport: Transport, c, noise: float, beta: float):
    """F(ρ) = D ∫ ρ log ρ dσ − (1/2β) ∬ (e^{β⟨x,y⟩} − 1) ρ(x) ρ(y) dσ dσ, USA's
    Lyapunov functional (MODEL.md §12) shifted by the constant (1/2β)(∫ρ)², so that it
    has a limit at β = 0 (D ∫ρ log ρ − r²/2). The interaction is exact (Funk–Hecke:
    Σ_k μ_k c_k²/β − c_0²/β), the entropy a quadrature on the grid."""
    basis = transport.basis
    rho = basis.values(c)
    w = basis.weights(rho.dtype)
    entropy = jnp.sum(w * jnp.where(rho > 0, rho * jnp.log(jnp.where(rho > 0, rho, 1)), 0))
    mu0 = kernel_coefficients(basis.d, beta, 0)[0][0] * math.exp(beta)
    zero = 0.0 if beta == 0 else float((mu0 - 1) / beta)
    interaction = transport.scale * jnp.sum(transport.first[1:] * c[1:] ** 2) + zero * c[0] ** 2
    return noise * entropy - interaction / 2
