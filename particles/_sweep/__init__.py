"""Parameter sweeps written chunk by chunk to a resumable store on disk.

A sweep is a grid over scheme, scheme parameters (tau, alpha), n, d, beta, seed and,
where given, layers and noise.
The work is split into *units*: one (scheme, parameters, n, d, beta) with all its
seeds. Units that differ only in beta are solved together in *beta groups*
(:func:`~particles._sweep._grid.beta_groups`: consecutive betas, up to
:data:`~particles._sweep._grid.TRAJECTORIES_PER_SOLVE` trajectories, one compiled solve
and one step-size controller per group; one beta per solve under constant steps, noise,
layers, collapse stops and the Gram solve). Units are grouped ``chunk_size`` at a time
into *chunks*, and each finished chunk is written atomically to its own NetCDF file.

The groups are a function of the grid alone, and a chunk that holds part of a group
solves the whole group and keeps its own units, so a unit's numbers do not depend on the
chunking: an interrupted sweep that resumes, or the same sweep cut into different chunk
sizes, gives bit-identical results.

Store layout (a folder)::

    OUT/manifest.json          the full sweep configuration and the chunk size
    OUT/chunk-00000.nc ...     one per finished chunk: dims (unit, seed, time)

A chunk file appears complete or not at all (temporary file + rename), so a kill at
any moment loses at most the chunk being computed. Rerunning the same sweep skips
the chunks on disk; a store written by a different configuration is refused.
"""

import inspect
import os

from .._io import write_atomic
from .._model import KERNELS
from .._validate import check_choice, check_int
from ..schemes import SCHEMES, check_keywords, get_scheme, scheme_parameters
from ._executor import computed_chunks
from ._grid import FORMAT, SweepConfig, sweep_config, units_of
from ._store import MANIFEST, chunk_path, open_store, open_sweep
from ._unit import check_units

__all__ = ["FORMAT", "MANIFEST", "SweepConfig", "chunk_path", "open_sweep", "sweep", "units_of"]


def _check_arguments(cfg, attention, scheme_params, chunk_size):
    """The checks of :func:`sweep` that :func:`sweep_config` leaves: the attention kernel,
    every scheme parameter value against each scheme that takes it, the chunk size."""
    check_choice("attention", attention, tuple(KERNELS))
    for scheme in cfg.values("scheme"):  # parameter values valid for each scheme
        for key in scheme_params:
            if key in scheme_parameters(SCHEMES[scheme]):
                for v in cfg.values(key):
                    get_scheme(scheme, **{key: v})
    return None if chunk_size is None else check_int("chunk_size", chunk_size, minimum=1)


