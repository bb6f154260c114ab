"""Tsitouras' 5(4) Runge–Kutta pair with its stages written out (unrolled).

Same tableau, error estimate, FSAL and dense output as ``diffrax.Tsit5`` (Tsitouras,
*Runge–Kutta pairs of order 5(4) satisfying only the first column simplifying
assumption*, Comput. Math. Appl. 62, 2011). diffrax runs the stages in a loop whose
every stage reads the whole buffer of seven stage derivatives; for a large batched
state on a CPU that memory traffic, not the attention, dominates a step. Written out,
each stage reads only the derivatives it needs and XLA fuses each linear combination
into one pass.
"""

from typing import ClassVar, NamedTuple

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


class LoopSolution(NamedTuple):
    """What :func:`tsit5_loop` returns: ``saves`` (``save_fn`` of the state at each
    save time, time first; NaN where the run did not get there), ``final``
    (``save_fn`` of the state where the run ended), ``y`` (that state), ``t_end`` (t1,
    or the time the stop condition was met), ``stopped``, ``ok`` (False: out of steps, or a step that stayed
    non-finite) and the step counts."""

    saves: PyTree
    final: PyTree
    y: PyTree
    t_end: jax.Array
    stopped: jax.Array
    ok: jax.Array
    num_steps: jax.Array
    num_rejected: jax.Array


def _initial_step(field, t0, y0, f0, args, rtol, atol, norm, error_order):
    """Hairer, Nørsett and Wanner's starting step (Solving ODEs I, §II.4), as diffrax's
    PIDController picks it."""
    scale = jax.tree.map(lambda y: atol + rtol * jnp.abs(y), y0)
    div = lambda a: jax.tree.map(lambda x, s: x / s, a, scale)  # noqa: E731
    d0, d1 = norm(div(y0)), norm(div(f0))
    small = (d0 < 1e-5) | (d1 < 1e-5)
    h0 = jnp.where(small, 1e-6, 0.01 * d0 / jnp.where(small, 1, d1))
    f1 = field(t0 + h0, jax.tree.map(lambda y, f: y + h0 * f, y0, f0), args)
    d2 = norm(div(jax.tree.map(lambda a, b: a - b, f1, f0))) / h0
    max_d = jnp.maximum(d1, d2)
    h1 = jnp.where(max_d <= 1e-15, jnp.maximum(1e-6, h0 * 1e-3), (0.01 / max_d) ** (1 / error_order))
    return jnp.minimum(100 * h0, h1)


def _bisect(g, lo, hi, iterations):
    """The root of the increasing sign change of ``g`` in [lo, hi] (g(lo) < 0 ≤ g(hi))."""

    def body(_, bracket):
        lo, hi = bracket
        mid = (lo + hi) / 2
        below = g(mid) < 0
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    return jax.lax.fori_loop(0, iterations, body, (lo, hi))[1]


_A_TABLE = tuple(row + (0.0,) * (7 - len(row)) for row in _A)  # stage i+1 from k_0..k_i; the last is y1


def _rolled_step(field, t, h, y0, f0, args):
    """One Tsit5 step with its six new stages in a ``lax.fori_loop`` (the field traced
    once, not seven times: the compiled program is several times smaller) over a
    buffer of the seven stage derivatives. Returns (y1, error estimate, stages)."""
    A = jnp.asarray(_A_TABLE, h.dtype)
    c = jnp.asarray(_C, h.dtype)
    ks = jax.tree.map(lambda f: jnp.zeros((7, *f.shape), f.dtype).at[0].set(f), f0)

    def combine(y, w, ks):
        return jax.tree.map(lambda a, k: a + h * jnp.tensordot(w, k, axes=1), y, ks)

    def stage(i, ks):
        k = field(t + c[i] * h, combine(y0, A[i], ks), args)
        return jax.tree.map(lambda buf, v: buf.at[i + 1].set(v), ks, k)

    ks = jax.lax.fori_loop(0, 6, stage, ks)
    y1 = combine(y0, jnp.asarray(_B, h.dtype), ks)  # k_6 was taken at y1: first same as last
    error = jax.tree.map(lambda y: h * jnp.tensordot(jnp.asarray(_E, h.dtype), y, axes=1), ks)
    return y1, error, ks


