#!/usr/bin/env bash
# Judge a code change on whatever runner CI gives it: the working tree (B) against a base
# revision (A), interleaved on this machine, each from its own environment (docs/ci.md).
#   bash scripts/ci-ab.sh [BASE] [OUT]        BASE: origin/main, OUT: results/ci-ab
# MNIST_BENCH_CI_RUN: the `run` options of both (default: -d cpu --epochs 1);
# MNIST_BENCH_CI_MINUTES: the time cap (default 20). Appends its verdict to
# $GITHUB_STEP_SUMMARY (else OUT/summary.md), writes OUT/report.html, and exits as `ab
# --fail-on-regression` does: 0 not slower (or not decided within the cap), 1 slower, 2 bad
# input or a failed replicate, 3 a bug.
set -uo pipefail
base=${1:-origin/main}
out=${2:-results/ci-ab}
mkdir -p "$out"
summary=${GITHUB_STEP_SUMMARY:-$out/summary.md}
uv run mnist-bench ab --a-rev "$base" --common "${MNIST_BENCH_CI_RUN:--d cpu --epochs 1}" \
    --max-time "${MNIST_BENCH_CI_MINUTES:-20}" --fail-on-regression --summary "$summary" \
    --out "$out"
verdict=$?
# The report is for people; its failure must not change the gate's exit code.
uv run mnist-bench report "$out" --html "$out/report.html" >/dev/null ||
    echo "ci-ab: the HTML report could not be written" >&2
exit "$verdict"
