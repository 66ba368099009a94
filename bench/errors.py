"""The errors a user can cause; the CLI turns each into one line and exit code 2."""

from __future__ import annotations

import sys


class ConfigError(ValueError):
    """An option value that cannot describe a run."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """Evaluated when an exception is caught, so that it never loads torch by itself."""
    from bench.storage.baselines import BaselineError
    from bench.storage.results import ResultFileError

    types: tuple[type[BaseException], ...] = (ConfigError, BaselineError, ResultFileError, OSError)
    if "mnist_core" in sys.modules:  # its errors can only have been raised once it is loaded
        from mnist_core import DataError, DeviceUnavailableError, NonFiniteLossError

        types += (DataError, DeviceUnavailableError, NonFiniteLossError)
    return types
