"""Child processes that never outlive the one that started them.

`run_child`: the child leads its own process group, so that a terminal's Ctrl-C reaches it
once, through its parent; when it overruns its time, or when the parent is interrupted or
terminated, the group is ended (SIGTERM, which `mnist-bench` takes like Ctrl-C and so removes
its unfinished files, then SIGKILL if it has not ended in time) and reaped. Replicates of
`run --repeat`, `ab` and `verify-portable`, and the peak probe, run this way.

`run_in_foreground`: a child that takes over the terminal (portable mode's rerun, torchrun):
it gets Ctrl-C from the terminal itself, SIGTERM or SIGHUP passed on from its parent, and the
same grace to clean up before it is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence

# After Ctrl-C, SIGTERM or a timeout, how long a child has to clean up before it is killed.
GRACE_S = 30


class ChildFailed(Exception):
    """A child that could not start, ran past its time or exited with an error; the message
    says which (and the child's last line of output)."""


def _end_process_group(process: subprocess.Popen[str]) -> None:
    for signum, grace_s in ((signal.SIGTERM, GRACE_S), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        try:
            process.communicate(timeout=grace_s)
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


def run_child(command: Sequence[str], *, timeout_s: float) -> str:
    """`command`'s standard output, once it has ended well; ChildFailed otherwise."""
    try:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ChildFailed(f"cannot start {command[0]!r} ({reason})") from None
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _end_process_group(process)
        raise ChildFailed(f"still running after {timeout_s:.0f} s, ended") from None
    except BaseException:
        _end_process_group(process)
        raise
    if process.returncode != 0:
        lines = (stderr.strip() or stdout.strip() or "no output").splitlines()
        raise ChildFailed(f"exit {process.returncode}: {lines[-1]}")
    return stdout
