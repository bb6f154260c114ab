"""The schemes: user-defined subclasses of the abstract speed and ambient schemes."""

import jax.numpy as jnp
import numpy as np

import particles


class HalfSpeedPost(particles.AbstractSpeedScheme):
    """A user-defined scheme: post-LN at half speed, s = 2, so θ(t) = θ_post(t/2)."""

    sphere_bound = True

    def speed(self, t, r, a, A_norm):
        return 2.0 * jnp.ones_like(a)


class AmbientPre(particles.AbstractAmbientScheme):
    """Pre-LN given by its ambient velocity dx/dt = A(Θ)."""

    def ambient_velocity(self, t, x, A):
        return A


def test_user_defined_schemes():
    x0 = particles.init.gaussian(6, 5, 4)
    kw = dict(beta=1.5, rtol=1e-10, atol=1e-12)
    half = particles.simulate(x0, HalfSpeedPost(), t1=4.0, ts=[2.0, 4.0], **kw)
    post = particles.simulate(x0, "post", t1=2.0, ts=[1.0, 2.0], **kw)
    np.testing.assert_allclose(half.theta, post.theta, atol=1e-9)
    assert half.config["scheme"] == "HalfSpeedPost"
    ambient = particles.simulate(x0, AmbientPre(), t1=2.0, ts=[1.0, 2.0], **kw)
    pre = particles.simulate(x0, "pre", t1=2.0, ts=[1.0, 2.0], **kw)
    np.testing.assert_allclose(ambient.x, pre.x, atol=1e-9)
    # the reduced model takes user schemes too
    ts = np.linspace(0, 4, 5)
    rho_half, _ = particles.equiangular.solve(HalfSpeedPost(), 6, 1.0, 0.1, ts)
    rho_post, _ = particles.equiangular.solve("post", 6, 1.0, 0.1, ts / 2)
    np.testing.assert_allclose(rho_half, rho_post, atol=1e-9)
    rho_amb, r_amb = particles.equiangular.solve(AmbientPre(), 6, 1.0, 0.1, ts, r0=1.3)
    rho_pre, r_pre = particles.equiangular.solve("pre", 6, 1.0, 0.1, ts, r0=1.3)
    np.testing.assert_allclose(rho_amb, rho_pre, atol=1e-9)
    np.testing.assert_allclose(r_amb, r_pre, rtol=1e-9)
