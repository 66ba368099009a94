"""Turning a user's device string into a torch.device, and waiting for it."""

from __future__ import annotations

import torch


class DeviceUnavailableError(ValueError):
    """The requested device does not exist on this machine."""


def resolve_device(name: str) -> torch.device:
    """Accepts cpu, cuda, cuda:N, mps and auto (cuda, else mps, else cpu)."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", 0)
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise DeviceUnavailableError(
            f"unknown device {name!r}: use cpu, cuda, cuda:N, mps or auto"
        ) from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(f"device {name!r} asked for, but CUDA is not available")
        index = 0 if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"device {name!r} asked for, but only {torch.cuda.device_count()} CUDA device(s)"
            )
        return torch.device("cuda", index)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailableError(f"device {name!r} asked for, but MPS is not available")
    if device.type not in ("cpu", "cuda", "mps"):
        raise DeviceUnavailableError(f"unsupported device {name!r}: use cpu, cuda, cuda:N or mps")
    return device


def synchronize(device: torch.device) -> None:
    """Wait for queued work so that a clock read after it measures finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
