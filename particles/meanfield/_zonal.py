"""Zonal densities on S^{d−1}, d ≥ 3: functions of the polar angle θ from the pole e_1
(s = cos θ = ⟨x, e_1⟩), expanded in Gegenbauer polynomials C_k^{(d−2)/2}(s), the zonal
spherical harmonics, normalised in L²(σ):

    ρ(x) = Σ_{k=0}^{K} c_k P_k(s),   ∫ P_j P_k dσ = δ_jk,   ΔP_k = −k(k+d−2) P_k.

Under σ, s has the density ∝ (1 − s²)^{(d−3)/2}: Gauss–Gegenbauer quadrature on
M ≥ (3K + 3)/2 nodes integrates the flux term ∂_θP_m · ρ v exactly for the quadratic
(USA) part (the 3/2 rule, as on the circle). The weak form of −∇·(ρ v):

    ∫ P_m (−∇·(ρ v)) dσ = ∫ ∂_θP_m · ρ v_θ dσ,

v_θ the velocity's component along ∂_θ (away from the pole).
"""

import equinox as eqx
import jax.numpy as jnp
import numpy as np


def _tables(d: int, modes: int, nodes: int):
    """(s, weights, P, ∂_θP) on the nodes, float64; P[j, k] = P_k(s_j); s decreasing
    (θ increasing)."""
    from scipy import special  # imported when used: `import particles` stays light

    lam = (d - 2) / 2
    s, w = special.roots_gegenbauer(nodes, lam)
    s, w = s[::-1], w[::-1] / np.sum(w)
    k = np.arange(modes + 1)
    C = special.eval_gegenbauer(k[None, :], lam, s[:, None])
    dC = np.zeros_like(C)  # d/ds C_k^λ = 2λ C_{k−1}^{λ+1}
    dC[:, 1:] = 2 * lam * special.eval_gegenbauer(k[None, :-1], lam + 1, s[:, None])
    norm = np.sqrt(np.sum(w[:, None] * C**2, axis=0))
    sin = np.sqrt(1 - s**2)
    return s, w, C / norm, -sin[:, None] * dC / norm


class Gegenbauer(eqx.Module):
    """The zonal basis of S^{d−1}: K + 1 polynomials on M nodes."""

    modes: int = eqx.field(static=True)
    d: int = eqx.field(static=True)
    size: int = eqx.field(static=True)
    basis: jnp.ndarray
    dbasis: jnp.ndarray
    wq: jnp.ndarray

    def __init__(self, d: int, modes: int, dtype):
        self.modes, self.d = modes, d
        nodes = (3 * modes + 4) // 2 + 1
        _, w, P, dP = _tables(d, modes, nodes)
        self.size = nodes
        self.basis = jnp.asarray(P, dtype)
        self.dbasis = jnp.asarray(dP, dtype)
        self.wq = jnp.asarray(w, dtype)

    @property
    def degree(self) -> np.ndarray:
        return np.arange(self.modes + 1)

    @property
    def angle(self) -> np.ndarray:
        """The polar angles θ_j = arccos s_j ∈ (0, π), increasing."""
        from scipy import special

        return np.arccos(np.clip(special.roots_gegenbauer(self.size, (self.d - 2) / 2)[0][::-1], -1, 1))

    def weights(self, dtype) -> jnp.ndarray:
        return self.wq.astype(dtype)

    def values(self, c):
        return self.basis @ c

    def dtheta_values(self, c):
        return self.dbasis @ c

    def project(self, f):
        return self.basis.T @ (self.wq * f)

    def weak_divergence(self, flux):
        return self.dbasis.T @ (self.wq * flux)

    def order(self, c):
        """r = |∫ x ρ dσ| = |∫ s ρ dσ| = |c_1|/√d (P_1 = √d s)."""
        return jnp.abs(c[1]) / np.sqrt(self.d)
