from __future__ import annotations

import json
from pathlib import Path

import pytest

from lenet5.cli import main
from lenet5.data import mnist as data
from lenet5.inference.checkpoint import load_model
from lenet5.inference.evaluate import evaluate, per_class_metrics


def test_per_class_metrics_known_answer() -> None:
    # true 0: 8 right, 2 called 1; true 1: 5 right, 1 called 0
    rows = per_class_metrics([[8, 2], [1, 5]])
    assert rows[0]["precision"] == pytest.approx(8 / 9)
    assert rows[0]["recall"] == pytest.approx(8 / 10)
    assert rows[0]["f1"] == pytest.approx(2 * (8 / 9) * 0.8 / (8 / 9 + 0.8))
    assert rows[1]["precision"] == pytest.approx(5 / 7) and rows[1]["support"] == 6


def test_a_class_never_predicted_has_zero_precision() -> None:
    assert per_class_metrics([[3, 0], [2, 0]])[1]["precision"] == 0.0


def test_confusion_matrix_against_a_direct_count(synthetic_run: tuple[Path, Path]) -> None:
    directory, run = synthetic_run
    model, _ = load_model(run)
    test = data.load_splits(data_dir=directory).test
    result = evaluate(model, test, batch_size=64)
    predicted = model(data.to_float(test.images)).argmax(1)
    expected = [
        [int(((test.labels == t) & (predicted == p)).sum()) for p in range(10)] for t in range(10)
    ]
    assert result["confusion_matrix"] == expected
    assert result["accuracy"] == (predicted == test.labels).float().mean().item()


def test_cli_matches_the_recorded_test_accuracy(
    synthetic_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, run = synthetic_run
    assert main(["evaluate", "--model", str(run), "--data-dir", str(directory), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    recorded = json.loads((run / "summary.json").read_text())
    assert report["accuracy"] == recorded["test_accuracy"]  # to the last digit
    assert {"accuracy", "loss", "per_class", "confusion_matrix"} <= set(report)
    assert len(report["per_class"]) == 10 and sum(map(sum, report["confusion_matrix"])) == 300
    # Calibration and refusals, from the same probabilities as a second computation here.
    from lenet5.data import mnist
    from lenet5.inference.calibration import calibration_report
    from lenet5.inference.checkpoint import load_model
    from lenet5.inference.predict import probabilities

    test = mnist.load_splits(data_dir=directory).test
    probs = probabilities(load_model(run)[0], test.images.numpy())
    expected = calibration_report(probs, test.labels.numpy())
    for key in ("ece", "rejected", "error_at_coverage"):
        assert report[key] == pytest.approx(expected[key])
    assert sum(b["count"] for b in report["reliability"]) == 300


def test_cli_text_report_and_plots(
    synthetic_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory, run = synthetic_run
    code = main(
        [
            "evaluate",
            "--model",
            str(run / "checkpoints" / "best.pt"),
            "--data-dir",
            str(directory),
            "--split",
            "val",
            "--plots",
            str(tmp_path / "plots"),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("mnist val split: 5000 images, accuracy")
    assert "confusion matrix (rows: true digit" in out
    assert "calibration error (ECE, 15 bins) " in out and "answered 'not a digit' " in out
    for name in ("confusion_matrix.png", "confident_errors.png", "calibration.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_missing_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--model", str(tmp_path / "nothing")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"lenet5: error: {tmp_path / 'nothing'}: no such checkpoint"
    )


def test_batch_size_does_not_change_the_result(synthetic_run: tuple[Path, Path]) -> None:
    directory, run = synthetic_run
    model, _ = load_model(run)
    test = data.load_splits(data_dir=directory).test
    whole, small = evaluate(model, test, batch_size=1000), evaluate(model, test, batch_size=7)
    assert whole["confusion_matrix"] == small["confusion_matrix"]
    assert whole["loss"] == pytest.approx(small["loss"], rel=1e-5)
