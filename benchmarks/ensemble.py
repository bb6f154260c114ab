"""(a) Ensemble: `particles.simulate` on a batch of SA (post) trajectories against the
baselines a user would otherwise pick.

The whole batch as one state (float32 and float64, rtol=atol=1e-6, in the span of the
tokens and in R^d) against per-trajectory scipy `solve_ivp` RK45 on a vectorised numpy
field (float64, rtol=atol=1e-6, every trajectory) and a naive Euler-and-renormalise
loop (the post-LN layer map x <- N(x + h A(x)), fixed h, numpy, vectorised over the
batch, on a subset scaled linearly to the batch). Every answer is checked, trajectory
by trajectory, against a float64 `particles.simulate` at rtol=atol=1e-10.
"""

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
from common import MatmulClock, best_time
from scipy.integrate import solve_ivp

import particles

# What `particles.simulate` is timed in: (dtype, reduce_span), all at scipy's tolerance.
CONFIGS = (("float32", True), ("float32", False), ("float64", True), ("float64", False))


@dataclasses.dataclass(frozen=True)
class Baseline:
    """A baseline's time on the whole batch and its per-trajectory errors."""

    time_s: float
    max_error: float
    median_error: float


@dataclasses.dataclass(frozen=True)
class Solve:
    """One configuration of `particles.simulate` on the whole batch."""

    dtype: str
    tol: float
    reduce_span: bool
    time_s: float  # best of 3 calls after a compiling one
    matmul_rate: float  # FLOP/s, measured in alternation with the solve
    num_steps: int
    num_rejected: int
    max_error: float
    median_error: float
    as_accurate_fraction: float  # trajectories at most as far off as scipy's


@dataclasses.dataclass(frozen=True)
class FieldFloor:
    """The field of a span solve alone, called as many times as that solve called it."""

    dtype: str
    evaluations: int
    time_s: float
    solve_time_s: float


@dataclasses.dataclass(frozen=True)
class EnsembleResult:
    batch: int
    subset: int  # trajectories the Euler loop ran
    euler_h: float
    n: int
    d: int
    beta: float
    t1: float
    tol: float
    reference_time_s: float
    scipy: Baseline
    scipy_evaluations: float  # field evaluations per trajectory
    euler: Baseline  # time scaled linearly from the subset to the batch
    euler_steps: int
    solves: tuple[Solve, ...]  # in the order of CONFIGS
    single_steps: int  # steps of one float32 trajectory alone
    floors: tuple[FieldFloor, ...]  # one per span solve

    def solve(self, dtype, reduce_span=True) -> Solve:
        return next(s for s in self.solves if s.dtype == dtype and s.reduce_span == reduce_span)

    @property
    def accurate(self) -> Solve | None:
        """The fastest solve whose max error is at most scipy's, if any."""
        accurate = [s for s in self.solves if s.max_error <= self.scipy.max_error]
        return min(accurate, key=lambda s: s.time_s) if accurate else None


def numpy_field(beta, n, d):
    """The projected attention field P_θ A(θ) of one trajectory, vectorised numpy."""

    def field(t, y):
        theta = y.reshape(n, d)
        logits = beta * theta @ theta.T
        w = np.exp(logits - logits.max(axis=1, keepdims=True))
        A = (w / w.sum(axis=1, keepdims=True)) @ theta
        return (A - np.sum(theta * A, axis=1, keepdims=True) * theta).ravel()

    return field


def euler_renormalise(x, beta, t1, h):
    """Post-LN layers x <- N(x + h A(x)), all trajectories at once (numpy)."""
    for _ in range(round(t1 / h)):
        logits = beta * np.einsum("bid,bjd->bij", x, x)
        w = np.exp(logits - logits.max(axis=-1, keepdims=True))
        x = x + h * (w / w.sum(axis=-1, keepdims=True)) @ x
        x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    return x


def trajectory_errors(theta, reference):
    """Per trajectory: the largest distance between a token's direction and its reference."""
    theta = theta / np.linalg.norm(theta, axis=-1, keepdims=True)
    return np.max(np.linalg.norm(theta - reference, axis=-1), axis=-1)


def field_floor(x0, dtype, evaluations, beta):
    """Best time of ``evaluations`` calls of the field the span solve integrates
    (`particles.vector_field`: the post velocity in lifted span coordinates, the
    whole batch at once), chained by y <- y + 10^-3 f(y) so that none can be skipped or
    hoisted: the time of the solve with every other cost of the solver removed."""
    with particles.precision(dtype):
        coords, r, _ = particles.initial_state(jnp.asarray(x0, dtype), True, True)  # as simulate starts
        att = particles.Attention(beta=jnp.full(x0.shape[:-2], beta, dtype), Q=None, K=None, V=None)
        args = (particles.get_scheme("post"), att)
        y = (coords, r)

        @jax.jit
        def fields(y):
            step = lambda i, y: jax.tree.map(
                lambda a, k: a + 1e-3 * k, y, particles.vector_field(0.0, y, args)
            )
            return jax.lax.fori_loop(0, evaluations, step, y)

        return best_time(lambda: fields(y), repeat=5)


