"""Command line: argument parsing only; the work is done by the public API.

Bad input gives one line on stderr and exit code 2; a solve that fails gives one line
and exit code 1; no tracebacks.
"""

import argparse
import os
import sys
import time

import numpy as np

from ._config import DEFAULTS, NUM_SAVES
from ._problem import precision
from ._status import STATUS_LEGEND
from .analysis import OBSERVABLES
from .schemes import SCHEMES

INIT_HELP = "uniform | gaussian | equiangular:RHO | FILE.npy (an (n, d) array)"
SCHEME_HELP = ", ".join(SCHEMES)


def _transformer_options(p, sweep=False):
    """Real layers and random weights (MODEL.md §7), for simulate and sweep."""
    p.add_argument(
        "--layers", default=None, type=str if sweep else int,
        help="discrete layers L with step (t1 - t0)/L" + (" (one value or a list)" if sweep else "") + " (default: the ODE)",
    )  # fmt: skip
    p.add_argument("--norm", default=None, help="projection (default) | layernorm | rmsnorm")
    p.add_argument("--mlp", type=int, default=None, help="add a random Kaiming GELU MLP of this hidden width")
    p.add_argument(
        "--residual", default="constant", help="constant | inv_sqrt_depth | inv_depth | inv_sqrt_layer"
    )
    p.add_argument(
        "--weights", default=None, help="random Q, K, V: kaiming | gaussian | goe (default: identity)"
    )
    p.add_argument("--heads", type=int, default=1, help="heads of the random weights")
    p.add_argument("--weight-seed", type=int, default=0, help="seed of the random weights and MLP")


def _solver_options(p):
    """The SolveConfig flags of simulate and sweep, with its defaults."""
    p.add_argument(
        "--rtol",
        type=float,
        default=DEFAULTS.rtol,
        help=f"relative tolerance of the adaptive steps (default {DEFAULTS.rtol:g})",
    )
    p.add_argument(
        "--atol",
        type=float,
        default=DEFAULTS.atol,
        help=f"absolute tolerance of the adaptive steps (default {DEFAULTS.atol:g})",
    )
    p.add_argument(
        "--max-steps",
        type=int,
        default=DEFAULTS.max_steps,
        help=f"step budget of one solve (default {DEFAULTS.max_steps})",
    )
    p.add_argument(
        "--save-every", type=float, default=None, help=f"save interval (default: {NUM_SAVES} saves)"
    )
    p.add_argument("--x64", action="store_true", help="float64 (default float32)")


def _time_options(p, t1):
    """--t0 and --t1: the depth interval (t1 None: from --layers)."""
    p.add_argument("--t0", type=float, default=0.0, help="start time (depth) of the solve (default 0)")
    default = "t0 + layers" if t1 is None else f"{t1:g}"
    p.add_argument("--t1", type=float, default=t1, help=f"end time (depth) of the solve (default {default})")


PAIRS = "every observable is about pairs of tokens"


def _check_pairs(flag, n):
    """Refuse fewer than 2 tokens on the command line, as the sweep does, with one message."""
    if n < 2:
        raise ValueError(f"{flag}={n} must be at least 2: {PAIRS}")


def _check_noise(noise, step_size):
    if noise and step_size is None:
        raise ValueError("--noise > 0 needs constant steps: give step_size with --step-size H")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _simulate_parser(sub):
    p = sub.add_parser("simulate", help="simulate one configuration and print a summary")
    p.add_argument("--scheme", default="post", help=SCHEME_HELP)
    p.add_argument("--n", type=int, default=None, help="number of tokens (default 32)")
    p.add_argument("--d", type=int, default=None, help="dimension (default 64)")
    p.add_argument("--beta", type=float, default=4.0, help="inverse temperature")
    _time_options(p, 20.0)
    p.add_argument("--seed", type=int, default=0, help="seed of the initial tokens (and of the noise)")
    p.add_argument("--init", default="uniform", help=INIT_HELP)
    p.add_argument("--attention", default="softmax", help="softmax | usa")
    p.add_argument("--causal", action="store_true", help="causal mask (token i attends to j <= i)")
    _solver_options(p)
    _transformer_options(p)
    p.add_argument("--step-size", type=float, default=None, help="constant steps (default: adaptive)")
    p.add_argument(
        "--noise", type=float, default=0.0,
        help="noise D of the SDE on the sphere (needs --step-size; Brownian paths from --seed)",
    )  # fmt: skip
    p.add_argument("--tau", type=float, default=None, help="mix: switch time from post to pre")
    p.add_argument("--alpha", type=float, default=None, help="ngpt: step scale alpha")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.add_argument("--out", default=None, help="write the trajectory to this NetCDF file")
    p.set_defaults(run=_run_simulate)


