"""The errors a user can cause; the CLI turns each into one line and exit code 2. Anything
else is a bug: one line, exit code 3 (EXIT_BUG), and its traceback in a log file."""

from __future__ import annotations

import signal
import sys
import tempfile
import traceback
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

# Exit codes: 1 is a regression and nothing else, 2 bad input or "cannot judge"; a bug is 3, so
# that a gate never reads a crash as a regression. A reader that went away (`| head`) ends the
# command as SIGPIPE ends a shell tool, 128 + 13, quietly.
EXIT_USAGE, EXIT_BUG, EXIT_BROKEN_PIPE = 2, 3, 128 + signal.SIGPIPE


class ConfigError(ValueError):
    """An option value that cannot describe a run."""


class ReplicateError(RuntimeError):
    """A replicate (a fresh `run` process of `run --repeat` or `ab`) that could not start,
    failed or hung; the message names it and its last line. A replicate that ended on a bug
    (EXIT_BUG) ends its parent the same way: `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ResultFileError(ValueError):
    """A file that is not a usable results file; the message says why."""


class BaselineError(ValueError):
    """Results that cannot become one baseline, or a baseline that cannot be written."""


class WriteError(OSError):
    """A file or folder that could not be written; the message names it (the real target,
    never a temp file) and says why."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.reason = reason


def user_error_types() -> tuple[type[BaseException], ...]:
    """The project's own errors, which name what the user gave and what is wrong with it.
    Anything else (a stray OSError, a schema refusing what the code built) is a bug and ends
    in a traceback. Evaluated when an exception is caught, so that it never loads torch."""
    types: tuple[type[BaseException], ...] = (
        ConfigError,
        ReplicateError,
        BaselineError,
        ResultFileError,
        WriteError,
    )
    if "mnist_core" in sys.modules:  # its errors can only have been raised once it is loaded
        from mnist_core import DataError, DeviceUnavailableError, NonFiniteLossError
        from mnist_core.distributed import LaunchError

        types += (DataError, DeviceUnavailableError, NonFiniteLossError, LaunchError)
    return types


def bug_report(error: BaseException) -> str:
    """One line for an error the project did not raise (a bug), its traceback written to a
    log file that the line names (printed in full instead when no log can be written)."""
    trace = "".join(traceback.format_exception(error))
    what = f"{type(error).__name__}: {error}".splitlines()[0][:300]
    try:
        with tempfile.NamedTemporaryFile(
            "w", prefix="mnist-bench-crash-", suffix=".log", delete=False, encoding="utf-8"
        ) as log:
            log.write(trace)
    except OSError:
        print(trace, file=sys.stderr, end="")
        return f"internal error (a bug, please report it): {what}; traceback above"
    return f"internal error (a bug, please report it): {what}; traceback in {log.name}"


def first_error(error: ValidationError) -> str:
    """A pydantic error as one line: where, and what is wrong there."""
    details = error.errors()[0]
    where = ".".join(str(part) for part in details["loc"])
    extra = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where or 'document'}: {details['msg']}{extra}"


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised wherever the program is, so that it ends as on Ctrl-C: child
    processes ended and reaped, unfinished files removed, one line, exit 128 + the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


def end_like_ctrl_c_on_termination() -> None:
    """Install the handlers that turn SIGTERM and SIGHUP into Terminated (the CLI's entry
    point does; a library caller keeps its own)."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_terminated)


def interrupted_exit_code(error: KeyboardInterrupt) -> int:
    """128 + the signal that ended the program: SIGINT for Ctrl-C."""
    return 128 + getattr(error, "signum", signal.SIGINT)
