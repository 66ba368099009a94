"""The README's history figures, recomputed: the change-point finder's operating
characteristics, and `compare` and `report --html` over a synthetic year.

    python scripts/history.py oc [--histories 1000]
    python scripts/history.py scale [--runs 2000 10000] [--unreadable 0] [--folder DIR]

`oc`: bench.judge.steps.simulate on seeded histories of the two-level model (each sitting's
level drifts by 0, 3 or 8 % (sd of log), each run by 1.5 or 4.5 % about it; a margin of 10 %);
drift alone, and a real step of 15 % or 30 % at 70 % of the history under 8 % drift. Prints a
Markdown table: the share of histories with a false change, the share where the step was
found within one sitting of its place and, beside it, that share for the best test for one
step (bench.judge.steps.best_found_in_place), with the drift taken from the series and with it
known: what no finder that keeps false changes to 10 % could much exceed.

`scale`: for each size, a synthetic year (scripts/synthetic_year.py) in DIR (default a temp
folder; a year already there is reused), then `compare` and `report --html` each in a fresh
process, first with an empty index (cold: every file read and validated) and then with the
index it built (warm). Prints the wall time and peak memory (the child's maximum resident set)
of each, the lines `compare` prints at 80 columns (in a pseudo-terminal, by `script`) and the
report's size. Time it on an idle machine: the figures are the machine's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from synthetic_year import build_year

from bench.judge.steps import best_found_in_place, simulate
from bench.measure.processes import descendants

MARGIN = 0.10
STEP_AT = 0.7
BOUND_HISTORIES = 20_000


def operating_characteristics(histories: int) -> None:
    print(
        "| sittings × runs, run noise | false change: drift 0 % | 3 % | 8 % "
        "| 15 % step placed | best test | 30 % step placed | best test |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for sittings, runs in ((8, 3), (12, 5), (24, 3), (48, 3)):
        for run_noise in (0.015, 0.045):
            false_changes = [
                simulate(
                    sittings, runs, drift=drift, run_noise=run_noise, margin=MARGIN,
                    histories=histories,
                ).any_change
                for drift in (0.0, 0.03, 0.08)
            ]  # fmt: skip
            cells = [f"{100 * share:.1f} %" for share in false_changes]
            for step in (0.15, 0.30):
                found = simulate(
                    sittings, runs, drift=0.08, run_noise=run_noise, step=step, step_at=STEP_AT,
                    margin=MARGIN, histories=histories,
                ).found_in_place  # fmt: skip
                best = [
                    best_found_in_place(
                        sittings, runs, drift=0.08, run_noise=run_noise, step=step,
                        step_at=STEP_AT, margin=MARGIN, histories=BOUND_HISTORIES,
                        drift_known=known,
                    )
                    for known in (False, True)
                ]  # fmt: skip
                cells += [f"{100 * found:.1f} %", f"{100 * best[0]:.1f} / {100 * best[1]:.1f} %"]
            print(f"| {sittings} × {runs}, {100 * run_noise:g} % | {' | '.join(cells)} |")
    print(
        f"\n{histories} seeded histories a cell ({BOUND_HISTORIES:,} for the best test), margin "
        f"{100 * MARGIN:g} %, each step at {100 * STEP_AT:g} % of the history under 8 % drift; "
        "placed: a change reported within one sitting of it. Best test: the likelihood ratio "
        "test for one step, set to give false changes in exactly 10 % of histories of that "
        "drift, with the drift taken from the series / known exactly."
    )


def tree_rss_mb(pid: int) -> float:
    """The resident MB of `pid` and every process under it (a cold index reads in workers)."""
    total = 0.0
    for process in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError):  # ended meanwhile
            status = Path(f"/proc/{process}/status").read_text().splitlines()
            total += sum(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return total / 1024


def timed(command: list[str], environment: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds and peak resident MB of `command` in a fresh process, its workers
    included (sampled every 50 ms), and its output."""
    started = time.monotonic()
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    peak_mb, chunks = 0.0, []

    def drain() -> None:
        chunks.append(process.stdout.read() if process.stdout else "")

    reader = threading.Thread(target=drain)
    reader.start()
    while process.poll() is None:
        peak_mb = max(peak_mb, tree_rss_mb(process.pid))
        time.sleep(0.05)
    reader.join()
    seconds = time.monotonic() - started
    output = "".join(chunks)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{output[-2000:]}")
    return seconds, peak_mb, output


