"""Figures (PNG, matplotlib without a display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(confusion: list[list[int]], path: Path, title: str) -> None:
    """Heat map of a confusion matrix, counts written in the cells."""
    plt = _pyplot()
    matrix = np.asarray(confusion)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    # Log colour scale: the diagonal holds ~1,000 per class, the errors a handful.
    shown = ax.imshow(np.log1p(matrix), cmap="Blues")
    for (r, c), v in np.ndenumerate(matrix):
        ax.text(
            c,
            r,
            str(v),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if np.log1p(v) > np.log1p(matrix.max()) / 2 else "black",
        )
    ax.set(
        xticks=range(len(matrix)),
        yticks=range(len(matrix)),
        xlabel="predicted digit",
        ylabel="true digit",
        title=title,
    )
    fig.colorbar(shown, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_confident_errors(
    images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, path: Path, count: int = 25
) -> int:
    """Grid of the misclassified images the model was most sure about; returns how many."""
    plt = _pyplot()
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    wrong = wrong[np.argsort(-probabilities[wrong, predicted[wrong]])][:count]
    cols = 5
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 1.8), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), wrong, strict=False):
        ax.imshow(images[i], cmap="gray")
        ax.set_title(
            f"true {labels[i]}, said {predicted[i]}\np = {probabilities[i, predicted[i]]:.4f}",
            fontsize=8,
        )
    fig.suptitle("most confidently wrong")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return len(wrong)