def _rolled_dense(t, h, y0, ks, tq):
    """Tsitouras' dense output y0 + h Σ_j b_j(s) k_j at ``tq``, s = (tq − t)/h."""
    b = jnp.stack(_dense_weights((tq - t) / jnp.where(h == 0, 1, h)))
    return jax.tree.map(lambda y, k: y + h * jnp.tensordot(b, k, axes=1), y0, ks)


def _pi_factor(error, prev, accept, c1, c2):
    """The PI controller's step factor 0.9 (1/e_n)^{c1} (1/e_{n−1})^{c2}, clipped to
    [1, 10] after an accepted step and [0.2, 0.9] after a rejected one, and the 1/e_n
    to remember (1 where it is 0 or infinite)."""
    inv = jnp.where(jnp.isfinite(error), 1 / error, 0.0)
    factor = 0.9 * inv**c1 * prev**c2
    factor = jnp.clip(
        jnp.where(jnp.isfinite(factor), factor, 10.0),
        jnp.where(accept, 1, 0.2),
        jnp.where(accept, 10, 0.9),
    )
    return factor, jnp.where((inv == 0) | jnp.isinf(inv), 1, inv)


def tsit5_loop(
    field,
    y0,
    args,
    *,
    t0,
    t1,
    ts,
    rtol,
    atol,
    norm,
    max_steps,
    save_fn,
    stop_fn=None,
    jump_ts=None,
    step_size=None,
) -> LoopSolution:
    """Integrate dy/dt = ``field(t, y, args)`` from ``y0`` on [t0, t1] with the
    unrolled Tsit5 pair and the PI controller of :func:`step_controller` (the same
    coefficients, error scale atol + rtol max(|y0|, |y1|) in ``norm``, step
    factors in [0.2, 10] with safety 0.9), saving ``save_fn(y)`` at ``ts`` from the
    dense output, stepping exactly onto ``jump_ts`` (a static tuple), and ending early
    once ``stop_fn(y) >= 0`` (located by bisection on the dense output). With
    ``step_size``: constant steps t0 + k h (the last one clipped to t1), no control.

    The whole solve is one ``lax.while_loop``: what ``diffrax.diffeqsolve`` builds
    around its steps (saving machinery, events, progress meters, adjoints) took
    compilation 1.6 s for a trivial field on the 2-core machine, this loop 0.25 s; a
    sweep's first result is mostly that compilation (benchmarks/HISTORY.md)."""
    error_order = UnrolledTsit5().error_order(diffrax.ODETerm(field))
    c1, c2 = (PCOEFF + ICOEFF) / error_order, -PCOEFF / error_order
    dtype = jnp.result_type(*jax.tree.leaves(y0))
    ts = jnp.asarray(ts, dtype)
    jumps = jnp.concatenate([jnp.zeros(0, dtype) if jump_ts is None else jnp.asarray(jump_ts, dtype),
                             jnp.full(1, jnp.inf, dtype)])  # fmt: skip
    t0, t1 = jnp.asarray(t0, dtype), jnp.asarray(t1, dtype)
    t1_floor = t1 - 100 * jnp.finfo(dtype).eps * jnp.abs(t1)  # as diffrax: no last step of a few ulp
    nan_save = jax.tree.map(
        lambda s: jnp.full((ts.shape[0], *s.shape), jnp.nan, s.dtype), jax.eval_shape(save_fn, y0)
    )
    put = lambda saves, k, value: jax.tree.map(lambda a, v: a.at[k].set(v), saves, value)  # noqa: E731

    def save_through(saves, k, t_hi, value_at):
        """Saves at every ts[k] <= t_hi, from ``value_at(t)``."""

        def body(c):
            saves, k = c
            return put(saves, k, save_fn(value_at(ts[k]))), k + 1

        return jax.lax.while_loop(lambda c: (c[1] < ts.shape[0]) & (ts[c[1]] <= t_hi), body, (saves, k))

    f0 = field(t0, y0, args)
    saves, k = save_through(nan_save, jnp.asarray(0), t0, lambda t: y0)
    fixed = step_size is not None
    h = step_size if fixed else _initial_step(field, t0, y0, f0, args, rtol, atol, norm, error_order)
    state = dict(t=t0, h=h, y=y0, f=f0, saves=saves, k=k, jump=jnp.searchsorted(jumps, t0, side="right"),
                 prev=jnp.ones((), dtype), steps=jnp.asarray(0), rejected=jnp.asarray(0),
                 done=t0 >= t1, stopped=jnp.asarray(False), t_end=t1)  # fmt: skip

    def step(s):
        t, y = s["t"], s["y"]
        t_next = jnp.minimum(jnp.where(t + s["h"] > t1_floor, t1, t + s["h"]), jumps[s["jump"]])
        lands_on_jump = t_next == jumps[s["jump"]]
        h_step = t_next - t
        y1, y_error, ks = _rolled_step(field, t, h_step, y, s["f"], args)
        f1 = jax.tree.map(lambda k: k[6], ks)
        scale = jax.tree.map(lambda a, b: atol + rtol * jnp.maximum(jnp.abs(a), jnp.abs(b)), y, y1)
        error = norm(jax.tree.map(lambda e, sc: e / sc, y_error, scale))
        accept = jnp.asarray(True) if fixed else jnp.isfinite(error) & (error <= 1)
        factor, inv = _pi_factor(error, s["prev"], accept, c1, c2)
        dense_at = lambda tq: _rolled_dense(t, h_step, y, ks, tq)  # noqa: E731
        stop = jnp.asarray(False) if stop_fn is None else accept & (stop_fn(y1) >= 0)
        t_stop = jax.lax.cond(
            stop, lambda: _bisect(lambda tq: stop_fn(dense_at(tq)), t, t_next, 60), lambda: t_next
        ) if stop_fn is not None else t_next  # fmt: skip
        y_end = jax.lax.cond(stop, lambda: dense_at(t_stop), lambda: y1) if stop_fn is not None else y1
        saves, k = jax.lax.cond(
            accept, lambda: save_through(s["saves"], s["k"], t_stop, dense_at), lambda: (s["saves"], s["k"])
        )
        f_next = jax.lax.cond(accept & lands_on_jump, lambda: field(t_next, y1, args), lambda: f1)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(accept, a, b), new, old)  # noqa: E731
        return dict(
            t=jnp.where(accept, t_next, t), h=s["h"] if fixed else (t_next - t) * factor, y=keep(y_end, y), f=keep(f_next, s["f"]),
            saves=saves, k=k, jump=s["jump"] + (accept & lands_on_jump).astype(s["jump"].dtype), prev=jnp.where(accept, inv, s["prev"]),
            steps=s["steps"] + 1, rejected=s["rejected"] + (~accept).astype(s["rejected"].dtype), stopped=stop,
            done=stop | (accept & (t_next >= t1)), t_end=jnp.where(stop, t_stop, s["t_end"]),
        )  # fmt: skip

    s = jax.lax.while_loop(lambda s: ~s["done"] & (s["steps"] < max_steps), step, state)
    return LoopSolution(
        saves=s["saves"], final=save_fn(s["y"]), y=s["y"], t_end=s["t_end"], stopped=s["stopped"], ok=s["done"],
        num_steps=s["steps"], num_rejected=s["rejected"],
    )  # fmt: skip
