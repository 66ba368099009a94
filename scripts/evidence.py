"""The statistics evidence of docs/, recomputed from stored results or simulated.

    python scripts/evidence.py estimators FOLDER...   run-to-run spread of each estimator
    python scripts/evidence.py replay [--every K] FOLDER...
    python scripts/evidence.py tables [NAME...]       docs/' simulated tables, rewritten

`estimators`: each FOLDER holds fresh-process replicates of one configuration (`run --repeat`);
for every candidate estimator in bench.storage.throughput, the coefficient of variation of the runs'
figures. `replay`: each FOLDER is an `ab` of identical variants (A/ and B/), its pairs in run
order; the folders' pairs are joined in the order given. The sequential rule of `ab` replays
comparisons over them, as measured and with B's throughput scaled by 0.95 and 0.90 (a known
slowdown): disjoint comparisons, each starting where the last stopped, and (with `--every K`)
comparisons starting every K pairs, which overlap. Each line gives the verdicts, the runs and
the minutes (the replicates' own start-to-start times) to a verdict. `tables`: the operating
characteristics, seeded, written into docs/ between `<!-- oc:NAME -->` markers (ab: the
rule at true slowdowns of 0-20 % and 4.5-7.5 % noise, bench.judge.sequential; order: strict
alternation against a coin per pair under correlated runs and drift; compare: against a
baseline at a true drift of 3, 8 and 15 %, bench.judge.stats). Simulated, so the figures are
the same on any machine.
"""

from __future__ import annotations

import math
import statistics
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

from bench.config.settings import AbDesign, Tolerances
from bench.judge.sequential import (
    crossing_share,
    pair_seconds,
    replay,
    simulate,
    simulated_ratios,
)
from bench.judge.stats import Verdict, simulate_against_baseline
from bench.storage.experiment import identity_of
from bench.storage.files import collect
from bench.storage.results import RunResult
from bench.storage.throughput import ESTIMATORS, HEADLINE, estimate

SCALES = (1.0, 0.95, 0.90)
DESIGN = AbDesign()  # the shipped default: what the tables describe
MARGIN = DESIGN.margin


def in_order(folder: Path) -> list[RunResult]:
    """The results in `folder`, in run order; they must be one experiment × implementation ×
    machine."""
    results = sorted((r for _, r in collect([folder])[0]), key=lambda r: r.created_utc)
    if len({identity_of(r) for r in results}) > 1:
        raise SystemExit(f"{folder} holds runs of more than one configuration")
    return results


def cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.fmean(values)


def successive_cv(values: list[float]) -> float:
    """Noise from differences of consecutive runs: blind to a slow trend of the machine."""
    steps = [(b - a) ** 2 for a, b in zip(values, values[1:], strict=False)]
    return (statistics.fmean(steps) / 2) ** 0.5 / statistics.fmean(values)


def estimators(folders: list[Path]) -> None:
    """Per estimator: the run-to-run CV of each `run --repeat` folder, or, for `ab` folders,
    the noise of the pair log ratios the sequential test sees (their sd ÷ √2)."""
    print("estimator | run-to-run noise per folder | the same from successive differences")
    for name in ESTIMATORS:
        if all((folder / "A").is_dir() for folder in folders):
            ratios = [math.log(b / a) for f in folders for a, b, _ in pairs_of(f, name)]
            print(f"{name} | pairs: {100 * statistics.stdev(ratios) / math.sqrt(2):.2f} %")
            continue
        rates = [[estimate(r.epochs, name) for r in in_order(folder)] for folder in folders]
        spreads = ", ".join(f"{100 * cv(r):.2f} %" for r in rates)
        successive = ", ".join(f"{100 * successive_cv(r):.2f} %" for r in rates)
        print(f"{name} | {spreads} | {successive}")


def pairs_of(folder: Path, estimator: str = HEADLINE) -> list[tuple[float, float, float]]:
    """(A's rate, B's rate, seconds the pair took) of each pair of an `ab` folder, in order,
    each run's rate by `estimator` (seconds: sequential.pair_seconds)."""
    runs = sorted(
        [(r.created_utc, side, estimate(r.epochs, estimator))
         for side in "AB" for r in in_order(folder / side)]
    )  # fmt: skip
    seconds = pair_seconds([datetime.fromisoformat(created) for created, _, _ in runs[::2]])
    pairs = []
    for (_, first, rate_1), (_, second, rate_2), took in zip(
        runs[::2], runs[1::2], seconds, strict=False
    ):
        if {first, second} != {"A", "B"}:
            raise SystemExit(f"{folder}: a pair without one run of each variant")
        rates = {first: rate_1, second: rate_2}
        pairs.append((rates["A"], rates["B"], took))
    return pairs


