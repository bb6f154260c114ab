"""The Gram solve (particles.solve_gram) against the token solve: accuracy and speed.

(a) Accuracy: n = 32, d = 128, beta = 4, T = 30, 64 uniform seeds, float64, 301 saves.
    Reference: `particles.simulate` at rtol = atol = 1e-11, G_ref = ΘΘᵀ at every save.
    Side by side: `simulate` and `solve_gram` at rtol = atol = 1e-6 (and solve_gram at
    looser tolerances, to show how the error scales with the G tolerance): max |G − G_ref|
    over saves, trajectories and entries, max |r − r_ref|, the token path's max
    |θ_i − θ_i^ref|, and step counts.
(b) Speed (2-core CPU, float64, batch 256, n = 32, d = 128): one field evaluation,
    gram_velocity against the token field (`scheme.velocity` with `particles.Attention`,
    in R^d and in the n coordinates of the span that `simulate` integrates); a whole solve
    (T = 30, beta = 4, rtol = atol = 1e-6, 11 saves) against `simulate`; the Gram solve
    for several d. Best of 5 after a warm-up, `time.perf_counter`, `block_until_ready`.

    python benchmarks/gram_accuracy.py [--part a|b|all] [--seeds 64] [--batch 256]
"""

import argparse
import functools
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from common import best_time as _best_time  # noqa: E402

import particles  # noqa: E402

best_time = functools.partial(_best_time, repeat=5)

HIGH = jax.lax.Precision.HIGHEST


def tokens(seeds, n, d):
    return jnp.stack([particles.init.uniform_sphere(s, n, d, dtype=jnp.float64) for s in seeds])


def gram(theta):
    return np.einsum("...id,...jd->...ij", np.asarray(theta), np.asarray(theta))


def chords(theta):
    """C_ij = |θ_i − θ_j| computed from the tokens (from G it would lose precision: √ε)."""
    theta = np.asarray(theta)
    out = np.empty(theta.shape[:-1] + theta.shape[-2:-1])
    for idx in np.ndindex(*theta.shape[:-2]):  # one configuration at a time: (n, n, d) at most
        out[idx] = np.linalg.norm(theta[idx][:, None, :] - theta[idx][None, :, :], axis=-1)
    return out


def errors(G, G_ref, C, C_ref, ts):
    """max |G − G_ref| over trajectories and entries: over all saves, t <= 10, t > 10, at T;
    and the largest chord-distance error max |C − C_ref|, C_ij = |θ_i − θ_j|."""
    e = np.max(np.abs(G - G_ref), axis=(0, 2, 3))
    c = np.max(np.abs(np.abs(C) - C_ref))
    early = ts <= 10
    return f"{e.max():.1e} | {e[early].max():.1e} | {e[~early].max():.1e} | {e[-1]:.1e} | {c:.1e}"


