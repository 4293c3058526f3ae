"""The one inference path: images in, digits and probabilities out (CLI, web app, tests).

A model is a PyTorch module or an `OnnxModel`, the same network run by onnxruntime: both take
the preprocessed (28, 28) uint8 inputs and give the same digits and, within the export's
tolerance, the same probabilities. This module imports torch only for a torch model, so that
`lenet5 predict` with the bundled ONNX model answers without loading torch at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from lenet5.config import TrainConfig
from lenet5.data.preprocess import preprocess
from lenet5.inference.calibration import REFUSE_BELOW
from lenet5.inference.engines import ONNX_EXTRA, Model, OnnxModel, onnxruntime_missing

if TYPE_CHECKING:
    import torch
    from torch import nn


def predict(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Class probabilities (N, 10) for uint8 images (N, 28, 28) or float inputs (N, 1, 28, 28)."""
    import torch

    from lenet5.data.mnist import to_float

    with torch.inference_mode():
        model.eval()
        device = next(model.parameters()).device
        x = to_float(images) if images.dtype == torch.uint8 else images
        return torch.softmax(model(x.to(device)), dim=1)


def probabilities(model: Model, inputs: np.ndarray) -> np.ndarray:
    """Class probabilities (N, 10) float32 for preprocessed uint8 inputs (N, 28, 28)."""
    if isinstance(model, OnnxModel):
        x = inputs[:, None].astype(np.float32) / 255.0  # as data.to_float: float32
        logits = model.logits(x)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)
    import torch

    return predict(model, torch.from_numpy(inputs)).cpu().numpy()


NOT_A_DIGIT = "not a digit"  # the reason given when no digit is likely enough


@dataclass
class Prediction:
    digit: int  # the most probable digit: the answer, or the closest guess when refused
    probabilities: list[float]  # 10 class probabilities
    image: np.ndarray  # the (28, 28) uint8 input the model saw
    box: tuple[int, int, int, int] | None = None  # in a row: x0, y0, x1, y1 in image pixels

    @property
    def refused(self) -> bool:
        """Whether the answer is "not a digit": no digit reaches REFUSE_BELOW."""
        return self.probabilities[self.digit] < REFUSE_BELOW

    def answer(self) -> dict[str, Any]:
        """The JSON answer of the CLI and the API: the digit, or null with the reason and the
        closest digit; the ten probabilities either way (and the box in a row)."""
        answer: dict[str, Any] = {"digit": self.digit}
        if self.refused:
            answer = {"digit": None, "reason": NOT_A_DIGIT, "closest": self.digit}
        answer["probabilities"] = self.probabilities
        if self.box is not None:
            answer["box"] = list(self.box)
        return answer

    def top(self, k: int = 3) -> list[tuple[int, float]]:
        order = np.argsort(self.probabilities)[::-1][:k]
        return [(int(d), self.probabilities[d]) for d in order]


def predict_inputs(model: Model, inputs: list[np.ndarray]) -> list[Prediction]:
    """Predictions for preprocessed (28, 28) uint8 inputs, run as one batch."""
    rows: list[list[float]] = probabilities(model, np.stack(inputs)).tolist()
    return [
        Prediction(max(range(len(p)), key=p.__getitem__), p, x)
        for p, x in zip(rows, inputs, strict=True)
    ]


def predict_image(model: Model, image: Image.Image) -> Prediction:
    """Read one digit from any image (preprocessed as MNIST was)."""
    return predict_inputs(model, [preprocess(image)])[0]


def load_inference_model(
    checkpoint: str | Path | None, engine: str = "auto", threads: int = 1
) -> tuple[Model, TrainConfig, str]:
    """The model `lenet5 predict`/`evaluate`/`serve` run, its config, and a note to show ("":
    none).

    engine "onnx": onnxruntime (the bundled model's shipped ONNX file; another checkpoint is
    exported in memory); "torch": PyTorch; "auto": onnxruntime for the bundled model when it
    is installed, else PyTorch with a note, and PyTorch for other checkpoints."""
    from lenet5.inference.bundled import BUNDLED_ONNX, BundledError, bundled_card, read_bundled

    note = ""
    if checkpoint is None and engine != "torch":
        if engine == "auto" and onnxruntime_missing():
            note = f"onnxruntime is not installed: running on PyTorch ({ONNX_EXTRA})"
        else:
            try:
                model = OnnxModel(read_bundled(BUNDLED_ONNX), threads, name=str(BUNDLED_ONNX))
                card = bundled_card(BUNDLED_ONNX.with_suffix(".json"))
                return model, TrainConfig.from_dict(card["config"]), ""
            except BundledError as exc:
                if engine == "onnx":
                    raise
                note = f"{exc}; running on PyTorch"
    from lenet5.inference.checkpoint import load_model
    from lenet5.inference.export import to_onnx

    torch_model, config = load_model(checkpoint)
    if engine == "onnx":
        return to_onnx(torch_model, threads), config, ""
    return torch_model, config, note
