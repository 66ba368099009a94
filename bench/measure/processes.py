"""Child processes that never outlive the one that started them.

`run_child`: the child leads its own process group, so that a terminal's Ctrl-C reaches it
once, through its parent; when it overruns its time, or when the parent is interrupted or
terminated, the group is ended (SIGTERM, which `mnist-bench` takes like Ctrl-C and so removes
its unfinished files, then SIGKILL if it has not ended in time) and reaped; processes it
leaves behind in its group are ended the same way once it has. Its output is read as it comes
and only a bounded tail kept. Replicates of `run --repeat`, `ab` and `verify-portable`, and
the peak probe, run this way.

`run_replicate`: a `run` as a replicate (of `run --repeat`, `ab`, `verify-portable`), by
run_child, that reports through RESULTS_CHANNEL the results it wrote; tests drive it with
stand-in interpreters (tests/standin_run.py), in seconds.

`run_in_foreground`: a child that takes over the terminal (portable mode's rerun, torchrun):
it gets Ctrl-C from the terminal itself, SIGTERM or SIGHUP passed on from its parent, and the
same grace to clean up before it is killed.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from bench.errors import EXIT_BUG, EXIT_USAGE, ReplicateError, WriteError


def children(pid: int) -> list[int]:
    """The live processes `pid`'s threads started (each thread lists its own in /proc); none
    where /proc does not say."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []
    listed = []
    for task in tasks:
        with contextlib.suppress(OSError):  # a thread that has just ended
            listed += (task / "children").read_text().split()
    return [int(child) for child in listed]


def descendants(pid: int) -> list[int]:
    """Every live process under `pid`, children first."""
    found, pending = [], children(pid)
    while pending:
        found.append(pending.pop(0))
        pending += children(found[-1])
    return found


# After Ctrl-C, SIGTERM or a timeout, how long a child has to clean up before it is killed.
GRACE_S = 30


class ChildFailed(Exception):
    """A child that could not start, ran past its time or exited with an error; the message
    says which (and the child's last line of output), `exit_code` the child's (None when it
    did not end by itself)."""

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _end_process_group(process: subprocess.Popen[bytes]) -> None:
    for signum, grace_s in ((signal.SIGTERM, GRACE_S), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        try:
            process.wait(timeout=grace_s)
            return
        except subprocess.TimeoutExpired:
            continue


def run_in_foreground(command: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """`command` writing to this terminal, to its end; its exit code. Interrupted, the child
    has the grace to end and say why itself (its code is then this one's); only a child that
    does not is killed, and the interrupt goes on here."""
    process = subprocess.Popen(command, env=env)
    try:
        return process.wait()
    except KeyboardInterrupt as interrupt:
        # Ctrl-C reached the child from the terminal already; a signal sent to this process
        # alone (SIGTERM, SIGHUP: bench.errors.Terminated) is passed on.
        signum = getattr(interrupt, "signum", None)
        if signum is not None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signum)
        try:
            return process.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise interrupt from None


# What is kept of a child's output: its last lines are all a message needs, and a child that
# prints gigabytes must not take this process's memory with it.
OUTPUT_TAIL_BYTES = 64 * 1024
_CHUNK_BYTES = 64 * 1024


class _Tail:
    """The last `limit` bytes of a pipe, read as they come in a thread of its own (so that a
    child filling one pipe never blocks on the other), decoded with replacement at the end:
    a child's bytes that are not UTF-8 are its own business, not a crash here."""

    def __init__(self, pipe: IO[bytes], limit: int) -> None:
        self.limit = limit
        self.kept = bytearray()
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: IO[bytes]) -> None:
        with pipe:
            while chunk := pipe.read1(_CHUNK_BYTES):  # type: ignore[attr-defined]
                self.kept += chunk
                if len(self.kept) > self.limit:
                    del self.kept[: len(self.kept) - self.limit]

    def closed(self, wait_s: float) -> bool:
        """Whether the pipe has closed (every process holding it has ended), within `wait_s`."""
        self._thread.join(wait_s)
        return not self._thread.is_alive()

    def text(self) -> str:
        return bytes(self.kept).decode("utf-8", errors="replace")


