"""Digits drawn with pen strokes in European styles that MNIST lacks (a test helper).

Each digit is a few strokes through control points in the unit square, drawn as the page draws
(dark round-capped lines, 12-24 px wide, on a white 280x280 canvas) after a random per-point
jitter, slant, size and position, so no two are alike. Nothing here is used for training: the
robust recipe learns from MNIST and rendered fonts only.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

CANVAS = 280
Stroke = list[tuple[float, float]]


def flagged_one(rng: np.random.Generator) -> list[Stroke]:
    """A 1 with a long up-stroke (the flag) into the top of the stem, and sometimes a foot."""
    top = (0.55, 0.1)
    flag_len = rng.uniform(0.2, 0.4)
    flag_angle = np.radians(rng.uniform(20, 50))  # below the horizontal, to the left
    flag = (top[0] - flag_len * np.cos(flag_angle), top[1] + flag_len * np.sin(flag_angle))
    strokes = [[flag, top, (0.55, 0.9)]]
    if rng.random() < 0.4:
        strokes.append([(0.38, 0.9), (0.72, 0.9)])
    return strokes


def crossed_seven(rng: np.random.Generator) -> list[Stroke]:
    """A 7 with a bar across the middle of its stem, sometimes with a small hook at the start."""
    start = [(0.25, 0.24)] if rng.random() < 0.4 else []
    corner = (0.75, 0.12)
    foot = (rng.uniform(0.35, 0.5), 0.9)
    seven = [*start, (0.25, 0.12), corner, foot]
    t = rng.uniform(0.45, 0.6)  # where the bar crosses the stem, along it
    cx, cy = corner[0] + t * (foot[0] - corner[0]), corner[1] + t * (foot[1] - corner[1])
    half = rng.uniform(0.12, 0.2)
    return [seven, [(cx - half, cy), (cx + half, cy)]]


STYLES = {"flagged 1": (1, flagged_one), "crossed 7": (7, crossed_seven)}


def draw(strokes: list[Stroke], rng: np.random.Generator) -> Image.Image:
    """Strokes in the unit square -> a white 280x280 grayscale canvas with the digit in ink."""
    size = rng.uniform(0.45, 0.8) * CANVAS
    slant = rng.uniform(-0.25, 0.25)
    left = rng.uniform(0.05, 0.95 - 0.8 * size / CANVAS) * CANVAS
    top = rng.uniform(0.05, 0.95 - size / CANVAS) * CANVAS
    width = int(rng.integers(12, 25))
    image = Image.new("L", (CANVAS, CANVAS), 255)
    pen = ImageDraw.Draw(image)
    for stroke in strokes:
        points = []
        for x, y in stroke:
            x, y = x + rng.normal(0, 0.025), y + rng.normal(0, 0.025)
            x += slant * (0.5 - y)  # slant to the right for positive values
            points.append((left + 0.8 * x * size, top + y * size))
        pen.line(points, fill=17, width=width, joint="curve")
        for px, py in (points[0], points[-1]):  # round caps, as the page's lineCap
            pen.ellipse((px - width / 2, py - width / 2, px + width / 2, py + width / 2), fill=17)
    return image


def european_digits(count: int, seed: int = 1) -> list[tuple[str, int, Image.Image]]:
    """`count` drawings of each style: (style, label, image)."""
    rng = np.random.default_rng(seed)
    return [
        (style, label, draw(make(rng), rng))
        for style, (label, make) in STYLES.items()
        for _ in range(count)
    ]
