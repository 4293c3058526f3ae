"""The downloader against real HTTP servers on 127.0.0.1: good, dead and corrupt mirrors."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from lenet5.data import mnist as data
from lenet5.data.mnist import DataError

from conftest import write_dataset


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def _serve(directory: Path) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(_QuietHandler, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """The four files of a tiny data set and their SHA-256 sums."""
    source = write_dataset(tmp_path / "source", n_train=5010, n_test=10)
    return {
        p.name: "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest() for p in source.iterdir()
    }


@pytest.fixture
def good_mirror(tmp_path: Path, files: dict[str, str]) -> Iterator[str]:
    yield from _serve(tmp_path / "source")


@pytest.fixture
def corrupt_mirror(tmp_path: Path, files: dict[str, str]) -> Iterator[str]:
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for name in files:
        (corrupt / name).write_bytes(b"\x1f\x8b not the file you wanted")
    yield from _serve(corrupt)


@pytest.fixture
def dead_mirror() -> str:
    server = http.server.HTTPServer(("127.0.0.1", 0), _QuietHandler)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    server.server_close()  # nothing listens on this port any more
    return url


def test_falls_back_to_the_next_mirror(
    tmp_path: Path, files: dict[str, str], dead_mirror: str, corrupt_mirror: str, good_mirror: str
) -> None:
    target = tmp_path / "target"
    data.download(target, files, [dead_mirror, corrupt_mirror, good_mirror], progress=False)
    for name in files:
        assert (target / name).read_bytes() == (tmp_path / "source" / name).read_bytes()
    assert sorted(p.name for p in target.iterdir()) == sorted(files)  # no temporary files left


def test_all_mirrors_bad_leaves_nothing(
    tmp_path: Path, files: dict[str, str], dead_mirror: str, corrupt_mirror: str
) -> None:
    target = tmp_path / "target"
    with pytest.raises(DataError, match=r"could not download .*tried") as info:
        data.download(target, files, [dead_mirror, corrupt_mirror], progress=False)
    assert dead_mirror in str(info.value) and corrupt_mirror in str(info.value)
    assert "hash" in str(info.value).lower()  # the corrupt mirror failed its checksum
    assert list(target.iterdir()) == []


def test_existing_files_are_not_fetched(
    tmp_path: Path, files: dict[str, str], dead_mirror: str
) -> None:
    target = write_dataset(tmp_path / "target", n_train=5010, n_test=10, compress=False)
    data.download(target, files, [dead_mirror], progress=False)  # nothing to fetch: no error


def test_load_splits_downloads_into_the_data_dir(
    tmp_path: Path, files: dict[str, str], good_mirror: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        data.DATASETS, "mnist", data.DatasetSpec("mnist", "LENET5_DATA", (good_mirror,), files)
    )
    splits = data.load_splits("mnist", tmp_path / "fresh", progress=False)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (10, 5000, 10)
