"""(d) Start-up: `particles simulate` (the default problem) end to end, first and second
invocation with the persistent compilation cache, and without it."""

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time


@dataclasses.dataclass(frozen=True)
class StartupResult:
    import_s: float  # `python -c "import particles"`
    first_s: float  # empty compilation cache
    second_s: float  # warm compilation cache
    nocache_s: float  # PARTICLES_NO_CACHE=1


def default_command() -> list[str]:
    """``particles simulate`` (the default problem), by the script beside this Python."""
    exe = shutil.which("particles", path=os.path.dirname(sys.executable))
    return [exe, "simulate"] if exe else [sys.executable, "-m", "particles", "simulate"]


def startup(repeat=2, command=None) -> StartupResult:
    """Wall times of fresh processes running ``command`` (default
    :func:`default_command`), each with an empty compilation cache folder at first; the
    import and the warm invocation are the best of ``repeat``."""
    cmd = command or default_command()
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, XDG_CACHE_HOME=cache)
        env.pop("PARTICLES_NO_CACHE", None)
        env.pop("JAX_COMPILATION_CACHE_DIR", None)  # cold: no cache inherited from the environment
        env.pop("EQX_ON_ERROR", None)

        def wall(extra_env=None, argv=cmd):
            start = time.perf_counter()
            subprocess.run(argv, env={**env, **(extra_env or {})}, check=True, capture_output=True)
            return time.perf_counter() - start

        t_import = min(wall(argv=[sys.executable, "-c", "import particles"]) for _ in range(repeat))
        first = wall()
        second = min(wall() for _ in range(repeat))
        nocache = wall({"PARTICLES_NO_CACHE": "1"})
    return StartupResult(import_s=t_import, first_s=first, second_s=second, nocache_s=nocache)


# The report: its lines of RESULTS.md (report.py puts the sections together).


def section_lines(r: StartupResult) -> list[str]:
    return [
        "## (d) Start-up: `particles simulate` (n=32, d=64, T=20, 101 saves), end to end",
        "",
        "| `import particles` | first invocation (empty cache) | second invocation (warm cache) | without cache |",
        "|---|---|---|---|",
        f"| {r.import_s:.2f} s | {r.first_s:.2f} s | **{r.second_s:.2f} s** | {r.nocache_s:.2f} s |",
    ]


def target_lines(r: StartupResult) -> list[str]:
    """Its row of the table of targets in RESULTS.md."""
    return [f"| start-up under 3 s (warm cache) | {r.second_s:.2f} s |"]
