"""The token flow in the coordinates the solver integrates: the lifted direction y_i
(θ_i = y_i/|y_i|) with dy_i/dt = |y_i| dθ_i/dt, and the radius r_i. The directions then
follow the scheme exactly whatever |y_i| drifts to numerically, so sphere-bound schemes
stay on the sphere to rounding over any horizon. Encoding (:func:`initial_state`,
:func:`lifted`), the field (:func:`vector_field`) and decoding (:func:`tokens`)."""

import functools

import jax
import jax.numpy as jnp

from ._chart import AmbientChart, SpanChart
from .sphere import normalize, safe_norm


def vector_field(t, y, args):
    """The flow in lifted coordinates, y = (lift, r) and args = (scheme, attention):
    dlift_i/dt = |lift_i| dθ_i/dt (θ_i = lift_i/|lift_i|), dr_i/dt the scheme's rate."""
    lift, r = y
    scheme, attention = args[:2]  # (scheme, attention[, noise])
    norm = safe_norm(lift)
    dtheta, dr = scheme.velocity(t, lift / norm[..., None], r, attention)
    return norm[..., None] * dtheta, dr


# The array work before and after the solve is one compiled program each (op by op it
# was some forty small programs, each traced and looked up in the compilation cache on
# every start of the command line).
@functools.partial(jax.jit, static_argnums=(1, 2))
def initial_state(x, sphere_bound: bool, span: bool):
    """(coordinates of θ, r, chart) at t0 from the tokens x: θ in the span's coordinates
    when ``span`` (:class:`SpanChart`), else in R^d."""
    theta = normalize(x)
    r = jnp.ones(x.shape[:-1], x.dtype) if sphere_bound else safe_norm(x)
    chart = SpanChart.of(theta) if span else AmbientChart(x.shape[-1])
    return chart.encode(theta), r, chart


def lifted(problem, x):
    """The lifted state (θ = x/|x|, r = |x|; r = 1 for sphere-bound schemes) of tokens x."""
    r = jnp.ones(x.shape[:-1], x.dtype) if problem.scheme.sphere_bound else safe_norm(x)
    return normalize(x), r


def tokens(y):
    lift, r = y
    return r[..., None] * normalize(lift)