def _run_simulate(args):
    import particles

    dtype = np.float64 if args.x64 else np.float32
    params = {k: v for k, v in (("tau", args.tau), ("alpha", args.alpha)) if v is not None}
    n, d = args.n, args.d
    if not args.init.endswith(".npy"):
        n, d = 32 if n is None else n, 64 if d is None else d
    if n is not None:
        _check_pairs("--n", n)
    _check_noise(args.noise, args.step_size)
    x0 = particles.init.from_spec(args.init, args.seed, n, d, dtype=dtype, name="--init")
    if x0.shape[-2] < 2:
        raise ValueError(f"--init {args.init!r} holds {x0.shape[-2]} token; {PAIRS}: give at least 2")
    ts = None
    if args.save_every is not None:
        ts = particles.save_times(args.t0, args.t1, save_every=args.save_every)
    if args.out is not None:
        folder = os.path.dirname(os.path.abspath(args.out))
        if not os.path.isdir(folder):
            raise ValueError(f"--out {args.out!r}: folder {folder!r} does not exist")
    start = time.perf_counter()
    traj = particles.simulate(
        x0,
        args.scheme,
        beta=args.beta,
        t0=args.t0,
        t1=args.t1,
        ts=ts,
        attention=args.attention,
        causal=args.causal,
        rtol=args.rtol,
        atol=args.atol,
        max_steps=args.max_steps,
        dtype=dtype,
        progress=args.progress,
        step_size=args.step_size,
        noise=args.noise,
        key=args.seed if args.noise else None,
        **_transformer_arguments(args, x0.shape[-1], dtype),
        **params,
    )
    rho, r = particles.analysis.final_summary(traj.theta, traj.r)
    rho, r = float(rho), np.asarray(r)
    print(f"scheme {traj.config['scheme']}  n={traj.config['n']} d={traj.config['d']} beta={args.beta:g}")
    print(f"t = {args.t0:g} .. {args.t1:g}, {len(traj.ts)} saves, {traj.config['dtype']}")
    print(f"final mean cosine  {rho:.6f}")
    print(f"final radii        mean {r.mean():.4g}  min {r.min():.4g}  max {r.max():.4g}")
    print(f"steps              {traj.stats['num_steps']} ({traj.stats['num_rejected']} rejected)")
    if args.out is not None:
        traj.save(args.out)
        print(f"wrote              {args.out}")
    print(f"wall time          {time.perf_counter() - start:.2f} s")


def _sensitivity_common(p, n, d, t1):
    """The configuration flags of lyapunov and stability."""
    p.add_argument("--scheme", default="post", help=SCHEME_HELP)
    p.add_argument("--n", type=int, default=n, help=f"number of tokens (default {n})")
    p.add_argument("--d", type=int, default=d, help=f"dimension (default {d})")
    p.add_argument(
        "--beta", default="1", help="inverse temperature: one value, a list a,b,c or START:STOP:COUNT"
    )
    _time_options(p, t1)
    p.add_argument("--seed", type=int, default=0, help="seed of the initial tokens")
    p.add_argument("--init", default="uniform", help=INIT_HELP)
    p.add_argument("--attention", default="softmax", help="softmax | usa")
    p.add_argument("--tau", type=float, default=None, help="mix: switch time from post to pre")
    p.add_argument("--alpha", type=float, default=None, help="ngpt: step scale alpha")
    p.add_argument("--out", default=None, help="write the table to this NetCDF file")
    _solver_options(p)
    _transformer_options(p)


