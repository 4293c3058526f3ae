"""MNIST-format data: IDX parsing, finding and downloading files, the tutorial's splits, batches."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lenet5.errors import Lenet5Error

IMAGE_SIZE = 28
NUM_CLASSES = 10
VALIDATION_SIZE = 5_000  # the tutorial's validation set: the FIRST 5,000 training images

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"

_IDX_UINT8 = 0x08
_GZIP_MAGIC = b"\x1f\x8b"


class DataError(Lenet5Error):
    """Missing, corrupt or inconsistent data files."""


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset comes from: mirrors, the hashes of its four files, system folders."""

    name: str
    env_var: str  # environment variable naming a folder that holds the files
    mirrors: tuple[str, ...]
    hashes: dict[str, str]  # file name (.gz) -> "sha256:..." or "md5:..." of the official file
    system_dirs: tuple[str, ...] = ()  # folders where a system package installs the files


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        env_var="LENET5_DATA",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        hashes={
            f"{TRAIN_IMAGES}.gz": "sha256:"
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            f"{TRAIN_LABELS}.gz": "sha256:"
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            f"{TEST_IMAGES}.gz": "sha256:"
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            f"{TEST_LABELS}.gz": "sha256:"
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        env_var="LENET5_FASHION_DATA",
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        # Zalando publishes MD5 sums only.
        hashes={
            f"{TRAIN_IMAGES}.gz": "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            f"{TRAIN_LABELS}.gz": "md5:25c81989df183df01b3e8a0aad5dffbe",
            f"{TEST_IMAGES}.gz": "md5:bef4ecab320f06d8554ea6380940ec79",
            f"{TEST_LABELS}.gz": "md5:bb300cfdad3c16e7a12a480ee83cd310",
        },
        system_dirs=("/usr/share/datasets/fashion-mnist",),  # apt-get install dataset-fashion-mnist
    ),
}


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzip-compressed or raw) with `ndim` dimensions."""
    try:
        raw = path.read_bytes()
        if raw[:2] == _GZIP_MAGIC:
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read or decompress ({exc})") from None
    header_size = 4 + 4 * ndim
    if len(raw) < 4:
        raise DataError(f"{path}: truncated ({len(raw)} bytes, no IDX header)")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UINT8 or raw[3] != ndim:
        raise DataError(
            f"{path}: wrong magic number 0x{raw[:4].hex()} "
            f"(expected 0x0000{_IDX_UINT8:02x}{ndim:02x}: unsigned bytes, {ndim} dimensions)"
        )
    if len(raw) < header_size:
        raise DataError(f"{path}: truncated ({len(raw)} bytes, header needs {header_size})")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims)) if dims else 0
    actual = len(raw) - header_size
    if actual < expected:
        raise DataError(
            f"{path}: truncated (header says {dims}, {actual} of {expected} data bytes)"
        )
    if actual > expected:
        raise DataError(f"{path}: {actual - expected} unexpected bytes after the data {dims}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(dims)


def _find_file(directory: Path, base: str) -> Path:
    for name in (f"{base}.gz", base):
        if (directory / name).is_file():
            return directory / name
    raise DataError(f"{directory}: no {base}.gz or {base} file")


def read_images_and_labels(directory: Path, images_base: str, labels_base: str) -> Split:
    """Read one pair of IDX files and check that they belong together."""
    images_path = _find_file(directory, images_base)
    labels_path = _find_file(directory, labels_base)
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(
            f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, "
            f"expected {IMAGE_SIZE}x{IMAGE_SIZE}"
        )
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    if len(labels) and int(labels.max()) >= NUM_CLASSES:
        raise DataError(f"{labels_path}: label {int(labels.max())} is not a digit 0-9")
    return Split(torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64)))


def has_files(directory: Path) -> bool:
    """Whether `directory` holds all four IDX files (gzip-compressed or raw)."""
    bases = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
    return all((directory / f"{b}.gz").is_file() or (directory / b).is_file() for b in bases)


def default_cache_dir(dataset: str) -> Path:
    """The per-user cache folder where downloaded files go."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("lenet5")) / dataset


