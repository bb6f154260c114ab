"""``particles analyze``: hidden states of a real model, layer by layer, and the scheme
whose equiangular collapse explains their mean cosine best."""

import math
import os


def analyze_parser(sub):
    p = sub.add_parser(
        "analyze", help="per-layer observables of a real model's hidden states, and the depth-profile fit"
    )
    p.add_argument(
        "path",
        help="hidden states (layers+1, n, d) or (batch, layers+1, n, d): .npy, .npz, .safetensors or NetCDF "
        "(never a pickle: convert .pt/.bin to safetensors)",
    )
    p.add_argument("--key", default=None, help="the array to read from a file holding several")
    p.add_argument(
        "--layer-axis", type=int, default=-3,
        help="axis of the layers (default -3, the one before the tokens; 0 for a stack of HuggingFace's "
        "hidden_states, (layers+1, batch, n, d))",
    )  # fmt: skip
    p.add_argument(
        "--schemes", default=None, help="schemes to fit, comma-separated (default post,pre,peri,ngpt,sqrt)"
    )
    p.add_argument("--beta", type=float, default=1.0, help="beta of the equiangular model (fixed; default 1)")
    p.add_argument("--out", default=None, help="write the hidden states as a trajectory NetCDF file")
    # float64 mode, so that a float64 file is analysed (and written) as it is; float32 stays float32
    p.set_defaults(run=_run_analyze, x64=True)


def _run_analyze(args):
    import particles

    if args.out is not None:
        folder = os.path.dirname(os.path.abspath(args.out))
        if not os.path.isdir(folder):
            raise ValueError(f"--out {args.out!r}: folder {folder!r} does not exist")
    schemes = None if args.schemes is None else [s.strip() for s in args.schemes.split(",") if s.strip()]
    traj = particles.load_hidden_states(args.path, args.key, layer_axis=args.layer_axis)
    fit = particles.analysis.fit_depth_profile(traj, schemes, beta=args.beta)
    print(_header(args.path, traj))
    print(layer_table(traj))
    print()
    print(fit)
    if args.out is not None:
        traj.save(args.out)  # a temporary file renamed into place: complete or absent
        print(f"wrote {args.out}")


def _header(path, traj) -> str:
    n, d = traj.theta.shape[-2:]
    batch = traj.batch_shape
    over = f", {math.prod(batch)} samples (averaged)" if batch else ""
    return f"{path}: {len(traj.ts) - 1} layers, n={n} tokens, d={d}, {traj.theta.dtype}{over}"


def layer_table(traj) -> str:
    """Mean cosine, min cosine, effective rank and mean radius at each save (averaged
    over a batch), one row per layer under a header."""
    import numpy as np

    from .._depth_fit import depth_of
    from ..analysis import effective_rank, mean_cosine, min_cosine

    lead = tuple(range(len(traj.batch_shape)))
    columns = {
        "mean cosine": mean_cosine(traj.theta),
        "min cosine": min_cosine(traj.theta),
        "effective rank": effective_rank(traj.theta),
        "mean radius": np.mean(np.asarray(traj.r), axis=-1),
    }
    values = {k: np.mean(np.asarray(v, dtype=float), axis=lead) for k, v in columns.items()}
    rows = [f"{'layer':>6}" + "".join(f"  {k:>14}" for k in values)]
    for i, depth in enumerate(depth_of(traj)):
        rows.append(f"{depth:>6.0f}" + "".join(f"  {v[i]:>14.6g}" for v in values.values()))
    return "\n".join(rows)