def _baseline(time_s, err):
    return Baseline(time_s=time_s, max_error=float(np.max(err)), median_error=float(np.median(err)))


def ensemble(
    clock: MatmulClock, batch=256, subset=16, euler_h=0.01, *, n=32, d=128, beta=4.0, t1=30.0, tol=1e-6
) -> EnsembleResult:
    """Time the ensemble; the matmul rate is measured alongside each solve on ``clock``."""
    x0 = np.asarray(particles.init.uniform_sphere(0, n, d, batch=batch), np.float64)
    kw = dict(beta=beta, t1=t1, ts=[t1])
    start = time.perf_counter()
    ref = particles.simulate(x0, "post", rtol=1e-10, atol=1e-10, dtype=np.float64, **kw)
    ref_time = time.perf_counter() - start
    ref_theta = np.asarray(ref.theta[:, -1])

    # scipy on every trajectory: its per-trajectory errors are what "as accurate" means
    field = numpy_field(beta, n, d)
    start = time.perf_counter()
    nfev, scipy_final = 0, []
    for b in range(batch):
        sol = solve_ivp(field, (0.0, t1), x0[b].ravel(), method="RK45", rtol=tol, atol=tol, t_eval=[t1])
        assert sol.success, sol.message
        nfev += sol.nfev
        scipy_final.append(sol.y[:, -1].reshape(n, d))
    t_scipy = time.perf_counter() - start
    err_scipy = trajectory_errors(np.array(scipy_final), ref_theta)

    start = time.perf_counter()
    euler = euler_renormalise(x0[:subset].copy(), beta, t1, euler_h)
    t_euler = (time.perf_counter() - start) * batch / subset
    err_euler = trajectory_errors(euler, ref_theta[:subset])

    solves = []
    for dtype, reduce_span in CONFIGS:
        run = lambda: particles.simulate(
            x0.astype(dtype), "post", rtol=tol, atol=tol, reduce_span=reduce_span, **kw
        )
        t, rate = clock.side_by_side(lambda: run().theta, rounds=3)
        traj = run()
        err = trajectory_errors(np.asarray(traj.theta[:, -1], np.float64), ref_theta)
        solves.append(
            Solve(
                dtype=dtype,
                tol=tol,
                reduce_span=reduce_span,
                time_s=t,
                matmul_rate=rate,
                num_steps=int(traj.stats["num_steps"]),
                num_rejected=int(traj.stats["num_rejected"]),
                max_error=float(np.max(err)),
                median_error=float(np.median(err)),
                as_accurate_fraction=float(np.mean(err <= err_scipy)),
            )
        )
    single = particles.simulate(x0[0].astype(np.float32), "post", rtol=tol, atol=tol, **kw)

    floors = []
    for s in solves:
        if s.reduce_span:
            evaluations = 6 * s.num_steps + 1  # Tsit5: 6 new stages per step (first same as last)
            t = field_floor(x0, s.dtype, evaluations, beta)
            floors.append(FieldFloor(dtype=s.dtype, evaluations=evaluations, time_s=t, solve_time_s=s.time_s))

    return EnsembleResult(
        batch=batch,
        subset=subset,
        euler_h=euler_h,
        n=n,
        d=d,
        beta=beta,
        t1=t1,
        tol=tol,
        reference_time_s=ref_time,
        scipy=_baseline(t_scipy, err_scipy),
        scipy_evaluations=nfev / batch,
        euler=_baseline(t_euler, err_euler),
        euler_steps=round(t1 / euler_h),
        solves=tuple(solves),
        single_steps=int(single.stats["num_steps"]),
        floors=tuple(floors),
    )


# The report: its lines of RESULTS.md (report.py puts the sections together).


def solve_label(s: Solve) -> str:
    label = f"{s.dtype}, rtol=atol={s.tol:g}"
    return label if s.reduce_span else label + ", solved in R^d (reduce_span=False)"


