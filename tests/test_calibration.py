"""Temperature scaling, calibration error and risk-coverage against known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lenet5.inference.calibration import (
    REFUSE_BELOW,
    calibration_report,
    fit_temperature,
    refused,
    risk_coverage,
)
from lenet5.inference.checkpoint import load_model
from lenet5.training.runs import SUMMARY_FILE


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_the_fitted_temperature_is_the_one_the_labels_were_drawn_at() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(40_000, 10))
    probs = _softmax(logits / 1.7)
    labels = (probs.cumsum(axis=1) > rng.random((len(probs), 1))).argmax(axis=1)
    assert fit_temperature(logits, labels) == pytest.approx(1.7, rel=0.03)
    # Drawn at the very probabilities the model gives: calibrated, ECE near 0.
    assert calibration_report(probs, labels)["ece"] < 0.01
    # The same answers claimed at full confidence: ECE is their error rate.
    sharp = np.eye(10)[logits.argmax(axis=1)]
    error = float((sharp.argmax(axis=1) != labels).mean())
    assert calibration_report(sharp, labels)["ece"] == pytest.approx(error, abs=1e-6)


def test_report_by_hand() -> None:
    # Four answers: 0.9 right, 0.9 wrong, 0.6 right, 0.3 (refused) wrong.
    probs = np.zeros((4, 10))
    for row, (top, digit) in enumerate([(0.9, 1), (0.9, 2), (0.6, 3)]):
        probs[row, digit] = top
        probs[row, (digit + 1) % 10] = 1 - top
    probs[3] = [0.1] * 10
    probs[3, 4], probs[3, 5], probs[3, 6] = 0.3, 0.0, 0.0  # top 0.3 on 4: refused
    labels = np.array([1, 5, 3, 6])
    report = calibration_report(probs, labels)
    # Bins: {0.9, 0.9} half right: |0.5 - 0.9| x 2; {0.6} right: 0.4; {0.3} wrong: 0.3.
    assert report["ece"] == pytest.approx((0.8 + 0.4 + 0.3) / 4)
    assert report["rejected"] == 0.25
    coverage, error = risk_coverage(probs, labels)  # kept by confidence: 0.9, 0.9, 0.6, 0.3
    assert coverage.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert error.tolist() == pytest.approx([0.0, 0.5, 1 / 3, 0.5])
    assert report["error_at_coverage"] == {"0.95": 0.5, "0.99": 0.5}


def test_refusal_follows_the_top_probability() -> None:
    probs = np.array([[REFUSE_BELOW - 0.01] + [0.0] * 9, [REFUSE_BELOW] + [0.0] * 9])
    assert refused(probs).tolist() == [True, False]


def test_a_run_ends_calibrated(synthetic_run: tuple[Path, Path]) -> None:
    """fit writes the fitted temperature into last.pt and the summary; argmax is unchanged."""
    import json

    _, run = synthetic_run
    summary = json.loads((run / SUMMARY_FILE).read_text())
    model, _ = load_model(run)
    assert float(model.get_buffer("temperature")) == pytest.approx(summary["temperature"])
    assert 0.25 <= summary["temperature"] <= 4.0
