"""The environment fingerprint stored with every result: what ran, on what, from which commit."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import torch
import torchvision

from bench.storage.results import Environment


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str | None:
    """HEAD of the checkout this code runs from, with '-dirty' when it has local changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple MPS ({platform.machine()})"
    return cpu_name()


def nvidia_driver() -> str | None:
    """The NVIDIA driver version as nvidia-smi reports it; None where it cannot say."""
    try:
        query = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    versions = query.stdout.split()
    return versions[0] if versions else None


def fingerprint(device: torch.device) -> Environment:
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    on_cuda = device.type == "cuda"
    return Environment(
        torch=torch.__version__,
        torchvision=torchvision.__version__,
        cuda=torch.version.cuda,
        cudnn=cudnn if on_cuda else None,
        device_type=device.type,
        device_name=device_name(device),
        cpu_name=cpu_name(),
        cpu_count=os.cpu_count() or 1,
        threads=torch.get_num_threads(),
        os=platform.platform(),
        python=platform.python_version(),
        git_commit=git_commit(),
        gpu_driver=nvidia_driver() if on_cuda else None,
        gpu_sm_count=torch.cuda.get_device_properties(device).multi_processor_count
        if on_cuda
        else None,
    )
