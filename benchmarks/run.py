"""`make bench`: this package against the baselines a user would otherwise pick.

One process, side by side on the same machine, so that the figures are ratios taken
under the same conditions. Writes benchmarks/RESULTS.md and prints it.

(a) Ensemble (ensemble.py): 256 SA (post) trajectories, n=32, d=128, beta=4, T=30,
    i.i.d. uniform tokens: `particles.simulate` on the whole batch against scipy
    `solve_ivp` per trajectory and a naive Euler-and-renormalise loop, every answer
    checked against a float64 `particles.simulate` at rtol=atol=1e-10.
(b) Field throughput for large n (d=128) as a fraction of the jnp.dot rate (throughput.py).
(c) n=32768, d=64: one Tsit5 step in a subprocess, peak resident memory (large_n.py).
(d) Start-up: `particles simulate` (default problem) end to end, first and second
    invocation with the persistent compilation cache, and without it (startup.py).
(e) Discrete layers: a 256-layer Pre-LN transformer against the matmul rate (layers.py).
(f) The noisy flow (SDE) with n=8192 tokens, blockwise: time per Heun step (noise.py).
(g) Sensitivity: `lyapunov` (k = 8) and `layer_gradients` as ratios to the plain solve and
    the forward pass, with peak memory (sensitivity.py).
(h) Phase diagrams: the small one as a cold process against the numpy Euler research
    algorithm, the full-resolution one with the token and the Gram solve (phase.py).
(i) The mean-field PDE (512 modes, SA beta=10, D=0.01, t <= 50): wall time and steps,
    against its explicit method and particles (n=4096) on the same problem (meanfield.py).
(j) A GPT-2-shaped checkpoint (12 layers, d=768) written, loaded and run on 128 tokens:
    load time and the forward pass against the matmul rate (checkpoint.py).

Timings are the best of several repeats of the second call, with block_until_ready.
Each benchmark returns a frozen dataclass and writes its own lines of the markdown
(`target_lines`, `section_lines`); report.py puts them together.
"""

import argparse
import os
import sys

from checkpoint import checkpoint_bench
from common import HERE, MatmulClock, describe_machine
from ensemble import ensemble
from large_n import large_n
from layers import layers
from meanfield import meanfield_bench
from noise import noise
from phase import phase
from report import other_machines, render
from sensitivity import sensitivity_costs
from startup import startup
from throughput import cases, throughput


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--subset", type=int, default=16, help="trajectories the Euler baseline runs")
    p.add_argument("--euler-h", type=float, default=0.01)
    p.add_argument("--matmul-n", type=int, default=2048, help="size of the reference jnp.dot")
    p.add_argument(
        "--throughput-n", type=int, nargs="+", default=[2048, 4096, 8192], help="n of the field timings"
    )
    p.add_argument("--large-n", type=int, default=32768)
    p.add_argument("--large-d", type=int, default=64)
    p.add_argument("--layers", type=int, default=256, help="depth of the discrete-layer transformer")
    p.add_argument("--layers-n", type=int, default=256)
    p.add_argument("--layers-d", type=int, default=128)
    p.add_argument("--noise-n", type=int, default=8192, help="tokens of the noisy flow")
    p.add_argument("--lyapunov-k", type=int, default=8, help="exponents of the lyapunov benchmark")
    p.add_argument("--meanfield-modes", type=int, default=512, help="Fourier modes of the mean-field PDE")
    p.add_argument("--meanfield-n", type=int, default=4096, help="tokens of the particles beside the PDE")
    p.add_argument("--checkpoint-n", type=int, default=128, help="tokens through the GPT-2-shaped model")
    p.add_argument("--no-full-phase", action="store_true", help="skip the full-resolution phase diagram")
    p.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    args = p.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    command = f"python benchmarks/run.py {' '.join(argv)}" if argv else "make bench"

    clock = MatmulClock(args.matmul_n)
    clock.measure()
    results = dict(
        ensemble=ensemble(clock, args.batch, args.subset, args.euler_h),
        throughput=throughput(clock, cases(args.throughput_n)),
        large_n=large_n(args.large_n, args.large_d),
        startup=startup(),
        layers=layers(clock, args.layers, args.layers_n, args.layers_d),
        noise=noise(args.noise_n),
        sensitivity=sensitivity_costs(
            k=args.lyapunov_k, layers=args.layers, layers_n=args.layers_n, layers_d=args.layers_d
        ),
        phase=phase(full_size=False if args.no_full_phase else None),
        meanfield=meanfield_bench(args.meanfield_modes, args.meanfield_n),
        checkpoint=checkpoint_bench(clock, n=args.checkpoint_n),
    )
    clock.measure()
    appendix = []
    if os.path.basename(args.out) == "RESULTS.md":
        appendix = other_machines(os.path.dirname(os.path.abspath(args.out)))
    text = render(command, describe_machine(), clock.rates(), appendix=appendix, **results)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
