"""What every benchmark shares: the timer, the reference matmul rate, the machine."""

import dataclasses
import datetime
import functools
import os
import platform
import time

import jax
import jax.numpy as jnp

import particles

HERE = os.path.dirname(os.path.abspath(__file__))


def best_time(fn, repeat=3):
    """Best wall time of ``fn()`` over ``repeat`` calls after one warm-up call."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return min(times)


class ForwardRates:
    """The rates of a timed layer stack (a result with ``flops``, ``scan_s``,
    ``simulate_s`` and ``matmul_rate``): matmul flops per second over the matmul rate."""

    @property
    def scan_fraction(self) -> float:
        return self.flops / self.scan_s / self.matmul_rate

    @property
    def simulate_fraction(self) -> float:
        return self.flops / self.simulate_s / self.matmul_rate


def time_layer_stack(clock, x0, scheme, t_end: float, **kw) -> tuple[float, float, float]:
    """(scan_s, simulate_s, matmul_rate) of a layer stack saved at ``t_end`` only: the
    compiled scan (`particles.integrate` of the problem) in alternation with the matmul
    of ``clock``, and a whole `particles.simulate` call (its checks included)."""
    problem = particles.make_problem(x0, scheme, **kw)
    config = particles.SolveConfig(ts=(t_end,))
    scan_s, rate = clock.side_by_side(lambda: particles.integrate(problem, config).lift)
    simulate_s = best_time(lambda: particles.simulate(x0, scheme, ts=[t_end], **kw).theta)
    return scan_s, simulate_s, rate


@dataclasses.dataclass(frozen=True)
class MatmulRates:
    """The reference matmul rates measured through a run (FLOP/s)."""

    n: int
    best: float
    worst: float
    count: int


class MatmulClock:
    """The rate of the reference matmul, an ``n`` x ``n`` float32 jnp.dot at the precision
    the field uses (full float32: on a GPU JAX's default precision is TF32, ~8x faster on
    an H100 and too coarse for rtol 1e-6). Every measurement is kept, since the machine is
    shared and the rate moves: :meth:`rates` summarises them for the report."""

    def __init__(self, n=2048):
        self.n = n
        self._dot = jax.jit(functools.partial(jnp.dot, precision=particles.PRECISION))
        self._a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
        self._rates = []

    def _flops(self):
        return 2 * self.n**3

    def measure(self):
        """Measure the rate alone (best of 5); returns the best measured so far."""
        self._rates.append(self._flops() / best_time(lambda: self._dot(self._a, self._a), repeat=5))
        return max(self._rates)

    def side_by_side(self, fn, rounds=5):
        """Best time of ``fn()`` and the matmul rate, measured in alternation, so that both
        see the same load on a shared machine."""
        dot = lambda: self._dot(self._a, self._a)
        jax.block_until_ready((fn(), dot()))
        t_fn, t_dot = [], []
        for _ in range(rounds):
            for f, times in ((fn, t_fn), (dot, t_dot)):
                start = time.perf_counter()
                jax.block_until_ready(f())
                times.append(time.perf_counter() - start)
        rate = self._flops() / min(t_dot)
        self._rates.append(rate)
        return min(t_fn), rate

    def rates(self) -> MatmulRates:
        return MatmulRates(n=self.n, best=max(self._rates), worst=min(self._rates), count=len(self._rates))


@dataclasses.dataclass(frozen=True)
class Machine:
    """Where and when the benchmarks ran."""

    date: str
    machine: str
    processor: str
    cores: int
    backend: str
    device_kind: str
    jax_version: str
    load_average: float  # the 1-minute load average when it was described


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux; else what platform knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or ""


def describe_machine() -> Machine:
    return Machine(
        date=datetime.date.today().isoformat(),
        machine=platform.machine(),
        processor=cpu_model(),
        cores=os.cpu_count(),
        backend=jax.default_backend(),
        device_kind=jax.devices()[0].device_kind,
        jax_version=jax.__version__,
        load_average=os.getloadavg()[0],
    )
