"""Images that are not digits, for teaching a model to say so.

Outlier exposure (Hendrycks, Mazeika, Dietterich 2019): beside the digits, a model learns to
answer these with equal probabilities for every digit. Four kinds take turns: letters and signs
rendered from matplotlib's fonts (those that no one would read as a digit), shapes drawn with a
pen (a star, a heart, an arrow, a smiley...), random scribbles, and
two training digits squeezed into one box, as LeNet-5's own "garbage" class held the pieces of
a number that are not one digit (LeCun et al. 1998). The judge (`lenet5.models.Judged`) learns
from four more (BROAD_KINDS): polygons and stars with straight sides, spirograph curves, two
non-digits drawn over each other, and letters drawn with a pen. Every image is made in MNIST's
format like any training digit.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from PIL import ImageFont

from lenet5.data.fonts import FONT_FILES, RENDER_SIZE, font_dir, render_glyph
from lenet5.data.mnist import Split
from lenet5.data.preprocess import centre_digit
from lenet5.data.strokes import Points, draw

NOT_A_DIGIT = 10  # the label of these images in a training split

# Letters a reader could take for a digit (O for 0, l for 1, Z for 2, S for 5, B for 8, g for 9,
# b for 6...) are left out: teaching them as "not a digit" would teach refusing real digits.
LETTERS = "ACEFHKLMNPRUVWXacdefhkmnprtuvwx"
SYMBOLS = "#*+=<>^~$€£¥©®αγεημρφψωΔΛΞΠΦΨ"  # and signs and Greek letters in the same fonts

# Letters drawn with a pen, as people write them (fonts alone draw them too evenly); the same
# rule leaves out those a reader could take for a digit (a pen's G passes for a 6).
# fmt: off
PEN_LETTERS: dict[str, list[Points]] = {
    "C": [[(0.8, 0.2), (0.55, 0.1), (0.3, 0.2), (0.2, 0.5), (0.3, 0.8), (0.55, 0.9), (0.8, 0.8)]],
    "L": [[(0.3, 0.1), (0.3, 0.9), (0.8, 0.9)]],
    "U": [[(0.22, 0.1), (0.22, 0.7), (0.35, 0.88), (0.65, 0.88), (0.78, 0.7), (0.78, 0.1)]],
    "V": [[(0.15, 0.1), (0.5, 0.9), (0.85, 0.1)]],
    "T": [[(0.12, 0.12), (0.88, 0.12)], [(0.5, 0.12), (0.5, 0.9)]],
    "a": [[(0.7, 0.45), (0.5, 0.35), (0.3, 0.45), (0.25, 0.7), (0.4, 0.88), (0.62, 0.8),
           (0.7, 0.6)], [(0.7, 0.35), (0.7, 0.9)]],
    "m": [[(0.12, 0.9), (0.12, 0.4)], [(0.12, 0.5), (0.3, 0.38), (0.46, 0.5), (0.46, 0.9)],
          [(0.46, 0.5), (0.66, 0.38), (0.84, 0.5), (0.84, 0.9)]],
    "n": [[(0.25, 0.9), (0.25, 0.4)], [(0.25, 0.5), (0.5, 0.38), (0.72, 0.5), (0.72, 0.9)]],
    "r": [[(0.35, 0.9), (0.35, 0.4)], [(0.35, 0.55), (0.52, 0.4), (0.72, 0.4)]],
    "w": [[(0.1, 0.4), (0.3, 0.9), (0.5, 0.5), (0.7, 0.9), (0.9, 0.4)]],
    "y": [[(0.25, 0.3), (0.5, 0.65)], [(0.75, 0.3), (0.45, 0.95)]],
}
# fmt: on

# shape -> strokes (x right, y down, in the unit square), drawn as `strokes.draw` draws digits.
# fmt: off
SHAPES: dict[str, list[Points]] = {
    "star": [[(0.5, 0.05), (0.62, 0.38), (0.95, 0.4), (0.68, 0.6), (0.8, 0.95), (0.5, 0.74),
              (0.2, 0.95), (0.32, 0.6), (0.05, 0.4), (0.38, 0.38), (0.5, 0.05)]],
    "heart": [[(0.5, 0.3), (0.38, 0.12), (0.16, 0.14), (0.08, 0.34), (0.2, 0.58), (0.5, 0.9)],
              [(0.5, 0.3), (0.62, 0.12), (0.84, 0.14), (0.92, 0.34), (0.8, 0.58), (0.5, 0.9)]],
    "spiral": [[(0.5, 0.5), (0.56, 0.44), (0.6, 0.54), (0.5, 0.62), (0.38, 0.52), (0.44, 0.34),
                (0.62, 0.3), (0.76, 0.48), (0.66, 0.74), (0.4, 0.78), (0.22, 0.56), (0.3, 0.24),
                (0.56, 0.12), (0.86, 0.3)]],
    "arrow": [[(0.1, 0.5), (0.9, 0.5)], [(0.62, 0.24), (0.9, 0.5), (0.62, 0.76)]],
    "check": [[(0.12, 0.52), (0.38, 0.82), (0.9, 0.12)]],
    "hash": [[(0.38, 0.1), (0.3, 0.9)], [(0.7, 0.1), (0.62, 0.9)], [(0.12, 0.36), (0.9, 0.36)],
             [(0.1, 0.66), (0.88, 0.66)]],
    "plus": [[(0.5, 0.1), (0.5, 0.9)], [(0.1, 0.5), (0.9, 0.5)]],
    "cross": [[(0.15, 0.15), (0.85, 0.85)], [(0.85, 0.15), (0.15, 0.85)]],
    "asterisk": [[(0.5, 0.1), (0.5, 0.9)], [(0.15, 0.3), (0.85, 0.7)], [(0.85, 0.3), (0.15, 0.7)]],
    "triangle": [[(0.5, 0.1), (0.9, 0.85), (0.1, 0.85), (0.5, 0.1)]],
    "square": [[(0.15, 0.15), (0.85, 0.15), (0.85, 0.85), (0.15, 0.85), (0.15, 0.15)]],
    "smiley": [[(0.5, 0.08), (0.2, 0.2), (0.08, 0.5), (0.2, 0.8), (0.5, 0.92), (0.8, 0.8),
                (0.92, 0.5), (0.8, 0.2), (0.5, 0.08)],
               [(0.34, 0.34), (0.36, 0.38)], [(0.64, 0.34), (0.66, 0.38)],
               [(0.3, 0.6), (0.5, 0.74), (0.7, 0.6)]],
    "wave": [[(0.05, 0.5), (0.2, 0.3), (0.35, 0.5), (0.5, 0.7), (0.65, 0.5), (0.8, 0.3),
              (0.95, 0.5)]],
    "zigzag": [[(0.05, 0.3), (0.25, 0.7), (0.45, 0.3), (0.65, 0.7), (0.85, 0.3), (0.95, 0.6)]],
    "lightning": [[(0.6, 0.05), (0.3, 0.5), (0.6, 0.5), (0.35, 0.95)]],
    "house": [[(0.15, 0.9), (0.15, 0.45), (0.5, 0.1), (0.85, 0.45), (0.85, 0.9), (0.15, 0.9)],
              [(0.42, 0.9), (0.42, 0.65), (0.58, 0.65), (0.58, 0.9)]],
    "crossed_box": [[(0.15, 0.15), (0.85, 0.15), (0.85, 0.85), (0.15, 0.85), (0.15, 0.15)],
                    [(0.15, 0.15), (0.85, 0.85)]],
    "tilde": [[(0.1, 0.55), (0.3, 0.4), (0.5, 0.55), (0.7, 0.6), (0.9, 0.45)]],
}
# fmt: on
KINDS = ("letter", "shape", "scribble", "pair")
BROAD_KINDS = (*KINDS, "polygon", "curve", "compound", "pen_letter")  # the judge's
MIN_WIDTH = 10  # pixels of a 28x28 image: narrower drawings are left out
MIN_THICKNESS = 0.1  # least ratio of the ink's spread across its main axis to along it


def _letter(rng: np.random.Generator, fonts: list[ImageFont.FreeTypeFont]) -> np.ndarray:
    font = fonts[int(rng.integers(len(fonts)))]
    glyphs = LETTERS if rng.random() < 0.6 else SYMBOLS
    return centre_digit(render_glyph(font, glyphs[int(rng.integers(len(glyphs)))]))


def _unlike_a_one(image: np.ndarray) -> bool:
    """Whether a drawing is neither narrow nor one straight line, as a 1 is: teaching such a
    drawing as "not a digit" would teach refusing 1s."""
    rows, cols = np.nonzero(image > 127)
    if len(cols) < 2 or np.ptp(cols) + 1 < MIN_WIDTH:
        return False
    spread = np.linalg.eigvalsh(np.cov(np.stack([rows, cols]).astype(np.float64)))
    return bool(spread[0] > MIN_THICKNESS * spread[1])  # a line: all its spread along one axis


def _scribble(rng: np.random.Generator) -> np.ndarray:
    """A pen wandering through 5-10 random points, sometimes lifted once."""
    points = [tuple(p) for p in rng.uniform(0.1, 0.9, size=(int(rng.integers(5, 11)), 2))]
    cut = int(rng.integers(2, len(points) - 1))
    strokes = [points[:cut], points[cut:]] if rng.random() < 0.3 else [points]
    return draw(strokes, rng)


def _pair(rng: np.random.Generator, train: Split) -> np.ndarray:
    """Two training digits side by side in one box, touching or a little apart."""
    a, b = (train.images[int(k)].numpy() for k in rng.integers(len(train), size=2))
    gap = int(rng.integers(-4, 3))  # negative: the two overlap by that many columns
    left, right = a[:, a.any(axis=0)], b[:, b.any(axis=0)]
    width = left.shape[1] + right.shape[1] + gap
    canvas = np.zeros((28, max(width, left.shape[1], right.shape[1])), np.float64)
    canvas[:, : left.shape[1]] = left / 255.0
    start = max(0, left.shape[1] + gap)  # (a 1 may be narrower than the overlap)
    canvas[:, start : start + right.shape[1]] = np.maximum(
        canvas[:, start : start + right.shape[1]], right / 255.0
    )
    return centre_digit(canvas)


def _polygon(rng: np.random.Generator) -> np.ndarray:
    """A closed polygon of 3-7 corners, or a star, turned any way, its sides kept straight."""
    corners = int(rng.integers(3, 8))
    step = 2 if corners >= 5 and rng.random() < 0.3 else 1  # a star: every second corner
    angles = 2 * np.pi * (np.arange(corners) * step / corners + rng.uniform(0, 1))
    angles += rng.normal(0, 0.12, corners)
    radius = 0.4 * rng.uniform(0.85, 1.15, corners)
    aspect = rng.uniform(0.7, 1.4)
    vertices = np.stack([0.5 + radius * np.cos(angles) * aspect, 0.5 + radius * np.sin(angles)], 1)
    vertices = np.vstack([vertices, vertices[:1]])
    # Points along each side keep the pen's spline straight between corners.
    t = np.linspace(0, 1, 4, endpoint=False)[:, None]
    path = np.vstack([a + (b - a) * t for a, b in itertools.pairwise(vertices)])
    return draw([[tuple(p) for p in np.vstack([path, vertices[:1]])]], rng)


def _curve(rng: np.random.Generator) -> np.ndarray:
    """A closed curve of a spirograph's kind: a rose, a Lissajous figure or a hypotrochoid."""
    family = int(rng.integers(3))
    t = np.linspace(0, 2 * np.pi, 80)
    if family == 0:  # a rose of 2-5 petals
        petals = int(rng.integers(2, 6))
        r = np.cos(petals * t)
        x, y = r * np.cos(t), r * np.sin(t)
    elif family == 1:  # not (2, 1): that one stands up as an 8
        a, b = [(1, 2), (3, 2), (2, 3), (3, 4), (1, 3), (3, 1)][int(rng.integers(6))]
        x, y = np.sin(a * t + rng.uniform(0, np.pi)), np.sin(b * t)
    else:  # a hypotrochoid: a pen on a wheel rolling inside a ring
        big, small = [(3, 1), (4, 1), (5, 1), (5, 2)][int(rng.integers(4))]
        pen = rng.uniform(0.5, 1.2) * small
        t = np.linspace(0, 2 * np.pi * small, 80 * small)
        x = (big - small) * np.cos(t) + pen * np.cos((big - small) / small * t)
        y = (big - small) * np.sin(t) - pen * np.sin((big - small) / small * t)
    points = np.stack([x, y], 1)
    points = (points - points.min(0)) / np.ptp(points, axis=0).max()  # in the unit square
    return draw([[tuple(p) for p in 0.1 + 0.8 * points]], rng)


