"""CUDA checks; they run where a GPU is present and are skipped elsewhere."""

from dataclasses import replace

import pytest
import torch

from bench.config.settings import RunConfig
from mnist_core import load_mnist
from tests.conftest import measure

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from tests.conftest import make_tiny_mnist

    return load_mnist(make_tiny_mnist(tmp_path_factory.mktemp("mnist")), download=False)


@pytest.fixture(scope="module")
def real_data(real_mnist):
    return load_mnist(real_mnist, download=False)


@pytest.fixture(scope="module")
def default_accuracy(real_data) -> float:
    result = measure(RunConfig(device="cuda:0", epochs=1), real_data)
    return result.summary.final_test_accuracy_pct


def test_same_seed_same_digest_on_cuda(tiny_data):
    config = RunConfig(device="cuda:0", epochs=2)
    first, second = measure(config, tiny_data), measure(config, tiny_data)
    assert first.weights_sha256 == second.weights_sha256
    assert first.summary.peak_device_mem_mb and first.summary.peak_device_mem_mb > 0
    assert first.environment.device_type == "cuda" and first.environment.cudnn
    accelerator = first.environment.accelerator
    assert accelerator is not None and accelerator.units and accelerator.units > 0
    assert accelerator.capability and accelerator.memory_mb


@pytest.mark.parametrize(("precision", "mode"), [("fp32", "ieee"), ("tf32", "tf32")])
def test_the_result_says_whether_cuda_used_tf32(tiny_data, precision, mode):
    result = measure(RunConfig(device="cuda:0", epochs=1, precision=precision), tiny_data)
    assert (result.arithmetic.cuda_matmul_fp32, result.arithmetic.cudnn_conv_fp32) == (mode, mode)


@pytest.mark.real_data
@pytest.mark.parametrize(
    "variant",
    [
        {"cuda_graphs": True},
        {"precision": "tf32"},
        {"precision": "bf16"},
        {"precision": "fp16"},
        {"channels_last": True},
        {"loader": "torchvision"},
    ],
    ids=["cuda-graphs", "tf32", "bf16", "fp16", "channels-last", "torchvision-loader"],
)
def test_cuda_variants_reach_the_default_accuracy(real_data, default_accuracy, variant):
    other = measure(replace(RunConfig(device="cuda:0", epochs=1), **variant), real_data)
    assert abs(other.summary.final_test_accuracy_pct - default_accuracy) <= 0.3


def test_a_graphed_run_after_another_in_one_process_reports_its_own_peak_memory(tiny_data):
    """`run --repeat --in-process --cuda-graphs`: each run's peak device memory is its own,
    not grown by the graph an earlier run in the process captured."""
    config = RunConfig(device="cuda:0", epochs=1, cuda_graphs=True)
    peaks = [
        measure(replace(config, seed=seed), tiny_data).summary.peak_device_mem_mb
        for seed in range(3)
    ]
    assert peaks[0] and max(peaks) - min(peaks) < 1, peaks
