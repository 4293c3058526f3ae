"""Handwriting from outside MNIST: scikit-learn's bundled UCI digits, read as `predict` reads.

The 1,797 "Optical Recognition of Handwritten Digits" images (43 writers, none of them MNIST's)
come as 8x8 counts 0-16 of the ink pixels of a 32x32 bitmap. Each is drawn as dark ink on light
paper at a realistic size (64x64 px, smoothly upsampled, on a margin of paper) and then goes
through `lenet5.data.preprocess.preprocess`, exactly as a photo given to `lenet5 predict` does.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from PIL import Image

from lenet5.data.mnist import DataError, Split
from lenet5.data.preprocess import preprocess

CELL = 8  # pixels per 8x8 cell when drawn: a 64x64 digit
MARGIN = 16  # pixels of paper around it
MAX_COUNT = 16  # a cell holds 0-16 ink pixels of the 32x32 original


def render(cells: np.ndarray) -> Image.Image:
    """(8, 8) ink counts -> an 8-bit grayscale picture, dark ink on light paper."""
    ink = Image.fromarray((cells / MAX_COUNT).astype(np.float32), mode="F")
    side = cells.shape[0] * CELL
    big = np.clip(np.asarray(ink.resize((side, side), Image.Resampling.BICUBIC)), 0.0, 1.0)
    paper = np.zeros((side + 2 * MARGIN, side + 2 * MARGIN))
    paper[MARGIN : MARGIN + side, MARGIN : MARGIN + side] = big
    return Image.fromarray(np.round(255 * (1 - paper)).astype(np.uint8), mode="L")


def load_uci_digits() -> Split:
    """The 1,797 UCI digits as model inputs (uint8 (N, 28, 28)) with their labels."""
    images, labels = _rendered()
    return Split(torch.from_numpy(images.copy()), torch.from_numpy(labels.copy()))


@functools.cache
def _rendered() -> tuple[np.ndarray, np.ndarray]:
    """Rendered and preprocessed once per process (about 4 ms a digit)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError(
            "the uci-digits set comes with scikit-learn: pip install 'lenet5[uci]'"
        ) from None
    digits = load_digits()
    images = np.stack([preprocess(render(cells)) for cells in digits.images])
    return images, digits.target.astype(np.int64)