# How long the pipes of a child that has ended may stay open: longer, and processes it left
# behind in its group hold them.
LEFTOVER_WAIT_S = 2


def _end_leftovers(process: subprocess.Popen[bytes], tails: Sequence[_Tail]) -> None:
    """The processes an ended child left in its group (a daemon it started, which holds its
    pipes), ended like the child itself would be — SIGTERM, then SIGKILL after the grace — so
    that none outlives it (one that left the group is given up on after the grace)."""
    if all(tail.closed(LEFTOVER_WAIT_S) for tail in tails):
        return
    for signum in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        if all(tail.closed(GRACE_S) for tail in tails):
            return


def run_child(
    command: Sequence[str],
    *,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    keep_bytes: int = OUTPUT_TAIL_BYTES,
) -> str:
    """`command`'s standard output (its last `keep_bytes`), once it has ended well; ChildFailed
    otherwise, with the last line it printed."""
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env=env,
        )
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ChildFailed(f"cannot start {command[0]!r} ({reason})") from None
    assert process.stdout is not None and process.stderr is not None
    stdout, stderr = _Tail(process.stdout, keep_bytes), _Tail(process.stderr, OUTPUT_TAIL_BYTES)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _end_process_group(process)
        raise ChildFailed(f"still running after {timeout_s:.0f} s, ended") from None
    except BaseException:
        _end_process_group(process)
        raise
    _end_leftovers(process, (stdout, stderr))
    printed, complaint = stdout.text(), stderr.text()
    if process.returncode != 0:
        lines = (complaint.strip() or printed.strip() or "no output").splitlines()
        raise ChildFailed(f"exit {process.returncode}: {lines[-1]}", process.returncode)
    return printed


REPLICATE_TIMEOUT_S = 3600  # a replicate that hangs ends the series, not the machine

# A child `run` started by `run --repeat`, `ab` or `verify-portable` appends the path of each
# result it writes, one per line, to the file this variable names: what a replicate wrote is
# what it says it wrote, never what appeared in a folder that others may write to as well.
RESULTS_CHANNEL = "MNIST_BENCH_RESULTS_CHANNEL"


def report_written(result_path: Path) -> None:
    """Tell the parent that started this `run` (if one did, through RESULTS_CHANNEL) that it
    wrote `result_path`."""
    channel = os.environ.get(RESULTS_CHANNEL)
    if not channel:
        return
    try:
        with open(channel, "a", encoding="utf-8") as handle:
            handle.write(os.path.abspath(result_path) + "\n")
    except OSError as error:
        raise WriteError(channel, error.strerror or type(error).__name__) from None


def run_replicate(
    command: list[str], what: str, timeout_s: float = REPLICATE_TIMEOUT_S
) -> list[Path]:
    """`command` (a `run`) in a fresh process (run_child: it never outlives this one, nor
    `timeout_s`); the result files it reports having written (RESULTS_CHANNEL),
    at least one: a replicate that ends well and writes nothing is a failure, named `what`."""
    with tempfile.TemporaryDirectory(prefix="mnist-bench-") as scratch:
        channel = Path(scratch) / "written"
        channel.touch()
        environment = os.environ | {RESULTS_CHANNEL: str(channel)}
        try:
            run_child(command, timeout_s=timeout_s, env=environment)
        except ChildFailed as failure:
            bug = failure.exit_code == EXIT_BUG  # a bug there is a bug here, not bad input
            raise ReplicateError(f"{what}: {failure}", EXIT_BUG if bug else EXIT_USAGE) from None
        reported = channel.read_text(encoding="utf-8", errors="replace").splitlines()
    if not reported:
        raise ReplicateError(
            f"{what} ended without an error but wrote no result: is `{shlex.join(command)}` "
            "a `mnist-bench run` of this version? (a `run` reports each result it writes)"
        )
    return [Path(line) for line in reported]