def _sensitivity_inputs(args):
    """(x0, betas as an array, keyword arguments of the sensitivity functions)."""
    import particles

    dtype = np.float64 if args.x64 else np.float32
    x0 = particles.init.from_spec(args.init, args.seed, args.n, args.d, dtype=dtype, name="--init")
    betas = np.atleast_1d(np.asarray(_grid("--beta", args.beta), float))
    ts = (
        None
        if args.save_every is None
        else particles.save_times(args.t0, args.t1, save_every=args.save_every)
    )
    params = {k: v for k, v in (("tau", args.tau), ("alpha", args.alpha)) if v is not None}
    if args.out is not None:
        folder = os.path.dirname(os.path.abspath(args.out))
        if not os.path.isdir(folder):
            raise ValueError(f"--out {args.out!r}: folder {folder!r} does not exist")
    kw = dict(
        t0=args.t0, t1=args.t1, attention=args.attention, rtol=args.rtol, atol=args.atol,
        max_steps=args.max_steps, dtype=dtype, **_transformer_arguments(args, x0.shape[-1], dtype), **params,
    )  # fmt: skip
    if ts is not None:
        kw["ts"] = ts
    return x0, betas, kw


def _lyapunov_parser(sub):
    p = sub.add_parser("lyapunov", help="finite-time Lyapunov exponents of the flow map, a table per beta")
    _sensitivity_common(p, n=8, d=8, t1=10.0)
    p.add_argument("--k", type=int, default=8, help="how many exponents, the largest (default 8)")
    p.add_argument("--method", default="auto", help="auto | jacobian | qr")
    p.set_defaults(run=_run_lyapunov)


def _run_lyapunov(args):
    from . import sensitivity

    x0, betas, kw = _sensitivity_inputs(args)
    start = time.perf_counter()
    res = sensitivity.lyapunov(x0, args.scheme, beta=betas, k=args.k, method=args.method, **kw)
    ex = np.asarray(res.exponents)
    print(
        f"scheme {args.scheme}  n={x0.shape[0]} d={x0.shape[1]}  t = {args.t0:g} .. {args.t1:g}  ({res.method})"
    )
    print("beta      " + " ".join(f"{f'lambda_{i + 1}':>11}" for i in range(ex.shape[-1])))
    for beta, row in zip(betas, ex):
        print(f"{beta:<9g} " + " ".join(f"{v:>11.5g}" for v in row))
    if args.out is not None:
        res.save(args.out)
        print(f"wrote {args.out}")
    print(f"wall time {time.perf_counter() - start:.2f} s")


def _stability_parser(sub):
    p = sub.add_parser("stability", help="per-layer hidden-state and gradient norms of a random transformer")
    _sensitivity_common(p, n=8, d=16, t1=None)
    p.set_defaults(run=_run_stability, layers=8, norm="layernorm", weights="kaiming")


def _run_stability(args):
    from . import sensitivity

    if args.layers is None:
        raise ValueError("stability runs discrete layers: give --layers L")
    if args.t1 is None:
        args.t1 = args.t0 + args.layers  # residual step 1: the textbook transformer
    x0, betas, kw = _sensitivity_inputs(args)
    if betas.size != 1:
        raise ValueError("--beta: stability takes one value")
    start = time.perf_counter()
    layers = kw.pop("layers")
    for key in ("rtol", "atol", "max_steps"):
        kw.pop(key)
    loss = sensitivity.random_readout(args.seed + 1, *x0.shape, dtype=kw["dtype"])
    ds = sensitivity.stability_profile(x0, args.scheme, loss=loss, beta=float(betas[0]), layers=layers, **kw)
    print(
        f"scheme {args.scheme}  n={x0.shape[0]} d={x0.shape[1]}  L={layers}  norm={args.norm}  residual={args.residual}"
    )
    names = [n for n in ("Q", "K", "V", "mlp") if f"grad_{n}" in ds]
    print(
        f"{'layer':>5} {'mean|x_l|':>11} {'|dl/dx_l|':>11} "
        + " ".join(f"{'|dl/d' + n + '|':>11}" for n in names)
    )
    for l in range(layers + 1):
        row = [f"{float(ds[v][l]):>11.4g}" for v in ("hidden_norm", "gradient_norm")]
        row += [f"{float(ds[f'grad_{n}'][l - 1]):>11.4g}" if l else f"{'':>11}" for n in names]
        print(f"{l:>5} " + " ".join(row))
    if args.out is not None:
        from ._io import write_atomic

        write_atomic(ds, args.out)
        print(f"wrote {args.out}")
    print(f"wall time {time.perf_counter() - start:.2f} s")


