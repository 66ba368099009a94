"""MNIST through torchvision: finding, extracting and verifying the files, and two loaders.

Both loaders draw each epoch's order from the same seeded generator with the same call, so
for one seed they feed the model the same batches, bit for bit.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Sampler
from torchvision import transforms
from torchvision.datasets import MNIST

from mnist_core.model import NUM_CLASSES

DATA_ENV_VAR = "MNIST_BENCH_DATA"
LOADERS = ("tensor", "torchvision")


@dataclass(frozen=True)
class IdxFile:
    magic: int
    item_shape: tuple[int, ...]
    canonical_count: int
    canonical_sha256: str


# SHA-256 of the decompressed canonical files (also listed in shared/mnist/SHA256SUMS).
FILES = {
    "train-images-idx3-ubyte": IdxFile(
        0x803, (28, 28), 60000, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
    ),
    "train-labels-idx1-ubyte": IdxFile(
        0x801, (), 60000, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
    ),
    "t10k-images-idx3-ubyte": IdxFile(
        0x803, (28, 28), 10000, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
    ),
    "t10k-labels-idx1-ubyte": IdxFile(
        0x801, (), 10000, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
    ),
}


class DataError(Exception):
    """The MNIST files are missing, unreadable or not what they claim to be."""


@dataclass
class MnistData:
    train: MNIST
    test: MNIST
    source: Path
    sha256: str  # digest over the four decompressed files' SHA-256
    canonical: bool  # every file matched the canonical MNIST checksum


def user_cache_dir() -> Path:
    """The per-user cache folder: $XDG_CACHE_HOME/mnist-bench, else ~/.cache/mnist-bench."""
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "mnist-bench"
    try:
        return Path.home() / ".cache" / "mnist-bench"
    except RuntimeError:  # no HOME, and no home in the user database either
        raise DataError(
            f"no home folder for the cache: set XDG_CACHE_HOME (and {DATA_ENV_VAR} or "
            "--data-dir for the data)"
        ) from None


def default_data_dir() -> Path:
    """MNIST_BENCH_DATA if set, else the per-user cache folder."""
    if os.environ.get(DATA_ENV_VAR):
        try:
            return Path(os.environ[DATA_ENV_VAR]).expanduser()
        except RuntimeError as error:  # ~user of no user known here
            raise DataError(f"{DATA_ENV_VAR} {os.environ[DATA_ENV_VAR]}: {error}") from None
    return user_cache_dir()


def _find(data_dir: Path, stem: str) -> Path | None:
    for folder in (data_dir / "MNIST" / "raw", data_dir):
        for name in (stem, f"{stem}.gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def locate_files(data_dir: Path) -> tuple[dict[str, Path], list[str]]:
    """The four files (raw before .gz, MNIST/raw before flat), and the names not found."""
    found: dict[str, Path] = {}
    missing = []
    for stem in FILES:
        try:
            path = _find(data_dir, stem)
        except OSError as error:  # a name too long, a folder that may not be searched
            raise DataError(f"{data_dir}: cannot be searched ({error.strerror})") from None
        if path is None:
            missing.append(stem)
        else:
            found[stem] = path
    return found, missing


def _header_count(header: bytes, spec: IdxFile, source: Path, name: str) -> int:
    """The item count of an IDX header, refused unless it is `spec`'s kind of file and claims
    at least one item and no more than MNIST's own file has."""
    try:
        magic, count, *shape = struct.unpack(f">{2 + len(spec.item_shape)}I", header)
    except struct.error:
        raise DataError(f"{source}: too short to be an MNIST file") from None
    if magic != spec.magic or tuple(shape) != spec.item_shape:
        raise DataError(f"{source}: not an MNIST {name} file (header {magic:#x} {shape})")
    if count > spec.canonical_count:
        raise DataError(
            f"{source}: header claims {count:,} items; MNIST's file has {spec.canonical_count:,}"
        )
    if count == 0:
        raise DataError(f"{source}: holds no items; a split needs at least one")
    return count


