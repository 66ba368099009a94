"""A stand-in for `python -m bench run …` in `ab` and the replicate runner: no torch, no
training; it writes a copy of tests/data's result as a fresh run into --out and reports it the
way `run` does (bench.measure.processes.report_written), then misbehaves as STANDIN_* variables ask:

STANDIN_INTRUDE=1     also writes another result into the folder, unreported (a neighbour)
STANDIN_SILENT=1      writes and reports nothing, and exits 0
STANDIN_TWICE=1       writes and reports two results
STANDIN_SPEW=N        first prints N MB of bytes that are not UTF-8 to stdout and stderr
STANDIN_FAIL=N        prints bytes that are not UTF-8 as its last line, and exits N
STANDIN_LR_AFTER=N    from its Nth call on (counted in STANDIN_COUNTER), another lr
STANDIN_DAEMON=PIDFILE  leaves a process behind in its group, holding its pipes (pid in PIDFILE)
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

TEMPLATE = Path(__file__).parent / "data" / "cpu-tiny-result.json"
CHANNEL = "MNIST_BENCH_RESULTS_CHANNEL"


def option(name: str) -> str | None:
    """The value of the last `name` among the arguments, as `run` would take it."""
    arguments = sys.argv[1:]
    return arguments[len(arguments) - arguments[::-1].index(name)] if name in arguments else None


def write_result(folder: Path, lr: float | None = None) -> Path:
    document = json.loads(TEMPLATE.read_text())
    document["run_id"] = f"standin-{secrets.token_hex(6)}"
    document["created_utc"] = datetime.now(UTC).isoformat()
    document["group"] = option("--group")
    document["replicate"] = int(option("--replicate") or 0) or None
    if lr is not None:
        document["config"]["lr"] = lr
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{document['run_id']}.json"
    path.write_text(json.dumps(document))
    return path


def report(path: Path) -> None:
    if CHANNEL in os.environ:  # started as a replicate
        with open(os.environ[CHANNEL], "a", encoding="utf-8") as channel:
            channel.write(f"{path.resolve()}\n")


def main() -> None:
    folder = Path(str(option("--out")))
    spew_mb = int(os.environ.get("STANDIN_SPEW", "0"))
    for _ in range(spew_mb):
        chunk = b"\xff\xfe caf\xe9 \x80\x81\n" * (2**20 // 16)
        sys.stdout.buffer.write(chunk)
        sys.stderr.buffer.write(chunk)
    if os.environ.get("STANDIN_FAIL"):
        sys.stderr.buffer.write(b"last words \xff\xfe\n")
        sys.exit(int(os.environ["STANDIN_FAIL"]))
    if os.environ.get("STANDIN_INTRUDE"):
        write_result(folder)  # a neighbour's, in the same folder: not this run's
    if os.environ.get("STANDIN_DAEMON"):
        daemon = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        Path(os.environ["STANDIN_DAEMON"]).write_text(str(daemon.pid))
    if os.environ.get("STANDIN_SILENT"):
        return
    lr = None
    counter = os.environ.get("STANDIN_COUNTER")
    if counter:
        calls = int(Path(counter).read_text() or 0) + 1 if Path(counter).exists() else 1
        Path(counter).write_text(str(calls))
        if calls >= int(os.environ["STANDIN_LR_AFTER"]):
            lr = 0.01
    for _ in range(2 if os.environ.get("STANDIN_TWICE") else 1):
        report(write_result(folder, lr))


if __name__ == "__main__":
    main()
