"""Files written whole or not at all: atomic_write, append_line."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from lenet5.errors import WriteError
from lenet5.files import append_line, atomic_write, atomic_write_text


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")

    def explode(_f: object) -> None:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(path, explode)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def _no_space(*_args: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_names_the_file_and_keeps_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")
    monkeypatch.setattr(os, "fsync", _no_space)
    with pytest.raises(WriteError, match=rf"^cannot write {path}: No space left on device$"):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_append_line_cut_short_leaves_the_earlier_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "metrics.jsonl"
    append_line(path, '{"epoch": 1}\n')
    monkeypatch.setattr(os, "fsync", _no_space)  # the line reached the file, then failed
    with pytest.raises(WriteError, match=rf"^cannot write {path}: No space left on device$"):
        append_line(path, '{"epoch": 2}\n')
    assert path.read_text() == '{"epoch": 1}\n'