def locate(dataset: str = "mnist", data_dir: str | Path | None = None) -> Path:
    """The folder to read `dataset` from: --data-dir, then its environment variable, then the
    system folders that hold all four files, then the user cache folder."""
    spec = dataset_spec(dataset)
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get(spec.env_var):
        return Path(os.environ[spec.env_var]).expanduser()
    for system_dir in map(Path, spec.system_dirs):
        if has_files(system_dir):
            return system_dir
    return default_cache_dir(dataset)


def dataset_spec(dataset: str) -> DatasetSpec:
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r} (choose from {', '.join(DATASETS)})")
    return DATASETS[dataset]


def download(
    directory: Path,
    hashes: dict[str, str],
    mirrors: tuple[str, ...] | list[str],
    progress: bool = True,
) -> None:
    """Fetch every file of `hashes` missing from `directory`, trying each mirror in turn.

    pooch verifies the hash and writes through a temporary file that it renames, so a failed or
    corrupt download never leaves a file behind.
    """
    import logging

    import pooch

    logging.getLogger("pooch").setLevel(logging.INFO if progress else logging.WARNING)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create data folder {directory}: {exc.strerror}") from None
    for name, known_hash in hashes.items():
        if (directory / name).is_file() or (directory / name.removesuffix(".gz")).is_file():
            continue
        failures = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + name
            try:
                pooch.retrieve(url, known_hash, fname=name, path=directory, progressbar=progress)
                break
            except Exception as exc:  # any failure means: try the next mirror
                failures.append(
                    f"{url}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                )
        else:
            raise DataError(f"could not download {name}; tried " + "; ".join(failures))


@dataclass
class Split:
    """One split held in memory: uint8 images (N, 28, 28) and int64 labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.images.to(device), self.labels.to(device))

    def subset(self, n: int) -> Split:
        """The first `n` examples."""
        return Split(self.images[:n], self.labels[:n])


@dataclass
class Splits:
    """The tutorial's three splits: 55,000 train, 5,000 validation, 10,000 test images."""

    train: Split
    val: Split
    test: Split


def load_splits(
    dataset: str = "mnist",
    data_dir: str | Path | None = None,
    download_missing: bool = True,
    progress: bool = True,
) -> Splits:
    """Load a dataset as the tutorial split it: validation = the first 5,000 training images."""
    spec = dataset_spec(dataset)
    directory = locate(dataset, data_dir)
    if not has_files(directory):
        if not download_missing:
            raise DataError(f"{directory}: the {dataset} IDX files are missing")
        download(directory, spec.hashes, spec.mirrors, progress=progress)
    full_train = read_images_and_labels(directory, TRAIN_IMAGES, TRAIN_LABELS)
    test = read_images_and_labels(directory, TEST_IMAGES, TEST_LABELS)
    if len(full_train) <= VALIDATION_SIZE:
        raise DataError(
            f"{directory}: {len(full_train)} training images; need more than the "
            f"{VALIDATION_SIZE} taken for validation"
        )
    val = Split(full_train.images[:VALIDATION_SIZE], full_train.labels[:VALIDATION_SIZE])
    train = Split(full_train.images[VALIDATION_SIZE:], full_train.labels[VALIDATION_SIZE:])
    return Splits(train=train, val=val, test=test)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, 28, 28) -> float model input (N, 1, 28, 28) in [0, 1]."""
    return images.unsqueeze(1).float().div_(255.0)


def batches(
    split: Split,
    batch_size: int,
    generator: torch.Generator | None = None,
    shard: tuple[int, int] = (0, 1),
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (inputs (B, 1, 28, 28) float, labels (B,)) batches; shuffled when given a generator.

    The last batch may be smaller (as with a DataLoader without drop_last). With
    `shard=(rank, world)`, world > 1, each global batch of batch_size x world images of the one
    permutation is cut into `world` slices and this rank gets slice `rank`; an incomplete last
    global batch is dropped so that every rank takes the same number of equal steps.
    """
    rank, world = shard
    n = len(split)
    if generator is None:
        for start in range(0, n, batch_size):
            yield (
                to_float(split.images[start : start + batch_size]),
                split.labels[start : start + batch_size],
            )
        return
    order = torch.randperm(n, generator=generator).to(split.labels.device)
    step = batch_size * world
    end = n if world == 1 else n - n % step
    for start in range(rank * batch_size, end, step):
        idx = order[start : start + batch_size]
        yield to_float(split.images[idx]), split.labels[idx]
