"""Digits the tool draws itself, stroke by stroke, in the styles MNIST's writers rarely used.

MNIST was written by American Census employees and students. Much of the world writes a 1 with a
long up-stroke (a flag) and often a foot, a 7 with a crossbar, a 4 open at the top or bent into
its bar, a 9 with a curled tail. Each digit here has a few skeletons (strokes through points of
the unit square, the common styles too, so that no style stands for a class); each drawing
jitters every point, slants, narrows and rotates the whole, smooths the strokes into curves and
draws them with a round pen of random width, then fits it as MNIST was made.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw

from lenet5.data.mnist import Split
from lenet5.data.preprocess import centre_digit

Points = list[tuple[float, float]]

# digit -> styles; a style is a list of strokes (x right, y down, in the unit square).
# fmt: off
SKELETONS: dict[int, list[list[Points]]] = {
    0: [
        [[(0.5, 0.1), (0.3, 0.22), (0.24, 0.5), (0.3, 0.8), (0.5, 0.9), (0.7, 0.8), (0.76, 0.5),
          (0.7, 0.2), (0.5, 0.1), (0.42, 0.15)]],
    ],
    1: [
        [[(0.5, 0.1), (0.5, 0.9)]],  # a plain bar
        [[(0.3, 0.38), (0.42, 0.24), (0.54, 0.1), (0.54, 0.9)]],  # long flag
        [[(0.32, 0.3), (0.54, 0.1), (0.54, 0.9)], [(0.34, 0.9), (0.74, 0.9)]],  # flag and foot
        [[(0.2, 0.3), (0.4, 0.2), (0.6, 0.1), (0.58, 0.9)], [(0.4, 0.9), (0.76, 0.9)]],  # flat
    ],
    2: [
        [[(0.26, 0.28), (0.4, 0.12), (0.6, 0.1), (0.74, 0.24), (0.7, 0.42), (0.48, 0.64),
          (0.24, 0.9), (0.5, 0.88), (0.78, 0.9)]],
        [[(0.26, 0.26), (0.5, 0.1), (0.72, 0.22), (0.66, 0.45), (0.3, 0.86), (0.24, 0.92),
          (0.36, 0.8), (0.5, 0.86), (0.8, 0.88)]],  # a loop at the bottom
    ],
    3: [
        [[(0.26, 0.2), (0.48, 0.1), (0.7, 0.18), (0.7, 0.38), (0.46, 0.5), (0.72, 0.6),
          (0.74, 0.8), (0.5, 0.9), (0.26, 0.82)]],
        [[(0.26, 0.12), (0.74, 0.12), (0.46, 0.44), (0.7, 0.56), (0.74, 0.78), (0.5, 0.9),
          (0.26, 0.82)]],  # flat top
    ],
    4: [
        [[(0.62, 0.1), (0.22, 0.64), (0.8, 0.64)], [(0.62, 0.1), (0.62, 0.9)]],  # closed
        [[(0.3, 0.1), (0.26, 0.58), (0.8, 0.58)], [(0.64, 0.24), (0.64, 0.9)]],  # open
        [[(0.3, 0.1), (0.26, 0.44), (0.4, 0.58), (0.82, 0.56)],
         [(0.68, 0.1), (0.67, 0.6), (0.66, 0.92)]],  # bent into its bar
        [[(0.34, 0.1), (0.22, 0.38), (0.28, 0.56), (0.5, 0.6), (0.82, 0.54)],
         [(0.66, 0.28), (0.66, 0.92)]],  # round, its stem shorter than the left stroke
        [[(0.58, 0.1), (0.38, 0.3), (0.26, 0.52), (0.36, 0.64), (0.6, 0.63), (0.84, 0.6)],
         [(0.7, 0.4), (0.68, 0.92)]],  # curved into its bar, the stem starting near the bar
        [[(0.72, 0.1), (0.46, 0.22), (0.28, 0.45), (0.32, 0.62), (0.6, 0.64), (0.86, 0.6)],
         [(0.76, 0.36), (0.7, 0.94)]],  # a C run into its bar
    ],
    5: [
        [[(0.72, 0.1), (0.34, 0.1), (0.3, 0.46), (0.52, 0.4), (0.72, 0.52), (0.74, 0.76),
          (0.52, 0.9), (0.26, 0.82)]],
        [[(0.34, 0.1), (0.3, 0.46), (0.52, 0.4), (0.72, 0.52), (0.74, 0.76), (0.52, 0.9),
          (0.26, 0.82)], [(0.34, 0.1), (0.74, 0.1)]],  # bar drawn apart
    ],
    6: [
        [[(0.68, 0.1), (0.46, 0.2), (0.3, 0.46), (0.28, 0.72), (0.46, 0.9), (0.68, 0.82),
          (0.72, 0.62), (0.52, 0.5), (0.3, 0.62)]],
    ],
    7: [
        [[(0.22, 0.12), (0.78, 0.12), (0.46, 0.9)]],
        [[(0.22, 0.12), (0.78, 0.12), (0.46, 0.9)], [(0.4, 0.5), (0.78, 0.5)]],  # crossed
        [[(0.22, 0.26), (0.22, 0.12), (0.78, 0.12), (0.5, 0.9)]],  # with a hook
    ],
    8: [
        [[(0.5, 0.5), (0.7, 0.34), (0.66, 0.14), (0.5, 0.1), (0.32, 0.15), (0.3, 0.34),
          (0.5, 0.5), (0.72, 0.68), (0.68, 0.88), (0.5, 0.92), (0.3, 0.86), (0.28, 0.68),
          (0.5, 0.5)]],
    ],
    9: [
        [[(0.7, 0.3), (0.54, 0.46), (0.34, 0.42), (0.28, 0.24), (0.46, 0.1), (0.66, 0.14),
          (0.7, 0.3), (0.68, 0.9)]],  # straight stem
        [[(0.7, 0.3), (0.54, 0.46), (0.34, 0.42), (0.28, 0.24), (0.46, 0.1), (0.66, 0.14),
          (0.7, 0.3), (0.68, 0.68), (0.56, 0.88), (0.34, 0.86)]],  # curled tail
        [[(0.68, 0.26), (0.5, 0.4), (0.34, 0.34), (0.34, 0.16), (0.52, 0.08), (0.68, 0.16),
          (0.68, 0.26), (0.7, 0.56), (0.6, 0.82), (0.4, 0.9), (0.24, 0.8)]],  # small loop, hooked
    ],
}
# fmt: on
CANVAS = 112  # drawing size in pixels; centre_digit then fits the ink to 20 px
JITTER = 0.03  # standard deviation of each point's displacement, in units of the digit
MAX_SLANT = 0.3
MAX_ROTATION = math.radians(8)
PEN = (5, 13)  # pen widths in pixels, on the 112-pixel canvas


def smooth(points: np.ndarray, steps: int = 8) -> np.ndarray:
    """A Catmull-Rom curve through `points` (K, 2): the pen's path."""
    if len(points) < 3:
        return points
    padded = np.vstack([points[0], points, points[-1]])
    t = np.linspace(0, 1, steps, endpoint=False)[:, None]
    out = []
    for p0, p1, p2, p3 in zip(padded, padded[1:], padded[2:], padded[3:], strict=False):
        out.append(
            0.5
            * (
                2 * p1
                + (p2 - p0) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (3 * p1 - p0 - 3 * p2 + p3) * t**3
            )
        )
    return np.vstack([*out, points[-1:]])


