#!/usr/bin/env bash
# The CUDA checks in one go, for a machine with a GPU and the packages preinstalled (no uv):
#   bash scripts/gpu-check.sh MNIST_DIR OUT_DIR
# Runs the CUDA tests, CPU vs CUDA, the loaders and the fast paths, the benchmarks and a sweep,
# then compares everything; all output lands in OUT_DIR.
set -uo pipefail
data=${1:?MNIST folder}
out=${2:?output folder}
mkdir -p "$out"
export PYTHONPATH=. MNIST_BENCH_DATA=$data PYTHONUNBUFFERED=1
bench() { python -m bench "$@" --out "$out/runs" 2>&1 | tee -a "$out/log.txt"; }
python -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$out/log.txt"
bench run -d cpu -d cuda --save-weights
bench run -d cuda --loader torchvision --loader tensor
bench run -d cuda --cuda-graphs
bench run -d cuda --channels-last
bench run -d cuda --precision bf16
python -m pytest -q -p no:cacheprovider --benchmark-only \
    --benchmark-json="$out/benchmarks.json" 2>&1 | tee -a "$out/log.txt"
python -m bench sweep -d cuda --steps 50 --out "$out" 2>&1 | tee -a "$out/log.txt"
python -m bench compare "$out/runs" --format markdown > "$out/compare.md" 2>&1
python -m bench env -d cuda --peak 2>&1 | tee -a "$out/log.txt"
