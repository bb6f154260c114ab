"""``particles lyapunov`` and ``particles stability``."""

import os
import time

import numpy as np

from ._options import (
    ATTENTION_HELP,
    INIT_HELP,
    SCHEME_HELP,
    solver_options,
    time_options,
    transformer_arguments,
    transformer_options,
)
from ._sweep import grid


def _sensitivity_common(p, n, d, t1):
    """The configuration flags of lyapunov and stability."""
    p.add_argument("--scheme", default="post", help=SCHEME_HELP)
    p.add_argument("--n", type=int, default=n, help=f"number of tokens (default {n})")
    p.add_argument("--d", type=int, default=d, help=f"dimension (default {d})")
    p.add_argument(
        "--beta", default="1", help="inverse temperature: one value, a list a,b,c or START:STOP:COUNT"
    )
    time_options(p, t1)
    p.add_argument("--seed", type=int, default=0, help="seed of the initial tokens")
    p.add_argument("--init", default="uniform", help=INIT_HELP)
    p.add_argument("--attention", default="softmax", help=ATTENTION_HELP)
    p.add_argument("--tau", type=float, default=None, help="mix: switch time from post to pre")
    p.add_argument("--alpha", type=float, default=None, help="ngpt: step scale alpha")
    p.add_argument("--out", default=None, help="write the table to this NetCDF file")
    solver_options(p)
    transformer_options(p)


def _sensitivity_inputs(args):
    """(x0, betas as an array, keyword arguments of the sensitivity functions)."""
    import particles

    dtype = np.float64 if args.x64 else np.float32
    x0 = particles.init.from_spec(args.init, args.seed, args.n, args.d, dtype=dtype, name="--init")
    betas = np.atleast_1d(np.asarray(grid("--beta", args.beta), float))
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
        max_steps=args.max_steps, dtype=dtype, **transformer_arguments(args, x0.shape[-1], dtype), **params,
    )  # fmt: skip
    if ts is not None:
        kw["ts"] = ts
    return x0, betas, kw


def lyapunov_parser(sub):
    p = sub.add_parser("lyapunov", help="finite-time Lyapunov exponents of the flow map, a table per beta")
    _sensitivity_common(p, n=8, d=8, t1=10.0)
    p.add_argument("--k", type=int, default=8, help="how many exponents, the largest (default 8)")
    p.add_argument("--method", default="auto", help="auto | jacobian | qr")
    p.set_defaults(run=_run_lyapunov)


def _run_lyapunov(args):
    from .. import sensitivity

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


def stability_parser(sub):
    p = sub.add_parser("stability", help="per-layer hidden-state and gradient norms of a random transformer")
    _sensitivity_common(p, n=8, d=16, t1=None)
    p.set_defaults(run=_run_stability, layers=8, norm="layernorm", weights="kaiming")


def _run_stability(args):
    from .. import sensitivity

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
        from .._io import write_atomic

        write_atomic(ds, args.out)
        print(f"wrote {args.out}")
    print(f"wall time {time.perf_counter() - start:.2f} s")