def replay_one(pairs, start: int, scale: float) -> tuple[str, int, float] | None:
    """The rule run from pair `start` on, B scaled, with `ab`'s caps: (verdict, pairs used,
    seconds); None when the recording ends before the rule (or its caps) does."""
    window = pairs[start:]
    ratios = [math.log(b * scale / a) for a, b, _ in window]
    seconds = [took for _, _, took in window]
    outcome = replay(
        ratios, seconds, MARGIN, max_pairs=DESIGN.pairs, max_time_s=60 * DESIGN.minutes
    )
    if outcome is None:
        return None
    effect, used = outcome
    return str(effect.verdict), used, sum(seconds[:used])


def summarize(outcomes: list[tuple[str, int, float]]) -> str:
    counts = Counter(verdict for verdict, _, _ in outcomes)
    runs = [2 * used for _, used, _ in outcomes]
    minutes = [seconds / 60 for _, _, seconds in outcomes]
    p90 = statistics.quantiles(runs, n=10)[-1] if len(runs) > 1 else runs[0]
    p90_minutes = statistics.quantiles(minutes, n=10)[-1] if len(minutes) > 1 else minutes[0]
    return (
        f"{len(outcomes)} comparisons: {dict(counts)}; runs mean {statistics.fmean(runs):.1f}, "
        f"90th percentile {p90:.0f}; minutes mean {statistics.fmean(minutes):.1f}, "
        f"90th percentile {p90_minutes:.1f}"
    )


def replay_folders(folders: list[Path], every: int | None) -> None:
    pairs = [pair for folder in folders for pair in pairs_of(folder)]
    noise = statistics.stdev(math.log(b / a) for a, b, _ in pairs) / math.sqrt(2)
    print(f"{len(pairs)} pairs; run-to-run noise {100 * noise:.1f} % (from the pair ratios)")
    for scale in SCALES:
        disjoint, start = [], 0
        while (outcome := replay_one(pairs, start, scale)) is not None:
            disjoint.append(outcome)
            start += outcome[1]
        print(f"B ×{scale:.2f}, disjoint: {summarize(disjoint)}")
        if every:
            starts = range(0, len(pairs), every)
            outcomes = [replay_one(pairs, start, scale) for start in starts]
            overlapping = [outcome for outcome in outcomes if outcome is not None]
            print(
                f"B ×{scale:.2f}, a start every {every} pairs: {summarize(overlapping)} "
                f"({len(outcomes) - len(overlapping)} ran past the recording)"
            )


NOISE_MODELS = ((0.045, 0.0), (0.06, 0.1), (0.075, 0.1))  # run-to-run noise, interference
SLOWDOWNS = (0.0, 0.025, 0.05, 0.075, 0.10, 0.20)
COMPARE_MARGIN = Tolerances().throughput_pct / 100
DOCS = Path(__file__).resolve().parent.parent / "docs"


def percent(share: float) -> str:
    return f"{100 * share:.1f} %"


