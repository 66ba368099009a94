"""Turning a user's device string into a torch.device, and waiting for it: generic over
torch.accelerator (CUDA, MPS, or whichever accelerator this torch build has)."""

from __future__ import annotations

import torch


class DeviceUnavailableError(ValueError):
    """The requested device does not exist on this machine."""


def resolve_device(name: str) -> torch.device:
    """Accepts cpu, an accelerator's type (cuda, mps, …) with or without :N, and auto (this
    machine's accelerator, else the CPU)."""
    accelerator = torch.accelerator.current_accelerator(check_available=True)
    if name == "auto":
        if accelerator is None:
            return torch.device("cpu")
        return torch.device(accelerator.type, torch.accelerator.current_device_index())
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise DeviceUnavailableError(
            f"unknown device {name!r}: use cpu, cuda, cuda:N, mps or auto"
        ) from error
    if device.type == "cpu":
        return device
    if accelerator is None or accelerator.type != device.type:
        raise DeviceUnavailableError(
            f"device {name!r} asked for, but {device.type.upper()} is not available"
        )
    count = torch.accelerator.device_count()
    index = 0 if device.index is None else device.index
    if index >= count:
        raise DeviceUnavailableError(
            f"device {name!r} asked for, but only {count} {device.type.upper()} device(s)"
        )
    return torch.device(device.type, index)


def synchronize(device: torch.device) -> None:
    """Wait for queued work so that a clock read after it measures finished work."""
    if device.type != "cpu":
        torch.accelerator.synchronize(device)
