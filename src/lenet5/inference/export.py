"""Export a trained model to ONNX and check it against PyTorch with onnxruntime."""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lenet5.data.mnist import Split, batches
from lenet5.errors import Lenet5Error, write_error
from lenet5.inference.engines import (
    INPUT_NAME,
    ONNX_EXTRA,
    OUTPUT_NAME,
    OnnxModel,
    default_threads,
)
from lenet5.models import IMAGE_SIZE, digit_reader


def export_onnx(model: nn.Module, path: Path) -> None:
    """Write `model` as ONNX with a dynamic batch dimension (atomically: temp file, rename)."""
    try:
        import onnxscript  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise Lenet5Error(f"ONNX export needs extra packages: {ONNX_EXTRA}") from None
    model = model.cpu().eval()
    example = torch.rand(2, 1, IMAGE_SIZE, IMAGE_SIZE)
    # The exporter logs about optional torchvision ops and warns about its own internals.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (example,),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            dynamo=True,
            verbose=False,
        )
    assert program is not None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmp:
            tmp_file = Path(tmp) / path.name
            program.save(str(tmp_file), external_data=False)
            tmp_file.replace(path)
    except OSError as exc:  # a full disk, a read-only folder: `path` is left as it was
        raise write_error(path, exc) from None


def to_onnx(model: nn.Module, threads: int = 1) -> OnnxModel:
    """The same network as an OnnxModel, exported in memory (needs the onnx extra)."""
    with tempfile.TemporaryDirectory(prefix="lenet5-onnx-") as tmp:
        path = Path(tmp) / "model.onnx"
        export_onnx(model, path)
        return OnnxModel(path.read_bytes(), threads, name="the model exported to ONNX")


# Logits of a trained LeNet-5 reach |70|, where float32 values are 7.6e-6 apart: two correct
# float32 runtimes summing in different orders differ by more than 1e-5 absolute. Like
# numpy.allclose, the check allows ATOL plus RTOL times the logit's magnitude, in the units of
# the logits as trained: a calibration temperature T divides both runtimes' logits, and their
# differences, alike, so the bound is divided by T too.
ATOL = 1e-5
RTOL = 1e-5


@torch.inference_mode()
def compare_with_onnx(model: nn.Module, path: Path, split: Split) -> dict[str, Any]:
    """Run `split` through PyTorch and onnxruntime: the largest logit difference, whether every
    logit is within (ATOL + RTOL * |logit * T|) / T (T: the model's temperature), and the
    fraction of images given the same digit."""
    session = OnnxModel(path, threads=default_threads())
    model = model.cpu().eval()
    temperature = float(digit_reader(model).get_buffer("temperature"))
    max_diff, max_logit, within, agree = 0.0, 0.0, True, 0
    for x, _ in batches(split.to("cpu"), 1000):
        ours = model(x).numpy()
        theirs = session.logits(x.numpy())
        diff = np.abs(ours - theirs)
        max_diff = max(max_diff, float(diff.max()))
        max_logit = max(max_logit, float(np.abs(ours).max()))
        bound = (ATOL + RTOL * np.abs(ours * temperature)) / temperature
        within = within and bool((diff <= bound).all())
        agree += int((ours.argmax(1) == theirs.argmax(1)).sum())
    return {
        "images": len(split),
        "max_abs_diff": max_diff,
        "max_abs_logit": max_logit,
        "within_tolerance": within,
        "temperature": temperature,
        "agreement": agree / len(split),
    }
