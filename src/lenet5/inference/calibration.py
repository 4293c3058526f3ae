"""Honest probabilities: a temperature fitted on held-out digits, the rule that turns a doubtful
answer into "not a digit", and the measures of both (calibration error, risk against coverage).

numpy only: it serves the ONNX path too, which never imports torch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Under this calibrated probability for its best digit, the answer is "not a digit" (the closest
# digit is still reported). Chosen for the bundled model on MNIST validation and the UCI digits,
# with its judge's threshold (lenet5.models.Judged), to refuse at most a quarter of a percent of
# validation digits and 1% of UCI digits: at 0.5 every judge threshold measured (0.15 and up)
# refuses more UCI digits than that, at 0.4 the judge's 0.25 does not (docs/robustness.md);
# non-digits get far lower probabilities.
REFUSE_BELOW = 0.4
ECE_BINS = 15  # equal-width bins of the top probability (Guo et al. 2017)
COVERAGES = (0.95, 0.99)  # the shares of most confident answers whose error is reported
# Temperatures from 1/4 to 4: where validation holds no error at all, the fit would sharpen
# without end; a quarter is sharper than any real model here needed.
_LOG_T_RANGE = (-math.log(4.0), math.log(4.0))


def _nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    top = z.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(z)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T minimising the cross-entropy of softmax(logits / T) on `labels`
    (temperature scaling, Guo et al. 2017), by golden-section search over log T."""
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels)
    lo, hi = _LOG_T_RANGE
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = _nll(logits, labels, math.exp(a)), _nll(logits, labels, math.exp(b))
    while hi - lo > 1e-5:
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = _nll(logits, labels, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = _nll(logits, labels, math.exp(b))
    return math.exp((lo + hi) / 2)


def refused(probabilities: np.ndarray) -> np.ndarray:
    """Which answers are "not a digit": (N,) bool for (N, 10) probabilities."""
    return np.asarray(probabilities).max(axis=-1) < REFUSE_BELOW


def reliability(probabilities: np.ndarray, labels: np.ndarray) -> list[dict[str, float]]:
    """Per bin of the top probability: its mean, the accuracy of those answers, their count."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    # Bins (k/15, (k+1)/15]; a top probability is never under 1/10, so 0 needs no bin of its own.
    index = np.clip(np.ceil(confidence * ECE_BINS).astype(int) - 1, 0, ECE_BINS - 1)
    bins = []
    for k in range(ECE_BINS):
        inside = index == k
        count = int(inside.sum())
        bins.append(
            {
                "low": k / ECE_BINS,
                "high": (k + 1) / ECE_BINS,
                "confidence": float(confidence[inside].mean()) if count else 0.0,
                "accuracy": float(correct[inside].mean()) if count else 0.0,
                "count": count,
            }
        )
    return bins


def risk_coverage(probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(coverage, error): keeping the k most confident answers, for k = 1..N, the share kept
    and the error among them (the risk-coverage curve of selective classification)."""
    order = np.argsort(-probabilities.max(axis=1), kind="stable")
    wrong = (probabilities.argmax(axis=1) != labels)[order]
    kept = np.arange(1, len(labels) + 1)
    return kept / len(labels), np.cumsum(wrong) / kept


def calibration_report(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Expected calibration error (15 equal-width bins), the share refused, and the error among
    the answers kept at each of COVERAGES, for (N, 10) probabilities of digits labelled
    `labels`."""
    probabilities, labels = np.asarray(probabilities, np.float64), np.asarray(labels)
    bins = reliability(probabilities, labels)
    n = len(labels)
    ece = sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / max(n, 1)
    _, error = risk_coverage(probabilities, labels)
    at = {f"{c:.2f}": float(error[max(math.ceil(c * n), 1) - 1]) for c in COVERAGES}
    return {
        "ece": float(ece),
        "rejected": float(refused(probabilities).mean()),
        "error_at_coverage": at,
        "reliability": bins,
    }
