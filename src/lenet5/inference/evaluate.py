"""Accuracy, loss, confusion matrix and per-class metrics of a model on a split."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from lenet5.data.mnist import NUM_CLASSES, Split, batches

if TYPE_CHECKING:
    from lenet5.inference.engines import OnnxModel


@torch.inference_mode()
def evaluate(model: nn.Module | OnnxModel, split: Split, batch_size: int = 1000) -> dict[str, Any]:
    """Mean cross-entropy, accuracy (a fraction in [0, 1]) and the confusion matrix
    (rows: true class, columns: predicted class) of `model` (PyTorch, or run by onnxruntime)
    on `split`."""
    if isinstance(model, nn.Module):
        model.eval()
    device = split.labels.device
    loss_sum = torch.zeros((), device=device)
    confusion = torch.zeros(NUM_CLASSES * NUM_CLASSES, dtype=torch.long, device=device)
    for x, y in batches(split, batch_size):
        logits = (
            model(x) if isinstance(model, nn.Module) else torch.from_numpy(model.logits(x.numpy()))
        )
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        confusion += torch.bincount(
            y * NUM_CLASSES + logits.argmax(dim=1), minlength=NUM_CLASSES**2
        )
    matrix = confusion.view(NUM_CLASSES, NUM_CLASSES).cpu()
    n = max(len(split), 1)
    return {
        "loss": loss_sum.item() / n,
        "accuracy": int(matrix.diagonal().sum()) / n,
        "confusion_matrix": matrix.tolist(),
    }


def per_class_metrics(confusion: list[list[int]]) -> list[dict[str, float]]:
    """Precision, recall, F1 and support of each class from a confusion matrix."""
    matrix = torch.tensor(confusion, dtype=torch.float64)
    true_pos = matrix.diagonal()
    predicted, actual = matrix.sum(dim=0), matrix.sum(dim=1)
    rows = []
    for k in range(len(matrix)):
        precision = float(true_pos[k] / predicted[k]) if predicted[k] else 0.0
        recall = float(true_pos[k] / actual[k]) if actual[k] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append(
            {
                "class": k,
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "support": int(actual[k]),
            }
        )
    return rows


def describe_split(report: dict[str, Any]) -> str:
    """The split as words: "mnist test split", or the data set's name where it has no splits."""
    split = report.get("split")
    return f"{report['dataset']} {split} split" if split else report["dataset"]


def format_report(report: dict[str, Any]) -> str:
    """The evaluation as text: headline figures, per-class table, confusion matrix."""
    lines = [
        f"{describe_split(report)}: {report['examples']} images, accuracy "
        f"{report['accuracy']:.4f}, loss {report['loss']:.4f}",
        f"calibration error (ECE, 15 bins) {report['ece']:.4f}; answered 'not a digit' "
        f"{report['rejected']:.2%}; error among the most confident "
        + ", ".join(f"{float(c):.0%}: {e:.2%}" for c, e in report["error_at_coverage"].items()),
        "",
        "class  precision  recall      f1  support",
    ]
    for r in report["per_class"]:
        lines.append(
            f"{r['class']:>5}  {r['precision']:>9.4f}  {r['recall']:>6.4f}  "
            f"{r['f1']:>6.4f}  {r['support']:>7}"
        )
    lines += [
        "",
        "confusion matrix (rows: true digit, columns: predicted digit)",
        "      " + "".join(f"{k:>6}" for k in range(NUM_CLASSES)),
    ]
    for k, row in enumerate(report["confusion_matrix"]):
        lines.append(f"{k:>6}" + "".join(f"{v:>6}" for v in row))
    return "\n".join(lines)
