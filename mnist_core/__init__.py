"""The seeded, deterministic MNIST CNN: model, data and loops. No CLI, no files, no printing."""

from mnist_core.data import (
    LOADERS,
    DataError,
    MnistData,
    TensorLoader,
    default_data_dir,
    load_mnist,
    make_loader,
)
from mnist_core.determinism import seed_everything
from mnist_core.device import DeviceUnavailableError, resolve_device, synchronize
from mnist_core.model import Net, parameter_count, state_dict_digest, training_flops_per_sample
from mnist_core.train import (
    OPTIMIZERS,
    PRECISIONS,
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
    "DataError",
    "DeviceUnavailableError",
    "EvalResult",
    "MnistData",
    "Net",
    "NonFiniteLossError",
    "TensorLoader",
    "default_data_dir",
    "evaluate",
    "load_mnist",
    "make_loader",
    "make_optimizer",
    "make_train_step",
    "parameter_count",
    "resolve_device",
    "seed_everything",
    "state_dict_digest",
    "synchronize",
    "train_epoch",
    "training_flops_per_sample",
]
