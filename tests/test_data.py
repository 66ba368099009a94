import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.datasets import MNIST

from mnist_core import DataError, load_mnist, make_loader
from mnist_core.data import FILES, locate_files
from tests.conftest import make_tiny_mnist, write_idx


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("layout", ["flat", "torchvision"])
def test_loads_every_supported_layout(tmp_path, compress, layout):
    folder = tmp_path / "data"
    make_tiny_mnist(
        folder / "MNIST" / "raw" if layout == "torchvision" else folder, compress=compress
    )
    data = load_mnist(folder, download=False)
    assert (len(data.train), len(data.test)) == (300, 100)
    image, label = data.train[0]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32
    assert float(image.min()) >= 0 and float(image.max()) <= 1
    assert not data.canonical  # a subset is checked for structure, not for MNIST's checksums


def test_same_files_give_same_digest_in_any_form(tmp_path):
    gz = load_mnist(make_tiny_mnist(tmp_path / "gz"), download=False)
    raw = load_mnist(make_tiny_mnist(tmp_path / "raw", compress=False), download=False)
    assert gz.sha256 == raw.sha256


def test_missing_files_say_where_it_looked(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path)) as error:
        load_mnist(tmp_path, download=False)
    assert "MNIST_BENCH_DATA" in str(error.value)


def test_partial_folder_names_the_missing_file(tiny_mnist):
    (tiny_mnist / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte not found"):
        load_mnist(tiny_mnist, download=True)  # never downloads over a partial copy


def test_truncated_file_is_named(tiny_mnist):
    path = tiny_mnist / "train-images-idx3-ubyte.gz"
    payload = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(payload[:-100]))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: truncated"):
        load_mnist(tiny_mnist, download=False)


def test_broken_archive_is_named(tiny_mnist):
    path = tiny_mnist / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: cannot be decompressed"):
        load_mnist(tiny_mnist, download=False)


def test_a_raw_file_that_may_not_be_read_is_named(tmp_path, monkeypatch):
    folder = make_tiny_mnist(tmp_path / "raw", compress=False)
    opened = Path.open

    def refused(path, *args, **kwargs):  # as for a file of mode 000, which root reads anyway
        if path.name == "t10k-labels-idx1-ubyte":
            raise PermissionError(13, "Permission denied", str(path))
        return opened(path, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refused)
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: cannot be read"):
        load_mnist(folder, download=False)


def test_full_size_file_with_wrong_content_fails_checksum(tiny_mnist):
    (tiny_mnist / "train-labels-idx1-ubyte.gz").unlink()
    write_idx(tiny_mnist / "train-labels-idx1-ubyte", np.zeros(60000, dtype=np.uint8), False)
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: corrupted"):
        load_mnist(tiny_mnist, download=False)


def test_data_dir_falls_back_to_environment(tiny_mnist, monkeypatch):
    monkeypatch.setenv("MNIST_BENCH_DATA", str(tiny_mnist))
    assert load_mnist(download=False).source == tiny_mnist


def test_an_environment_folder_of_an_unknown_user_is_named(monkeypatch):
    monkeypatch.setenv("MNIST_BENCH_DATA", "~no-such-user-here/mnist")
    with pytest.raises(DataError, match="MNIST_BENCH_DATA ~no-such-user-here/mnist: "):
        load_mnist(download=False)


def test_raw_preferred_and_source_never_written(tmp_path):
    folder = make_tiny_mnist(tmp_path / "ro")
    before = sorted(p.name for p in folder.iterdir())
    found, missing = locate_files(folder)
    assert not missing and set(found) == set(FILES)
    load_mnist(folder, download=False)
    assert sorted(p.name for p in folder.iterdir()) == before


@pytest.mark.real_data
def test_real_mnist_matches_canonical_checksums(real_mnist):
    data = load_mnist(real_mnist, download=False)
    assert data.canonical and (len(data.train), len(data.test)) == (60000, 10000)


def test_loaders_draw_the_same_batches(tiny_mnist):
    data = load_mnist(tiny_mnist, download=False)
    cpu = torch.device("cpu")
    tensor = make_loader("tensor", data.train, 64, cpu, torch.Generator().manual_seed(3))
    seed_path = make_loader("torchvision", data.train, 64, cpu, torch.Generator().manual_seed(3))
    for _ in range(2):  # two epochs: the order must differ per epoch and match per loader
        batches = list(zip(tensor, seed_path, strict=True))
        assert len(batches) == 5  # 300 / 64, the last batch partial as DataLoader does
        for (images_a, labels_a), (images_b, labels_b) in batches:
            assert torch.equal(images_a, images_b) and torch.equal(labels_a, labels_b)


def test_unshuffled_loader_keeps_file_order(tiny_mnist):
    data = load_mnist(tiny_mnist, download=False)
    loader = make_loader("tensor", data.test, 30, torch.device("cpu"))
    labels = torch.cat([labels for _, labels in loader])
    assert torch.equal(labels, data.test.targets)


def test_labels_outside_the_ten_classes_are_refused(tiny_mnist):
    (tiny_mnist / "t10k-labels-idx1-ubyte.gz").unlink()
    write_idx(tiny_mnist / "t10k-labels-idx1-ubyte", np.full(100, 12, dtype=np.uint8), False)
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: labels outside 0–9"):
        load_mnist(tiny_mnist, download=False)


def test_label_and_image_counts_must_agree(tiny_mnist):
    (tiny_mnist / "train-labels-idx1-ubyte.gz").unlink()
    write_idx(tiny_mnist / "train-labels-idx1-ubyte", np.zeros(299, dtype=np.uint8), False)
    with pytest.raises(DataError, match="299 labels for 300 images"):
        load_mnist(tiny_mnist, download=False)


def test_failed_download_says_where_it_looked(tmp_path, monkeypatch):
    def offline(self):
        # What torchvision raises when every mirror fails.
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried x, got:\nno net")

    monkeypatch.setattr(MNIST, "download", offline)
    with pytest.raises(DataError, match="download failed \\(no net\\)") as error:
        load_mnist(tmp_path / "empty", download=True)
    assert str(tmp_path / "empty") in str(error.value) and "--data-dir" in str(error.value)
