#!/usr/bin/env bash
# The CUDA checks in one go, on a bare GPU machine that has torch, torchvision, typer, rich,
# matplotlib, pytest and pytest-benchmark (no uv, hypothesis or nox):
#   bash scripts/gpu-check.sh MNIST_DIR OUT_DIR
# Each step is bounded in time (all of them together stay under 8 minutes); a failing step does
# not stop the others, and the script exits 1 when any step failed. OUT_DIR/steps.txt lists
# every step's exit code and seconds, OUT_DIR/log.txt everything the steps printed.
set -uo pipefail
data=${1:?MNIST folder}
out=${2:?output folder}
mkdir -p "$out/runs"
export PYTHONPATH=. MNIST_BENCH_DATA=$data PYTHONUNBUFFERED=1
failed=0

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    local started=$SECONDS
    echo "== $name: $*" >>"$out/log.txt"
    timeout --kill-after=10 "$limit" "$@" >>"$out/log.txt" 2>&1
    local code=$?
    printf '%-24s exit %3d %5d s\n' "$name" "$code" $((SECONDS - started)) | tee -a "$out/steps.txt"
    [ "$code" -eq 0 ] || failed=1
}

pytest=(python -m pytest -q -p no:cacheprovider)
runs=(--out "$out/runs")

step env 30 python -m bench env -d cuda --peak
step cuda-tests 110 "${pytest[@]}" tests/test_cuda.py
step benchmarks 60 "${pytest[@]}" tests/benchmarks --benchmark-only --benchmark-json="$out/benchmarks.json"
step cpu-vs-cuda-fp32 90 python -m bench run -d cpu -d cuda --save-weights "${runs[@]}"
step cuda-tf32 30 python -m bench run -d cuda --precision tf32 --save-weights "${runs[@]}"
step loaders 40 python -m bench run -d cuda --loader torchvision --loader tensor "${runs[@]}"
step cuda-graphs 30 python -m bench run -d cuda --cuda-graphs "${runs[@]}"
step bf16 30 python -m bench run -d cuda --precision bf16 "${runs[@]}"
step sweep 30 python -m bench sweep -d cuda --steps 50 --out "$out"
step compare 20 sh -c "python -m bench compare '$out/runs' --format markdown >'$out/compare.md'"
exit $failed