def lines_at_80_columns(command: list[str], environment: dict[str, str]) -> int:
    """The lines `command` prints in a terminal 80 columns wide."""
    shown = subprocess.run(
        ["script", "-qec", " ".join(command), "/dev/null"],
        env=environment | {"COLUMNS": "80", "LINES": "50"},
        capture_output=True,
        text=True,
        check=True,
    )
    return len(shown.stdout.splitlines())


def finder_seconds(runs: int = 100_000, per_sitting: int = 3) -> float:
    """Seconds bench.judge.history.change_points takes over `runs` runs in sittings of
    `per_sitting` (8 % drift, a 15 % step at 70 %), given as the history holds them."""
    import math
    import random
    from datetime import UTC, datetime, timedelta

    from bench.judge.history import HistoryRun, Sitting, change_points

    rng = random.Random(0)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    count = runs // per_sitting
    sittings = []
    for number in range(count):
        level = 10_000 * math.exp(rng.gauss(0, 0.08)) * (0.85 if number > 0.7 * count else 1)
        sittings.append(
            Sitting(
                [
                    HistoryRun(
                        f"r{number}-{k}",
                        start + timedelta(minutes=10 * number + k),
                        level * math.exp(rng.gauss(0, 0.02)),
                        f"c{number // 17}",
                        "2.15.0",
                    )
                    for k in range(per_sitting)
                ],
                "results",
            )
        )
    started = time.perf_counter()
    change_points(sittings, 10.0)
    return time.perf_counter() - started


def machine() -> str:
    """The CPU as the harness names it: e.g. 'AMD EPYC (AuthenticAMD family 23 model 49
    stepping 0; avx2 fma)'."""
    from bench.measure.environment import CPUINFO, cpu_fingerprint, cpu_name

    cpu = cpu_fingerprint(CPUINFO.read_text(), "", {})
    return f"{cpu_name()} ({cpu.label}; {' '.join(cpu.flags) or 'no vector flags'})"


def scale(sizes: list[int], unreadable: int, folder: Path) -> None:
    mnist_bench = shutil.which("mnist-bench") or "mnist-bench"
    print(f"machine: {machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"change points of 100,000 runs (33,333 sittings): {finder_seconds():.1f} s\n")
    print("| results | command | index | time s | peak MB | lines at 80 columns | report MB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for runs in sizes:
        year = folder / f"year-{runs}"
        if not year.is_dir():
            build_year(year, runs, unreadable=unreadable)
        index = folder / f"index-{runs}.sqlite3"
        environment = os.environ | {"MNIST_BENCH_INDEX": str(index)}
        index.unlink(missing_ok=True)
        for command_name in ("compare", "report"):
            for state in ("cold", "warm"):
                if command_name == "report" and state == "cold":
                    index.unlink(missing_ok=True)
                html = folder / f"report-{runs}.html"
                html.unlink(missing_ok=True)
                command = [mnist_bench, "compare", str(year)]
                if command_name == "report":
                    command = [mnist_bench, "report", str(year), "--html", str(html)]
                seconds, peak_mb, _ = timed(command, environment)
                lines = (
                    str(lines_at_80_columns(command, environment))
                    if command_name == "compare" and state == "warm"
                    else "-"
                )
                size = f"{html.stat().st_size / 1e6:.2f}" if command_name == "report" else "-"
                print(
                    f"| {runs:,} | {command_name} | {state} | {seconds:.1f} | {peak_mb:.0f} "
                    f"| {lines} | {size} |"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    oc = commands.add_parser("oc")
    oc.add_argument("--histories", type=int, default=1000)
    sized = commands.add_parser("scale")
    sized.add_argument("--runs", type=int, nargs="+", default=[2000, 10000])
    sized.add_argument("--unreadable", type=int, default=0)
    sized.add_argument("--folder", type=Path)
    arguments = parser.parse_args()
    if arguments.command == "oc":
        operating_characteristics(arguments.histories)
        return
    if arguments.folder is not None:
        scale(arguments.runs, arguments.unreadable, arguments.folder)
        return
    with tempfile.TemporaryDirectory() as folder:
        scale(arguments.runs, arguments.unreadable, Path(folder))


if __name__ == "__main__":
    main()
