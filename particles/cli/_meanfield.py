"""``particles meanfield solve`` and ``particles meanfield branch`` (MODEL.md §12)."""

import os
import time

import numpy as np

from ._sweep import grid

RHO0_HELP = (
    "uniform | perturbed (1 + 0.01 Σ_{k≤6} cos kθ; d >= 3: cos^k of the polar angle) | FILE.npy "
    "(tokens (n, d), or values on the grid)"
)


def _common(p):
    p.add_argument("--scheme", default="post", help="post | ngpt | sqrt | mix (before tau)")
    p.add_argument("--beta", type=float, default=1.0, help="inverse temperature (default 1)")
    p.add_argument(
        "--d", type=int, default=2, help="dimension: 2 the circle, >= 3 zonal densities (default 2)"
    )
    p.add_argument("--attention", default="softmax", help="softmax | usa")
    p.add_argument(
        "--modes", type=int, default=None, help="harmonics kept (default: from beta and the noise)"
    )
    p.add_argument("--x64", action="store_true", help="float64 (default float32)")
    p.add_argument("--out", default=None, help="write the result to this NetCDF file")


def meanfield_parser(sub):
    p = sub.add_parser("meanfield", help="the mean-field density flow (n -> infinity), MODEL.md §12")
    inner = p.add_subparsers(dest="action", required=True, parser_class=type(p))
    s = inner.add_parser("solve", help="the density flow from rho0 to t1")
    _common(s)
    s.add_argument("--rho0", default="perturbed", help=RHO0_HELP)
    s.add_argument("--t1", type=float, default=10.0, help="final time (default 10)")
    s.add_argument("--saves", type=int, default=101, help="saves, evenly spaced in [0, t1] (default 101)")
    s.add_argument("--noise", type=float, default=0.0, help="D (default 0)")
    s.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance (default 1e-6)")
    s.add_argument("--atol", type=float, default=1e-8, help="absolute tolerance, L² norm (default 1e-8)")
    s.add_argument("--alpha", type=float, default=None, help="ngpt: step scale alpha")
    s.add_argument("--tau", type=float, default=None, help="mix: switch time (t1 must not pass it)")
    s.set_defaults(run=_run_solve)
    b = inner.add_parser("branch", help="stationary states of post continued along D, up and back down")
    _common(b)
    noise = b.add_mutually_exclusive_group(required=True)
    noise.add_argument("--noise", default=None, help="D values: a list a,b,c or START:STOP:COUNT")
    noise.add_argument(
        "--ratio", default=None, help="D as multiples of the linear threshold (a,b,c or START:STOP:COUNT)"
    )
    b.add_argument("--start", default="cluster", help="cluster | uniform")
    b.set_defaults(run=_run_branch)


def _check_out(out):
    if out is not None:
        folder = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(folder):
            raise ValueError(f"--out {out!r}: folder {folder!r} does not exist")


def _rho0(text, d):
    if text == "uniform":
        return "uniform"
    if text == "perturbed":
        if d == 2:
            return lambda th: 1 + 0.01 * sum(np.cos(k * th) for k in range(1, 7))
        return lambda th: 1 + 0.01 * sum(np.cos(th) ** k for k in range(1, 7))
    if text.endswith(".npy"):
        if not os.path.isfile(text):
            raise ValueError(f"--rho0 {text!r}: no such file")
        return np.load(text)
    raise ValueError(f"--rho0 {text!r}: expected {RHO0_HELP}")


def _scheme(args):
    from ..schemes import get_scheme

    params = {k: v for k, v in (("tau", args.tau), ("alpha", args.alpha)) if v is not None}
    return get_scheme(args.scheme, **params)


def _write(ds, out):
    if out is not None:
        from .._io import write_atomic

        write_atomic(ds, out)
        print(f"wrote {out}")


def _run_solve(args):
    from .. import meanfield

    _check_out(args.out)
    if args.saves < 1:
        raise ValueError(f"--saves {args.saves} must be at least 1")
    start = time.perf_counter()
    sol = meanfield.solve(
        _rho0(args.rho0, args.d), _scheme(args), beta=args.beta, t1=args.t1, ts=np.linspace(0, args.t1, args.saves),
        d=args.d, attention=args.attention, noise=args.noise, modes=args.modes, rtol=args.rtol, atol=args.atol,
    )  # fmt: skip
    s = sol.settings
    print(f"meanfield {s['scheme']} {s['attention']}  d={s['d']} beta={s['beta']:g} D={s['noise']:g}  "
          f"modes={s['modes']}  t = 0 .. {args.t1:g}: {sol.steps} steps")  # fmt: skip
    print(f"{'t':>8} {'r':>9} {'mass':>13} {'min rho':>10} {'F':>11}")
    for i in np.unique(np.linspace(0, len(sol.ts) - 1, min(len(sol.ts), 11)).astype(int)):
        print(f"{sol.ts[i]:>8.4g} {sol.order[i]:>9.5f} {sol.mass[i]:>13.10f} {sol.min_rho[i]:>10.3g} "
              f"{sol.free_energy[i]:>11.5g}")  # fmt: skip
    _write(sol.to_xarray(), args.out)
    print(f"wall time {time.perf_counter() - start:.2f} s")


def _run_branch(args):
    from .. import meanfield

    _check_out(args.out)
    values = grid("--ratio" if args.noise is None else "--noise", args.noise or args.ratio)
    values = np.atleast_1d(np.asarray(values, float))
    if args.noise is None:
        values = values * meanfield.threshold(args.scheme, beta=args.beta, d=args.d, attention=args.attention)
    start = time.perf_counter()
    ds = meanfield.branch(
        args.scheme, beta=args.beta, noise=list(values), d=args.d, attention=args.attention, start=args.start,
        modes=args.modes,
    )  # fmt: skip
    print(f"branch of post {ds.attrs['attention']}  d={args.d} beta={args.beta:g}  "
          f"threshold D = {ds.attrs['threshold']:.6g}  from {args.start}")  # fmt: skip
    print(f"{'D':>10} {'D/thr':>7} {'r up':>8} {'stable':>6} {'r down':>8} {'stable':>6}")
    for j, D in enumerate(ds["noise"].values):
        up, down = (ds.sel(direction=k).isel(noise=j) for k in ("up", "down"))
        print(f"{D:>10.5g} {float(ds['ratio'][j]):>7.4g} {float(up.order):>8.4f} {str(bool(up.stable)):>6} "
              f"{float(down.order):>8.4f} {str(bool(down.stable)):>6}")  # fmt: skip
    _write(ds, args.out)
    print(f"wall time {time.perf_counter() - start:.2f} s")
