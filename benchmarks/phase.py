"""(g) Phase diagrams (issue 14): the first result of a fresh process, and the
full-resolution diagram.

Cold: the small phase diagram (post, n = 32, d in {8, 128}, 12 beta in [0.1, 9], 16
seeds, T = 30, saves every 0.1) as a fresh ``particles sweep`` process with an empty
compilation cache (token solve, and ``--gram``), against the published research
algorithm in a fresh numpy process (batched Euler, dt = 0.1, renormalised, float64:
``EULER_SCRIPT``), both from the same initial tokens (the particles seeds, written to
a .npy first). Error of a diagram: the largest |mean cosine − reference| over the
saves of a few (d, beta, seed) runs, the reference a float64 ``particles.simulate`` at
rtol = atol = 1e-12 from the same tokens.

Full: the published resolution (d in {8, 128, 1024}, 90 beta, 64 seeds, saves every
0.1) in this process, token solve and Gram solve, pair densities compared.
"""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

import particles

N, T1, BETA_RANGE, DELTA = 32, 30.0, (0.1, 9.0), 1e-3

EULER_SCRIPT = """
import sys, time
import numpy as np
betas = np.linspace({lo}, {hi}, {nb})
out = {{}}
for k, path in enumerate(sys.argv[1:-1]):  # one file of tokens (seed, n, d) per d
    xd = np.load(path).astype(np.float64)
    theta = np.repeat(xd[None], len(betas), axis=0)  # (beta, seed, n, d)
    b = betas[:, None, None, None]
    steps = int(round({t1} / {h}))
    mean_cos = np.empty((steps + 1, *theta.shape[:2]))
    pairs = np.empty_like(mean_cos)
    n = theta.shape[-2]
    for s in range(steps + 1):
        G = theta @ np.swapaxes(theta, -1, -2)
        mean_cos[s] = (G.sum((-1, -2)) - n) / (n * (n - 1))
        pairs[s] = ((G >= 1 - {delta}).sum((-1, -2)) - n) / (n * (n - 1))
        if s == steps:
            break
        W = np.exp(b * G)
        W /= W.sum(-1, keepdims=True)
        A = W @ theta
        theta = theta + {h} * (A - np.sum(A * theta, -1, keepdims=True) * theta)
        theta /= np.linalg.norm(theta, axis=-1, keepdims=True)
    out[f"mean_cosine_{{k}}"] = mean_cos
    out[f"pair_density_{{k}}"] = pairs
np.savez(sys.argv[-1], **out)
"""

# Where a cold particles process spends its time: the import, then the same sweep twice in
# one process (the second finds every program compiled), from an empty compilation cache.
PARTS_SCRIPT = """
import json, sys, time
start = time.perf_counter()
import particles
from particles.cli import main
imported = time.perf_counter()
main(sys.argv[1:] + ["--out", "first"])
first = time.perf_counter()
main(sys.argv[1:] + ["--out", "again"])
again = time.perf_counter()
print(json.dumps([imported - start, first - imported, again - first]))
"""


@dataclasses.dataclass(frozen=True)
class ColdRun:
    label: str
    wall_s: float  # the whole process
    max_error: float  # mean cosine against the float64 reference, over the checked runs
    # a second cold process (particles only): import, the sweep, the same sweep again
    import_s: float | None = None
    first_s: float | None = None
    again_s: float | None = None

    @property
    def compile_s(self) -> float | None:
        """Compilation and other first-call costs: the first sweep less the second."""
        return None if self.first_s is None else self.first_s - self.again_s


@dataclasses.dataclass(frozen=True)
class FullRun:
    label: str
    wall_s: float
    pair_densities_differing: float  # fraction of (d, beta, seed, time) entries != the token solve's


@dataclasses.dataclass(frozen=True)
class PhaseResult:
    ds: tuple
    betas: int
    seeds: int
    saves: int
    euler_h: float
    cold: tuple  # ColdRun: euler, particles (token), particles --gram
    full: tuple  # FullRun: token, gram ([] if not run)
    full_shape: tuple  # (ds, betas, seeds, saves) of the full diagram
    checked: int  # runs compared with the reference