def accuracy(schemes, num_seeds, n=32, d=128, beta=4.0, T=30.0, tol=1e-6, factors=(1, 3, 10)):
    x0 = tokens(range(num_seeds), n, d)
    ts = np.linspace(0, T, 301)
    G0 = gram(x0)
    print(f"\n(a) accuracy: n={n}, d={d}, beta={beta}, T={T}, {num_seeds} seeds, 301 saves, float64")
    print("errors against `simulate` at rtol = atol = 1e-11 (G = ΘΘᵀ at the saves)\n")
    print(
        "| scheme | path | rtol = atol | steps (rejected) | max abs(G - G_ref) | t <= 10 | t > 10 | t = T "
        "| max chord error | max abs(r - r_ref) | max token error abs(θ_i - θ_i_ref) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for scheme in schemes:
        kw = dict(beta=beta, t1=T, ts=ts, dtype="float64")
        start = time.perf_counter()
        ref = particles.simulate(x0, scheme, rtol=1e-11, atol=1e-11, **kw)
        ref_time = time.perf_counter() - start
        G_ref, r_ref, C_ref = gram(ref.theta), np.asarray(ref.r), chords(ref.theta)
        print(
            f"| {scheme} | reference (`simulate`, {ref_time:.1f} s) | 1e-11 | {ref.stats['num_steps']} "
            f"({ref.stats['num_rejected']}) | | | | | | | |"
        )
        tok = particles.simulate(x0, scheme, rtol=tol, atol=tol, **kw)
        theta_err = np.max(np.linalg.norm(np.asarray(tok.theta - ref.theta), axis=-1))
        print(
            f"| {scheme} | token (`simulate`) | {tol:g} | {tok.stats['num_steps']} ({tok.stats['num_rejected']}) "
            f"| {errors(gram(tok.theta), G_ref, chords(tok.theta), C_ref, ts)} | {np.max(np.abs(np.asarray(tok.r) - r_ref)):.1e} "
            f"| {theta_err:.1e} |"
        )
        for f in (*factors, 1e-5):
            sol = particles.solve_gram(G0, None, scheme, beta=beta, t1=T, ts=ts, rtol=f * tol, atol=f * tol)
            G, C = (np.moveaxis(np.asarray(a), 0, -3) for a in (sol.G, sol.C))
            r = np.moveaxis(np.asarray(sol.r), 0, -2)
            print(
                f"| {scheme} | Gram (`solve_gram`) | {f * tol:g} | {sol.stats['num_steps']} "
                f"({sol.stats['num_rejected']}) | {errors(G, G_ref, C, C_ref, ts)} | {np.max(np.abs(r - r_ref)):.1e} | |"
            )


def speed(batch, n=32, d=128, beta=4.0, T=30.0, tol=1e-6):
    print(f"\n(b) speed: batch {batch}, n={n}, d={d}, float64, best of 5 after a warm-up\n")
    x0 = tokens(range(batch), n, d)
    r = jnp.ones((batch, n))
    G = jnp.einsum("...id,...jd->...ij", x0, x0, precision=HIGH)
    basis = jnp.linalg.qr(jnp.swapaxes(x0, -1, -2))[0]  # (batch, d, n): orthonormal columns
    span = jnp.einsum("...id,...dk->...ik", x0, basis, precision=HIGH)
    t = jnp.asarray(1.0)
    scheme = particles.schemes.Post()
    att = particles.Attention(beta=jnp.asarray(beta), Q=None, K=None, V=None)
    token_field = jax.jit(lambda th: scheme.velocity(t, th, r, att))
    gram_field = jax.jit(lambda G: particles.gram_velocity(t, G, r, scheme, beta))
    t_rd, t_span, t_gram = (
        best_time(lambda: token_field(x0)),
        best_time(lambda: token_field(span)),
        best_time(lambda: gram_field(G)),
    )
    print("| field evaluation (post) | ms |")
    print("|---|---|")
    print(f"| token field in R^d (256 x 32 x 128) | {1e3 * t_rd:.2f} |")
    print(f"| token field in the span (256 x 32 x 32), what `simulate` integrates | {1e3 * t_span:.2f} |")
    print(f"| `gram_velocity` (256 x 32 x 32) | {1e3 * t_gram:.2f} |")

    print(
        "\n| whole solve (post, T=30, beta=4, rtol=atol=1e-6) | d | saves | steps | call (s) | solve only (s) |"
    )
    print("|---|---|---|---|---|---|")
    kw = dict(beta=beta, t1=T, rtol=tol, atol=tol)
    for dd, ts in ((d, np.linspace(0, T, 11)), (8, [T]), (32, [T]), (128, [T]), (1024, [T])):
        xd = tokens(range(batch), n, dd)
        Gd = gram(xd)
        runs = {
            "`simulate`": lambda: particles.simulate(xd, "post", ts=ts, dtype="float64", **kw),
            "`solve_gram`": lambda: particles.solve_gram(Gd, None, "post", ts=ts, **kw),
        }
        for name, run in runs.items():
            out = run()
            call = best_time(lambda: jax.tree.leaves(run()[:3] if name == "`solve_gram`" else run().theta))
            wall = min(run().stats["wall_time"] for _ in range(5))
            print(f"| {name} | {dd} | {len(ts)} | {out.stats['num_steps']} | {call:.3f} | {wall:.3f} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=["a", "b", "all"], default="all")
    p.add_argument("--seeds", type=int, default=64)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--schemes", default="post,pre,peri")
    args = p.parse_args(argv)
    if args.part in ("a", "all"):
        accuracy(args.schemes.split(","), args.seeds)
    if args.part in ("b", "all"):
        speed(args.batch)


if __name__ == "__main__":
    main()
