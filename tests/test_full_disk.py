"""A real small filesystem (a 4 MiB tmpfs, mounted when the tests run as root) filled up or
made read-only under training, export and the feedback store."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from lenet5.cli import main
from lenet5.data.feedback import FeedbackStore, StoreFull
from lenet5.inference.checkpoint import LAST, load_checkpoint


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path, leave: int) -> Path:
    """Take the filesystem's free space but `leave` bytes; returns the filler file."""
    stat = os.statvfs(disk)
    filler = disk / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave))
    return filler


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


def _epochs(run: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def _leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize("leave", [0, 200_000], ids=["nothing-free", "no-room-for-a-checkpoint"])
def test_training_on_a_full_disk_stops_cleanly_and_resumes(
    disk: Path, tiny_data: Path, leave: int, capsys: pytest.CaptureFixture[str]
) -> None:
    run = disk / "run"
    train = ["train", "--data-dir", str(tiny_data), "--batch-size", "64"]
    assert main([*train, "--run-dir", str(run), "--epochs", "1", "--no-progress"]) == 0
    filler = fill(disk, leave)
    capsys.readouterr()
    resume = ["train", "--resume", str(run), "--epochs", "3", "--data-dir", str(tiny_data)]
    assert main(resume) == 1
    line = _error_line(capsys)
    assert "cannot write" in line and "No space left on device" in line
    assert _epochs(run)[:1] == [1]
    assert load_checkpoint(run / LAST)["epoch"] == 1
    assert _leftovers(disk) == []
    filler.unlink()
    assert main(resume) == 0
    assert _epochs(run) == [1, 2, 3]
    assert load_checkpoint(run / LAST)["epoch"] == 3


def test_training_on_a_read_only_disk(
    disk: Path, tiny_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = disk / "run"
    train = ["train", "--data-dir", str(tiny_data), "--batch-size", "64"]
    assert main([*train, "--run-dir", str(run), "--epochs", "1", "--no-progress"]) == 0
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    capsys.readouterr()
    resume = ["train", "--resume", str(run), "--epochs", "2", "--data-dir", str(tiny_data)]
    assert main(resume) == 1
    line = _error_line(capsys)
    assert str(run) in line and "Read-only file system" in line
    subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
    assert main(resume) == 0
    assert _epochs(run) == [1, 2]


def test_export_to_a_full_disk(
    disk: Path, synthetic_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, run = synthetic_run
    fill(disk, 0)
    assert main(["export", "--model", str(run), "--output", str(disk / "m.onnx")]) == 1
    assert _error_line(capsys) == (
        f"lenet5: error: cannot write {disk / 'm.onnx'}: No space left on device"
    )
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_feedback_store_on_a_full_disk(disk: Path) -> None:
    pixels = np.zeros((28, 28), dtype=np.uint8)
    with FeedbackStore(disk / "feedback.sqlite") as store:
        first = store.add(3, 5, [0.1] * 10, pixels, b"x" * 50_000, "m")
        filler = fill(disk, 0)
        with pytest.raises(StoreFull, match=r"feedback\.sqlite: cannot store the correction"):
            store.add(3, 5, [0.1] * 10, pixels, b"x" * 50_000, "m")
        assert store.count() == 1
        filler.unlink()
        assert store.add(3, 5, [0.1] * 10, pixels, b"x" * 50_000, "m") == first + 1


def test_tensorboard_events_that_cannot_be_written_stop_training_cleanly(
    tiny_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """TensorBoard writes on a thread of its own, and reports a failure at the next event."""
    from torch.utils.tensorboard import SummaryWriter

    run = tmp_path / "run"
    train = ["train", "--data-dir", str(tiny_data), "--batch-size", "64", "--no-progress"]
    assert main([*train, "--run-dir", str(run), "--epochs", "1"]) == 0
    add_scalar = SummaryWriter.add_scalar

    def full(self: SummaryWriter, tag: str, *args: object, **kwargs: object) -> None:
        if tag == "val/accuracy":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        add_scalar(self, tag, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SummaryWriter, "add_scalar", full)
    capsys.readouterr()
    resume = ["train", "--resume", str(run), "--epochs", "2", "--data-dir", str(tiny_data)]
    assert main(resume) == 1
    assert _error_line(capsys) == (
        f"lenet5: error: cannot write the TensorBoard events in {run}: No space left on device; "
        f"stopped, the last good checkpoint (epoch 1) is {run / LAST}; once it can be written: "
        f"lenet5 train --resume {run}"
    )
    assert _epochs(run) == [1]
    monkeypatch.setattr(SummaryWriter, "add_scalar", add_scalar)
    assert main(resume) == 0
    assert _epochs(run) == [1, 2]
