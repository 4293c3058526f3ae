from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lenet5.cli import main
from lenet5.training.locks import DirectoryBusy, hold

HOLDER = """
import sys, time
from pathlib import Path
from lenet5.training.locks import hold
with hold(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding tmp_path/held, as a training run would."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "held")], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    yield process
    process.kill()
    process.wait()


def test_a_second_holder_is_refused_and_the_first_release_frees_it(tmp_path: Path) -> None:
    busy = rf"run is in use by process {os.getpid()} "
    with hold(tmp_path / "run"), pytest.raises(DirectoryBusy, match=busy), hold(tmp_path / "run"):
        pass
    with hold(tmp_path / "run"):
        pass


def test_kill_9_leaves_no_stale_lock(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    busy = rf"in use by process {holder.pid} "
    with pytest.raises(DirectoryBusy, match=busy), hold(tmp_path / "held"):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with hold(tmp_path / "held"):
        pass


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err.splitlines()[-1]


def _epochs(run: Path) -> list[int]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["epoch"] for line in lines]


def test_resume_of_a_run_another_process_writes_is_refused(
    tiny_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = tmp_path / "run"
    common = ["--data-dir", str(tiny_data), "--batch-size", "64"]
    assert main(["train", "--run-dir", str(run), "--epochs", "1", *common]) == 0
    other = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "held"
        capsys.readouterr()
        resume = ["train", "--resume", str(run), "--epochs", "2", "--data-dir", str(tiny_data)]
        assert main(resume) == 1
        line = _error_line(capsys)
        assert f"{run} is in use by process {other.pid} (-c {run}); " in line
        assert line.endswith("wait for it to end or choose another directory")
    finally:
        other.kill()
        other.wait()
    assert _epochs(run) == [1]
    assert main(resume) == 0
    assert _epochs(run) == [1, 2]


def test_a_new_run_in_a_held_directory_is_refused(
    tiny_data: Path,
    tmp_path: Path,
    holder: subprocess.Popen[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["train", "--run-dir", str(tmp_path / "held"), "--data-dir", str(tiny_data)]) == 1
    assert f"held is in use by process {holder.pid} " in _error_line(capsys)
    assert sorted(p.name for p in (tmp_path / "held").iterdir()) == [".lock"]


def test_a_second_study_on_one_folder_is_refused(
    tiny_data: Path,
    tmp_path: Path,
    holder: subprocess.Popen[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    study = ["experiments", "--out", str(tmp_path / "held"), "--quick"]
    assert main([*study, "--data-dir", str(tiny_data), "--only", "softmax-gd"]) == 1
    assert f"held is in use by process {holder.pid} " in _error_line(capsys)
    assert sorted(p.name for p in (tmp_path / "held").iterdir()) == [".lock"]
