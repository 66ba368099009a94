"""The seeded, deterministic MNIST CNN: model, data and loops. No CLI, no files, no printing."""

from mnist_core.data import (
    LOADERS,
    DataError,
    MnistData,
    TensorLoader,
    default_data_dir,
    load_mnist,
    make_loader,
    user_cache_dir,
)
from mnist_core.determinism import (
    OFF,
    STRICT,
    WARN_ONLY,
    determinism_mode,
    seed_everything,
    set_cublas_workspace,
)
from mnist_core.device import DeviceUnavailableError, resolve_device, synchronize
from mnist_core.model import Net, parameter_count, state_dict_digest, training_flops_per_sample
from mnist_core.precision import (
    PRECISIONS,
    Float32Settings,
    float32_settings,
    set_float32_precision,
)
from mnist_core.train import (
    OPTIMIZERS,
    EvalResult,
    NonFiniteLossError,
    evaluate,
    make_optimizer,
    make_train_step,
    train_epoch,
)

__all__ = [
    "LOADERS",
    "OPTIMIZERS",
    "PRECISIONS",
    "OFF",
    "STRICT",
    "WARN_ONLY",
    "DataError",
    "DeviceUnavailableError",
    "EvalResult",
    "Float32Settings",
    "MnistData",
    "Net",
    "NonFiniteLossError",
    "TensorLoader",
    "default_data_dir",
    "determinism_mode",
    "evaluate",
    "float32_settings",
    "load_mnist",
    "make_loader",
    "make_optimizer",
    "make_train_step",
    "parameter_count",
    "resolve_device",
    "seed_everything",
    "set_cublas_workspace",
    "set_float32_precision",
    "state_dict_digest",
    "synchronize",
    "train_epoch",
    "user_cache_dir",
    "training_flops_per_sample",
]

set_cublas_workspace()
