"""A run's training throughput: blocks timed within each epoch, and the estimators over them."""

import dataclasses
import statistics

import pytest
import torch

from bench.config.resolve import resolve
from bench.config.settings import RunConfig
from bench.measure.sweep import measure_point
from bench.measure.timing import BlockClock
from bench.storage.throughput import ESTIMATORS, HEADLINE, estimate, steady_blocks
from mnist_core import load_mnist
from tests.conftest import edited, measure


def with_blocks(template, blocks_per_epoch):
    epochs = [
        dataclasses.replace(template.epochs[0], epoch=number, block_images_per_s=list(blocks))
        for number, blocks in enumerate(blocks_per_epoch, 1)
    ]
    return edited(template, {"config.epochs": len(epochs), "epochs": epochs})


def test_steady_blocks_leave_out_the_warm_up(template):
    two = with_blocks(template, [[1.0, 2.0], [3.0, 4.0], [5.0]])
    assert steady_blocks(two.epochs) == [3.0, 4.0, 5.0]  # epoch 1 pays for warm-up
    one = with_blocks(template, [[1.0, 2.0, 3.0]])
    assert steady_blocks(one.epochs) == [2.0, 3.0]  # so does the first block of a lone epoch


def test_estimators_read_the_steady_blocks_and_fall_back_to_the_epochs(template):
    run = with_blocks(template, [[1.0] * 5, [10.0, 20.0, 30.0, 40.0, 1000.0]])
    assert estimate(run.epochs, "block-median") == 30.0
    assert estimate(run.epochs, "block-trimmed-mean-20") == pytest.approx(30.0)
    assert estimate(run.epochs, "block-p75") == 40.0
    no_blocks = with_blocks(template, [[], []])
    for name in ESTIMATORS:
        assert estimate(no_blocks.epochs, name) == no_blocks.epochs[1].train_images_per_s


def test_the_cpu_clock_marks_every_block_without_waiting():
    clock = BlockClock(torch.device("cpu"), 2)
    clock.start()
    for index in range(5):
        clock.step_done(index, 10)
    seconds = clock.block_seconds()
    assert len(seconds) == 2 and all(s >= 0 for s in seconds)  # the 5th step: no full block


def test_the_clock_counts_the_images_of_each_block_and_of_the_span():
    clock = BlockClock(torch.device("cpu"), 2)
    clock.start()
    for index, images in enumerate([70, 70, 70, 70, 20, 7]):
        clock.step_done(index, images)
    assert clock.block_images == [140, 140, 27] and clock.images == 307
    clock.start()  # a new epoch starts counting afresh
    clock.step_done(0, 5)
    assert (clock.images, clock.block_images) == (5, [])


def test_a_partial_last_batch_counts_as_the_images_it_held(tiny_mnist, monkeypatch):
    """300 images at batch 299: two steps, 299 + 1 images. Counted at full size, the one block
    would claim 598 images, twice the real figure."""
    monkeypatch.setattr(BlockClock, "block_seconds", lambda clock: [1.0] * len(clock.block_images))
    data = load_mnist(tiny_mnist, download=False)
    result = measure(RunConfig(device="cpu", epochs=2, batch_size=299), data)
    for epoch in result.epochs:
        assert epoch.block_images_per_s == [300.0]  # images per (faked) second
        assert epoch.train_images_per_s * epoch.train_s == pytest.approx(300)
    assert result.summary.steady_train_images_per_s == 300.0


def test_a_sweep_step_of_a_partial_batch_counts_its_images(tiny_mnist, monkeypatch):
    """300 images at batch 99: three warm-up steps, then the only timed one holds 3 images."""
    monkeypatch.setattr("bench.measure.sweep.timed", lambda device, work: (work(), 1.0))
    data = load_mnist(tiny_mnist, download=False)
    config = resolve(RunConfig(device="cpu", batch_size=99))
    point = measure_point(config, data, steps=5, warmup_steps=3)
    assert (point.steps, point.train_images_per_s) == (1, 3.0)
    assert point.eval_images_per_s == 100.0


def test_a_run_records_its_blocks_and_takes_the_headline_from_them(tiny_mnist, monkeypatch):
    monkeypatch.setattr("bench.measure.run.BLOCK_STEPS", 3)
    data = load_mnist(tiny_mnist, download=False)
    config = RunConfig(device="cpu", epochs=2, batch_size=20, max_steps_per_epoch=7)
    result = measure(config, data)
    assert [len(e.block_images_per_s) for e in result.epochs] == [2, 2]  # 7 steps: 2 of 3
    assert (result.summary.block_steps, result.summary.estimator) == (3, HEADLINE)
    assert result.summary.steady_train_images_per_s == estimate(result.epochs, HEADLINE)
    for epoch in result.epochs:  # the blocks lie within the epoch's own time
        block_s = [3 * 20 / rate for rate in epoch.block_images_per_s]
        assert sum(block_s) <= epoch.train_s
    assert statistics.median(result.epochs[1].block_images_per_s) > 0


def test_estimators_are_stored_by_stable_id_and_old_labels_still_load(template, tmp_path):
    import json

    from bench.storage.files import load_result

    document = template.to_dict()
    document["summary"]["estimator"] = "upper quartile of blocks"  # as files of before said
    (tmp_path / "old.json").write_text(json.dumps(document))
    assert load_result(tmp_path / "old.json").summary.estimator == "block-p75"
    assert template.to_dict()["summary"]["estimator"] in ESTIMATORS
