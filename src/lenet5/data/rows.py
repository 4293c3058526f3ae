"""Rows of handwritten digits (numbers) made from single digits, apart or touching.

A person writing a number leaves gaps between some digits and lets others touch or overlap a
little. `make_row` puts digit images side by side at one height, either with a gap of paper
between neighbours or moved together until their ink touches (and then overlaps by a pixel or
two), and gives the row as dark ink on white paper with each digit's box. Rows for measuring
are made from scikit-learn's UCI digits or MNIST's test split; rows for training, only from
MNIST's training split (never the test split). `row_input` makes a row's ink the row reader's
input, as `centre_digit` makes one digit's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

DIGIT_HEIGHT = 40  # pixels: a digit's typical height in a row (as on a page or a scan)
MARGIN = 12  # pixels of paper around the row
SOLID = 0.5  # ink above this counts when measuring whether neighbours touch
INPUT_HEIGHT = 28  # the row reader's input: MNIST's height...
INPUT_DIGIT = 20  # ...with the digits as high as MNIST's 20-pixel box...
INPUT_ROOM = 26  # ...unless the row's ink (digits set higher or lower) needs more than this
INPUT_PAD = 14  # paper left and right: half a window, so that the end digits are seen whole
INPUT_MIN_WIDTH = INPUT_HEIGHT + 4  # the reader's two sweeps, 2 pixels apart, need 30


@dataclass
class Row:
    image: Image.Image  # dark ink on white paper, mode "L"
    number: str  # the digits, left to right
    boxes: list[tuple[int, int, int, int]]  # each digit's ink [x0, y0, x1, y1), in pixels


def ink_crop(image: np.ndarray, light_paper: bool = False) -> np.ndarray:
    """A digit picture (2-D, 0-255) -> its ink in [0, 1], cropped to the ink."""
    ink = np.asarray(image, np.float32) / 255.0
    if light_paper:
        ink = 1.0 - ink
    ink[ink < 0.1] = 0.0  # paper's noise is not ink
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _resized(ink: np.ndarray, height: int) -> np.ndarray:
    h, w = ink.shape
    width = max(1, round(w * height / h))
    picture = Image.fromarray(ink, mode="F").resize((width, height), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(picture), 0.0, 1.0)


def _touching_offset(canvas: np.ndarray, top: int, digit: np.ndarray) -> int:
    """The leftmost column at which `digit`, placed at row `top`, still has a column of paper
    between its ink and the canvas's ink on every row (bounding boxes if no row is shared)."""
    solid_canvas, solid_digit = canvas[top : top + digit.shape[0]] > SOLID, digit > SOLID
    shared = solid_canvas.any(axis=1) & solid_digit.any(axis=1)
    if not shared.any():
        return int(np.flatnonzero(canvas.any(axis=0))[-1]) + 1
    width = canvas.shape[1]
    right = np.array([width - 1 - np.argmax(r[::-1]) for r in solid_canvas[shared]])
    left = np.array([np.argmax(r) for r in solid_digit[shared]])
    return int(np.max(right - left)) + 2  # one blank column between them


def make_row(
    digits: list[np.ndarray],
    labels: list[int],
    rng: np.random.Generator,
    touching: bool,
    overlap: float = 0.08,
) -> Row:
    """A row of `digits` (ink crops in [0, 1]) at one height with a little jitter: a gap of
    paper between neighbours, or (`touching`) neighbours whose ink touches or overlaps by up
    to `overlap` times the height."""
    height = DIGIT_HEIGHT
    scaled = [_resized(d, round(height * rng.uniform(0.9, 1.1))) for d in digits]
    canvas_h = int(height * 1.4) + 2 * MARGIN
    canvas = np.zeros((canvas_h, sum(d.shape[1] for d in scaled) + 20 * len(scaled) + 2 * MARGIN))
    boxes: list[tuple[int, int, int, int]] = []
    for d in scaled:
        top = MARGIN + int(rng.integers(0, canvas_h - 2 * MARGIN - d.shape[0] + 1))
        if not boxes:
            left = MARGIN
        elif touching:
            shift = int(rng.integers(0, round(overlap * height) + 1))
            left = _touching_offset(canvas, top, d) - 1 - shift
            left = max(left, boxes[-1][0] + 1)  # (a digit whose solid ink starts far right)
        else:
            left = boxes[-1][2] + int(rng.integers(round(0.1 * height), round(0.35 * height) + 1))
        window = canvas[top : top + d.shape[0], left : left + d.shape[1]]
        np.maximum(window, d, out=window)
        boxes.append((left, top, left + d.shape[1], top + d.shape[0]))
    right = max(b[2] for b in boxes) + MARGIN
    paper = np.round(255 * (1.0 - canvas[:, :right])).astype(np.uint8)
    return Row(Image.fromarray(paper, mode="L"), "".join(map(str, labels)), boxes)


def make_rows(
    crops: list[np.ndarray],
    labels: np.ndarray,
    count: int,
    touching: bool,
    lengths: tuple[int, int] = (4, 6),
    seed: int = 0,
) -> list[Row]:
    """`count` rows of `lengths` digits (inclusive) drawn at random from `crops` (ink crops
    with their `labels`)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(count):
        picks = rng.integers(len(crops), size=int(rng.integers(lengths[0], lengths[1] + 1)))
        rows.append(
            make_row([crops[k] for k in picks], [int(labels[k]) for k in picks], rng, touching)
        )
    return rows


def row_input(ink: np.ndarray, height: float, stretch: float = 1.0) -> tuple[np.ndarray, float]:
    """A row's ink map (H, W) in [0, 1], its digits `height` pixels high -> the row reader's
    input (INPUT_HEIGHT, W') float32 in [0, 1], and the scale across (input pixels per ink
    pixel; `stretch` times the scale in height). The ink is centred in height and starts
    INPUT_PAD from the left, with at least as much paper on its right; its strokes are made as
    dark as centre_digit makes them."""
    h, w = ink.shape
    scale = min(INPUT_DIGIT / max(height, 1.0), INPUT_ROOM / h)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale * stretch))
    picture = Image.fromarray(np.ascontiguousarray(ink, np.float32), mode="F")
    small = np.clip(np.asarray(picture.resize((new_w, new_h), Image.Resampling.BILINEAR)), 0, 1)
    strokes = small[small > 0.05]
    core = float(np.percentile(strokes, 90)) if strokes.size else 1.0
    width = max(new_w + 2 * INPUT_PAD, INPUT_MIN_WIDTH)
    out = np.zeros((INPUT_HEIGHT, width), np.float32)
    top, left = (INPUT_HEIGHT - new_h) // 2, INPUT_PAD
    out[top : top + new_h, left : left + new_w] = np.minimum(small / max(core, 1e-6), 1.0)
    return out, scale * stretch


def thinned(x: torch.Tensor) -> torch.Tensor:
    """Rows (N, 1, H, W) with their strokes thinned: each pixel halfway to the darkest of its
    3x3 neighbourhood (bold pens and other hands' scans, as UCI's, read better so)."""
    import torch.nn.functional as F

    return (x - F.max_pool2d(-x, 3, stride=1, padding=1)) / 2


def batch_inputs(inputs: list[np.ndarray]) -> torch.Tensor:
    """Row reader inputs (28, W_i) -> one batch (N, 1, 28, max W_i), paper (0) on the right."""
    import torch

    x = torch.zeros(len(inputs), 1, inputs[0].shape[0], max(i.shape[1] for i in inputs))
    for k, i in enumerate(inputs):
        x[k, 0, :, : i.shape[1]] = torch.from_numpy(i)
    return x
