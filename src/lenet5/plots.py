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


def plot_calibration(
    bins: list[dict[str, float]],
    coverage: np.ndarray,
    error: np.ndarray,
    refuse_below: float,
    path: Path,
) -> None:
    """Reliability diagram (accuracy against confidence, per bin; "not a digit" under
    `refuse_below`) beside the risk-coverage curve (the error among the most confident answers,
    as more are kept)."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    filled = [b for b in bins if b["count"]]
    left.bar(
        [(b["low"] + b["high"]) / 2 for b in filled],
        [b["accuracy"] for b in filled],
        width=1 / len(bins),
        edgecolor="black",
        label="accuracy of the answers in the bin",
    )
    left.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    left.axvline(refuse_below, color="tab:red", linestyle=":", label='"not a digit" below')
    left.set(xlabel="top probability", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1.02))
    left.set_title("reliability diagram")
    left.legend(fontsize=8, loc="upper left")
    right.plot(coverage, 100 * error)
    right.set(xlabel="share of answers kept (most confident first)", ylabel="error among them (%)")
    right.set_title("risk against coverage")
    right.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def save_figure(fig: Any, stem: Path) -> None:
    """Write `stem`.png and `stem`.svg (each atomically) and close the figure."""
    from lenet5.files import atomic_write

    for fmt in ("png", "svg"):
        atomic_write(
            stem.with_suffix(f".{fmt}"), lambda f, fmt=fmt: fig.savefig(f, format=fmt, dpi=120)
        )
    _pyplot().close(fig)


def study_figures(
    curves: dict[str, list[dict[str, Any]]], times: dict[str, tuple[float, float | None]]
) -> dict[str, Any]:
    """The study's three figures: accuracy per epoch (validation dashed, test solid), training
    loss per epoch, and training time per configuration (with the tutorial's where known)."""
    plt = _pyplot()
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    accuracy, ax = plt.subplots(figsize=(8, 5))
    for colour, (name, records) in zip(colours, curves.items(), strict=False):
        epochs = [r["epoch"] for r in records]
        ax.plot(epochs, [r["test_accuracy"] for r in records], color=colour, label=f"{name} test")
        ax.plot(
            epochs,
            [r["val_accuracy"] for r in records],
            color=colour,
            ls="--",
            alpha=0.6,
            label=f"{name} validation",
        )
    ax.set(
        xlabel="epoch",
        ylabel="accuracy",
        ylim=(0.9, 1.0),
        title="Validation (dashed) and test (solid) accuracy per epoch",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    accuracy.tight_layout()

    loss, ax = plt.subplots(figsize=(8, 5))
    for colour, (name, records) in zip(colours, curves.items(), strict=False):
        ax.plot(
            [r["epoch"] for r in records],
            [r["train_loss"] for r in records],
            color=colour,
            label=name,
        )
    ax.set(
        xlabel="epoch", ylabel="mean training loss", yscale="log", title="Training loss per epoch"
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    loss.tight_layout()

    timing, ax = plt.subplots(figsize=(8, 4))
    names = list(times)
    ours = [times[n][0] for n in names]
    theirs = [times[n][1] or 0.0 for n in names]
    positions = np.arange(len(names))
    ax.barh(positions + 0.2, ours, height=0.4, label="lenet5 (this machine)")
    ax.barh(positions - 0.2, theirs, height=0.4, label="tutorial", color="lightgray")
    for y, value in zip(positions + 0.2, ours, strict=True):
        ax.text(value, y, f" {value:.0f} s", va="center", fontsize=8)
    ax.set(
        yticks=positions,
        yticklabels=names,
        xlabel="training time (s)",
        title="Training time per configuration",
    )
    ax.legend(fontsize=8)
    timing.tight_layout()
    return {"accuracy": accuracy, "loss": loss, "time": timing}


def plot_explanation(
    image: np.ndarray,
    activations: dict[str, np.ndarray],
    saliency: np.ndarray,
    path: Path,
    title: str,
) -> None:
    """One picture of what the network saw: the 28x28 input, every map of each layer (one row
    per layer, gray levels scaled per layer), and the saliency over the input (red: pixels
    that raised the digit's score, blue: lowered it)."""
    from lenet5.files import atomic_write

    plt = _pyplot()
    columns = max(len(maps) for maps in activations.values())
    rows = 1 + len(activations)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 0.8, rows * 1.0))
    for ax in axes.ravel():
        ax.axis("off")
    axes[0, 0].imshow(image, cmap="gray", vmin=0, vmax=255)
    axes[0, 0].set_title("input", fontsize=7)
    bound = float(np.abs(saliency).max()) or 1.0
    axes[0, 1].imshow(image, cmap="gray", vmin=0, vmax=255)
    axes[0, 1].imshow(saliency, cmap="bwr", vmin=-bound, vmax=bound, alpha=0.7)
    axes[0, 1].set_title("saliency", fontsize=7)
    for row, (name, maps) in enumerate(activations.items(), start=1):
        top = float(maps.max()) or 1.0
        for k, fmap in enumerate(maps):
            axes[row, k].imshow(fmap, cmap="gray", vmin=0, vmax=top)
        axes[row, 0].set_title(f"{name} {tuple(maps.shape)}", fontsize=7, loc="left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
