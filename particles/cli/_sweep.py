"""``particles sweep``: grids from the command line into a resumable store."""

import numpy as np

from .._status import STATUS_LEGEND
from ..analysis import OBSERVABLES
from ._options import (
    ATTENTION_HELP,
    INIT_HELP,
    SCHEME_HELP,
    check_noise,
    check_pairs,
    solver_options,
    time_options,
    transformer_options,
)


def grid(flag, text, convert=float):
    """START:STOP:COUNT (COUNT evenly spaced values, ends included) or a list a,b,c:
    swept; one value: fixed."""
    usage = f"{flag} {text!r}: expected START:STOP:COUNT, a list a,b,c, or one value"
    parts = text.split(":")
    try:
        if len(parts) == 1:
            items = text.split(",")
            if not all(item.strip() for item in items):
                raise ValueError
            values = [convert(item.strip()) for item in items]
            return values if len(values) > 1 else values[0]
        if len(parts) != 3 or convert is str:
            raise ValueError
        start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        raise ValueError(usage) from None
    if count < 1:
        raise ValueError(f"{flag} {text!r} is an empty range: COUNT must be at least 1")
    values = np.linspace(start, stop, count)
    if convert is int and not np.all(values == np.round(values)):
        raise ValueError(f"{flag} {text!r}: the range does not fall on integers")
    return [convert(v) for v in values]


def sweep_parser(sub):
    p = sub.add_parser("sweep", help="run a resumable grid of simulations, write observables to a store")
    p.add_argument(
        "--schemes", default="post", help=f"list, e.g. post,pre (default post); from {SCHEME_HELP}"
    )
    p.add_argument("--beta", required=True, help="START:STOP:COUNT, a,b,c or one value")
    p.add_argument("--n", default="32", help="number of tokens: one value or a list")
    p.add_argument("--d", default="64", help="dimension: one value or a list")
    p.add_argument("--seeds", type=int, default=16, help="number of random starts (seeds 0..SEEDS-1)")
    p.add_argument("--tau", default=None, help="mix: switch time(s)")
    p.add_argument("--alpha", default=None, help="ngpt: step scale(s)")
    time_options(p, 20.0)
    solver_options(p)
    transformer_options(p, sweep=True)
    p.add_argument(
        "--observables",
        default="mean_cosine",
        help=f"comma-separated names from: {', '.join(OBSERVABLES)} (default mean_cosine)",
    )
    p.add_argument("--delta", type=float, default=1e-3, help="collapse threshold: cosine >= 1 - delta")
    p.add_argument("--stop-at-collapse", action="store_true", help="end each solve once all seeds collapsed")
    p.add_argument(
        "--gram", action="store_true", help="solve the Gram flow (chord distances, float64) where it is exact"
    )
    p.add_argument(
        "--init", default="uniform", help=INIT_HELP + "; a file gives the same tokens to every seed"
    )
    p.add_argument("--attention", default="softmax", help=ATTENTION_HELP)
    p.add_argument(
        "--noise", default=None,
        help="noise D of the SDE on the sphere: one value or a list (needs --step-size; paths from each seed)",
    )  # fmt: skip
    p.add_argument("--step-size", type=float, default=None, help="constant steps (default: adaptive)")
    p.add_argument(
        "--position", default=None,
        help="position labels, a list: none, causal, alibi[:SLOPE], rope[:BASE], joined by + (e.g. causal,rope:500+causal)",
    )  # fmt: skip
    p.add_argument("--chunk-size", type=int, default=None, help="(scheme, n, d, beta) units per chunk file")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--out", required=True, help="store folder; rerunning the same command resumes it")
    p.add_argument(
        "--scheduler", default=None, help="tcp://HOST:PORT of a Dask scheduler (default: in-process)"
    )
    p.set_defaults(run=_run_sweep)


def _run_sweep(args):
    import particles

    schemes = grid("--schemes", args.schemes, str)
    n_values, d_values = (
        np.atleast_1d(grid(flag, text, int)).tolist() for flag, text in (("--n", args.n), ("--d", args.d))
    )
    for n in n_values:
        check_pairs("--n", n)
    noise = None if args.noise is None else grid("--noise", args.noise)
    check_noise(np.any(np.asarray(noise or 0.0) != 0), args.step_size)
    dtype = np.float64 if args.x64 else np.float32
    if args.init != "uniform":  # a file or equiangular start, checked for every n and d with the flags' names
        for n in n_values:
            for d in d_values:
                particles.init.from_spec(args.init, 0, n, d, dtype=dtype, name="--init")
    params = {k: grid(f"--{k}", v) for k, v in (("tau", args.tau), ("alpha", args.alpha)) if v is not None}
    ds = particles.sweep(
        args.out,
        schemes=schemes,
        beta=grid("--beta", args.beta),
        n=grid("--n", args.n, int),
        d=grid("--d", args.d, int),
        seeds=args.seeds,
        t0=args.t0,
        t1=args.t1,
        save_every=args.save_every,
        observables=args.observables,
        delta=args.delta,
        stop_at_collapse=args.stop_at_collapse,
        gram=args.gram,
        init=args.init,
        attention=args.attention,
        rtol=args.rtol,
        atol=args.atol,
        max_steps=args.max_steps,
        dtype="float64" if args.x64 else "float32",
        chunk_size=args.chunk_size,
        progress=not args.no_progress,
        scheduler=args.scheduler,
        layers=None if args.layers is None else grid("--layers", args.layers, int),
        norm=args.norm,
        mlp=args.mlp,
        residual=args.residual,
        weights=args.weights,
        heads=args.heads,
        weight_seed=args.weight_seed,
        noise=noise,
        step_size=args.step_size,
        position=None if args.position is None else args.position.split(","),
        **params,
    )
    if ds.attrs["chunks_resumed"]:
        print(f"resumed {args.out}: {ds.attrs['chunks_resumed']} chunks were already on disk")
    dims = ", ".join(f"{k}={v}" for k, v in ds.sizes.items())
    print(f"wrote {args.out}: {', '.join(ds.data_vars)} over {dims}")
    failed = int((ds["status"] != 0).sum())
    note = f" (marked in the status variable: {STATUS_LEGEND}; their values are NaN)" if failed else ""
    print(f"failed trajectories: {failed} of {ds['status'].size}{note}")
