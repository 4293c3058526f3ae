"""The loss of a training batch: digits against their labels (or teachers), non-digits against
equal probabilities for every digit."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lenet5.data.shapes import NOT_A_DIGIT
from lenet5.training.distill import Teachers

OUTLIER_WEIGHT = 0.5  # of the non-digits' loss against the digits' (Hendrycks et al. 2019)


def batch_loss(
    logits: torch.Tensor,
    y: torch.Tensor,
    x: torch.Tensor,
    label_smoothing: float = 0.0,
    teachers: Teachers | None = None,
) -> torch.Tensor:
    """Cross-entropy on the digits, blended with the teachers' predictions when there are
    teachers. Images labelled NOT_A_DIGIT learn equal probabilities for every digit instead
    (outlier exposure, Hendrycks et al. 2019), with weight OUTLIER_WEIGHT."""
    outliers = y == NOT_A_DIGIT
    if not bool(outliers.any()):
        loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        return teachers.loss(loss, x, logits) if teachers is not None else loss
    digits = ~outliers
    loss = F.cross_entropy(logits[digits], y[digits], label_smoothing=label_smoothing)
    if teachers is not None:
        loss = teachers.loss(loss, x[digits], logits[digits])
    uniform = -F.log_softmax(logits[outliers], dim=1).mean(dim=1)  # (K,), at least log 10
    share = outliers.float().mean()
    return (1 - share) * loss + share * OUTLIER_WEIGHT * uniform.mean()
