"""Stroke-drawn digits: every class and style, reproducible, MNIST's format."""

from __future__ import annotations

import numpy as np
import torch

from lenet5.data.preprocess import CENTRE
from lenet5.data.strokes import SKELETONS, smooth, stroke_digits


def test_smooth_passes_through_every_point() -> None:
    points = np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 1.0], [4.0, 4.0]])
    path = smooth(points, steps=5)
    for p in points:
        assert np.min(np.linalg.norm(path - p, axis=1)) < 1e-12
    assert np.array_equal(path[0], points[0]) and np.array_equal(path[-1], points[-1])
    straight = smooth(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]))
    assert np.allclose(straight[:, 0], straight[:, 1])  # collinear points stay on their line


def test_every_digit_and_style_drawn_in_mnist_format() -> None:
    per_class = 2 * max(len(styles) for styles in SKELETONS.values())
    digits = stroke_digits(per_class, seed=0)
    assert digits.images.shape == (10 * per_class, 28, 28)
    assert digits.images.dtype == torch.uint8
    assert torch.bincount(digits.labels).tolist() == [per_class] * 10
    rows, cols = np.indices((28, 28))
    for image in digits.images.numpy().astype(float):
        inked_rows = np.flatnonzero(image.any(axis=1))
        inked_cols = np.flatnonzero(image.any(axis=0))
        size = max(inked_rows[-1] - inked_rows[0], inked_cols[-1] - inked_cols[0]) + 1
        assert 19 <= size <= 21  # fitted to MNIST's 20 px box
        r, c = (rows * image).sum() / image.sum(), (cols * image).sum() / image.sum()
        assert abs(r - CENTRE) <= 1 and abs(c - CENTRE) <= 1


def test_same_seed_same_drawings() -> None:
    a, b, c = stroke_digits(3, seed=1), stroke_digits(3, seed=1), stroke_digits(3, seed=2)
    assert torch.equal(a.images, b.images)
    assert not torch.equal(a.images, c.images)
