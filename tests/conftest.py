"""Shared fixtures: tiny MNIST-format data sets that the tests write themselves."""

from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from lenet5.data import mnist as data

REAL_DATA = os.environ.get("LENET5_DATA")

# tests/test_benchmarks.py imports benchmark scripts. Their folder goes last on the path, not
# first, so that a script's name never hides a module of the standard library.
sys.path.append(str(Path(__file__).resolve().parent.parent / "benchmarks"))


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    """Write `array` (uint8) as an IDX file; gzip-compressed when `compress`."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw, mtime=0) if compress else raw)
    return path


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Easy 28x28 images: digit k is a bright 6x6 square at the k-th of ten places, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        r, c = 2 + 7 * (k // 4), 2 + 6 * (k % 4)
        images[i, r : r + 6, c : c + 6] = 255
    return images, labels


def write_dataset(directory: Path, n_train: int, n_test: int, compress: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    train_x, train_y = synthetic_digits(n_train, seed=1)
    test_x, test_y = synthetic_digits(n_test, seed=2)
    suffix = ".gz" if compress else ""
    write_idx(directory / f"{data.TRAIN_IMAGES}{suffix}", train_x, compress)
    write_idx(directory / f"{data.TRAIN_LABELS}{suffix}", train_y, compress)
    write_idx(directory / f"{data.TEST_IMAGES}{suffix}", test_x, compress)
    write_idx(directory / f"{data.TEST_LABELS}{suffix}", test_y, compress)
    return directory


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    """5,000 validation + 256 training images and 200 test images, gzip-compressed."""
    return write_dataset(tmp_path / "tiny", n_train=data.VALIDATION_SIZE + 256, n_test=200)


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point every mirror at a closed port so that no test reaches the network."""
    for name, spec in list(data.DATASETS.items()):
        dead = data.DatasetSpec(name, spec.env_var, ("http://127.0.0.1:9/",), spec.hashes)
        monkeypatch.setitem(data.DATASETS, name, dead)


requires_real_data = pytest.mark.skipif(
    not (REAL_DATA and data.has_files(Path(REAL_DATA))),
    reason="set LENET5_DATA to a folder with the MNIST files",
)


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(data folder, run directory) of LeNet-5 trained 2 epochs on the synthetic digits."""
    from lenet5.config import TrainConfig
    from lenet5.training.loop import fit

    root = tmp_path_factory.mktemp("synthetic")
    directory = write_dataset(root / "data", n_train=data.VALIDATION_SIZE + 512, n_test=300)
    config = TrainConfig(epochs=2, batch_size=32)
    fit(config, data.load_splits(data_dir=directory), root / "run", echo=lambda _: None)
    return directory, root / "run"


@pytest.fixture(scope="session")
def mnist_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LeNet-5 run trained 2 epochs on the real MNIST (about 98% test accuracy), or the run
    directory named by $LENET5_TRAINED_RUN."""
    from lenet5.config import TrainConfig
    from lenet5.training.loop import fit

    if os.environ.get("LENET5_TRAINED_RUN"):
        return Path(os.environ["LENET5_TRAINED_RUN"])
    if not (REAL_DATA and data.has_files(Path(REAL_DATA))):
        pytest.skip("set LENET5_DATA to a folder with the MNIST files")
    run = tmp_path_factory.mktemp("mnist") / "run"
    fit(TrainConfig(epochs=2), data.load_splits(data_dir=REAL_DATA), run, echo=lambda _: None)
    return run
