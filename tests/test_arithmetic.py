"""What arithmetic a run did: fp32 vs TF32, determinism per device, and that results say so."""

import dataclasses
import os
import subprocess
import sys

import pytest
import torch

from bench.config.devices import KINDS
from bench.config.settings import RunConfig
from bench.measure.peak import cache_path, cached_peak
from mnist_core import (
    OFF,
    STRICT,
    WARN_ONLY,
    determinism_mode,
    float32_settings,
    load_mnist,
    seed_everything,
    set_float32_precision,
)
from tests.conftest import measure


@pytest.fixture(autouse=True)
def restore_torch_modes():
    yield
    set_float32_precision("fp32")
    seed_everything(0, STRICT)


def test_fp32_is_ieee_in_every_backend_and_tf32_only_on_cuda():
    fp32 = set_float32_precision("fp32")
    assert {fp32.cuda_matmul, fp32.cudnn_conv, fp32.mkldnn_matmul, fp32.mkldnn_conv} == {"ieee"}
    tf32 = set_float32_precision("tf32")
    assert (tf32.cuda_matmul, tf32.cudnn_conv) == ("tf32", "tf32")
    assert (tf32.mkldnn_matmul, tf32.mkldnn_conv) == ("ieee", "ieee")
    assert float32_settings() == tf32
    # Back to fp32 turns cuDNN's TF32 default off too.
    assert set_float32_precision("fp32").cudnn_conv == "ieee"


@pytest.mark.parametrize(
    ("device_type", "deterministic", "mode"),
    [
        ("cpu", True, STRICT),
        ("cuda", True, STRICT),
        ("mps", True, WARN_ONLY),  # no deterministic max_pool2d backward on MPS
        ("mps", False, OFF),
        ("cuda", False, OFF),
    ],
)
def test_determinism_mode_per_device(device_type, deterministic, mode):
    assert determinism_mode(deterministic, KINDS[device_type].bitwise_reruns) == mode


def test_warn_only_determinism_reaches_torch():
    seed_everything(0, WARN_ONLY)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()
    seed_everything(0, STRICT)
    assert not torch.is_deterministic_algorithms_warn_only_enabled()


@pytest.mark.slow
def test_a_result_records_its_arithmetic(tiny_mnist):
    result = measure(RunConfig(device="cpu", epochs=1), load_mnist(tiny_mnist, download=False))
    arithmetic = result.arithmetic
    assert (arithmetic.precision, arithmetic.autocast_dtype) == ("fp32", None)
    assert arithmetic.cudnn_conv_fp32 == arithmetic.cuda_matmul_fp32 == "ieee"
    assert (arithmetic.determinism, arithmetic.bitwise_reruns) == (STRICT, True)
    assert result.environment.accelerator is None
    assert result.summary.peak_host_rss_scope == "training"


@pytest.mark.slow
def test_a_device_without_deterministic_kernels_runs_warn_only_and_says_so(tiny_mnist, monkeypatch):
    # The MPS decision, exercised on the CPU: pretend the CPU lacks a deterministic kernel.
    lacking = dataclasses.replace(KINDS["cpu"], no_deterministic_kernel="max_pool2d backward")
    monkeypatch.setitem(KINDS, "cpu", lacking)
    result = measure(RunConfig(device="cpu", epochs=1), load_mnist(tiny_mnist, download=False))
    assert (result.arithmetic.determinism, result.arithmetic.bitwise_reruns) == (WARN_ONLY, False)
    assert any("bitwise" in note for note in result.notes)


@pytest.mark.slow
def test_cublas_workspace_is_set_when_mnist_core_is_imported():
    env = {k: v for k, v in os.environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "import mnist_core, os; print(os.environ['CUBLAS_WORKSPACE_CONFIG'])",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == ":4096:8"


@pytest.mark.slow
def test_the_peak_is_measured_apart_once_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cpu = torch.device("cpu")
    first, _ = cached_peak(cpu, "Test CPU", "fp32", 1)
    assert first.matmul_flops_per_s > 0 and first.precision == "fp32"
    assert cache_path("Test CPU", "cpu", "fp32", 1).is_file()
    assert cached_peak(cpu, "Test CPU", "fp32", 1) == (first, None)  # no new measurement
    assert cache_path("Test CPU", "cpu", "fp32", 2) != cache_path("Test CPU", "cpu", "fp32", 1)


def test_a_peak_below_what_the_run_achieves_gives_no_mfu_and_says_why(
    tiny_mnist, tmp_path, monkeypatch
):
    """A peak probed on a busy machine once printed "MFU 133 % of 18 GFLOP/s"."""
    import json
    from dataclasses import asdict

    from bench.measure.environment import fingerprint
    from bench.measure.peak import measure_peak, peak_machine

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cpu = torch.device("cpu")
    entry = cache_path(peak_machine(fingerprint(cpu)), "cpu", "fp32", 1)
    entry.parent.mkdir(parents=True)
    too_low = asdict(measure_peak(cpu)) | {"matmul_flops_per_s": 1.0}
    entry.write_text(json.dumps(too_low))
    config = RunConfig(device="cpu", epochs=1, max_steps_per_epoch=2, threads=1)
    result = measure(config, load_mnist(tiny_mnist, download=False))
    assert result.summary.mfu_pct is None
    assert any(note.startswith("no MFU: the run achieved") for note in result.notes)


def test_machines_that_share_a_name_keep_apart_peaks():
    """Two "AMD EPYC"s of other models (≈ 3× apart here) never read each other's peak."""
    import dataclasses

    from bench.measure.environment import fingerprint
    from bench.measure.peak import peak_machine

    here = fingerprint(torch.device("cpu"))
    assert here.cpu is not None
    elsewhere = dataclasses.replace(here, cpu=dataclasses.replace(here.cpu, model=999))
    assert here.device_name == elsewhere.device_name
    assert cache_path(peak_machine(here), "cpu", "fp32", 2) != cache_path(
        peak_machine(elsewhere), "cpu", "fp32", 2
    )


def test_a_gpus_small_mfu_keeps_two_digits():
    """An H200's TF32 run (80 GFLOP/s of a 411 TFLOP/s peak) once read "MFU 0.0 %"."""
    from bench.show.tables import fmt_mfu

    assert fmt_mfu(80.03e9 / 411_475e9 * 100, 411_475e9) == "0.019% of 411,475 GFLOP/s"
    assert fmt_mfu(6.72, 1_174e9) == "6.7% of 1,174 GFLOP/s"
    assert fmt_mfu(None, 1_174e9) == "-"
