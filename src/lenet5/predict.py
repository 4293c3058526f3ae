"""Inference: class probabilities for batches of images."""

from __future__ import annotations

import torch
from torch import nn

from lenet5.data import to_float


@torch.inference_mode()
def predict(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Class probabilities (N, 10) for uint8 images (N, 28, 28) or float inputs (N, 1, 28, 28)."""
    model.eval()
    device = next(model.parameters()).device
    x = to_float(images) if images.dtype == torch.uint8 else images
    return torch.softmax(model(x.to(device)), dim=1)
