"""Every opt-in training variant that runs on the CPU stays within 0.3 accuracy points of the
default path for the same seed (one real epoch)."""

from dataclasses import replace

import pytest

from bench.config.settings import RunConfig
from mnist_core import load_mnist
from tests.conftest import measure

pytestmark = pytest.mark.slow  # one real epoch per variant

TOLERANCE_POINTS = 0.3
BASE = RunConfig(device="cpu", epochs=1)
VARIANTS = {
    "seed path (contiguous, foreach Adam)": {"channels_last": False, "optimizer": "adam"},
    "foreach Adam": {"optimizer": "adam"},
    "bf16 autocast": {"precision": "bf16"},
    "torch.compile": {"compile": True},
    "torchvision loader": {"loader": "torchvision"},
}


@pytest.fixture(scope="module")
def real_data(real_mnist):
    return load_mnist(real_mnist, download=False)


@pytest.fixture(scope="module")
def default_accuracy(real_data):
    result = measure(BASE, real_data)
    return result.summary.final_test_accuracy_pct


@pytest.mark.real_data
@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_reaches_the_default_accuracy(real_data, default_accuracy, name):
    result = measure(replace(BASE, **VARIANTS[name]), real_data)
    assert abs(result.summary.final_test_accuracy_pct - default_accuracy) <= TOLERANCE_POINTS
