"""The solve (particles.integrate, under simulate): convergence order, sphere-bound
schemes kept on the sphere, the step budget and the progress bar."""

import diffrax
import jax.numpy as jnp
import numpy as np
import pytest

import particles


@pytest.mark.parametrize("solver,order", [(diffrax.Tsit5(), 5), (diffrax.Heun(), 2)])
def test_convergence_order_with_constant_steps(solver, order):
    """Global error at t1 falls like h^order (diffrax test_integrate.py::test_ode_order)."""
    x0 = particles.init.uniform_sphere(3, 6, 3)
    kwargs = dict(beta=1.5, t1=1.0, ts=[1.0])
    ref = particles.simulate(x0, "pre", rtol=1e-13, atol=1e-14, **kwargs).x[-1]
    hs = 2.0 ** -np.arange(2, 6) if order == 5 else 2.0 ** -np.arange(4, 9)
    errors = [
        float(
            jnp.max(jnp.abs(particles.simulate(x0, "pre", solver=solver, step_size=h, **kwargs).x[-1] - ref))
        )
        for h in hs
    ]
    slope = np.polyfit(np.log(hs), np.log(errors), 1)[0]
    assert order - 0.4 < slope < order + 0.6, (slope, errors)


def test_sphere_bound_schemes_stay_on_sphere_and_match_float64():
    """Post, ngpt, sqrt keep r ≡ 1 and |x| = 1; a long float32 run stays on the sphere
    and close to the float64 solution."""
    x0 = particles.init.uniform_sphere(0, 8, 5)
    for scheme in ("post", "ngpt", "sqrt"):
        t32 = particles.simulate(np.asarray(x0, np.float32), scheme, beta=1.0, t1=200.0, ts=[50.0, 200.0])
        assert t32.theta.dtype == jnp.float32
        np.testing.assert_array_equal(t32.r, 1.0)
        np.testing.assert_allclose(jnp.linalg.norm(t32.x, axis=-1), 1.0, atol=1e-6)
    t64 = particles.simulate(x0, "post", beta=1.0, t1=5.0, ts=[5.0], rtol=1e-10, atol=1e-12)
    t32 = particles.simulate(np.asarray(x0, np.float32), "post", beta=1.0, t1=5.0, ts=[5.0])
    np.testing.assert_allclose(np.asarray(t32.x, np.float64), t64.x, atol=2e-5)


def test_max_steps_names_the_knob():
    with pytest.raises(particles.SimulationError, match="max_steps=3"):
        particles.simulate(particles.init.uniform_sphere(0, 4, 3), "post", beta=1.0, t1=10.0, max_steps=3)


def test_progress_bar(capfd):
    particles.simulate(particles.init.uniform_sphere(0, 4, 3), "post", beta=1.0, t1=1.0, progress=True)
    assert "100.00%" in capfd.readouterr().err
