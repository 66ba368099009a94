"""The errors a user can cause; the CLI turns each into one line and exit code 2."""

from bench.results import ResultFileError
from bench.runner import ConfigError
from mnist_core import DataError, DeviceUnavailableError, NonFiniteLossError

USER_ERRORS = (ConfigError, DataError, DeviceUnavailableError, NonFiniteLossError, ResultFileError)
