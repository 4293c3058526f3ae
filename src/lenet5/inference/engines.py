"""The engines that run a trained model: PyTorch, or onnxruntime through `OnnxModel`.

This module imports neither torch nor onnxruntime until a model needs them, so that the ONNX
path of `lenet5 predict` never loads torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np

from lenet5.errors import Lenet5Error

if TYPE_CHECKING:
    import torch
    from torch import nn

ONNX_EXTRA = "pip install 'lenet5[onnx]' (onnx, onnxscript, onnxruntime)"
INPUT_NAME = "input"  # of an exported model: (N, 1, 28, 28) float32 in [0, 1]
OUTPUT_NAME = "logits"  # (N, 10)


class OnnxModel:
    """A model run by onnxruntime: an ONNX file written by `lenet5 export` (or its bytes)."""

    def __init__(self, source: Path | bytes, threads: int = 1, name: str = "") -> None:
        try:
            import onnxruntime
        except ImportError:
            raise Lenet5Error(f"running ONNX models needs extra packages: {ONNX_EXTRA}") from None
        options = onnxruntime.SessionOptions()
        # One image takes ~0.1 ms: more threads cost more in handing work over than they save.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.name = name or (str(source) if isinstance(source, Path) else "ONNX model")
        try:
            self.session = onnxruntime.InferenceSession(
                source if isinstance(source, bytes) else str(source),
                options,
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:  # onnxruntime raises its own types for any unloadable file
            raise Lenet5Error(f"{self.name}: not a loadable ONNX model ({exc})") from None

    def logits(self, x: np.ndarray) -> np.ndarray:
        """(N, 1, 28, 28) float32 in [0, 1] -> (N, 10) float32."""
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]


Model = Union["nn.Module", OnnxModel]


def onnxruntime_missing() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is None


def default_threads() -> int:
    """Threads for a batch run (evaluate): one per core this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA when present, else the CPU."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise Lenet5Error("--device cuda: no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise Lenet5Error(f"unknown device {name!r} (choose from auto, cpu, cuda)")
    return torch.device(name)
