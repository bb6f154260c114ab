"""The markdown of RESULTS.md, from the results of the benchmarks (and nothing else).

Each benchmark module writes its own lines: ``target_lines(result)`` (its rows of the
table of targets) and ``section_lines(result)`` (its section); this module only puts
them together, so it imports the benchmarks and none of them imports it."""

import os

import checkpoint as checkpoint_
import ensemble as ensemble_
import large_n as large_n_
import layers as layers_
import meanfield as meanfield_
import noise as noise_
import phase as phase_
import sensitivity as sensitivity_
import startup as startup_
import throughput as throughput_
from common import Machine, MatmulRates

# The sections of RESULTS.md, in order: the argument of :func:`render` -> its module.
SECTIONS = {
    "ensemble": ensemble_,
    "throughput": throughput_,
    "large_n": large_n_,
    "startup": startup_,
    "layers": layers_,
    "noise": noise_,
    "sensitivity": sensitivity_,
    "phase": phase_,
    "meanfield": meanfield_,
    "checkpoint": checkpoint_,
}


def other_machines(folder) -> list[str]:
    """The RESULTS-*.md files in ``folder`` (runs on other machines, e.g. a GPU), with
    their headings one level down, to be appended to RESULTS.md."""
    lines = []
    for name in sorted(os.listdir(folder)):
        if name.startswith("RESULTS-") and name.endswith(".md"):
            with open(os.path.join(folder, name)) as f:
                body = f.read().rstrip().splitlines()
            lines += ["", f"# Another machine: [{name}]({name})", ""]
            lines += ["#" + line if line.startswith("#") else line for line in body]
    return lines


def render(
    command: str,
    machine: Machine,
    matmul: MatmulRates,
    ensemble: ensemble_.EnsembleResult,
    throughput: throughput_.ThroughputResult,
    large_n: large_n_.LargeNResult,
    startup: startup_.StartupResult,
    layers: layers_.LayersResult | None = None,
    noise: noise_.NoiseResult | None = None,
    sensitivity: sensitivity_.SensitivityResult | None = None,
    phase: phase_.PhaseResult | None = None,
    meanfield: meanfield_.MeanFieldResult | None = None,
    checkpoint: checkpoint_.CheckpointResult | None = None,
    appendix: list[str] = (),
) -> str:
    """The whole of RESULTS.md; ``appendix``: lines after the sections (other machines).
    Each benchmark module writes its own lines (``target_lines``, ``section_lines``);
    this puts them together, in the order of the arguments."""
    given = dict(
        ensemble=ensemble, throughput=throughput, large_n=large_n, startup=startup, layers=layers,
        noise=noise, sensitivity=sensitivity, phase=phase, meanfield=meanfield, checkpoint=checkpoint,
    )  # fmt: skip
    results = [(SECTIONS[name], r) for name, r in given.items() if r is not None]
    head = [
        "# Benchmarks",
        "",
        f"`{command}` on {machine.date}: {machine.machine} {machine.processor}, {machine.cores} cores, "
        f"{machine.backend} backend ({machine.device_kind}), jax {machine.jax_version}, load average at "
        f"the end {machine.load_average:.1f} (the machine is shared: take ratios, not absolute times).",
        "",
        f"Matmul rate (jnp.dot, {matmul.n} x {matmul.n}, float32 at full precision as in the field): best "
        f"{matmul.best / 1e9:.0f} GFLOP/s, worst {matmul.worst / 1e9:.0f}, over {matmul.count} measurements "
        "through the run; the ensemble flop limit uses the best; each throughput figure uses the rate "
        "measured alongside it.",
        "",
        "| target | measured |",
        "|---|---|",
        *(line for module, r in results for line in module.target_lines(r)),
        "",
    ]
    body = [line for module, r in results for line in [*module.section_lines(r), ""]]
    return "\n".join(head + body + list(appendix)) + "\n"
