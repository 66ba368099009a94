"""One place that seeds every RNG and chooses deterministic or fast kernels."""

from __future__ import annotations

import os
import random

import torch

# cuBLAS reads this when its handle is created; the value is the one the PyTorch docs name.
CUBLAS_WORKSPACE_CONFIG = ":4096:8"


def seed_everything(seed: int, deterministic: bool = True) -> torch.Generator:
    """Seed Python and torch (CPU and CUDA), set the kernel policy, return the data generator.

    The returned CPU generator drives the epoch permutations, so both loaders (and every device)
    draw the same order for the same seed.
    """
    random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic
    torch.use_deterministic_algorithms(deterministic)
    return torch.Generator().manual_seed(seed)
