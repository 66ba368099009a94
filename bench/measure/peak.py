"""Short probes of what a device can do: dense matmul FLOP/s and copy bandwidth.

They give the denominators for model FLOPs utilisation (MFU); each warms up, then times several
repetitions between synchronisations and keeps the best, as peak figures are usually stated.
The matmul runs in the precision the run uses (IEEE fp32, TF32, bf16 or fp16).

`run` takes its peak from a per-user cache, keyed by device and machine key, torch version,
precision and CPU threads, and fills a missing entry from a separate process (`python -m
bench.measure.peak`), so that the probe's buffers never count in the run's peak memory and its
seconds are paid once per machine. `mnist-bench env --peak` measures afresh and refreshes the entry.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import torch
from pydantic import TypeAdapter, ValidationError

from bench.config.devices import kind_of
from bench.errors import ResultFileError, first_error
from bench.measure.processes import ChildFailed, run_child
from bench.measure.timing import timed
from bench.storage.experiment import hardware_of, slug
from bench.storage.records import Peak
from bench.storage.results import Environment
from mnist_core import PRECISIONS, DataError, set_float32_precision, user_cache_dir

PROBE_TIMEOUT_S = 300


class PeakProbeError(RuntimeError):
    """The separate probe process failed; the run goes on without MFU."""


def _best_seconds(device: torch.device, work: Callable[[], object], repeats: int) -> float:
    work()  # warm-up: allocation, kernel selection, library initialisation
    return min(timed(device, work)[1] for _ in range(repeats))


def measure_peak(device: torch.device, precision: str = "fp32") -> Peak:
    """Measure in this process, with fp32 work set to `precision`'s arithmetic."""
    set_float32_precision(precision)
    dtype = PRECISIONS[precision] or torch.float32
    kind = kind_of(device.type)
    size = kind.peak_matmul_size
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    matmul_s = _best_seconds(device, lambda: torch.mm(a, b), repeats=10 if kind.queued else 5)
    copy_mb = 1024 if kind.queued else 256
    source = torch.empty(int(copy_mb * 2**20), dtype=torch.uint8, device=device)
    target = torch.empty_like(source)
    copy_s = _best_seconds(device, lambda: target.copy_(source), repeats=10)
    return Peak(
        matmul_flops_per_s=2 * size**3 / matmul_s,
        copy_bytes_per_s=2 * source.numel() / copy_s,  # every byte is read once and written once
        matmul_size=size,
        copy_mb=copy_mb,
        dtype=str(dtype).removeprefix("torch."),
        precision=precision,
        measured_utc=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def peak_machine(environment: Environment) -> str:
    """What a cached peak belongs to: the device's name and the machine key of the fingerprint
    (CPU vendor, family, model, stepping and ATen's instruction set; the GPU's compute
    capability), as results are judged: two "AMD EPYC"s sharing a home folder differ ≈ 3×."""
    hardware = hardware_of(environment)
    parts = (hardware.device_name, hardware.cpu, hardware.isa, hardware.accelerator)
    return " ".join(filter(None, parts))


def cache_path(device_name: str, device_type: str, precision: str, threads: int) -> Path:
    threads_part = f"-t{threads}" if kind_of(device_type).host_threads else ""
    name = f"{device_type}-{slug(device_name)}{threads_part}-torch{torch.__version__}-{precision}"
    return user_cache_dir() / "peak" / f"{name}.json"


def _cache_entry(device_name: str, device_type: str, precision: str, threads: int) -> Path | None:
    """cache_path, or None where there is no cache folder (no home folder: the cache is
    optional)."""
    try:
        return cache_path(device_name, device_type, precision, threads)
    except DataError:
        return None


def save_cached(peak: Peak, path: Path | None) -> str | None:
    """Put `peak` in the cache; None, or a note saying why it could not be (the cache is
    optional: the peak is then measured again next time)."""
    from bench.storage.files import write_json_atomic

    if path is None:
        return "the peak was not cached (no home folder: set XDG_CACHE_HOME to keep it)"
    try:
        # The cache's own entry: replacing it (another rank, a fresh `env --peak`) is its purpose.
        write_json_atomic(path, asdict(peak), replace=True)
    except OSError as error:
        return f"the peak was not cached ({error}); it is measured again next time"
    return None


PEAK_SCHEMA = TypeAdapter(Peak)


def _parse(text: str | bytes) -> Peak:
    """A Peak from JSON, checked like a result: strict types, finite and in range."""
    return PEAK_SCHEMA.validate_json(text)


def _read_cached(path: Path | None) -> Peak | None:
    """The cached peak, read like any document (a regular file of bounded size, never waiting
    on a FIFO); None when it is absent, unreadable or not a peak: measure again."""
    from bench.storage.files import read_regular_file

    if path is None:
        return None
    try:
        return _parse(read_regular_file(path))
    except (OSError, ResultFileError, ValidationError):
        return None


def refresh_peak(
    device: torch.device, device_name: str, precision: str, threads: int
) -> tuple[Peak, str | None]:
    """Measure the peak now, in this process, and put it in the cache `run` reads; the peak,
    and a note if the cache could not be written."""
    peak = measure_peak(device, precision)
    return peak, save_cached(peak, _cache_entry(device_name, device.type, precision, threads))


def cached_peak(
    device: torch.device, device_name: str, precision: str, threads: int
) -> tuple[Peak, str | None]:
    """The cached peak for this device, torch, precision and thread count; measured once, in
    a separate process, when there is none. With it, a note if the cache could not be
    written."""
    path = _cache_entry(device_name, device.type, precision, threads)
    peak = _read_cached(path)
    if peak is not None:
        return peak, None
    command = [sys.executable, "-m", "bench.measure.peak", str(device), precision, str(threads)]
    try:
        printed = run_child(command, timeout_s=PROBE_TIMEOUT_S)
    except ChildFailed as failure:
        raise PeakProbeError(f"the peak probe failed: {failure}") from None
    try:
        peak = _parse(printed)
    except ValidationError as error:
        reason = first_error(error)
        raise PeakProbeError(f"the peak probe printed no usable peak: {reason}") from None
    return peak, save_cached(peak, path)


def main() -> None:
    parser = argparse.ArgumentParser(description="Measure a device's peak; print it as JSON.")
    parser.add_argument("device")
    parser.add_argument("precision", choices=list(PRECISIONS))
    parser.add_argument("threads", type=int)
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    print(json.dumps(asdict(measure_peak(torch.device(options.device), options.precision))))


if __name__ == "__main__":
    main()