def _transformer_arguments(args, d, dtype) -> dict:
    """simulate's layers, norm, residual and (drawn from --weight-seed) weights and MLP."""
    import particles

    out = {"layers": args.layers, "norm": args.norm, "residual": args.residual}
    if args.weights is None and args.mlp is None:
        if args.heads != 1:
            raise ValueError("--heads applies to random weights: give --weights kaiming|gaussian|goe")
        return out
    depth = args.layers or max(1, int(np.ceil(args.t1 - args.t0)))
    drawn = particles.random_transformer(
        args.weight_seed, d, layers=depth, heads=args.heads, ensemble=args.weights or "kaiming",
        mlp_width=args.mlp, dtype=dtype,
    )  # fmt: skip
    if args.weights is None:
        drawn = {"mlp": drawn["mlp"]}
    return {**out, **drawn}


def _demo_parser(sub):
    p = sub.add_parser("demo", help="all schemes from the same tokens: figure and table")
    p.add_argument("--out-dir", default="figures", help="folder for the figure (default figures/)")
    p.set_defaults(run=_run_demo)


def _run_demo(args):
    from .demo import run_demo

    run_demo(args.out_dir)


def _grid(flag, text, convert=float):
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


def _sweep_parser(sub):
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
    _time_options(p, 20.0)
    _solver_options(p)
    _transformer_options(p, sweep=True)
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
    p.add_argument("--attention", default="softmax", help="softmax | usa")
    p.add_argument(
        "--noise", default=None,
        help="noise D of the SDE on the sphere: one value or a list (needs --step-size; paths from each seed)",
    )  # fmt: skip
    p.add_argument("--step-size", type=float, default=None, help="constant steps (default: adaptive)")
    p.add_argument("--chunk-size", type=int, default=None, help="(scheme, n, d, beta) units per chunk file")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--out", required=True, help="store folder; rerunning the same command resumes it")
    p.add_argument(
        "--scheduler", default=None, help="tcp://HOST:PORT of a Dask scheduler (default: in-process)"
    )
    p.set_defaults(run=_run_sweep)


def _run_sweep(args):
    import particles

    schemes = _grid("--schemes", args.schemes, str)
    n_values, d_values = (
        np.atleast_1d(_grid(flag, text, int)).tolist() for flag, text in (("--n", args.n), ("--d", args.d))
    )
    for n in n_values:
        _check_pairs("--n", n)
    noise = None if args.noise is None else _grid("--noise", args.noise)
    _check_noise(np.any(np.asarray(noise or 0.0) != 0), args.step_size)
    dtype = np.float64 if args.x64 else np.float32
    if args.init != "uniform":  # a file or equiangular start, checked for every n and d with the flags' names
        for n in n_values:
            for d in d_values:
                particles.init.from_spec(args.init, 0, n, d, dtype=dtype, name="--init")
    params = {k: _grid(f"--{k}", v) for k, v in (("tau", args.tau), ("alpha", args.alpha)) if v is not None}
    ds = particles.sweep(
        args.out,
        schemes=schemes,
        beta=_grid("--beta", args.beta),
        n=_grid("--n", args.n, int),
        d=_grid("--d", args.d, int),
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
        layers=None if args.layers is None else _grid("--layers", args.layers, int),
        norm=args.norm,
        mlp=args.mlp,
        residual=args.residual,
        weights=args.weights,
        heads=args.heads,
        weight_seed=args.weight_seed,
        noise=noise,
        step_size=args.step_size,
        **params,
    )
    if ds.attrs["chunks_resumed"]:
        print(f"resumed {args.out}: {ds.attrs['chunks_resumed']} chunks were already on disk")
    dims = ", ".join(f"{k}={v}" for k, v in ds.sizes.items())
    print(f"wrote {args.out}: {', '.join(ds.data_vars)} over {dims}")
    failed = int((ds["status"] != 0).sum())
    note = f" (marked in the status variable: {STATUS_LEGEND}; their values are NaN)" if failed else ""
    print(f"failed trajectories: {failed} of {ds['status'].size}{note}")


