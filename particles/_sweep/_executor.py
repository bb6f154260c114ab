"""Where the chunks of a sweep are computed: in this process, in order, or on a Dask
cluster as they finish (workers only compute; this process writes)."""

import contextlib

from ._unit import chunk_dataset


@contextlib.contextmanager
def computed_chunks(cfg, units, chunks, todo, scheduler):
    """Yield (k, dataset) for the chunks ``todo``: computed here in order, or on a Dask
    cluster as they finish."""
    if scheduler is None:
        yield ((k, chunk_dataset(cfg, units, chunks[k])) for k in todo)
        return
    try:
        import distributed
    except ImportError:
        raise ValueError(
            "scheduler= needs the 'distributed' package: pip install 'attention-particles[distributed]'"
        ) from None
    if isinstance(scheduler, distributed.Client):
        client, own = scheduler, False
    else:
        try:
            client, own = distributed.Client(scheduler, timeout="20s"), True
        except (OSError, TimeoutError, ValueError) as e:
            raise ValueError(f"scheduler={scheduler!r}: cannot connect ({e})") from None
    try:
        futures = {client.submit(chunk_dataset, cfg, units, chunks[k], pure=False): k for k in todo}
        yield ((futures[f], f.result()) for f in distributed.as_completed(futures))
    finally:
        if own:
            client.close()
