"""Command line: argument parsing only; the work is done by the public API.

Bad input gives one line on stderr and exit code 2; a solve that fails gives one line
and exit code 1; no tracebacks.
"""

import argparse
import os
import sys
import time

import numpy as np

INIT_HELP = "uniform | gaussian | equiangular:RHO | FILE.npy (an (n, d) array)"


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _simulate_parser(sub):
    p = sub.add_parser("simulate", help="simulate one configuration and print a summary")
    p.add_argument("--scheme", default="post", help="post, pre, peri, mix, ngpt, sqrt, none, spannorm")
    p.add_argument("--n", type=int, default=None, help="number of tokens (default 32)")
    p.add_argument("--d", type=int, default=None, help="dimension (default 64)")
    p.add_argument("--beta", type=float, default=4.0, help="inverse temperature")
    p.add_argument("--t0", type=float, default=0.0)
    p.add_argument("--t1", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", default="uniform", help=INIT_HELP)
    p.add_argument("--attention", default="softmax", help="softmax | usa")
    p.add_argument("--causal", action="store_true", help="causal mask (token i attends to j <= i)")
    p.add_argument("--save-every", type=float, default=None, help="save interval (default: 100 saves)")
    p.add_argument("--rtol", type=float, default=1e-6)
    p.add_argument("--atol", type=float, default=1e-8)
    p.add_argument("--max-steps", type=int, default=100_000)
    p.add_argument("--tau", type=float, default=None, help="mix: switch time from post to pre")
    p.add_argument("--alpha", type=float, default=None, help="ngpt: step scale alpha")
    p.add_argument("--x64", action="store_true", help="float64 (default float32)")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.add_argument("--out", default=None, help="write the trajectory to this NetCDF file")
    p.set_defaults(run=_run_simulate)


def _initial_tokens(args, init, dtype):
    spec = args.init
    if spec.endswith(".npy"):
        if not os.path.isfile(spec):
            raise ValueError(f"--init {spec!r}: file does not exist")
        x0 = np.load(spec)
        if x0.ndim != 2:
            raise ValueError(f"--init {spec!r}: expected an (n, d) array, got shape {x0.shape}")
        for name, value, actual in (("n", args.n, x0.shape[0]), ("d", args.d, x0.shape[1])):
            if value is not None and value != actual:
                raise ValueError(
                    f"--{name} {value} disagrees with --init {spec!r}, which has {name}={actual}"
                )
        return x0
    n = 32 if args.n is None else args.n
    d = 64 if args.d is None else args.d
    if spec == "uniform":
        return init.uniform_sphere(args.seed, n, d, dtype=dtype)
    if spec == "gaussian":
        return init.gaussian(args.seed, n, d, dtype=dtype)
    if spec.startswith("equiangular:"):
        try:
            rho = float(spec.split(":", 1)[1])
        except ValueError:
            raise ValueError(f"--init {spec!r}: RHO must be a number") from None
        return init.equiangular(n, d, rho, dtype=dtype)
    raise ValueError(f"--init {spec!r} is not one of: {INIT_HELP}")


def _run_simulate(args):
    import jax.numpy as jnp

    import particles

    dtype = jnp.float64 if args.x64 else jnp.float32
    params = {k: v for k, v in (("tau", args.tau), ("alpha", args.alpha)) if v is not None}
    x0 = _initial_tokens(args, particles.init, dtype)
    if args.save_every is not None:
        if not args.save_every > 0:
            raise ValueError(f"--save-every {args.save_every} must be positive")
        if args.t1 <= args.t0:
            raise ValueError(f"t1={args.t1!r} must be greater than t0={args.t0!r}")
        ts = np.append(np.arange(args.t0, args.t1, args.save_every), args.t1)
    else:
        ts = None
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
        **params,
    )
    rho = float(particles.analysis.mean_cosine(traj.theta[-1]))
    r = np.asarray(traj.r[-1])
    print(f"scheme {traj.config['scheme']}  n={traj.config['n']} d={traj.config['d']} beta={args.beta:g}")
    print(f"t = {args.t0:g} .. {args.t1:g}, {len(traj.ts)} saves, {traj.config['dtype']}")
    print(f"final mean cosine  {rho:.6f}")
    print(f"final radii        mean {r.mean():.4g}  min {r.min():.4g}  max {r.max():.4g}")
    print(f"steps              {traj.stats['num_steps']} ({traj.stats['num_rejected']} rejected)")
    if args.out is not None:
        traj.save(args.out)
        print(f"wrote              {args.out}")
    print(f"wall time          {time.perf_counter() - start:.2f} s")


def _demo_parser(sub):
    p = sub.add_parser("demo", help="all schemes from the same tokens: figure and table")
    p.add_argument("--out-dir", default="figures", help="folder for the figure (default figures/)")
    p.set_defaults(run=_run_demo)


def _run_demo(args):
    from .demo import run_demo

    run_demo(args.out_dir)


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
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "x64", False):
        import jax

        jax.config.update("jax_enable_x64", True)
    if not args.no_cache:
        from ._cache import enable_compilation_cache

        enable_compilation_cache()
    from ._simulate import SimulationError

    try:
        args.run(args)
    except ValueError as e:
        print(f"particles {args.command}: error: {e}", file=sys.stderr)
        return 2
    except SimulationError as e:
        print(f"particles {args.command}: failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"particles {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
