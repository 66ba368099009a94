"""The errors a user can cause; the CLI turns each into one line and exit code 2."""

from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

# Where an option's value lands in RunConfig, when the names differ.
OPTION_OF_FIELD = {
    "target_acc_pct": "--target-acc",
    "max_steps_per_epoch": "--max-steps",
    "throughput_pct": "--throughput-tolerance",
    "accuracy_points": "--accuracy-tolerance",
}


class ConfigError(ValueError):
    """An option value that cannot describe a run."""


class ReplicateError(RuntimeError):
    """A replicate (a fresh `run` process of `run --repeat` or `ab`) that could not start,
    failed or hung; the message names it and its last line."""


class ResultFileError(ValueError):
    """A file that is not a usable results file; the message says why."""


class BaselineError(ValueError):
    """Results that cannot become one baseline, or a baseline that cannot be written."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """Evaluated when an exception is caught, so that it never loads torch by itself."""
    from pydantic import ValidationError

    types: tuple[type[BaseException], ...] = (
        ConfigError,
        ReplicateError,
        BaselineError,
        ResultFileError,
        OSError,
        ValidationError,
    )
    if "mnist_core" in sys.modules:  # its errors can only have been raised once it is loaded
        from mnist_core import DataError, DeviceUnavailableError, NonFiniteLossError
        from mnist_core.distributed import LaunchError

        types += (DataError, DeviceUnavailableError, NonFiniteLossError, LaunchError)
    return types


def first_error(error: ValidationError) -> str:
    """A pydantic error as one line: where, and what is wrong there."""
    details = error.errors()[0]
    where = ".".join(str(part) for part in details["loc"])
    extra = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where or 'document'}: {details['msg']}{extra}"


def user_message(error: BaseException) -> str:
    """One line for a user error: an option's name and what is wrong with its value, a file's
    path and what went wrong with it."""
    from pydantic import ValidationError

    if isinstance(error, ValidationError):
        details = error.errors()[0]
        if error.title in ("RunConfig", "Tolerances") and details["loc"]:  # built from options
            field = str(details["loc"][0])
            option = OPTION_OF_FIELD.get(field, "--" + field.replace("_", "-"))
            return f"{option} {details.get('input')!r}: {details['msg']}"
        return f"invalid {error.title}: {first_error(error)}"
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return str(error)


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