def _check_idx(path: Path, spec: IdxFile, source: Path) -> tuple[str, bool]:
    """Check the IDX header against the file size, then the checksum of full-size files."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            header = handle.read(4 + 4 * (1 + len(spec.item_shape)))
            count = _header_count(header, spec, source, path.name)
            digest = hashlib.sha256(header)
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as error:  # a file that may not be read
        raise DataError(f"{source}: cannot be read ({error.strerror or error})") from None
    expected_size = len(header) + count * math.prod(spec.item_shape)
    if size != expected_size:
        raise DataError(
            f"{source}: truncated or corrupted ({size} bytes, header says {expected_size})"
        )
    sha256 = digest.hexdigest()
    canonical = count == spec.canonical_count
    if canonical and sha256 != spec.canonical_sha256:
        raise DataError(f"{source}: corrupted (SHA-256 {sha256[:12]}… is not MNIST's)")
    return sha256, canonical


def _extract_bounded(path: Path, spec: IdxFile, target: Path) -> None:
    """Decompress `path` into `target`, reading the IDX header first and stopping at the size
    it implies: a small archive that would expand to gigabytes is refused after a few bytes
    more than an MNIST file can hold."""
    header_size = 4 + 4 * (1 + len(spec.item_shape))
    try:
        with gzip.open(path, "rb") as source, target.open("wb") as out:
            header = source.read(header_size)
            count = _header_count(header, spec, path, target.name)
            expected = header_size + count * math.prod(spec.item_shape)
            out.write(header)
            remaining = expected - header_size
            while remaining:
                chunk = source.read(min(1 << 20, remaining))
                if not chunk:
                    raise DataError(
                        f"{path}: truncated or corrupted ({expected - remaining} bytes "
                        f"decompressed, header says {expected})"
                    )
                out.write(chunk)
                remaining -= len(chunk)
            if source.read(1):
                raise DataError(f"{path}: longer than its header says ({expected} bytes)")
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: cannot be decompressed ({error})") from None


@contextmanager
def _prepared_root(found: dict[str, Path]) -> Iterator[Path]:
    """A torchvision-style root (MNIST/raw/<raw files>), extracting .gz files into a temp folder."""
    with tempfile.TemporaryDirectory(prefix="mnist-bench-") as tmp:
        raw = Path(tmp) / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for stem, path in found.items():
            if path.suffix == ".gz":
                _extract_bounded(path, FILES[stem], raw / stem)
            else:
                (raw / stem).symlink_to(path.resolve())
        yield Path(tmp)


def _download(data_dir: Path) -> None:
    try:
        for train in (True, False):
            MNIST(data_dir, train=train, download=True)
    except (OSError, RuntimeError) as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = lines[-1] if lines else type(error).__name__
        raise DataError(
            f"MNIST not found in {data_dir} and the download failed ({reason}); put the four "
            f"files (.gz or raw) there, or point --data-dir or {DATA_ENV_VAR} at them"
        ) from None


def load_mnist(data_dir: Path | None = None, download: bool = True) -> MnistData:
    """Find, verify and load MNIST; download through torchvision only if nothing is there."""
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    found, missing = locate_files(data_dir)
    if not found and download:
        _download(data_dir)
        found, missing = locate_files(data_dir)
    if missing:
        raise DataError(
            f"MNIST file(s) {', '.join(missing)} not found in {data_dir} or {data_dir}/MNIST/raw "
            f"(as raw or .gz); point --data-dir or {DATA_ENV_VAR} at a folder holding them"
            + ("" if download else ", or allow the download")
        )
    with _prepared_root(found) as root:
        checks = {
            stem: _check_idx(root / "MNIST" / "raw" / stem, FILES[stem], found[stem])
            for stem in FILES
        }
        try:
            train = MNIST(root, train=True, transform=transforms.ToTensor())
            test = MNIST(root, train=False, transform=transforms.ToTensor())
        except (RuntimeError, ValueError) as error:
            raise DataError(f"MNIST files in {data_dir} could not be read: {error}") from None
    for dataset, name in ((train, "train"), (test, "t10k")):
        labels = found[f"{name}-labels-idx1-ubyte"]
        if len(dataset.data) != len(dataset.targets):
            raise DataError(
                f"{labels}: {len(dataset.targets)} labels for {len(dataset.data)} images"
            )
        if int(dataset.targets.max()) >= NUM_CLASSES:
            raise DataError(f"{labels}: labels outside 0–{NUM_CLASSES - 1}")
    combined = hashlib.sha256("".join(f"{s}:{c[0]}\n" for s, c in checks.items()).encode())
    return MnistData(
        train=train,
        test=test,
        source=data_dir,
        sha256=combined.hexdigest(),
        canonical=all(canonical for _, canonical in checks.values()),
    )


def epoch_permutation(size: int, generator: torch.Generator) -> torch.Tensor:
    """The one call both loaders use to order an epoch."""
    return torch.randperm(size, generator=generator)


class PermutationSampler(Sampler[int]):
    """DataLoader's shuffle, drawn exactly as the tensor loader draws it."""

    def __init__(self, size: int, generator: torch.Generator) -> None:
        self.size = size
        self.generator = generator

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        yield from epoch_permutation(self.size, self.generator).tolist()


class TensorLoader:
    """The whole split as one tensor on the device; an epoch is a permutation and its slices."""

    def __init__(
        self,
        dataset: MNIST,
        batch_size: int,
        device: torch.device,
        generator: torch.Generator | None = None,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        # float().div(255) is exactly what ToTensor computes for a uint8 image.
        self.images = dataset.data.to(device).unsqueeze(1).float().div(255)
        self.labels = dataset.targets.to(device)
        self.batch_size = batch_size  # the global batch; a shard takes its slice of each
        self.generator = generator
        self.rank, self.world_size = shard

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def index_batches(self) -> Iterator[torch.Tensor]:
        """This epoch's shuffled sample indices, on the device, one batch at a time."""
        if self.generator is None:
            raise ValueError("index_batches needs a generator: the loader does not shuffle")
        order = epoch_permutation(len(self.labels), self.generator).to(self.labels.device)
        for batch in order.split(self.batch_size):
            yield batch.tensor_split(self.world_size)[self.rank]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.generator is None:
            yield from zip(
                self.images.split(self.batch_size), self.labels.split(self.batch_size), strict=True
            )
            return
        for batch in self.index_batches():
            yield self.images[batch], self.labels[batch]


def make_loader(
    kind: str,
    dataset: MNIST,
    batch_size: int,
    device: torch.device,
    generator: torch.Generator | None = None,
    shard: tuple[int, int] = (0, 1),
) -> TensorLoader | DataLoader:
    """`tensor` (data on the device) or `torchvision` (the seed's DataLoader + ToTensor).

    With a generator the loader shuffles every epoch; without one it keeps the file order.
    `shard` = (rank, world size): the tensor loader then yields this rank's slice of each batch.
    """
    if kind == "tensor":
        return TensorLoader(dataset, batch_size, device, generator, shard)
    if shard[1] > 1:
        raise ValueError("only the tensor loader shards its batches across ranks")
    if kind == "torchvision":
        sampler = None if generator is None else PermutationSampler(len(dataset), generator)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler)
    raise ValueError(f"unknown loader {kind!r}: use one of {', '.join(LOADERS)}")