def _wall(argv, env):
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def _parts(args, env, tmp):
    """(import, first sweep, same sweep again) in one fresh process with an empty cache."""
    shutil.rmtree(os.path.join(tmp, "cache"), ignore_errors=True)
    work = tempfile.mkdtemp(dir=tmp)
    done = subprocess.run(
        [sys.executable, "-c", PARTS_SCRIPT, *args],
        env=env,
        cwd=work,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _particles_command():
    exe = shutil.which("particles", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "particles"]


def _reference(x0, beta, ts):
    traj = particles.simulate(x0, "post", beta=beta, t1=T1, ts=ts, rtol=1e-12, atol=1e-12, dtype="float64")
    theta = np.asarray(traj.theta, np.float64)
    G = theta @ np.swapaxes(theta, -1, -2)
    return (G.sum((-1, -2)) - N) / (N * (N - 1))  # in numpy: float64 outside JAX's 64-bit mode


# The particles processes of the cold diagram: (label, extra arguments of `particles sweep`).
VARIANTS = (("particles sweep (token solve, float32)", ()), ("particles sweep --gram", ("--gram",)))


def cold(
    ds=(8, 128),
    betas=12,
    seeds=16,
    euler_h=0.1,
    save_every=0.1,
    checks=((0, 0), (5, 3), (11, 7)),
    variants=VARIANTS,
):
    """The cold small phase diagram: the Euler ColdRun, then one per ``variants`` (token,
    gram), and the number of runs checked."""
    beta_grid = np.linspace(*BETA_RANGE, betas)
    ts = particles.save_times(0.0, T1, save_every=save_every)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, XDG_CACHE_HOME=os.path.join(tmp, "cache"))
        env.pop("PARTICLES_NO_CACHE", None)
        env.pop("JAX_COMPILATION_CACHE_DIR", None)  # cold: no cache inherited from the environment
        # the Euler process reads the particles seeds' tokens, one file per d
        tokens, paths = {}, []
        for d in ds:
            tokens[d] = np.stack(
                [
                    np.asarray(particles.init.from_spec("uniform", s, N, d, np.dtype("float32")))
                    for s in range(seeds)
                ]
            )
            paths.append(os.path.join(tmp, f"x{d}.npy"))
            np.save(paths[-1], tokens[d])
        script = EULER_SCRIPT.format(
            lo=BETA_RANGE[0], hi=BETA_RANGE[1], nb=betas, t1=T1, h=euler_h, delta=DELTA
        )
        out = os.path.join(tmp, "euler.npz")
        euler_wall = _wall([sys.executable, "-c", script, *paths, out], env)
        euler, every = np.load(out), int(round(save_every / euler_h))
        refs, euler_err = {}, 0.0
        for k, d in enumerate(ds):
            for b, s in checks:
                refs[(d, b, s)] = ref = _reference(tokens[d][s].astype(np.float64), float(beta_grid[b]), ts)
                got = euler[f"mean_cosine_{k}"][::every, b, s]  # (steps + 1, beta, seed)
                euler_err = max(euler_err, float(np.max(np.abs(got - ref))))
        label = f"numpy Euler + renormalise, dt = {euler_h:g}, float64 (the research algorithm)"
        runs.append(ColdRun(label, euler_wall, euler_err))
        for label, extra in variants:
            extra = list(extra)
            store = os.path.join(tmp, "store" + "".join(extra))
            argv = [
                *_particles_command(), "sweep", "--schemes", "post", "--n", str(N), "--d", ",".join(map(str, ds)),
                "--beta", f"{BETA_RANGE[0]}:{BETA_RANGE[1]}:{betas}", "--seeds", str(seeds), "--t1", str(T1),
                "--save-every", str(save_every), "--observables", "pair_density,mean_cosine", "--no-progress",
                "--out", store, *extra,
            ]  # fmt: skip
            shutil.rmtree(os.path.join(tmp, "cache"), ignore_errors=True)
            wall = _wall(argv, env)
            ds_out = particles.open_sweep(store)
            err = 0.0
            for (d, b, s), ref in refs.items():
                got = ds_out["mean_cosine"].sel(d=d).isel(beta=b, seed=s).values.astype(float)
                err = max(err, float(np.max(np.abs(got - ref))))
            parts = _parts(argv[len(_particles_command()) : argv.index("--out")] + extra, env, tmp)
            runs.append(ColdRun(label + (", float64 chords" if extra else ""), wall, err, *parts))
    return runs, len(refs)


