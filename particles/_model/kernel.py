r"""Attention kernels: how the logits ℓ_ij = β⟨q_i, k_j⟩ become the weights w_ij of
A_i = Σ_j w_ij v_j (MODEL.md §1). One small final class each; :func:`as_kernel` turns the
names used on the command line ("softmax", "usa") into them.

To add a kernel: one subclass of :class:`AbstractKernel` here (its ``name``, and the four
methods below, each a formula), an entry in :data:`KERNELS`, and its tests.
"""

import abc
import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


class AbstractKernel(eqx.Module):
    """Logits to weights. ``logits`` may hold −∞ where a position part masks a key."""

    name: ClassVar[str]

    @abc.abstractmethod
    def weights(self, logits, num_keys: int, shift=None):
        """w_ij for the logits ℓ_ij + ``shift`` (a constant per row, or None: 0, kept apart
        so that large row constants need not be exponentiated) over ``num_keys`` keys."""

    @abc.abstractmethod
    def from_sums(self, weighted, totals, num_keys: int, real):
        """The attention output from the unshifted sums Σ_j e^{ℓ_ij} v_j (``weighted``) and
        Σ_j e^{ℓ_ij} (``totals``); ``real`` marks the rows that are not padding."""

    @abc.abstractmethod
    def equiangular_weights(self, beta, rho, n):
        """(w_ii, w_ij) of n equiangular tokens ⟨θ_i, θ_j⟩ = ρ (i ≠ j), identity weights
        (MODEL.md §3), computed without overflow."""

    @abc.abstractmethod
    def logit_limit(self, dtype) -> float:
        """The largest logit the kernel turns into finite weights in ``dtype``."""

    def overflow(self, bound: float) -> str:
        """What overflows when logits reach ``bound`` (for the one-line error)."""
        return f"logits up to {bound:.3g} overflow"


class Softmax(AbstractKernel):
    r"""Self-attention (SA): w_ij = e^{ℓ_ij} / Σ_k e^{ℓ_ik} (Geshkovski, Letrouit,
    Polyanskiy, Rigollet, arXiv 2312.10794). Shift-invariant: the row max is
    subtracted, so any finite logit is safe."""

    name: ClassVar[str] = "softmax"

    def weights(self, logits, num_keys, shift=None):
        return jax.nn.softmax(logits, axis=-1)

    def from_sums(self, weighted, totals, num_keys, real):
        # padded rows have no weights: divide by 1 there (0/0 would poison gradients)
        return weighted / jnp.where(real > 0, totals, 1)[..., None]

    def equiangular_weights(self, beta, rho, n):
        e1, er = jnp.ones_like(rho), jnp.exp(beta * (rho - 1))  # numerator and Z divided by e^β
        Z = e1 + (n - 1) * er
        return e1 / Z, er / Z

    def logit_limit(self, dtype):
        return float(np.finfo(dtype).max) / 2


class USA(AbstractKernel):
    r"""Unnormalized self-attention: w_ij = e^{ℓ_ij} / n (arXiv 2312.10794), a gradient
    flow of the interaction energy; e^{ℓ} must stay finite."""

    name: ClassVar[str] = "usa"

    def weights(self, logits, num_keys, shift=None):
        if shift is None:
            return jnp.exp(logits) / num_keys
        return jnp.exp(logits) * (jnp.exp(shift) / num_keys)

    def from_sums(self, weighted, totals, num_keys, real):
        return weighted / num_keys

    def equiangular_weights(self, beta, rho, n):
        return jnp.exp(beta) / n, jnp.exp(beta * rho) / n

    def logit_limit(self, dtype):
        return math.log(float(np.finfo(dtype).max))

    def overflow(self, bound):
        return f"exp({bound:.4g}) overflows"


KERNELS: dict[str, type[AbstractKernel]] = {k.name: k for k in (Softmax, USA)}


def as_kernel(kernel) -> AbstractKernel:
    """A kernel instance from an instance or a name in :data:`KERNELS` (one-line error)."""
    if isinstance(kernel, AbstractKernel):
        return kernel
    if isinstance(kernel, str) and kernel in KERNELS:
        return KERNELS[kernel]()
    raise ValueError(f"attention={kernel!r} is not one of: {', '.join(KERNELS)} (or an AbstractKernel)")
