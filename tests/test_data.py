from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from lenet5.data import mnist as data
from lenet5.data.mnist import DataError

from conftest import REAL_DATA, requires_real_data, write_dataset, write_idx


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trip(tmp_path: Path, compress: bool) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / "x", array, compress)
    np.testing.assert_array_equal(data.read_idx(path, ndim=3), array)


def test_read_idx_known_bytes(tmp_path: Path) -> None:
    """A hand-written IDX file: magic 0x00000801, count 3, labels 7 0 9."""
    path = tmp_path / "labels"
    path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 9]))
    assert data.read_idx(path, ndim=1).tolist() == [7, 0, 9]


def test_wrong_magic_names_file(tmp_path: Path) -> None:
    path = tmp_path / "bad"
    path.write_bytes(bytes([0, 0, 0x0D, 1, 0, 0, 0, 1, 5]))  # float data, not unsigned bytes
    with pytest.raises(DataError, match=r"bad: wrong magic number 0x00000d01"):
        data.read_idx(path, ndim=1)


def test_wrong_number_of_dimensions(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "labels", np.zeros(4, dtype=np.uint8))
    with pytest.raises(DataError, match="wrong magic number"):
        data.read_idx(path, ndim=3)


def test_truncated_data(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "x", np.zeros((5, 28, 28), dtype=np.uint8), compress=False)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match=r"truncated .*3910 of 3920"):
        data.read_idx(path, ndim=3)


def test_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"\x00\x00\x08")
    with pytest.raises(DataError, match="truncated"):
        data.read_idx(path, ndim=1)


def test_truncated_gzip(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "x.gz", np.zeros((50, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match=r"x.gz: cannot read or decompress"):
        data.read_idx(path, ndim=3)


def test_trailing_bytes(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 1, 5, 6]))
    with pytest.raises(DataError, match="1 unexpected bytes"):
        data.read_idx(path, ndim=1)


def test_count_mismatch(tmp_path: Path) -> None:
    directory = write_dataset(tmp_path / "d", n_train=5100, n_test=20)
    write_idx(directory / f"{data.TEST_LABELS}.gz", np.zeros(19, dtype=np.uint8))
    with pytest.raises(DataError, match=r"holds 20 images but .* holds 19 labels"):
        data.load_splits(data_dir=directory)


def test_wrong_image_size(tmp_path: Path) -> None:
    directory = write_dataset(tmp_path / "d", n_train=5100, n_test=20)
    write_idx(directory / f"{data.TEST_IMAGES}.gz", np.zeros((20, 32, 32), dtype=np.uint8))
    with pytest.raises(DataError, match="32x32, expected 28x28"):
        data.load_splits(data_dir=directory)


def test_label_out_of_range(tmp_path: Path) -> None:
    directory = write_dataset(tmp_path / "d", n_train=5100, n_test=20)
    write_idx(directory / f"{data.TEST_LABELS}.gz", np.full(20, 12, dtype=np.uint8))
    with pytest.raises(DataError, match="label 12 is not a digit"):
        data.load_splits(data_dir=directory)


def test_missing_files_without_download(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="IDX files are missing"):
        data.load_splits(data_dir=tmp_path, download_missing=False)


def test_splits_follow_the_tutorial(tmp_path: Path) -> None:
    """Validation is the FIRST 5,000 training images; pixels come back as uint8."""
    directory = write_dataset(tmp_path / "d", n_train=5300, n_test=40, compress=False)
    raw = data.read_idx(directory / data.TRAIN_IMAGES, ndim=3)
    splits = data.load_splits(data_dir=directory)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (300, 5000, 40)
    assert torch.equal(splits.val.images, torch.from_numpy(raw[:5000].copy()))
    assert torch.equal(splits.train.images, torch.from_numpy(raw[5000:].copy()))
    assert splits.train.images.dtype == torch.uint8 and splits.train.labels.dtype == torch.int64


def test_too_few_training_images(tmp_path: Path) -> None:
    directory = write_dataset(tmp_path / "d", n_train=100, n_test=10)
    with pytest.raises(DataError, match="100 training images"):
        data.load_splits(data_dir=directory)


def test_locate_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LENET5_DATA", str(tmp_path / "env"))
    assert data.locate("mnist", tmp_path / "flag") == tmp_path / "flag"
    assert data.locate("mnist") == tmp_path / "env"
    monkeypatch.delenv("LENET5_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.locate("mnist") == tmp_path / "cache" / "lenet5" / "mnist"


def test_locate_fashion_uses_system_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = write_dataset(tmp_path / "system", n_train=10, n_test=10)
    spec = data.DATASETS["fashion-mnist"]
    monkeypatch.setitem(
        data.DATASETS,
        "fashion-mnist",
        data.DatasetSpec(
            spec.name,
            spec.env_var,
            spec.mirrors,
            spec.hashes,
            (str(tmp_path / "none"), str(system)),
        ),
    )
    monkeypatch.delenv("LENET5_FASHION_DATA", raising=False)
    assert data.locate("fashion-mnist") == system


def test_unknown_dataset() -> None:
    with pytest.raises(DataError, match="unknown dataset 'kmnist'"):
        data.locate("kmnist")


def test_batches_cover_every_example_once() -> None:
    split = data.Split(
        torch.arange(10, dtype=torch.uint8).repeat_interleave(784).view(10, 28, 28),
        torch.arange(10),
    )
    generator = torch.Generator().manual_seed(0)
    seen = []
    for x, y in data.batches(split, 3, generator):
        assert x.shape[1:] == (1, 28, 28) and x.dtype == torch.float32
        assert torch.allclose(x[:, 0, 0, 0] * 255, y.float())  # images still match their labels
        seen += y.tolist()
    assert sorted(seen) == list(range(10)) and seen != list(range(10))


def test_to_float_scales_to_unit_interval() -> None:
    x = data.to_float(torch.tensor([[0, 255]], dtype=torch.uint8).expand(28, 2).reshape(1, 28, 2))
    assert x.shape == (1, 1, 28, 2) and x.min() == 0.0 and x.max() == 1.0


@pytest.mark.data
@requires_real_data
def test_real_mnist_splits() -> None:
    splits = data.load_splits(data_dir=REAL_DATA, download_missing=False)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (55_000, 5_000, 10_000)
    pixels = torch.cat([splits.val.images, splits.train.images]).float() / 255
    assert abs(pixels.mean().item() - 0.1307) < 5e-4  # the published MNIST statistics
    assert abs(pixels.std().item() - 0.3081) < 5e-4
    assert torch.bincount(splits.test.labels).tolist()[:2] == [980, 1135]


def test_gzip_detected_by_content(tmp_path: Path) -> None:
    """A raw file named like a gzip one, and the reverse, both read."""
    array = np.ones(3, dtype=np.uint8)
    raw = write_idx(tmp_path / "a.gz", array, compress=False)
    packed = tmp_path / "b"
    packed.write_bytes(gzip.compress(raw.read_bytes()))
    assert data.read_idx(raw, 1).tolist() == data.read_idx(packed, 1).tolist() == [1, 1, 1]