def full(ds=(8, 128, 1024), betas=90, seeds=64, save_every=0.1):
    """The full-resolution diagram in this process, token then Gram solve."""
    kw = dict(
        schemes="post", n=N, d=list(ds), beta=np.linspace(*BETA_RANGE, betas), seeds=seeds, t1=T1,
        save_every=save_every, observables=["pair_density"], delta=DELTA, dtype="float32", progress=False,
    )  # fmt: skip
    runs, densities = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, gram in (("token solve (float32)", False), ("Gram solve (float64 chords)", True)):
            start = time.perf_counter()
            sw = particles.sweep(os.path.join(tmp, label.split()[0]), gram=gram, **kw)
            wall = time.perf_counter() - start
            densities[gram] = sw["pair_density"].values
            differing = float(np.mean(densities[gram] != densities[False]))
            runs.append(FullRun(label, wall, differing))
    return runs, (len(ds), betas, seeds, len(particles.save_times(0.0, T1, save_every=save_every)))


def phase(small=None, full_size=None) -> PhaseResult:
    """Both measurements; ``small`` / ``full_size`` override the grids (dicts of kwargs;
    ``full_size=False`` skips the full diagram)."""
    small = dict(small or {})
    cold_runs, checked = cold(**small)
    full_runs, shape = ((), ()) if full_size is False else full(**(full_size or {}))
    return PhaseResult(
        ds=tuple(small.get("ds", (8, 128))), betas=small.get("betas", 12), seeds=small.get("seeds", 16),
        saves=len(particles.save_times(0.0, T1, save_every=small.get("save_every", 0.1))), euler_h=small.get("euler_h", 0.1),
        cold=tuple(cold_runs), full=tuple(full_runs), full_shape=tuple(shape), checked=checked,
    )  # fmt: skip


# The report: its lines of RESULTS.md (report.py puts the sections together).


def target_lines(r: PhaseResult) -> list[str]:
    euler, *ours = r.cold
    best = min(ours, key=lambda c: c.wall_s)
    lines = [
        f"| cold small phase diagram: a fresh particles process no slower than the numpy Euler one, at >= 100x "
        f"smaller error | {euler.wall_s / best.wall_s:.2f}x ({best.label}: {best.wall_s:.1f} s against "
        f"{euler.wall_s:.1f} s), error {best.max_error:.1e} against {euler.max_error:.1e} "
        f"({euler.max_error / best.max_error:.0f}x smaller) |",
    ]
    if r.full:
        runs = "; ".join(f"{f.label} {f.wall_s:.1f} s" for f in r.full)
        lines.append(f"| full-resolution phase diagram <= 40 s | {runs} |")
    return lines


def section_lines(r: PhaseResult) -> list[str]:
    """Section (h): phase diagrams, the cold first result and the full resolution."""
    out = [
        f"## (h) Phase diagrams (post, n = 32, T = 30): cold small diagram (d = {', '.join(map(str, r.ds))}, "
        f"{r.betas} beta, {r.seeds} seeds, {r.saves} saves) and the full resolution",
        "",
        "Each cold run is a fresh process with an empty compilation cache; error: the largest "
        f"|mean cosine − reference| over the saves of {r.checked} (d, beta, seed) runs, the reference a "
        "float64 `particles.simulate` at rtol = atol = 1e-12 from the same tokens.",
        "",
        "| cold process | wall time (s) | Euler time / time | max error | import (s) | compilation (s) | "
        "the sweep, compiled (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    euler = r.cold[0]
    part = lambda v: "" if v is None else f"{v:.2f}"  # noqa: E731
    out += [
        f"| {c.label} | {c.wall_s:.2f} | **{euler.wall_s / c.wall_s:.2f}x** | {c.max_error:.1e} | "
        f"{part(c.import_s)} | {part(c.compile_s)} | {part(c.again_s)} |"
        for c in r.cold
    ]
    timed = [c for c in r.cold[1:] if c.import_s is not None]
    if timed:
        best = min(timed, key=lambda c: c.wall_s)
        fixed = best.import_s + best.compile_s
        out += [
            "",
            "The last three columns come from a second fresh process per row that imports particles and runs "
            "the same sweep twice: compilation is the first sweep's time less the second's (which finds "
            f"every program compiled). What bounds the cold ratio: for {best.label}, import and compilation "
            f"alone take {fixed:.2f} s, {fixed / euler.wall_s:.0%} of the whole Euler process "
            f"({euler.wall_s:.2f} s), before any solving.",
        ]
    if r.full:
        d, b, s, t = r.full_shape
        out += [
            "",
            f"Full resolution ({d} d x {b} beta x {s} seeds, {t} saves, float32 results), in this process:",
            "",
            "| solve | wall time (s) | pair densities differing from the token solve's |",
            "|---|---|---|",
        ]
        out += [f"| {f.label} | {f.wall_s:.1f} | {f.pair_densities_differing:.2%} |" for f in r.full]
    return out