def sweep(
    out,
    *,
    beta,
    n,
    d,
    t1,
    seeds=1,
    schemes="post",
    t0=0.0,
    ts=None,
    save_every=None,
    observables=("mean_cosine",),
    delta=1e-3,
    stop_at_collapse=False,
    init="uniform",
    attention="softmax",
    rtol=1e-6,
    atol=1e-8,
    max_steps=100_000,
    dtype=None,
    chunk_size=None,
    progress=True,
    on_chunk=None,
    scheduler=None,
    layers=None,
    norm=None,
    mlp=None,
    residual="constant",
    weights=None,
    heads=1,
    weight_seed=0,
    gram=False,
    noise=None,
    step_size=None,
    position=None,
    **scheme_params,
):
    """Run a grid of simulations and return its observables as an ``xarray.Dataset``.

    ``schemes``, ``beta``, ``n``, ``d`` and scheme parameters (``tau=``, ``alpha=``)
    take a value (fixed) or a list (swept: one labelled dimension each); ``seeds`` is a
    count (seeds 0..k−1) or a list, always the dimension ``seed``. Seed s draws the
    initial tokens from ``init`` ("uniform" on the sphere, "gaussian",
    "equiangular:RHO") with ``jax.random.key(s)``, the same for every scheme and beta.

    Each variable of ``observables`` (names from :data:`particles.analysis.OBSERVABLES`;
    ``delta`` is the threshold of pair_density, cluster_count and the collapse time) has
    dims (swept parameters..., seed, time); ``collapse_time`` (swept..., seed) is the
    first time min_{i≠j}⟨θ_i, θ_j⟩ ≥ 1 − delta, interpolated between saves, inf if never;
    ``t_stop`` (swept...) is when the solve ended. With ``stop_at_collapse=True`` the
    solve of a (scheme, parameters, n, d, beta) ends once all its seeds have collapsed,
    and the saves after the stop are NaN (not computed).

    Results are written to the folder ``out`` chunk by chunk (see the module docstring):
    rerunning the same call resumes, computing only the missing chunks, and gives a
    result bit-identical to an uninterrupted run, for any ``chunk_size`` (the number of
    (scheme, parameters, n, d, beta) units per chunk file). ``on_chunk(done, total)`` is
    called after each chunk is written; ``progress`` shows a bar with chunks done and
    time left.

    Real transformers (MODEL.md §7): ``layers`` (a value or a list, then the axis
    ``layers``) runs discrete layers instead of the ODE (saves default to every layer of
    the shallowest stack); ``norm`` ("layernorm", "rmsnorm"), ``mlp`` (hidden width m of
    a Kaiming GELU MLP), ``residual`` and random weights ``weights`` ("kaiming",
    "gaussian", "goe") with ``heads`` and ``weight_seed`` are fixed settings of the
    whole sweep, the same weights for every unit of the same d.

    Noise (MODEL.md §10): ``noise`` (a value or a list, then the axis ``noise``) solves
    the Stratonovich SDE dθ_i = (drift) dt + √(2D) P_θ_i ∘ dW_i with ``diffrax.Heun()``
    (for D = 0 too: the same solver along the axis) and constant ``step_size`` (needed for
    D > 0; without noise it gives constant steps to the ODE). Seed s draws its Brownian
    paths from ``jax.random.key(s)``, one VirtualBrownianTree per trajectory: the same
    paths for every beta and D of the grid, and, as everything else, bit-identical for
    any chunking and across resumes.

    Where the flow closes on the Gram matrix (MODEL.md §8: the ODE with Q = K = V = I,
    the projection norm, no MLP or noise, and a speed scheme; :attr:`Problem.closes_on_gram`)
    a unit is solved as the flow of the n × n chord distances |θ_i − θ_j| in float64
    (one compiled program for every d, the observables computed at each save inside it)
    instead of the tokens; ``gram=False`` solves the tokens. Either meets ``rtol``/``atol``
    in the token norm; the results agree to the tolerance (tests/test_sweep.py).

    Positions (MODEL.md §11): ``position`` (a label or a list of labels, then the axis
    ``position``): ``"none"``, ``"causal"``, ``"alibi[:SLOPE]"``, ``"rope[:BASE]"``, joined
    by ``+`` (``"rope:500+causal"``); sweep a RoPE base or an ALiBi slope as labels
    (``["rope:10", "rope:100", "rope:10000"]``). Positions other than causal are solved
    as tokens (they break the Gram flow; ``gram=True`` with them is refused).

    ``scheduler`` (an address such as ``"tcp://host:8786"`` or a ``distributed.Client``)
    sends the chunks to a Dask cluster (``pip install "attention-particles[distributed]"``). Workers
    only compute; this process writes every chunk file, so the store and its resumption
    are the same as in-process, and so are the numbers.
    """
    import tqdm

    check_keywords("sweep", tuple(inspect.signature(sweep).parameters)[1:-1], scheme_params)
    cfg = sweep_config(
        schemes=schemes,
        scheme_params=scheme_params,
        n=n,
        d=d,
        beta=beta,
        seeds=seeds,
        t0=t0,
        t1=t1,
        ts=ts,
        save_every=save_every,
        observables=observables,
        delta=delta,
        stop_at_collapse=stop_at_collapse,
        init=init,
        dtype=dtype,
        attention=attention,
        rtol=rtol,
        atol=atol,
        max_steps=max_steps,
        gram=gram,
        layers=layers,
        noise=noise,
        step_size=step_size,
        position=position,
        model=dict(
            norm=norm, mlp=mlp, residual=residual, weights=weights, heads=heads, weight_seed=weight_seed
        ),
    )
    chunk_size = _check_arguments(cfg, attention, scheme_params, chunk_size)
    out = os.fspath(out)
    units, _ = units_of(cfg)
    check_units(cfg, units)  # every argument is refused before the store is created
    chunk_size = open_store(out, cfg, chunk_size, len(units))
    chunks = [list(range(i, min(i + chunk_size, len(units)))) for i in range(0, len(units), chunk_size)]
    todo = [k for k in range(len(chunks)) if not os.path.isfile(chunk_path(out, k))]
    resumed = done = len(chunks) - len(todo)
    desc = f"sweep (resumed: {resumed} chunks on disk)" if resumed else "sweep"
    with (
        computed_chunks(cfg, units, chunks, todo, scheduler) as computed,
        tqdm.tqdm(total=len(chunks), initial=resumed, unit="chunk", desc=desc, disable=not progress) as bar,
    ):
        for k, ds in computed:
            try:
                write_atomic(ds, chunk_path(out, k))
            except OSError as e:
                raise ValueError(
                    f"out={out!r}: could not write chunk {k} ({e.strerror}); the {done} "
                    "finished chunks are kept: free space or fix permissions and rerun to resume"
                ) from None
            bar.update(1)
            done += 1
            if on_chunk is not None:
                on_chunk(done, len(chunks))
    result = open_sweep(out)
    result.attrs["chunks_resumed"] = resumed
    return result
