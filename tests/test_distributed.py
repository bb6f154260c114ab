"""Sweeps on a Dask cluster give exactly the in-process result."""

import pytest
import xarray as xr

import particles
from particles.cli import main

distributed = pytest.importorskip("distributed")

GRID = dict(schemes="post", beta=[0.5, 4.0], n=4, d=3, seeds=2, t1=2.0, save_every=0.5)


@pytest.mark.slow
def test_dask_local_cluster_equals_in_process(tmp_path):
    local = particles.sweep(tmp_path / "local", chunk_size=1, progress=False, **GRID)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        remote = particles.sweep(
            tmp_path / "dask", chunk_size=1, progress=False, scheduler=cluster.scheduler_address, **GRID
        )
        # the CLI reaches the same cluster; the finished store is resumed, not recomputed
        code = main(
            ["sweep", "--schemes", "post", "--beta", "0.5,4", "--n", "4", "--d", "3", "--seeds", "2",
             "--t1", "2", "--save-every", "0.5", "--chunk-size", "1", "--no-progress",
             "--x64", "--scheduler", cluster.scheduler_address, "--out", str(tmp_path / "dask")]
        )  # fmt: skip
    assert code == 0
    xr.testing.assert_identical(local.drop_attrs(), remote.drop_attrs())


@pytest.mark.slow  # waits for the connection timeout
def test_unreachable_scheduler_is_a_one_line_error(tmp_path):
    with pytest.raises(ValueError, match="scheduler="):
        particles.sweep(tmp_path / "s", progress=False, scheduler="tcp://127.0.0.1:9", **GRID)
