"""The one inference path: images in, digits and probabilities out (CLI, web app, tests)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from lenet5.data import to_float
from lenet5.preprocess import preprocess, split_digits


@torch.inference_mode()
def predict(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Class probabilities (N, 10) for uint8 images (N, 28, 28) or float inputs (N, 1, 28, 28)."""
    model.eval()
    device = next(model.parameters()).device
    x = to_float(images) if images.dtype == torch.uint8 else images
    return torch.softmax(model(x.to(device)), dim=1)


@dataclass
class Prediction:
    digit: int
    probabilities: list[float]  # 10 class probabilities
    image: np.ndarray  # the (28, 28) uint8 input the model saw

    def top(self, k: int = 3) -> list[tuple[int, float]]:
        order = np.argsort(self.probabilities)[::-1][:k]
        return [(int(d), self.probabilities[d]) for d in order]


def predict_inputs(model: nn.Module, inputs: list[np.ndarray]) -> list[Prediction]:
    """Predictions for preprocessed (28, 28) uint8 inputs, run as one batch."""
    rows: list[list[float]] = predict(model, torch.from_numpy(np.stack(inputs))).cpu().tolist()
    return [
        Prediction(max(range(len(p)), key=p.__getitem__), p, x)
        for p, x in zip(rows, inputs, strict=True)
    ]


def predict_image(model: nn.Module, image: Image.Image) -> Prediction:
    """Read one digit from any image (preprocessed as MNIST was)."""
    return predict_inputs(model, [preprocess(image)])[0]


def predict_digits(model: nn.Module, image: Image.Image) -> list[Prediction]:
    """Read a row of digits (a house number, a year), left to right."""
    return predict_inputs(model, split_digits(image))
