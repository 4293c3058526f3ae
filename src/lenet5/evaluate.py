"""Accuracy and loss of a model on a split."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lenet5.data import Split, batches


@torch.inference_mode()
def evaluate(model: nn.Module, split: Split, batch_size: int = 1000) -> dict[str, float]:
    """Mean cross-entropy and accuracy (a fraction in [0, 1]) of `model` on `split`."""
    model.eval()
    loss_sum = torch.zeros((), device=split.labels.device)
    correct = torch.zeros((), dtype=torch.long, device=split.labels.device)
    for x, y in batches(split, batch_size):
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(dim=1) == y).sum()
    n = max(len(split), 1)
    return {"loss": loss_sum.item() / n, "accuracy": correct.item() / n}