def _compound(parts: tuple[np.ndarray, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Two non-digits drawn over or beside each other, as signs like % & @ are made."""
    a, b = parts
    dy, dx = int(rng.integers(-7, 8)), int(rng.integers(-4, 12))
    canvas = np.zeros((28 + 2 * 7, 28 + 16), np.float64)
    canvas[7 : 7 + 28, 4 : 4 + 28] = a / 255.0
    region = canvas[7 + dy : 7 + dy + 28, 4 + dx : 4 + dx + 28]
    np.maximum(region, b / 255.0, out=region)
    return centre_digit(canvas)


def non_digits(count: int, train: Split, seed: int = 0, kinds: tuple[str, ...] = KINDS) -> Split:
    """`count` images that are not digits, `kinds` (of BROAD_KINDS) taking turns, labelled
    NOT_A_DIGIT. `train` gives the digits that pairs are made of (a training split, never a
    test split)."""
    rng = np.random.default_rng(seed)
    fonts = [ImageFont.truetype(str(font_dir() / n), RENDER_SIZE) for n in FONT_FILES]
    shapes, pen_letters = list(SHAPES.values()), list(PEN_LETTERS.values())
    images: list[np.ndarray] = []
    while len(images) < count:
        kind = kinds[len(images) % len(kinds)]
        if kind == "letter":
            image = _letter(rng, fonts)
        elif kind == "shape":
            image = draw(shapes[int(rng.integers(len(shapes)))], rng)
        elif kind == "scribble":
            image = _scribble(rng)
        elif kind == "pair":
            image = _pair(rng, train)
        elif kind == "polygon":
            image = _polygon(rng)
        elif kind == "curve":
            image = _curve(rng)
        elif kind == "pen_letter":
            image = draw(pen_letters[int(rng.integers(len(pen_letters)))], rng)
        else:
            image = _compound(
                (_letter(rng, fonts), draw(shapes[int(rng.integers(len(shapes)))], rng))
                if rng.random() < 0.5
                else (_polygon(rng), _curve(rng)),
                rng,
            )
        if _unlike_a_one(image):
            images.append(image)
    stacked = np.stack(images) if images else np.zeros((0, 28, 28), np.uint8)
    labels = torch.full((count,), NOT_A_DIGIT, dtype=torch.int64)
    return Split(torch.from_numpy(stacked), labels)
