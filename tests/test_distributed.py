"""Data-parallel runs on the CPU with gloo: the shortcut, two "nodes" on loopback, failures.

Each launch is a real torchrun with real processes, bounded by a timeout.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.judge.compare import relative_l2
from bench.storage.files import load_result, load_weights
from bench.storage.throughput import EPOCH_MEDIAN, estimate
from mnist_core import load_mnist, make_loader

LAUNCH_TIMEOUT_S = 240


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "run",
        "-d",
        "cpu",
        "--epochs",
        "2",
        "--data-dir",
        str(data),
        "--out",
        str(out),
        "--no-download",
        "--save-weights",
        *extra,
    ]


def torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *args]


def only_result(folder: Path):
    (path,) = folder.glob("*.json")
    return load_result(path)


def test_shards_of_each_batch_cover_it_once(tiny_mnist):
    data = load_mnist(tiny_mnist, download=False)
    cpu = torch.device("cpu")
    whole = make_loader("tensor", data.train, 100, cpu, torch.Generator().manual_seed(1))
    shards = [
        make_loader(
            "tensor", data.train, 100, cpu, torch.Generator().manual_seed(1), shard=(rank, 2)
        )
        for rank in range(2)
    ]
    for (images, labels), *parts in zip(whole, *shards, strict=True):
        assert [len(p[1]) for p in parts] == [50, 50]
        assert torch.equal(torch.cat([p[1] for p in parts]), labels)
        assert torch.equal(torch.cat([p[0] for p in parts]), images)


@pytest.mark.slow
def test_shortcut_two_processes_match_one(tiny_mnist, tmp_path):
    single = subprocess.run(
        [sys.executable, "-m", "bench", *bench_args(tiny_mnist, tmp_path / "single")],
        capture_output=True,
        text=True,
        timeout=LAUNCH_TIMEOUT_S,
    )
    assert single.returncode == 0, single.stderr
    reference = next((tmp_path / "single").glob("*.json"))
    pair = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            *bench_args(
                tiny_mnist,
                tmp_path / "pair",
                "--nproc-per-node",
                "2",
                "--reference",
                str(reference),
            ),
        ],
        capture_output=True,
        text=True,
        timeout=LAUNCH_TIMEOUT_S,
    )
    assert pair.returncode == 0, pair.stdout + pair.stderr
    one, two = load_result(reference), only_result(tmp_path / "pair")
    info = two.distributed
    assert info is not None and info.world_size == 2 and info.backend == "gloo"
    assert (info.scaling, info.global_batch_size, info.per_rank_batch_size) == ("strong", 100, 50)
    assert info.weights_identical and len({r.weights_sha256 for r in info.ranks}) == 1
    assert two.weights_sha256 == info.ranks[0].weights_sha256
    assert info.reference_run == one.run_id and info.scaling_efficiency_pct is not None
    # The reference is taken like the ranks' figure (median of epochs), not by its headline.
    reference_rate = estimate(one.epochs, EPOCH_MEDIAN)
    expected = 100 * info.global_train_images_per_s / (2 * reference_rate)
    assert info.scaling_efficiency_pct == pytest.approx(expected)
    assert two.config.world_size == 2
    # Same global batches, gradients averaged over ranks: the same optimisation.
    assert abs(two.summary.final_test_accuracy_pct - one.summary.final_test_accuracy_pct) <= 0.3
    distance = relative_l2(
        load_weights(tmp_path / "pair" / two.weights_file),
        load_weights(tmp_path / "single" / one.weights_file),
    )
    assert distance < 1e-4


@pytest.mark.slow
def test_two_nodes_on_loopback(tiny_mnist, tmp_path):
    port = str(free_port())
    nodes = [
        subprocess.Popen(
            torchrun(
                "--nnodes",
                "2",
                "--node-rank",
                str(node),
                "--nproc-per-node",
                "1",
                "--master-addr",
                "127.0.0.1",
                "--master-port",
                port,
                "--rdzv-conf",
                "timeout=60",
                "-m",
                "bench",
                *bench_args(tiny_mnist, tmp_path / "out", "--per-rank-batch"),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for node in (0, 1)
    ]
    outputs = [node.communicate(timeout=LAUNCH_TIMEOUT_S)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(outputs)
    result = only_result(tmp_path / "out")
    info = result.distributed
    assert info is not None and (info.world_size, info.nodes) == (2, 2)
    assert (info.scaling, info.global_batch_size, info.per_rank_batch_size) == ("weak", 200, 100)
    assert info.weights_identical
    # 300 images at a global batch of 200: the second step holds 100 (50 a rank), counted so.
    for epoch in result.epochs:
        assert epoch.train_images_per_s * epoch.train_s == pytest.approx(300)


def _rank_pid(agent: int, rank: str) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = next(line.split()[1] for line in status.splitlines() if line.startswith("PPid"))
        if int(parent) == agent and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    return None


@pytest.mark.slow
def test_a_dying_rank_ends_the_run_without_a_result(tiny_mnist, tmp_path):
    agent = subprocess.Popen(
        torchrun(
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "bench",
            *bench_args(tiny_mnist, tmp_path / "out", "--epochs", "100000"),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert agent.stdout is not None
        for line in agent.stdout:  # wait until training is under way
            if "epoch 1:" in line:
                break
        victim = _rank_pid(agent.pid, "1")
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        agent.communicate(timeout=300)  # a hang guard: the peers must not wait for ever
        assert agent.returncode != 0
    finally:
        agent.kill()
    assert not list((tmp_path / "out").glob("*.json"))


@pytest.mark.slow
def test_a_rendezvous_that_cannot_form_fails_in_bounded_time(tiny_mnist, tmp_path):
    lonely = subprocess.run(
        torchrun(
            "--nnodes",
            "2",
            "--node-rank",
            "0",
            "--nproc-per-node",
            "1",
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            str(free_port()),
            "--rdzv-conf",
            "timeout=5",
            "-m",
            "bench",
            *bench_args(tiny_mnist, tmp_path / "out"),
        ),
        capture_output=True,
        text=True,
        timeout=LAUNCH_TIMEOUT_S,
    )
    assert lonely.returncode != 0
    assert not list((tmp_path / "out").glob("*.json"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--loader", "torchvision"], "needs the tensor loader"),
        (["--loader", "tensor", "--loader", "torchvision"], "one --device and one --loader"),
    ],
)
def test_shortcut_refuses_what_it_cannot_shard_before_launching(
    tiny_mnist, tmp_path, args, message
):
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            *bench_args(tiny_mnist, tmp_path / "o"),
            *args,
            "--nproc-per-node",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=LAUNCH_TIMEOUT_S,
    )
    assert shown.returncode == 2
    assert message in shown.stderr and shown.stderr.strip().count("\n") == 0
    assert "torch.distributed" not in shown.stderr and "Traceback" not in shown.stderr
