#!/usr/bin/env bash
# The figures of docs/ci.md: `ab` between revisions and `bisect`, on a synthetic history made
# in a temporary clone of this repository (nothing of it in the product):
#   bash scripts/ci_evidence.sh WORK_DIR [bisect]      (bisect: the third only)
# 1. ab of HEAD (A) against a commit that sleeps 2.5 ms a training step (B; ≈20 % slower here)
# 2. ab of HEAD (A) against a commit that only changes documentation (B)
# 3. bisect over 16 commits of documentation, the 11th also sleeping 4 ms a step
# Each prints its verdict, pairs and minutes; everything else lands in WORK_DIR.
set -uo pipefail
work=${1:?work folder}
only=${2:-}
rm -rf "$work" && mkdir -p "$work"
git clone -q "$(git rev-parse --show-toplevel)" "$work/clone"
cd "$work/clone" || exit 2
git config user.name evidence && git config user.email evidence@example.com
run="-d cpu --epochs 1 --max-steps 100"
slow_step() {  # slow_step SECONDS: every training step sleeps that long first
    python3 - "$1" <<'PY'
import pathlib, sys
path = pathlib.Path("mnist_core/train.py")
line = "        images, labels = images.to(device), labels.to(device)\n"
path.write_text(path.read_text().replace(line, f"        __import__('time').sleep({sys.argv[1]})\n" + line, 1))
PY
}
timed() {  # timed NAME COMMAND...: the command, then its exit code and minutes
    local started=$SECONDS name=$1
    shift
    "$@" >"$work/$name.log" 2>&1
    local code=$?
    echo "exit $code, $(( (SECONDS - started) / 60 )) min $(( (SECONDS - started) % 60 )) s"
}
base=$(git rev-parse HEAD)
slow_step 0.0025 && git commit -qam "synthetic: 2.5 ms more per training step"
slow=$(git rev-parse HEAD)
git checkout -q "$base" && echo "a line of documentation" >>docs/ci.md
git commit -qam "synthetic: documentation only" && docs=$(git rev-parse HEAD)
if [ "$only" != bisect ]; then
echo "== ab, 20 % slower: $(timed ab-slower uv run mnist-bench ab --a-rev "$base" --b-rev "$slow" \
    --common "$run" --max-time 20 --order-seed 1 --fail-on-regression --out "$work/ab-slower")"
grep -E "^verdict|^A/B" "$work/ab-slower.log"
echo "== ab, documentation only: $(timed ab-docs uv run mnist-bench ab --a-rev "$base" \
    --b-rev "$docs" --common "$run" --max-time 30 --order-seed 2 --fail-on-regression \
    --out "$work/ab-docs")"
grep -E "^verdict|^A/B" "$work/ab-docs.log"
fi
git checkout -q -b history "$base"
for number in $(seq 1 16); do
    echo "line $number" >>docs/ci.md
    [ "$number" -eq 11 ] && slow_step 0.004
    git commit -qam "synthetic: commit $number$([ "$number" -eq 11 ] && echo ', 4 ms more per step')"
done
echo "== bisect over 16 commits: $(timed bisect uv run mnist-bench bisect --good "$base" \
    --bad history --common "$run" --max-time 10 --order-seed 3 --out "$work/bisect")"
grep -E "^step|^first slower|^  B vs A|^no slowdown|^a step" "$work/bisect.log"
