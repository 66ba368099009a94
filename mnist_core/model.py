"""The seed script's LeNet-style CNN, plus the numbers a benchmark states about it."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

IMAGE_SHAPE = (1, 28, 28)
NUM_CLASSES = 10


class Net(nn.Module):
    """Conv(1,6,3,1,2) → ReLU → pool → Conv(6,16,5) → ReLU → pool → fc 400→120 → ReLU → fc
    120→84 → ReLU → fc 84→10: the seed script's forward, layer names and all (its checkpoints
    load with strict=True)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, 1, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def training_flops_per_sample(model: nn.Module, batch_size: int = 100) -> int:
    """Forward + backward FLOPs of one training sample, counted by torch's FLOP counter."""
    device = next(model.parameters()).device
    images = torch.zeros(batch_size, *IMAGE_SHAPE, device=device)
    labels = torch.zeros(batch_size, dtype=torch.long, device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(images), labels).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() // batch_size


def state_dict_digest(model: nn.Module | Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor of the state_dict (a model's, or one loaded from a file), in
    key order, bytes as stored on the CPU."""
    state = model.state_dict() if isinstance(model, nn.Module) else model
    digest = hashlib.sha256()
    for name, tensor in state.items():
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
