"""Tsitouras' 5(4) Runge–Kutta pair with its stages written out (unrolled).

Same tableau, error estimate, FSAL and dense output as ``diffrax.Tsit5`` (Tsitouras,
*Runge–Kutta pairs of order 5(4) satisfying only the first column simplifying
assumption*, Comput. Math. Appl. 62, 2011). diffrax runs the stages in a loop whose
every stage reads the whole buffer of seven stage derivatives; for a large batched
state on a CPU that memory traffic, not the attention, dominates a step. Written out,
each stage reads only the derivatives it needs and XLA fuses each linear combination
into one pass.
"""

from typing import ClassVar

import diffrax
import jax
import jax.numpy as jnp
from diffrax._solver.tsit5 import _tsit5_tableau, _Tsit5Interpolation

_A = tuple(tuple(float(a) for a in row) for row in _tsit5_tableau.a_lower)
_C = tuple(float(c) for c in _tsit5_tableau.c)
_B = tuple(float(b) for b in _tsit5_tableau.b_sol)
_E = tuple(float(e) for e in _tsit5_tableau.b_error)


def _combine(y0, h, coeffs, ks):
    """y0 + h Σ_j coeffs_j k_j, leaf by leaf (zero coefficients skipped)."""
    terms = [(c, k) for c, k in zip(coeffs, ks) if c != 0.0]
    return jax.tree.map(
        lambda y, *k: y + h * sum(c * kj for (c, _), kj in zip(terms, k)), y0, *[k for _, k in terms]
    )


class UnrolledTsit5(diffrax.AbstractAdaptiveSolver):
    """``diffrax.Tsit5`` with the seven stages unrolled, for ODE terms."""

    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar = _Tsit5Interpolation

    def order(self, terms):
        return 5

    def init(self, terms, t0, t1, y0, args):
        return terms.vf(t0, y0, args)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        h = t1 - t0
        f0 = jax.lax.cond(made_jump, lambda: terms.vf(t0, y0, args), lambda: solver_state)
        ks = [f0]
        for a, c in zip(_A[:-1], _C[:-1]):
            ks.append(terms.vf(t0 + c * h, _combine(y0, h, a, ks), args))
        y1 = _combine(y0, h, _B, ks)
        f1 = terms.vf(t1, y1, args)  # the last stage is taken at y1: first same as last
        ks.append(f1)
        y_error = jax.tree.map(lambda y: jnp.zeros_like(y), y0)
        y_error = _combine(y_error, h, _E, ks)
        k = jax.tree.map(lambda *kj: h * jnp.stack(kj), *ks)
        dense_info = dict(y0=y0, y1=y1, k=k)
        return y1, y_error, dense_info, f1, diffrax.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)
