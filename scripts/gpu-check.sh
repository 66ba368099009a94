#!/usr/bin/env bash
# The CUDA checks in one go, on a bare GPU machine that has torch, torchvision, typer, rich,
# matplotlib, pytest and pytest-benchmark (no uv, hypothesis or nox):
#   bash scripts/gpu-check.sh MNIST_DIR OUT_DIR [STEP...]
# The rest of the project's dependencies (pydantic, scipy) travel with it, built here for the GPU
# machine's Python and put first on PYTHONPATH there:
#   uv pip install --target deps --python-version 3.12 --python-platform x86_64-manylinux_2_28 \
#       pydantic scipy && tar cJf data/gpu-deps.tar.xz -C deps .
# With STEP names, only those steps run (to rerun what failed). Each step is bounded in time
# (together within $GPU_CHECK_SECONDS, 540 by default: a step gets at most what is left); a failing step does not stop the others, and the
# script exits 1 when any step failed. OUT_DIR/steps.txt lists every step's exit code and
# seconds, OUT_DIR/log.txt everything the steps printed, OUT_DIR/bundle.tgz the results, the
# baselines and the sweep, rebuilt after every step so that a cut-off run still brings them back.
set -uo pipefail
data=${1:?MNIST folder}
out=${2:?output folder}
shift 2
only=" $* "
mkdir -p "$out/runs"
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} MNIST_BENCH_DATA=$data PYTHONUNBUFFERED=1
failed=0
copy=${GPU_CHECK_COPY:-}  # a folder that gets steps.txt, log.txt and bundle.tgz after every step
deadline=${GPU_CHECK_SECONDS:-540}  # the whole script's budget; later steps get what is left

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    [ "$only" = "  " ] || [[ "$only" == *" $name "* ]] || return 0
    local started=$SECONDS left=$((deadline - SECONDS))
    if [ "$left" -lt 15 ]; then
        printf '%-20s skipped: %d s left of %d\n' "$name" "$left" "$deadline" | tee -a "$out/steps.txt"
        failed=1
        return 0
    fi
    [ "$limit" -le "$left" ] || limit=$left
    echo "== $name: $*" >>"$out/log.txt"
    timeout --kill-after=10 "$limit" "$@" >>"$out/log.txt" 2>&1
    local code=$?
    printf '%-20s exit %3d %5d s\n' "$name" "$code" $((SECONDS - started)) | tee -a "$out/steps.txt"
    [ "$code" -eq 0 ] || failed=1
    mkdir -p "$out/crash" && cp /tmp/mnist-bench-crash-*.log "$out/crash/" 2>/dev/null
    tar czf "$out/bundle.tgz" -C "$out" --exclude=bundle.tgz --exclude=log.txt --exclude=steps.txt .
    [ -z "$copy" ] || cp "$out/steps.txt" "$out/log.txt" "$out/bundle.tgz" "$copy/"
}

bench=(python -m bench)
pytest=(python -m pytest -q -p no:cacheprovider)
cuda=(-d cuda)
runs=(--out "$out/runs")

# baselines NAME RUN-OPTIONS...: seeds 0-4 in one process, saved as one baseline
baselines=(bash -c 'folder=$0/base-$1 && shift && python -m bench run -d cuda "$@" --repeat 5 \
    --in-process --out "$folder" && python -m bench baseline save "$folder"/*.json \
    --dir "$0/baselines"' "$out")

step env 40 "${bench[@]}" env -d cuda --peak
step cuda-tests 120 "${pytest[@]}" tests/test_cuda.py
step benchmarks 60 "${pytest[@]}" tests/benchmarks --benchmark-only -k cuda \
    --benchmark-json="$out/benchmarks.json"
step cpu-vs-cuda 120 "${bench[@]}" run -d cpu -d cuda --save-weights "${runs[@]}"
step tf32 40 "${bench[@]}" run "${cuda[@]}" --precision tf32 --save-weights "${runs[@]}"
step same-seed 60 "${bench[@]}" run "${cuda[@]}" --repeat 2 --same-seed --out "$out/same-seed"
step cuda-graphs 40 "${bench[@]}" run "${cuda[@]}" --cuda-graphs "${runs[@]}"
step loaders 90 "${bench[@]}" run "${cuda[@]}" --epochs 1 --loader torchvision --loader tensor \
    --out "$out/loaders"
step bf16 40 "${bench[@]}" run "${cuda[@]}" --precision bf16 "${runs[@]}"
step baseline-eager 70 "${baselines[@]}" eager
step baseline-graphs 70 "${baselines[@]}" graphs --cuda-graphs
step sweep 40 "${bench[@]}" sweep "${cuda[@]}" --steps 50 --out "$out/sweep"
step profile 40 python scripts/cuda_profile.py
step ab 100 "${bench[@]}" ab --common "-d cuda --epochs 1" --a "--optimizer adam-capturable" \
    --b "--cuda-graphs" --max-pairs 3 --max-time 1.4 --out "$out/ab"
step compile 120 "${bench[@]}" run "${cuda[@]}" --compile --epochs 1 "${runs[@]}"
step compare 30 sh -c "${bench[*]} compare '$out/runs' --all --format markdown >'$out/compare.md'"
# Replicates of a graphed run in one process: each peak device memory its own.
step graphs-in-process 90 "${bench[@]}" run "${cuda[@]}" --cuda-graphs --epochs 1 --repeat 3 \
    --in-process --out "$out/graphs-in-process"
# A fresh run judged by the committed baselines of this GPU (upgraded from older schemas).
step committed-baselines 60 sh -c "${bench[*]} run -d cuda --out '$out/fresh' && \
    ${bench[*]} compare '$out/fresh' --baseline results/baselines --format markdown \
    >'$out/committed-baselines.md'"
exit $failed
