"""A data-parallel run's figures: every rank's times and digest, gathered on all ranks."""

from __future__ import annotations

import socket
from dataclasses import replace

import torch

from bench.config.resolve import global_batch_size
from bench.config.settings import RunConfig
from bench.storage.results import DistributedInfo, EpochMetrics, RankFigures
from bench.storage.throughput import steady_median
from mnist_core.distributed import Rank, backend_for, gather_to_all


def aggregate(
    config: RunConfig,
    rank: Rank,
    device: torch.device,
    epochs: list[EpochMetrics],
    epoch_images: list[int],
    weights_sha256: str,
) -> tuple[list[EpochMetrics], DistributedInfo]:
    """The epochs timed by the slowest rank (all ranks' images, as each counted its own, over
    its time), and the distributed figures. Every rank calls this: it is a collective."""
    own_train_s = [m.train_s for m in epochs]
    own_rate = steady_median([i / s for i, s in zip(epoch_images, own_train_s, strict=True)])
    gathered = gather_to_all(
        (own_train_s, epoch_images, own_rate, socket.gethostname(), str(device), weights_sha256)
    )
    slowest = []
    for index, metrics in enumerate(epochs):
        train_s = max(times[index] for times, *_ in gathered)
        global_images = sum(images[index] for _, images, *_ in gathered)
        slowest.append(
            # Blocks are this rank's alone: the slowest rank's epochs have none.
            replace(
                metrics,
                train_s=train_s,
                train_images_per_s=global_images / train_s,
                block_images_per_s=[],
            )
        )
    digests = {digest for *_, digest in gathered}
    info = DistributedInfo(
        world_size=rank.world_size,
        nodes=rank.nodes,
        backend=backend_for(device),
        scaling="weak" if config.per_rank_batch else "strong",
        global_batch_size=global_batch_size(config),
        per_rank_batch_size=global_batch_size(config) // rank.world_size,
        global_train_images_per_s=steady_median([m.train_images_per_s for m in slowest]),
        ranks=[
            RankFigures(
                rank=number, host=host, device=name, train_images_per_s=rate, weights_sha256=digest
            )
            for number, (_, _, rate, host, name, digest) in enumerate(gathered)
        ],
        weights_identical=len(digests) == 1,
    )
    return slowest, info
