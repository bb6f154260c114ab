"""``particles simulate`` and ``particles demo``."""

import os
import time

import numpy as np

from ._options import (
    ATTENTION_HELP,
    INIT_HELP,
    PAIRS,
    SCHEME_HELP,
    check_noise,
    check_pairs,
    position_from_args,
    position_options,
    solver_options,
    time_options,
    transformer_arguments,
    transformer_options,
)


def simulate_parser(sub):
    p = sub.add_parser("simulate", help="simulate one configuration and print a summary")
    p.add_argument("--scheme", default="post", help=SCHEME_HELP)
    p.add_argument("--n", type=int, default=None, help="number of tokens (default 32)")
    p.add_argument("--d", type=int, default=None, help="dimension (default 64)")
    p.add_argument("--beta", type=float, default=4.0, help="inverse temperature")
    time_options(p, 20.0)
    p.add_argument("--seed", type=int, default=0, help="seed of the initial tokens (and of the noise)")
    p.add_argument("--init", default="uniform", help=INIT_HELP)
    p.add_argument("--attention", default="softmax", help=ATTENTION_HELP)
    p.add_argument("--causal", action="store_true", help="causal mask (token i attends to j <= i)")
    position_options(p)
    solver_options(p)
    transformer_options(p)
    p.add_argument("--step-size", type=float, default=None, help="constant steps (default: adaptive)")
    p.add_argument(
        "--noise", type=float, default=0.0,
        help="noise D of the SDE on the sphere (needs --step-size; Brownian paths from --seed)",
    )  # fmt: skip
    p.add_argument("--tau", type=float, default=None, help="mix: switch time from post to pre")
    p.add_argument("--alpha", type=float, default=None, help="ngpt: step scale alpha")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.add_argument("--out", default=None, help="write the trajectory to this NetCDF file")
    p.add_argument(
        "--checkpoint", default=None,
        help="a trained model: a folder with config.json and *.safetensors (GPT-2, LLaMA, Mistral, Qwen2, "
        "BERT, ALBERT); runs --tokens through its layers (--layers: fewer, or more for ALBERT)",
    )  # fmt: skip
    p.add_argument("--tokens", default=None, help="with --checkpoint: token ids, e.g. 464,2068,7586")
    p.set_defaults(run=_run_simulate)


def _run_simulate(args):
    import particles

    if args.checkpoint is not None or args.tokens is not None:
        return _run_checkpoint(args)
    dtype = np.float64 if args.x64 else np.float32
    params = {k: v for k, v in (("tau", args.tau), ("alpha", args.alpha)) if v is not None}
    n, d = args.n, args.d
    if not args.init.endswith(".npy"):
        n, d = 32 if n is None else n, 64 if d is None else d
    if n is not None:
        check_pairs("--n", n)
    check_noise(args.noise, args.step_size)
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
        position=position_from_args(args),
        rtol=args.rtol,
        atol=args.atol,
        max_steps=args.max_steps,
        dtype=dtype,
        progress=args.progress,
        step_size=args.step_size,
        noise=args.noise,
        key=args.seed if args.noise else None,
        **transformer_arguments(args, x0.shape[-1], dtype),
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


def _token_ids(spec: str) -> np.ndarray:
    try:
        ids = [int(item) for item in spec.split(",")]
    except ValueError:
        raise ValueError(
            f"--tokens {spec!r} must be integers separated by commas, e.g. 464,2068,7586"
        ) from None
    return np.asarray(ids)


def _run_checkpoint(args):
    """``simulate --checkpoint DIR --tokens IDS``: the model's layers on its embedded tokens,
    with the mean cosine and mean radius of every layer."""
    import particles

    if args.checkpoint is None or args.tokens is None:
        raise ValueError("--checkpoint and --tokens go together: give both")
    if args.out is not None and not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        raise ValueError(f"--out {args.out!r}: its folder does not exist")
    start = time.perf_counter()
    tf = particles.from_checkpoint(args.checkpoint, dtype=np.float64 if args.x64 else np.float32)
    loaded = time.perf_counter() - start
    traj = particles.simulate(
        tf.embed(_token_ids(args.tokens)), tf, layers=args.layers, progress=args.progress
    )
    print(repr(tf))
    print(f"loaded in {loaded:.2f} s; {traj.config['n']} tokens, {traj.config['layers']} layers")
    cosine = np.asarray(particles.analysis.mean_cosine(traj.theta))
    radius = np.asarray(traj.r).mean(axis=-1)
    print(f"{'layer':>5}  {'mean cosine':>11}  {'mean |x|':>9}")
    for layer, (c, r) in enumerate(zip(cosine, radius)):
        print(f"{layer:>5}  {c:>11.6f}  {r:>9.4g}")
    if args.out is not None:
        traj.save(args.out)
        print(f"wrote {args.out}")
    print(f"wall time {time.perf_counter() - start:.2f} s")


def demo_parser(sub):
    p = sub.add_parser("demo", help="all schemes from the same tokens: figure and table")
    p.add_argument("--out-dir", default="figures", help="folder for the figure (default figures/)")
    p.set_defaults(run=_run_demo)


def _run_demo(args):
    from ..demo import run_demo

    run_demo(args.out_dir)
