"""One place that seeds every RNG and chooses deterministic or fast kernels."""

from __future__ import annotations

import os
import random
from typing import Final, Literal

import torch

# cuBLAS reads this when its handle is created; the value is the one the PyTorch docs name.
# mnist_core sets it on import (bench imports it before any CUDA work), so that no matmul in
# the process (the peak probe's included) creates a handle without it.
CUBLAS_WORKSPACE_CONFIG = ":4096:8"

Mode = Literal["strict", "warn-only", "off"]
STRICT: Final = "strict"
WARN_ONLY: Final = "warn-only"
OFF: Final = "off"


def set_cublas_workspace() -> None:
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG)


def determinism_mode(deterministic: bool, deterministic_kernels: bool = True) -> Mode:
    """strict, warn-only (asked for, but the device lacks a deterministic kernel for an op the
    network needs, so strict mode would raise; its reruns are then not bitwise) or off."""
    if not deterministic:
        return OFF
    return STRICT if deterministic_kernels else WARN_ONLY


def seed_everything(seed: int, mode: Mode = STRICT) -> torch.Generator:
    """Seed Python and torch (CPU and CUDA), set the kernel policy, return the data generator.

    The returned CPU generator drives the epoch permutations, so both loaders (and every device)
    draw the same order for the same seed.
    """
    if mode not in (STRICT, WARN_ONLY, OFF):
        raise ValueError(f"unknown determinism mode {mode!r}")
    random.seed(seed)
    torch.manual_seed(seed)
    deterministic = mode != OFF
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic
    torch.use_deterministic_algorithms(deterministic, warn_only=mode == WARN_ONLY)
    return torch.Generator().manual_seed(seed)
