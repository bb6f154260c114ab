"""Command line: argument parsing only; the work is done by the public API.

Bad input gives one line on stderr and exit code 2; a solve that fails gives one line
and exit code 1; no tracebacks. One module per family of subcommands; the options they
share are built once in ``_options``.
"""

import argparse
import sys

from .._validate import precision
from ._analyze import analyze_parser
from ._files import animate_parser, figure_parser, info_parser
from ._meanfield import meanfield_parser
from ._options import Parser
from ._sensitivity import lyapunov_parser, stability_parser
from ._simulate import demo_parser, simulate_parser
from ._sweep import sweep_parser


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="particles", description="Transformer tokens as particles on the sphere.")
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="do not use the persistent compilation cache (~/.cache/particles/jax; "
        "also off with PARTICLES_NO_CACHE=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    simulate_parser(sub)
    demo_parser(sub)
    figure_parser(sub)
    sweep_parser(sub)
    animate_parser(sub)
    info_parser(sub)
    lyapunov_parser(sub)
    stability_parser(sub)
    meanfield_parser(sub)
    analyze_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not args.no_cache:
        from .._cache import enable_compilation_cache

        enable_compilation_cache()
    from .._status import SimulationError

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