def _figure_parser(sub):
    from .figures import FIGURES

    p = sub.add_parser("figure", help="reproduce a published figure (MODEL.md §5)")
    p.add_argument("name", choices=FIGURES, help="which figure")
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--quick", dest="size", action="store_const", const="quick", help="minutes on 2 CPU cores (default)"
    )
    size.add_argument(
        "--full", dest="size", action="store_const", const="full", help="published resolution (GPU)"
    )
    size.add_argument("--tiny", dest="size", action="store_const", const="tiny", help="seconds; a smoke test")
    p.add_argument(
        "--out-dir", default=None,
        help="folder for NAME.png and NAME.nc (default figures/; --tiny: a new scratch folder in the system's "
        "temporary folder, never the published figures/)",
    )  # fmt: skip
    p.set_defaults(run=_run_figure, size="quick")


def _run_figure(args):
    import tempfile

    from .figures import is_published, run

    if args.out_dir is None:
        args.out_dir = (
            tempfile.mkdtemp(prefix=f"particles-{args.name}-tiny-") if args.size == "tiny" else "figures"
        )
    elif args.size == "tiny" and is_published(args.out_dir):
        raise ValueError(
            f"--out-dir {args.out_dir!r} holds the published figures: --tiny would overwrite them; "
            "leave out --out-dir (a scratch folder) or choose another"
        )
    start = time.perf_counter()
    for path in run(args.name, args.out_dir, args.size):
        print(f"wrote {path}")
    print(f"{args.name} ({args.size}) in {time.perf_counter() - start:.1f} s")


def _animate_parser(sub):
    p = sub.add_parser("animate", help="animate a trajectory file (simulate --out) as a GIF or MP4")
    p.add_argument("path", help="a trajectory file written by simulate --out (not a sweep store)")
    p.add_argument("--out", default=None, help="NAME.gif, or NAME.mp4 with ffmpeg (default: PATH as .gif)")
    p.add_argument("--fps", type=float, default=10, help="frames (saves) per second (default 10)")
    p.add_argument("--sample", type=int, default=0, help="which trajectory of a batched run (default 0)")
    p.add_argument("--delta", type=float, default=1e-3, help="clusters: cosine >= 1 - delta (default 1e-3)")
    p.add_argument(
        "--components", type=int, default=2, choices=(2, 3), help="d > 3: principal directions shown"
    )
    p.set_defaults(run=_run_animate)


def _run_animate(args):
    from .animate import animate

    out = args.out if args.out is not None else os.path.splitext(args.path)[0] + ".gif"
    start = time.perf_counter()
    animate(args.path, out, fps=args.fps, sample=args.sample, delta=args.delta, components=args.components)
    print(f"wrote {out} in {time.perf_counter() - start:.1f} s")


def _info_parser(sub):
    p = sub.add_parser("info", help="describe a sweep store or a trajectory file")
    p.add_argument("path", help="a sweep store folder or a trajectory .nc file")
    p.set_defaults(run=_run_info)


def _run_info(args):
    from ._info import info

    print(info(args.path))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="particles", description="Transformer tokens as particles on the sphere.")
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="do not use the persistent compilation cache (~/.cache/particles/jax; "
        "also off with PARTICLES_NO_CACHE=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _simulate_parser(sub)
    _demo_parser(sub)
    _figure_parser(sub)
    _sweep_parser(sub)
    _animate_parser(sub)
    _info_parser(sub)
    _lyapunov_parser(sub)
    _stability_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not args.no_cache:
        from ._cache import enable_compilation_cache

        enable_compilation_cache()
    from ._status import SimulationError

    try:
        with precision("float64" if getattr(args, "x64", False) else "float32"):
            args.run(args)
    except ValueError as e:
        print(f"particles {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a folder that cannot be created or written
        print(f"particles {args.command}: error: {e}", file=sys.stderr)
        return 2
    except SimulationError as e:
        print(f"particles {args.command}: failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        resume = (
            "; the finished chunks are kept: rerun the same command to resume"
            if args.command == "sweep"
            else ""
        )
        print(f"particles {args.command}: interrupted{resume}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
