"""``particles figure``, ``particles animate`` and ``particles info``."""

import os
import time


def figure_parser(sub):
    from ..figures import FIGURES

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

    from ..figures import is_published, run

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


def animate_parser(sub):
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
    from ..animate import animate

    out = args.out if args.out is not None else os.path.splitext(args.path)[0] + ".gif"
    start = time.perf_counter()
    animate(args.path, out, fps=args.fps, sample=args.sample, delta=args.delta, components=args.components)
    print(f"wrote {out} in {time.perf_counter() - start:.1f} s")


def info_parser(sub):
    p = sub.add_parser("info", help="describe a sweep store or a trajectory file")
    p.add_argument("path", help="a sweep store folder or a trajectory .nc file")
    p.set_defaults(run=_run_info)


def _run_info(args):
    from .._info import info

    print(info(args.path))