def section_lines(r: EnsembleResult) -> list[str]:
    t_scipy = r.scipy.time_s

    def row(method, t, max_error, median_error, note, fraction=None):
        per_traj = "" if fraction is None else f"{fraction:.0%}"
        return (
            f"| {method} | {t:.3g} | **{t_scipy / t:.1f}x** | {max_error:.1e} | {median_error:.1e} | "
            f"{per_traj} | {note} |"
        )

    lines = [
        f"## (a) Ensemble: {r.batch} trajectories, n={r.n}, d={r.d}, beta={r.beta:g}, T={r.t1:g}, "
        "i.i.d. uniform tokens",
        "",
        f"Reference: float64 `particles.simulate` at rtol=atol=1e-10 ({r.reference_time_s:.1f} s). Error of a "
        "trajectory: the largest distance |θ_i(T) − θ_i^ref(T)| over its tokens. scipy ran every "
        f"trajectory; the Euler loop ran the first {r.subset} and its time is scaled linearly to {r.batch}. "
        "particles: the whole batch as one state, each timing the best of 3 calls after a "
        "compiling one.",
        "",
        "| method | time (s) | scipy time / time | max error | median error | trajectories at most "
        "as far off as scipy's | notes |",
        "|---|---|---|---|---|---|---|",
        row(
            f"scipy solve_ivp RK45 per trajectory, numpy float64, rtol=atol={r.tol:g}",
            t_scipy,
            r.scipy.max_error,
            r.scipy.median_error,
            f"{r.scipy_evaluations:.0f} field evaluations per trajectory",
        ),
        row(
            f"Euler + renormalise, h={r.euler_h:g}, numpy float64 batched ({r.subset} run, "
            f"x{r.batch // r.subset})",
            r.euler.time_s,
            r.euler.max_error,
            r.euler.median_error,
            f"{r.euler_steps} steps; first order, error ~ h",
        ),
    ]
    for s in r.solves:
        steps = f"{s.num_steps} steps ({s.num_rejected} rejected)"
        where = "in the span of the tokens (n x n per trajectory)" if s.reduce_span else "in R^d"
        lines.append(
            row(
                f"particles.simulate, {solve_label(s)}",
                s.time_s,
                s.max_error,
                s.median_error,
                f"{steps}, {where}",
                s.as_accurate_fraction,
            )
        )
    lines.append("")
    lines.append(f"One float32 trajectory alone takes {r.single_steps} steps at rtol=atol={r.tol:g}.")

    f32 = r.solve("float32")
    full32 = r.solve("float32", reduce_span=False)
    evals = 6 * full32.num_steps + 1  # Tsit5: 6 new stages per step (first same as last)
    flops = evals * r.batch * 4 * r.n * r.n * r.d
    limit = flops / full32.matmul_rate
    lines += [
        "",
        f"Flop limit in R^d: {evals} field evaluations x {r.batch} trajectories x 4n²d = {flops / 1e9:.1f} "
        f"GFLOP, {limit * 1e3:.0f} ms at the matmul rate measured alongside ({full32.matmul_rate / 1e9:.0f} "
        f"GFLOP/s); the solve in R^d reaches **{limit / full32.time_s:.0%}** of it. In the span of the "
        f"tokens (n = {r.n} < d = {r.d}) a field evaluation costs 4n³ flops, {r.d // r.n}x fewer.",
        "",
        f"At the same tolerance (float32): **{t_scipy / f32.time_s:.1f}x** faster than scipy, but float32 is "
        f"not as accurate: max error {f32.max_error:.1e} against scipy's {r.scipy.max_error:.1e}. "
        "float32 rounds the attention vector A_i to ~6e-8 of its length; once the tokens cluster, "
        "the tangent velocity P_θ A_i is small and that rounding is a systematic drift of ~1e-7 per "
        "unit time, a floor that tighter tolerances do not lower (a float64 state with the field "
        "evaluated in float32 has the same floor).",
        "",
        "Field alone (the least the solve can cost): the field the span solve integrates, called as "
        "many times as that solve called it, chained by one y + 10⁻³f(y) each and nothing else: "
        + "; ".join(
            f"{f.dtype}: {f.evaluations} evaluations in {f.time_s * 1e3:.0f} ms ({f.time_s / f.solve_time_s:.0%} "
            f"of its solve), so at most **{t_scipy / f.time_s:.1f}x** scipy even with every other cost of "
            "the solver removed"
            for f in r.floors
        )
        + ".",
    ]
    best = r.accurate
    if best is not None:
        lines.append(
            f"At scipy's accuracy (max error at most scipy's): **{t_scipy / best.time_s:.1f}x**, "
            f"particles in {solve_label(best)}."
        )
    else:
        lines.append("No particles configuration here was as accurate as scipy on every trajectory.")
    return lines


def target_lines(r: EnsembleResult) -> list[str]:
    """Its row of the table of targets in RESULTS.md."""
    t_scipy, f32, best = r.scipy.time_s, r.solve("float32"), r.accurate
    return [
        f"| ensemble >= 20x faster than the scipy loop, as accurate | {t_scipy / f32.time_s:.1f}x "
        f"at the same tolerance (float32; max error {f32.max_error:.1e}, scipy's "
        f"{r.scipy.max_error:.1e}); "
        + (
            f"{t_scipy / best.time_s:.1f}x at scipy's accuracy ({solve_label(best)})"
            if best is not None
            else "none as accurate"
        )
        + "; the field evaluations alone, at most "
        + ", ".join(f"{t_scipy / f.time_s:.1f}x ({f.dtype})" for f in r.floors)
        + " |"
    ]
