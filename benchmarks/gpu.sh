#!/usr/bin/env bash
# The GPU run of issue 3, item 7, on a machine with jax[cuda] already installed and no
# network: `make bench` at GPU sizes, the full-resolution phase diagram, the test suite.
#
#   bash benchmarks/gpu.sh OUT [bench|figure|tests]...
#
# Pure-Python dependencies the machine lacks can travel as wheels in .whl/ (installed
# into /tmp/site, first on PYTHONPATH). Everything is written under OUT.
set -u
out=${1:?usage: gpu.sh OUT [bench|figure|tests]...}
shift
mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PYTHONPATH
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
python3 - <<'EOF'
import importlib, jax
for m in ("jax", "jaxlib", "diffrax", "equinox", "optimistix", "numpy", "scipy", "xarray", "h5netcdf"):
    print(m, importlib.import_module(m).__version__)
print(jax.devices())
EOF

for what in "$@"; do
    start=$(date +%s)
    case $what in
    bench)
        python3 benchmarks/run.py --matmul-n 8192 --throughput-n 8192 16384 32768 65536 \
            --large-n 65536 --large-d 128 --out "$out/RESULTS-gpu.md" 2>&1 | tee "$out/bench.log" | tail -n 60
        ;;
    figure)
        python3 experiments/phase_diagram.py --full --out-dir "$out" 2>&1 | tr '\r' '\n' | tail -n 5
        ;;
    tests)
        python3 -m pytest -q -n 4 -p no:cacheprovider 2>&1 | tee "$out/tests.log" | tail -n 25
        ;;
    *)
        echo "unknown step $what" && exit 2
        ;;
    esac
    echo "== $what: $(($(date +%s) - start)) s"
done
