"""The batch axis sharded over two (forced host) devices gives the one-device result: the
same steps, the same numbers to float64 rounding (bit-identical on the CI machine), with
noise too (each trajectory's Brownian paths from its own key)."""

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np
    import particles
    assert jax.local_device_count() == 2, jax.devices()
    batch = 3  # padded to 4 trajectories for two devices
    for n, d in ((8, 4), (4, 8)):  # in R^d, and in the span of the tokens (n < d)
        x0 = particles.init.uniform_sphere(0, n, d, batch=batch, dtype=np.float64)
        beta = np.linspace(1.0, 4.0, batch)
        kw = dict(beta=beta, t1=2.0, ts=[1.0, 2.0], rtol=1e-8, atol=1e-8, dtype=np.float64)
        sharded = particles.simulate(x0, "pre", **kw)
        single = particles.simulate(x0, "pre", shard=False, **kw)
        assert len(sharded.theta.sharding.device_set) == 2, sharded.theta.sharding
        assert len(single.theta.sharding.device_set) == 1
        assert sharded.theta.shape == single.theta.shape == (batch, 2, n, d)
        assert sharded.stats["num_steps"] == single.stats["num_steps"]
        for a, b in ((sharded.theta, single.theta), (sharded.r, single.r)):  # see test_kill_resume
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-14)
    # noise with a Brownian key per trajectory: the padding copies take their keys along
    x0 = particles.init.uniform_sphere(0, 6, 3, batch=batch, dtype=np.float64)
    kw = dict(beta=1.0, t1=1.0, ts=[1.0], noise=0.2, key=[5, 6, 7], step_size=0.1, dtype=np.float64)
    sharded = particles.simulate(x0, "post", **kw)
    single = particles.simulate(x0, "post", shard=False, **kw)
    assert len(sharded.theta.sharding.device_set) == 2, sharded.theta.sharding
    np.testing.assert_allclose(np.asarray(sharded.theta), np.asarray(single.theta), rtol=0, atol=1e-14)
    print("identical")
    """
)


@pytest.mark.slow
def test_sharded_batch_equals_single_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "identical" in out.stdout
