from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lenet5.cli import main
from lenet5.data import mnist as data

from conftest import write_idx


def _train(tiny_data: Path, *args: str) -> int:
    return main(
        ["train", "--data-dir", str(tiny_data), "--epochs", "1", "--batch-size", "64", *args]
    )


def test_python_m_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lenet5", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("lenet5 ")


def test_summary_prints_the_tutorial_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary"]) == 0
    out = capsys.readouterr().out
    for figure in ("156", "2,416", "48,120", "10,164", "850", "61,706", "16x5x5"):
        assert figure in out


def test_train_writes_a_complete_run(
    tiny_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _train(tiny_data, "--model", "softmax", "--optimizer", "sgd", "--lr", "0.01") == 0
    assert _train(tiny_data, "--model", "softmax", "--optimizer", "sgd") == 0
    run = tmp_path / "runs" / "softmax-sgd-02"  # the next free number
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads((run / "summary.json").read_text())
    assert (
        lines[-1] == f"run {Path('runs') / 'softmax-sgd-02'}: test accuracy "
        f"{summary['test_accuracy']:.4f}"
    )
    assert summary["parameters"] == 7_850 and summary["model"] == "softmax"
    assert {"val_accuracy", "train_seconds", "epochs"} <= set(summary)
    assert (run / "checkpoints" / "best.pt").is_file() and (
        run / "checkpoints" / "last.pt"
    ).is_file()
    assert json.loads((run / "config.json").read_text())["lr"] == 0.001
    record = json.loads((run / "metrics.jsonl").read_text())
    assert set(record) >= {"epoch", "train_loss", "val_accuracy", "test_accuracy", "seconds"}


def test_resume_extends_a_finished_run(tiny_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert _train(tiny_data, "--run-dir", str(run)) == 0
    assert main(["train", "--resume", str(run), "--data-dir", str(tiny_data), "--epochs", "2"]) == 0
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").open()] == [1, 2]


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err.splitlines()[-1]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--lr", "0"], "argument --lr: must be positive, got 0"),
        (["--lr", "-1"], "argument --lr: must be positive"),
        (["--lr", "nan"], "argument --lr: must be positive"),
        (["--batch-size", "0"], "argument --batch-size: must be positive"),
        (["--epochs", "-3"], "argument --epochs: must be positive"),
        (["--epochs", "two"], "'two' is not a number"),
        (["--model", "resnet"], "invalid choice: 'resnet'"),
        (["--dropout", "1.5"], "must be in [0, 1)"),
        (["--read-scale", "0"], "argument --read-scale: must be positive, got 0"),
    ],
)
def test_bad_flags(flags: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", *flags]) == 2
    assert message in _error_line(capsys)


def test_read_scales_are_for_lenet5(tiny_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--model", "softmax", "--read-scale", "1", "--data-dir", str(tiny_data)])
    assert code == 1
    assert "read scales apply to the lenet5 and judge models only" in _error_line(capsys)


def test_missing_data_and_no_mirror(
    tmp_path: Path, no_download: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--data-dir", str(tmp_path / "empty")]) == 1
    assert _error_line(capsys).startswith("lenet5: error: could not download train-images")


def test_corrupt_data(tiny_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tiny_data / f"{data.TEST_IMAGES}.gz"
    path.write_bytes(path.read_bytes()[:100])
    assert main(["train", "--data-dir", str(tiny_data)]) == 1
    assert "t10k-images-idx3-ubyte.gz: cannot read or decompress" in _error_line(capsys)


def test_mismatched_counts(tiny_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_idx(
        tiny_data / f"{data.TEST_LABELS}.gz",
        data.read_idx(tiny_data / f"{data.TEST_LABELS}.gz", 1)[:-1].copy(),
    )
    assert main(["train", "--data-dir", str(tiny_data)]) == 1
    assert "200 images but" in _error_line(capsys)


def test_existing_directory_that_is_not_a_run(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.tex").write_text("years of work")
    assert _train(tiny_data, "--run-dir", str(tmp_path / "precious")) == 1
    assert "is not empty and is not a run directory" in _error_line(capsys)
    assert (tmp_path / "precious" / "thesis.tex").read_text() == "years of work"
    assert main(["train", "--resume", str(tmp_path / "precious")]) == 1
    assert "is not a run directory" in _error_line(capsys)


def test_existing_run_is_not_overwritten(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tiny_data, "--run-dir", str(tmp_path / "run")) == 0
    assert _train(tiny_data, "--run-dir", str(tmp_path / "run")) == 1
    assert f"already holds a run; continue it with --resume {tmp_path / 'run'}" in _error_line(
        capsys
    )


def test_resume_refuses_changed_settings(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tiny_data, "--run-dir", str(tmp_path / "run")) == 0
    assert main(["train", "--resume", str(tmp_path / "run"), "--lr", "0.5"]) == 1
    assert "cannot change --lr when resuming" in _error_line(capsys)


def test_nan_loss_is_one_line(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "train",
            "--data-dir",
            str(tiny_data),
            "--optimizer",
            "sgd",
            "--lr",
            "10000",
            "--batch-size",
            "32",
            "--epochs",
            "20",
            "--run-dir",
            str(tmp_path / "run"),
        ]
    )
    assert code == 1
    assert "the loss became nan" in _error_line(capsys)


def test_cuda_requested_without_cuda(
    tiny_data: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert _train(tiny_data, "--device", "cuda") == 1
    assert "no CUDA device is available" in _error_line(capsys)


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["predict", "--help"]])
def test_help_imports_neither_torch_nor_numpy(argv: list[str]) -> None:
    """`lenet5 --help` answers at once: the heavy modules load with the command that needs them."""
    code = (
        "import sys, contextlib, io\n"
        "from lenet5.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main({argv!r}) == 0\n"
        "print(sorted(m for m in ('torch', 'numpy', 'PIL') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_cli_names_agree_with_the_modules_that_implement_them() -> None:
    from lenet5 import config, models

    assert config.MODEL_NAMES == models.MODEL_NAMES
    assert config.INIT_NAMES == models.INIT_NAMES
    assert tuple(data.DATASETS) == config.DATASET_NAMES
