"""Spread the batch axis of an ensemble over all local devices.

The leading batch axis is sharded with a ``NamedSharding`` on a 1-d mesh of
``jax.local_devices()``; when it does not divide by the device count, it is padded with
copies of the first trajectories (the padding is solved and thrown away). Copies leave
the batched error norm (the max over trajectories of each one's RMS) unchanged, so the
step sizes, and hence the results, are those of the unsharded solve.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def batch_sharding() -> NamedSharding | None:
    """A sharding of the leading axis over the local devices, or None for one device."""
    devices = jax.local_devices()
    if len(devices) < 2:
        return None
    return NamedSharding(Mesh(np.array(devices), ("batch",)), PartitionSpec("batch"))


def shard_batch(arrays, sharding: NamedSharding):
    """Pad the leading axis of every array to a multiple of the device count and put
    it on ``sharding``. Returns the arrays and the original leading size."""
    size = arrays[0].shape[0]
    count = sharding.mesh.size
    index = jnp.arange(-(-size // count) * count) % size
    return [jax.device_put(jnp.take(a, index, axis=0), sharding) for a in arrays], size
