"""Options and checks shared by the subcommands, built once: the model's parts, the
solve's settings (from :class:`particles.SolveConfig`'s defaults), times, and the
random transformer."""

import argparse

from .._config import DEFAULTS, NUM_SAVES
from .._model import KERNELS
from .._model.position import SPEC_NAMES, from_spec
from ..schemes import SCHEMES

INIT_HELP = "uniform | gaussian | equiangular:RHO | FILE.npy (an (n, d) array)"


ATTENTION_HELP = " | ".join(KERNELS)  # the attention kernels (particles/_model/kernel.py)
SCHEME_HELP = ", ".join(SCHEMES)


def transformer_options(p, sweep=False):
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


def solver_options(p):
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


def time_options(p, t1):
    """--t0 and --t1: the depth interval (t1 None: from --layers)."""
    p.add_argument("--t0", type=float, default=0.0, help="start time (depth) of the solve (default 0)")
    default = "t0 + layers" if t1 is None else f"{t1:g}"
    p.add_argument("--t1", type=float, default=t1, help=f"end time (depth) of the solve (default {default})")


PAIRS = "every observable is about pairs of tokens"


def check_pairs(flag, n):
    """Refuse fewer than 2 tokens on the command line, as the sweep does, with one message."""
    if n < 2:
        raise ValueError(f"{flag}={n} must be at least 2: {PAIRS}")


def check_noise(noise, step_size):
    if noise and step_size is None:
        raise ValueError("--noise > 0 needs constant steps: give step_size with --step-size H")


class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def transformer_arguments(args, d, dtype) -> dict:
    """simulate's layers, norm, residual and (drawn from --weight-seed) weights and MLP."""
    from ..weights import random_transformer_arguments

    if args.weights is None and args.mlp is None and args.heads != 1:
        raise ValueError("--heads applies to random weights: give --weights kaiming|gaussian|goe")
    drawn = random_transformer_arguments(
        d, t0=args.t0, t1=args.t1, layers=args.layers, weights=args.weights, mlp=args.mlp, heads=args.heads,
        weight_seed=args.weight_seed, dtype=dtype,
    )  # fmt: skip
    return {"layers": args.layers, "norm": args.norm, "residual": args.residual, **drawn}


POSITION_HELP = f"positions in attention: {', '.join(SPEC_NAMES)}, or parts joined by '+' (e.g. rope+causal)"


def position_options(p):
    p.add_argument("--position", default=None, help=POSITION_HELP)
    p.add_argument("--rope-base", type=float, default=10000.0, help="RoPE's base (with --position rope)")
    p.add_argument(
        "--alibi-slope",
        type=float,
        default=None,
        help="ALiBi's slope for every head (default 2^(-8h/H) per head)",
    )


def position_from_args(args):
    """The position parts of ``--position`` (None: none), with ``--rope-base`` and
    ``--alibi-slope``: the label of :func:`particles._model.position.from_spec`."""
    if args.position is None:
        return None
    names = args.position.split("+")
    for name in names:
        if name not in SPEC_NAMES:
            raise ValueError(f"--position {args.position!r}: {name!r} is not one of: {', '.join(SPEC_NAMES)}")
    value = {"alibi": args.alibi_slope, "rope": args.rope_base}
    return from_spec(
        "+".join(n if value.get(n) is None else f"{n}:{value[n]!r}" for n in names), "--position"
    )