def ab_table(comparisons: int = 4000) -> str:
    """`ab`'s rule as it ships, at each true slowdown and noise model: the share of each
    verdict and the mean runs to one; and the estimate printed where it said slower."""
    headers = [f"noise {100 * noise:g} %" + (", interference" if inter else "")
               for noise, inter in NOISE_MODELS]  # fmt: skip
    lines = [
        "| true slowdown | " + " | ".join(headers) + " | estimate when `slower` |",
        "| --- |" + " --- |" * (len(headers) + 1),
    ]
    for slowdown in SLOWDOWNS:
        cells, estimates = [], []
        for noise, interference in NOISE_MODELS:
            result = simulate(
                slowdown, noise, margin=MARGIN, comparisons=comparisons, max_pairs=DESIGN.pairs,
                interference=interference, seed=2,
            )  # fmt: skip
            slower, ok, unsure = (
                result.shares.get(Verdict(verdict), 0.0)
                for verdict in ("slower", "ok", "inconclusive")
            )
            cells.append(
                f"{percent(slower)} / {percent(ok)} / {percent(unsure)}, "
                f"{2 * result.mean_pairs:.0f} runs"
            )
            if not math.isnan(result.mean_slower_change):
                estimates.append(100 * result.mean_slower_change)
        shown = f"{min(estimates):+.1f} to {max(estimates):+.1f} %" if estimates else "–"
        cells.append(shown.replace("-", "−"))
        lines.append(f"| {100 * slowdown:g} % | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def order_table(comparisons: int = 2000) -> str:
    """Strict alternation against a seeded coin per pair: how often the e-value reaches 20 on
    identical variants (runs correlated 0.5 with their neighbours), over the cap and over
    300 pairs, and the whole rule's false `slower` and catch of 10 % under correlation and
    under a linear drift of 20 % over the cap."""
    lines = [
        "| pair order | e ≥ 20, identical, correlation 0.5: 40 / 300 pairs "
        "| `slower`, identical: correlation 0.5 / drift 20 % "
        "| 10 % caught: correlation 0.5 / drift 20 % |",
        "| --- | --- | --- | --- |",
    ]
    for coin, name in ((False, "A B, B A, … (before)"), (True, "seeded coin (ships)")):
        crossings = [
            crossing_share(
                simulated_ratios(
                    0.0,
                    0.06,
                    comparisons=comparisons // (pairs // 40),
                    max_pairs=pairs,
                    correlation=0.5,
                    coin=coin,
                    seed=4,
                ),
                MARGIN,
            )  # fmt: skip
            for pairs in (DESIGN.pairs, 300)
        ]
        rule = {
            (slowdown, model): simulate(
                slowdown,
                0.06,
                margin=MARGIN,
                comparisons=comparisons,
                max_pairs=DESIGN.pairs,
                coin=coin,
                seed=5,
                **dict([model]),
            ).shares.get(Verdict.SLOWER, 0.0)  # fmt: skip
            for slowdown in (0.0, 0.10)
            for model in (("correlation", 0.5), ("drift", 0.2))
        }
        lines.append(
            f"| {name} | {percent(crossings[0])} / {percent(crossings[1])} "
            f"| {percent(rule[0.0, ('correlation', 0.5)])} / {percent(rule[0.0, ('drift', 0.2)])} "
            f"| {percent(rule[0.1, ('correlation', 0.5)])} / {percent(rule[0.1, ('drift', 0.2)])} |"
        )
    return "\n".join(lines)


def compare_table(comparisons: int = 4000) -> str:
    """`compare` against a baseline of one sitting (and of three) at each true drift between
    sittings: false alarms, inconclusive on identical code (what --strict fails), and the
    share flagged at a 10 % and 25 % slowdown and at 2× (half the throughput)."""
    lines = [
        "| baseline | true drift | false `slower` | identical code `inconclusive` "
        "| flagged at 10 % | at 25 % | at 2× |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for sittings in (1, 3):
        for drift in (0.03, 0.08, 0.15):
            shares = [
                simulate_against_baseline(
                    slowdown,
                    drift,
                    margin=COMPARE_MARGIN,
                    comparisons=comparisons,
                    sittings=sittings,
                    seed=1,
                )  # fmt: skip
                for slowdown in (0.0, 0.10, 0.25, 0.5)
            ]
            same = shares[0]
            flagged = " | ".join(percent(s.get(Verdict.SLOWER, 0.0)) for s in shares[1:])
            lines.append(
                f"| {sittings} sitting{'s' if sittings > 1 else ''} of 5 runs "
                f"| {100 * drift:g} % | {percent(same.get(Verdict.SLOWER, 0.0))} "
                f"| {percent(same.get(Verdict.INCONCLUSIVE, 0.0))} | {flagged} |"
            )
    return "\n".join(lines)


TABLES = {"ab": ab_table, "order": order_table, "compare": compare_table}


def write_tables(names: list[str], docs: Path = DOCS) -> None:
    """Each table (all without names) recomputed and put between its markers in the document
    of docs/ that holds them, `<!-- oc:NAME -->` and `<!-- /oc:NAME -->`, so that no figure
    there is copied by hand."""
    tables = {}
    for name in names or list(TABLES):
        tables[name] = TABLES[name]()
        print(tables[name], flush=True)
    for name, table in tables.items():  # read once the tables are done: minutes may have passed
        start, end = f"<!-- oc:{name} -->\n", f"<!-- /oc:{name} -->"
        (page,) = [page for page in sorted(docs.glob("*.md")) if start in page.read_text()]
        before, rest = page.read_text().split(start)
        _, after = rest.split(end)
        page.write_text(before + start + table + "\n" + end + after)


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    every = None
    if arguments[:1] == ["--every"]:
        every, arguments = int(arguments[1]), arguments[2:]
    folders = [Path(p) for p in arguments]
    if command == "replay":
        replay_folders(folders, every)
    elif command == "tables":
        write_tables(arguments)
    else:
        estimators(folders)
