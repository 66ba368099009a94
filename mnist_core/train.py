"""One training epoch and one evaluation pass. Neither reads a value back to the host per step."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mnist_core.model import NUM_CLASSES
from mnist_core.precision import PRECISIONS

# The seed's Adam in three implementations of the same update: torch's default (foreach), one
# fused kernel, and one that keeps its step count on the device so a CUDA graph can capture it.
OPTIMIZERS: dict[str, dict[str, Any]] = {
    "adam": {},
    "adam-fused": {"fused": True},
    "adam-capturable": {"capturable": True},
}


class NonFiniteLossError(ArithmeticError):
    """Training diverged: a step's loss was NaN or infinite."""


@dataclass
class EvalResult:
    loss: float  # mean cross-entropy per test sample
    accuracy_pct: float
    per_class_accuracy_pct: list[float | None]  # None for a class absent from the test set
    confusion: list[list[int]]  # confusion[true][predicted]


def _autocast(device: torch.device, precision: str):
    dtype = PRECISIONS[precision]
    # No weight-cast cache: each weight is used once per forward, and CUDA graph capture
    # requires the cache off.
    if dtype is None:
        return nullcontext()
    return torch.autocast(device.type, dtype=dtype, cache_enabled=False)


def make_optimizer(model: nn.Module, lr: float, kind: str = "adam") -> torch.optim.Adam:
    """The seed's Adam, in one of the OPTIMIZERS implementations."""
    return torch.optim.Adam(model.parameters(), lr=lr, **OPTIMIZERS[kind])


TrainStep = Callable[..., torch.Tensor]


def make_train_step(
    model: Callable[[torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    precision: str = "fp32",
) -> TrainStep:
    """zero_grad, forward, loss, backward, step; returns the loss, still on the device.

    `model` may be the module or its torch.compile'd form.
    """
    device = optimizer.param_groups[0]["params"][0].device
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None

    def step(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad(set_to_none=True)
        with _autocast(device, precision):
            loss = F.cross_entropy(model(images), labels)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        return loss.detach()

    return step


def train_epoch(
    step: TrainStep,
    batches: Iterable[tuple[torch.Tensor, ...]],
    steps: int,
    on_step: Callable[[int, int], None] | None = None,
    reduce_losses: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Run `step` on the first `steps` batches; return each step's loss as one device tensor.

    `on_step(index, images)` follows each step with the number of images it trained on (its
    batch's length: a partial last batch counts what it holds, a rank what its shard holds).
    Losses stay on the device and are checked once, at the end, so the step never waits on the
    host. `reduce_losses` (an all-reduce across ranks) runs before that check, so that every
    rank stops together. Raises NonFiniteLossError naming the first bad step.
    """
    losses = []
    for index, batch in zip(range(steps), batches, strict=False):
        losses.append(step(*batch))
        if on_step is not None:
            on_step(index, len(batch[-1]))
    stacked = torch.stack(losses)
    if reduce_losses is not None:
        stacked = reduce_losses(stacked)
    finite = torch.isfinite(stacked)
    if not bool(finite.all()):
        first_bad = int((~finite).nonzero()[0])
        raise NonFiniteLossError(
            f"training loss became {stacked[first_bad].item()} at step {first_bad + 1}"
        )
    return stacked


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    precision: str = "fp32",
) -> EvalResult:
    """Loss, overall and per-class accuracy and the confusion matrix over every test sample.

    Leaves the model in the mode it found it (training resumes in training mode)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    confusion = torch.zeros(NUM_CLASSES * NUM_CLASSES, device=device, dtype=torch.long)
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        with _autocast(device, precision):
            logits = model(images)
        loss_sum += F.cross_entropy(logits.float(), labels, reduction="sum")
        confusion += torch.bincount(
            labels * NUM_CLASSES + logits.argmax(1), minlength=NUM_CLASSES * NUM_CLASSES
        )
    model.train(was_training)
    matrix = confusion.view(NUM_CLASSES, NUM_CLASSES).cpu()
    per_class_total = matrix.sum(1)
    total = int(per_class_total.sum())
    correct = matrix.diag()
    return EvalResult(
        loss=float(loss_sum) / total,
        accuracy_pct=100.0 * int(correct.sum()) / total,
        per_class_accuracy_pct=[
            100.0 * int(c) / int(n) if int(n) else None
            for c, n in zip(correct, per_class_total, strict=False)
        ],
        confusion=matrix.tolist(),
    )
