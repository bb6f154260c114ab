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
import optimistix as optx
from jaxtyping import PyTree

# Proportional–integral step control (Gustafsson, *Control theoretic techniques for
# stepsize selection in explicit Runge–Kutta methods*, ACM TOMS 17, 1991; the
# coefficients are among those diffrax suggests for mildly stiff problems). Once tokens
# cluster, only the decay of the spread inside each cluster is left, and a pure
# integral controller (diffrax's default) grows the step until it sits at the edge of Tsit5's
# stability region, where the error estimate oscillates and lets the cluster drift: on
# the benchmark ensemble (n = 32, d = 128, β = 4, T = 30, float64, rtol = atol = 1e-6)
# `make bench` measured a final error of 3.0e-6 with the integral controller and 3.4e-7
# with this one, for 34 steps instead of 28 (benchmarks/HISTORY.md;
# tests/test_solver.py checks it).
PCOEFF = 0.4
ICOEFF = 0.3


def step_controller(rtol, atol, norm=optx.rms_norm, jump_ts=None) -> diffrax.AbstractStepSizeController:
    """The adaptive step-size controller of every solve: PI control (``PCOEFF``,
    ``ICOEFF``) to ``rtol``/``atol`` in ``norm``, stepping exactly onto the
    discontinuities ``jump_ts``."""
    controller = diffrax.PIDController(rtol=rtol, atol=atol, pcoeff=PCOEFF, icoeff=ICOEFF, norm=norm)
    if jump_ts is not None and len(jump_ts):
        controller = diffrax.ClipStepSizeController(controller, jump_ts=jump_ts)
    return controller


# Tsitouras' tableau (c, the lower triangle a, the weights b and the error weights
# b − b̂), as float64 (the numbers of diffrax.Tsit5, which keeps its tableau private).
_C = (0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0)
_A = (
    (0.161,),
    (-0.008480655492356989, 0.335480655492357),
    (2.8971530571054935, -6.359448489975075, 4.3622954328695815),
    (5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525),
    (5.86145544294642, -12.92096931784711, 8.159367898576159, -0.071584973281401, -0.028269050394068383),
    (0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742, -3.290069515436081, 2.324710524099774),
)
_B = (
    0.09646076681806523,
    0.01,
    0.4798896504144996,
    1.379008574103742,
    -3.290069515436081,
    2.324710524099774,
    0.0,
)
_E = (
    0.0017800110522257773,
    0.0008164344596567463,
    -0.007880878010261994,
    0.1447110071732629,
    -0.5823571654525552,
    0.45808210592918686,
    -0.015151515151515152,
)


def _combine(y0, h, coeffs, ks):
    """y0 + h Σ_j coeffs_j k_j, leaf by leaf (zero coefficients skipped)."""
    terms = [(c, k) for c, k in zip(coeffs, ks) if c != 0.0]
    return jax.tree.map(
        lambda y, *k: y + h * sum(c * kj for (c, _), kj in zip(terms, k)), y0, *[k for _, k in terms]
    )


class _UnrolledTsit5Interpolation(diffrax.AbstractLocalInterpolation):
    """Tsitouras' dense output y0 + h Σ_j b_j(s) k_j, s = (t − t0)/h, with the seven
    stage derivatives k_j kept as they are: diffrax stacks h k_j into one new array
    every step, a copy of seven states that the step never needs."""

    t0: float
    t1: float
    y0: PyTree
    k: tuple

    def __init__(self, *, t0, t1, y0, y1, k):
        del y1
        self.t0, self.t1, self.y0, self.k = t0, t1, y0, k

    def evaluate(self, t0, t1=None, left=True):
        del left
        if t1 is not None:
            return jax.tree.map(lambda a, b: a - b, self.evaluate(t1), self.evaluate(t0))
        h = self.t1 - self.t0
        s = (t0 - self.t0) / jnp.where(h == 0, 1, h)
        b = _dense_weights(s)
        return jax.tree.map(lambda y, *k: y + h * sum(bj * kj for bj, kj in zip(b, k)), self.y0, *self.k)


def _dense_weights(t):
    """The weights b_j(t) of Tsitouras' continuous extension (as in diffrax.Tsit5)."""
    t2 = t * t
    return (
        -1.0530884977290216
        * t
        * (t - 1.3299890189751412)
        * (t2 - 1.4364028541716351 * t + 0.7139816917074209),
        0.1017 * t2 * (t2 - 2.1966568338249754 * t + 1.2949852507374631),
        2.490627285651252793 * t2 * (t2 - 2.38535645472061657 * t + 1.57803468208092486),
        -16.54810288924490272 * (t - 1.21712927295533244) * (t - 0.61620406037800089) * t2,
        47.37952196281928122 * (t - 1.203071208372362603) * (t - 0.658047292653547382) * t2,
        -34.87065786149660974 * (t - 1.2) * (t - 0.666666666666666667) * t2,
        2.5 * (t - 1) * (t - 0.6) * t2,
    )


class UnrolledTsit5(diffrax.AbstractAdaptiveSolver):
    """``diffrax.Tsit5`` with the seven stages unrolled, for ODE terms."""

    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar = _UnrolledTsit5Interpolation

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
        dense_info = dict(y0=y0, y1=y1, k=tuple(ks))
        return y1, y_error, dense_info, f1, diffrax.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)
