"""Knowledge distillation (Hinton, Vinyals, Dean 2015): a model learns the averaged predictions
of trained teachers, on the same distorted images, beside the labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lenet5.errors import Lenet5Error
from lenet5.inference.checkpoint import CheckpointError, load_model
from lenet5.models import digit_reader, set_temperature


class TeacherError(Lenet5Error):
    """A teacher that cannot be loaded or does not fit the run."""


class Teachers:
    """Trained models whose averaged predictions a run learns from, with weight `weight`
    against the labels' 1 - weight, at temperature `temperature`."""

    def __init__(self, models: list[nn.Module], weight: float, temperature: float) -> None:
        self.models = [m.eval() for m in models]
        self.weight = weight
        self.temperature = temperature

    @torch.no_grad()
    def targets(self, x: torch.Tensor) -> torch.Tensor:
        """The teachers' class probabilities at the temperature, averaged: (N, 10)."""
        probs = [F.softmax(m(x) / self.temperature, dim=1) for m in self.models]
        return torch.stack(probs).mean(dim=0)

    def loss(self, label_loss: torch.Tensor, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """`label_loss` blended with the cross-entropy against the teachers' targets; scaled
        by temperature squared so that its gradients keep their size at any temperature."""
        t = self.temperature
        soft = -(self.targets(x) * F.log_softmax(logits / t, dim=1)).sum(dim=1).mean() * t * t
        return (1 - self.weight) * label_loss + self.weight * soft


def load_teachers(
    paths: list[str], weight: float, temperature: float, dataset: str, device: torch.device
) -> Teachers | None:
    """The teachers that `paths` name (checkpoints, run directories or "bundled"), each trained
    on `dataset`; None if none."""
    if not paths:
        return None
    models = []
    for path in paths:
        try:
            model, config = load_model(None if path == "bundled" else path, device)
        except CheckpointError as exc:
            raise TeacherError(f"teacher {exc}") from None  # exc names the file
        if config.dataset != dataset:
            raise TeacherError(f"teacher {path} was trained on {config.dataset}, not {dataset}")
        model = digit_reader(model)  # (a judged model teaches what its reader reads)
        set_temperature(model, 1.0)  # the teachers' own logits; --temperature softens them
        if device.type == "cpu":  # as the student: oneDNN runs channels-last faster
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        models.append(model)
    return Teachers(models, weight, temperature)
