"""Render MNIST digits the way people's photos of handwriting look (a test helper)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage

CANVAS = 300


def render_photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A (28, 28) MNIST digit -> JPEG bytes: dark ink on light, uneven paper, 300x300 canvas,
    digit off-centre, random scale and stroke thickness, sensor noise."""
    height = int(rng.integers(70, 220))  # the digit's 28 px box becomes 70-220 px
    big = np.asarray(
        Image.fromarray(digit).resize((height, height), Image.Resampling.BICUBIC), dtype=float
    )
    thickness = int(rng.integers(-2, 5)) * height // 100  # thinner or bolder pen
    if thickness > 0:
        big = ndimage.grey_dilation(big, size=(thickness + 1, thickness + 1))
    elif thickness < 0:
        big = ndimage.grey_erosion(big, size=(1 - thickness, 1 - thickness))
    ink = np.zeros((CANVAS, CANVAS))
    top, left = rng.integers(0, CANVAS - height + 1, size=2)
    ink[top : top + height, left : left + height] = np.clip(big, 0, 255) / 255
    paper_level = rng.uniform(185, 245)
    gradient = np.linspace(0, rng.uniform(-25, 25), CANVAS)[None, :]  # uneven lighting
    paper = paper_level + gradient + rng.normal(0, 4, size=(CANVAS, CANVAS))
    pen = rng.uniform(10, 80)
    photo = paper * (1 - ink) + pen * ink + rng.normal(0, 3, size=(CANVAS, CANVAS))
    rgb = np.repeat(np.clip(photo, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=int(rng.integers(60, 95)))
    return out.getvalue()


def naive_input(photo: bytes) -> np.ndarray:
    """What a script without preprocessing feeds the model: grayscale, resized to 28x28."""
    image = Image.open(io.BytesIO(photo)).convert("L").resize((28, 28), Image.Resampling.BILINEAR)
    return np.asarray(image)