def draw(strokes: list[Points], rng: np.random.Generator) -> np.ndarray:
    """One drawing of a style -> MNIST-style uint8 (28, 28)."""
    slant = rng.uniform(-MAX_SLANT, MAX_SLANT)
    width = rng.uniform(0.7, 1.15)
    angle = rng.uniform(-MAX_ROTATION, MAX_ROTATION)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    pen = int(rng.integers(*PEN, endpoint=True))
    image = Image.new("F", (CANVAS, CANVAS), 0.0)
    paint = ImageDraw.Draw(image)
    for stroke in strokes:
        points = np.asarray(stroke) + rng.normal(0, JITTER, size=(len(stroke), 2))
        centred = points - 0.5
        centred[:, 0] = centred[:, 0] * width + slant * (0.0 - centred[:, 1])
        path = smooth(centred @ rotation.T * 0.7 + 0.5) * CANVAS
        paint.line([tuple(p) for p in path], fill=1.0, width=pen, joint="curve")
        for x, y in (path[0], path[-1]):  # round ends
            paint.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=1.0)
    return centre_digit(np.asarray(image, dtype=np.float64))


def stroke_digits(per_class: int, seed: int = 0) -> Split:
    """`per_class` drawings of each digit, its styles taking turns."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for digit, styles in SKELETONS.items():
        for k in range(per_class):
            images.append(draw(styles[k % len(styles)], rng))
            labels.append(digit)
    return Split(torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.int64))
