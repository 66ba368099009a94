"""The device table: each kind's facts reach every place that decides by device, and a kind
the table lacks is refused before any work."""

import dataclasses

import pytest
import torch

from bench.config.devices import KINDS, bitwise_reruns, kind_of, machine_key_of
from bench.config.resolve import check_precision, for_device
from bench.config.settings import RunConfig
from bench.errors import ConfigError
from bench.measure.timing import BlockClock
from bench.storage.baselines import make_baseline
from mnist_core import PRECISIONS, DeviceUnavailableError, determinism_mode, resolve_device
from mnist_core.distributed import backend_for
from tests.conftest import edited


@pytest.mark.parametrize("kind", KINDS.values(), ids=lambda kind: kind.type)
def test_each_kind_is_complete_and_consistent(kind):
    assert kind.precisions <= set(PRECISIONS) and "fp32" in kind.precisions
    assert kind.optimizer in {"adam", "adam-fused", "adam-capturable"}
    assert kind.block_clock != "event" or kind.queued  # events time queued work
    assert kind.host_threads == (kind.machine_key == "host-cpu")


@pytest.mark.parametrize("kind", KINDS.values(), ids=lambda kind: kind.type)
def test_precisions_defaults_and_determinism_come_from_the_table(kind):
    for precision in PRECISIONS:
        if precision in kind.precisions:
            check_precision(precision, kind.type)
        else:
            with pytest.raises(ConfigError, match=f"--precision {precision} needs"):
                check_precision(precision, kind.type)
    resolved = for_device(RunConfig(device="cpu"), kind.type)
    assert (resolved.channels_last, resolved.optimizer) == (kind.channels_last, kind.optimizer)
    mode = determinism_mode(True, kind.bitwise_reruns)
    assert mode == ("strict" if kind.no_deterministic_kernel is None else "warn-only")


def test_a_kind_the_table_lacks_is_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"unsupported device 'xpu:0': use cpu, cuda, mps"):
        kind_of("xpu:0")
    with pytest.raises(DeviceUnavailableError, match="XPU is not available"):
        resolve_device("xpu")


def test_a_changed_entry_changes_the_run_that_reads_it(monkeypatch):
    """Adding or changing a kind is a table entry: the CPU given CUDA's precisions and graphs
    is let through by the same checks that refuse them now."""
    with pytest.raises(ConfigError):
        check_precision("tf32", "cpu")
    widened = dataclasses.replace(KINDS["cpu"], precisions=KINDS["cuda"].precisions)
    monkeypatch.setitem(KINDS, "cpu", widened)
    check_precision("tf32", "cpu")


def test_the_cpu_times_blocks_by_the_host_clock_and_counts_no_device_memory():
    clock = BlockClock(torch.device("cpu"), block_steps=1)
    clock.start()
    clock.step_done(0, 100)
    clock.step_done(1, 100)
    assert clock.clock == "host" and len(clock.block_rates()) == 2
    assert backend_for(torch.device("cpu")) == "gloo"


def test_kinds_without_deterministic_kernels_may_give_a_seed_two_digests(template):
    """A warn-only kind (MPS) keeps a baseline whose seed gave two digests; a strict one
    refuses it."""
    assert not bitwise_reruns("mps") and bitwise_reruns("cpu") and bitwise_reruns("unknown")

    def two_digests(device_type: str, determinism: str) -> list:
        kind = {
            "config.device": device_type,
            "environment.device_type": device_type,
            "arithmetic.determinism": determinism,
            "arithmetic.bitwise_reruns": determinism == "strict",
        }
        first = edited(template, kind)
        return [first, edited(first, {"run_id": first.run_id + "-b", "weights_sha256": "0" * 64})]

    baseline = make_baseline(two_digests("mps", "warn-only"))
    assert len({run.weights_sha256 for run in baseline.runs}) == 2
    with pytest.raises(ValueError, match="seed 0 gave different weights"):
        make_baseline(two_digests("cpu", "strict"))


def test_machines_are_told_apart_by_their_kinds_key():
    assert machine_key_of("cpu") == "host-cpu" and machine_key_of("cuda") == "accelerator"
    assert machine_key_of("mps") == machine_key_of("a kind no table knows") == "name"


def test_a_kind_keyed_by_its_accelerator_says_how_to_fingerprint_it():
    for kind in KINDS.values():
        keyed = kind.machine_key == "accelerator"
        assert keyed == (kind.fingerprint is not None), kind.type
