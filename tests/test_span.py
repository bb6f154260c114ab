"""Solving in the span of the initial tokens (n < d): the same flow as in R^d.

With Q = K = V = I and a speed scheme, dθ_i/dt is a combination of θ_1..θ_n, so the
tokens never leave their initial span and the flow in orthonormal coordinates of that
span is the flow in R^d (inner products are all it sees)."""

import jax.numpy as jnp
import numpy as np
import pytest

import particles
from particles.sphere import span_basis


@pytest.mark.parametrize("scheme", ["post", "pre", "none", "spannorm"])
def test_span_solve_equals_ambient_solve_step_for_step(scheme):
    """Constant steps: the same arithmetic up to rounding, so the two agree to 1e-12."""
    x0 = particles.init.gaussian(5, 6, 17, batch=2)
    problem = particles.make_problem(x0, scheme, beta=np.array([1.5, -0.7]), t1=2.0)
    kw = dict(ts=[0.5, 2.0], step_size=0.05)
    # what simulate does, with the solver's own coordinates in view: the span solve did
    # run in the 6 coordinates of the span (and the other in R^17)
    configs = {s: particles.SolveConfig(reduce_span=s, **kw) for s in (True, False)}
    raw = {s: particles.integrate(problem, config) for s, config in configs.items()}
    assert isinstance(raw[True].chart, particles.SpanChart) and raw[True].lift.shape == (2, 2, 6, 6)
    assert isinstance(raw[False].chart, particles.AmbientChart) and raw[False].lift.shape == (2, 2, 6, 17)
    span, full = (particles.Trajectory.from_raw(raw[s], problem, configs[s]) for s in (True, False))
    assert span.theta.shape == full.theta.shape == (2, 2, 6, 17)
    np.testing.assert_allclose(span.theta, full.theta, rtol=0, atol=1e-12)
    np.testing.assert_allclose(span.r, full.r, rtol=1e-12)


def test_span_solve_adaptive_meets_the_tolerance_and_the_collapse_stop():
    """Adaptive steps see the error in other coordinates, so the step sequences differ:
    both solves are within their tolerance of a tight reference, and the collapse stop
    (a condition on inner products) fires at the same time."""
    x0 = particles.init.uniform_sphere(2, 8, 40, batch=3)
    kw = dict(beta=2.0, t1=6.0, ts=np.linspace(0, 6, 7))
    ref = particles.simulate(x0, "post", rtol=1e-12, atol=1e-12, reduce_span=False, **kw)
    for reduce_span in (True, False):
        traj = particles.simulate(x0, "post", rtol=1e-7, atol=1e-7, reduce_span=reduce_span, **kw)
        np.testing.assert_allclose(traj.theta, ref.theta, atol=2e-6)
    stops = [
        particles.simulate(
            x0,
            "post",
            beta=2.0,
            t1=50.0,
            stop_at_collapse=1e-3,
            rtol=1e-10,
            atol=1e-10,
            reduce_span=reduce_span,
        ).stats["t_stop"]
        for reduce_span in (True, False)
    ]
    assert abs(stops[0] - stops[1]) < 1e-6, stops


def test_span_basis_is_orthonormal_and_spans_the_tokens():
    theta = particles.init.equiangular(5, 12, 0.3)  # also a rank-deficient case below
    for points in (theta, jnp.concatenate([theta, theta[:2]], axis=0)):
        basis = span_basis(points)
        np.testing.assert_allclose(basis @ basis.T, np.eye(basis.shape[0]), atol=1e-14)
        np.testing.assert_allclose((points @ basis.T) @ basis, points, atol=1e-14)


def test_span_solve_only_where_the_flow_keeps_the_span():
    x0 = particles.init.uniform_sphere(0, 4, 9)
    V = particles.random_weights(0, 9)[0]
    keeps_span = lambda scheme, **w: particles.make_problem(x0, scheme, beta=1.0, t1=1.0, **w).keeps_span
    assert keeps_span(particles.get_scheme("post"))
    assert not keeps_span(particles.get_scheme("post"), V=V)

    class Drift(particles.AbstractAmbientScheme):  # ambient: may leave the span
        def ambient_velocity(self, t, x, A):
            return A + jnp.ones_like(x)

    assert not keeps_span(Drift())
    # a velocity that leaves the span is followed, not projected away
    traj = particles.simulate(x0, Drift(), beta=1.0, t1=1.0, ts=[1.0], rtol=1e-9, atol=1e-9)
    full = particles.simulate(
        x0, Drift(), beta=1.0, t1=1.0, ts=[1.0], rtol=1e-9, atol=1e-9, reduce_span=False
    )
    np.testing.assert_array_equal(traj.theta, full.theta)
    outside = traj.x[-1] - (traj.x[-1] @ span_basis(x0).T) @ span_basis(x0)
    assert float(jnp.max(jnp.abs(outside))) > 0.1


def test_span_solve_with_as_many_tokens_as_dimensions_is_the_ambient_solve():
    """With n >= d the span is all of R^d: ``reduce_span=True`` is the ambient solve
    itself (an AmbientChart, the same saves); test_span_solve_equals_ambient_solve_step_for_step
    checks that with n < d it is not (a SpanChart)."""
    x0 = particles.init.uniform_sphere(1, 10, 4, batch=2)
    problem = particles.make_problem(x0, "post", beta=np.array([1.0, 3.0]), t1=2.0)
    raw = [
        particles.integrate(problem, particles.SolveConfig(reduce_span=s, ts=[2.0])) for s in (True, False)
    ]
    for r in raw:
        assert isinstance(r.chart, particles.AmbientChart) and r.lift.shape == (1, 2, 10, 4)
    np.testing.assert_array_equal(raw[0].lift, raw[1].lift)
    theta = np.asarray(raw[0].lift[0]) / np.linalg.norm(np.asarray(raw[0].lift[0]), axis=-1, keepdims=True)
    assert float(np.max(np.abs(theta - np.asarray(x0)))) > 0.1  # the flow moved them
