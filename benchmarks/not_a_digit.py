"""How honestly models answer: "not a digit" for what is not one, calibrated probabilities for
what is.

For each model (a run directory, a checkpoint, or `bundled`), side by side:
- digits: MNIST validation and test, scikit-learn's UCI digits (read through predict's
  preprocessing) and the European-style digits drawn with strokes (tests/strokes.py): accuracy
  (the argmax of the ten digits), the share answered "not a digit", the expected calibration
  error and the error among the 95% and 99% most confident answers;
- non-digits that no training run sees, made here by code of their own: capital letters drawn
  with a pen (skeletons written for this benchmark, not the training generator's font letters),
  symbols rendered from fonts (% @ & ? and Greek letters), shapes the training generator lacks,
  and two UCI digits in one box (the training pairs are MNIST's): the share answered "not a
  digit", per kind.

    LENET5_DATA=../shared/data/mnist python benchmarks/not_a_digit.py bundled runs/oe-01
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from lenet5.data.fonts import FONT_FILES, RENDER_SIZE, font_dir, render_glyph
from lenet5.data.mnist import load_splits
from lenet5.data.preprocess import centre_digit, preprocess
from lenet5.data.strokes import Points, draw
from lenet5.data.uci import load_uci_digits
from lenet5.inference.calibration import calibration_report, refused
from lenet5.inference.checkpoint import load_model
from lenet5.inference.predict import probabilities
from strokes import STYLES, european_digits

PER_KIND = 300
SEED = 31


def straight(corners: Points) -> Points:
    """A polygon's corners with points along each side, so that the pen's curve through them
    (strokes.draw draws a Catmull-Rom spline) keeps the sides straight and the corners sharp:
    through the corners alone, a diamond or a pentagon comes out as round as a 0."""
    return [
        (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)
        for (x0, y0), (x1, y1) in itertools.pairwise(corners)
        for t in (0.0, 0.25, 0.5, 0.75)
    ] + corners[-1:]


def ring(cx: float, cy: float, r: float) -> Points:
    """A circle of radius r around (cx, cy), through 12 points and back to the first."""
    angles = [2 * math.pi * k / 12 for k in range(13)]
    return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in angles]


# fmt: off
LETTERS: dict[str, list[Points]] = {
    "A": [[(0.15, 0.9), (0.5, 0.1), (0.85, 0.9)], [(0.3, 0.58), (0.7, 0.58)]],
    "E": [[(0.8, 0.1), (0.25, 0.1), (0.25, 0.9), (0.8, 0.9)], [(0.25, 0.5), (0.7, 0.5)]],
    "F": [[(0.8, 0.1), (0.25, 0.1), (0.25, 0.9)], [(0.25, 0.5), (0.7, 0.5)]],
    "H": [[(0.2, 0.1), (0.2, 0.9)], [(0.8, 0.1), (0.8, 0.9)], [(0.2, 0.5), (0.8, 0.5)]],
    "K": [[(0.25, 0.1), (0.25, 0.9)], [(0.8, 0.1), (0.25, 0.55)], [(0.4, 0.45), (0.8, 0.9)]],
    "M": [[(0.12, 0.9), (0.2, 0.1), (0.5, 0.6), (0.8, 0.1), (0.88, 0.9)]],
    "N": [[(0.2, 0.9), (0.2, 0.1), (0.8, 0.9), (0.8, 0.1)]],
    "P": [[(0.25, 0.9), (0.25, 0.1), (0.65, 0.12), (0.78, 0.3), (0.65, 0.48), (0.25, 0.5)]],
    "R": [[(0.25, 0.9), (0.25, 0.1), (0.65, 0.12), (0.78, 0.3), (0.65, 0.48), (0.25, 0.5),
           (0.8, 0.9)]],
    "W": [[(0.08, 0.1), (0.28, 0.9), (0.5, 0.35), (0.72, 0.9), (0.92, 0.1)]],
    "X": [[(0.2, 0.1), (0.8, 0.9)], [(0.8, 0.1), (0.2, 0.9)]],
    "Y": [[(0.2, 0.1), (0.5, 0.5), (0.8, 0.1)], [(0.5, 0.5), (0.5, 0.9)]],
    "e": [[(0.25, 0.55), (0.75, 0.55), (0.7, 0.35), (0.5, 0.28), (0.3, 0.38), (0.25, 0.6),
           (0.35, 0.8), (0.55, 0.86), (0.75, 0.78)]],
    "h": [[(0.25, 0.05), (0.25, 0.9)], [(0.25, 0.55), (0.45, 0.4), (0.7, 0.45), (0.72, 0.9)]],
    "k": [[(0.25, 0.05), (0.25, 0.9)], [(0.7, 0.35), (0.3, 0.62), (0.75, 0.9)]],
}
SHAPES: dict[str, list[Points]] = {
    "infinity": [[(0.5, 0.5), (0.3, 0.3), (0.1, 0.5), (0.3, 0.7), (0.5, 0.5), (0.7, 0.3),
                  (0.9, 0.5), (0.7, 0.7), (0.5, 0.5)]],
    "diamond": [straight([(0.5, 0.08), (0.88, 0.5), (0.5, 0.92), (0.12, 0.5), (0.5, 0.08)])],
    "note": [[(0.55, 0.8), (0.55, 0.1), (0.85, 0.25)], [(0.55, 0.8), (0.4, 0.72), (0.3, 0.8),
             (0.38, 0.9), (0.52, 0.86)]],
    "flower": [[(0.5, 0.5), (0.4, 0.2), (0.5, 0.1), (0.6, 0.2), (0.5, 0.5), (0.8, 0.4),
                (0.9, 0.5), (0.8, 0.6), (0.5, 0.5), (0.6, 0.8), (0.5, 0.9), (0.4, 0.8),
                (0.5, 0.5), (0.2, 0.6), (0.1, 0.5), (0.2, 0.4), (0.5, 0.5)]],
    "pentagon": [straight([(0.5, 0.1), (0.9, 0.4), (0.75, 0.9), (0.25, 0.9), (0.1, 0.4),
                           (0.5, 0.1)])],
    "two_arrows": [[(0.1, 0.5), (0.9, 0.5)], [(0.3, 0.3), (0.1, 0.5), (0.3, 0.7)],
                   [(0.7, 0.3), (0.9, 0.5), (0.7, 0.7)]],
}
# Drawings that the training generator lacks (it makes letters and signs from fonts, the shapes
# of lenet5.data.shapes.SHAPES, scribbles and pairs of digits), to measure how far refusal
# reaches past what training saw.
DRAWINGS: dict[str, list[Points]] = {
    "moon": [[(0.62, 0.08), (0.35, 0.2), (0.24, 0.5), (0.35, 0.8), (0.62, 0.92), (0.48, 0.72),
              (0.44, 0.5), (0.48, 0.28), (0.62, 0.08)]],
    "fish": [[(0.08, 0.5), (0.3, 0.3), (0.55, 0.3), (0.75, 0.5), (0.55, 0.7), (0.3, 0.7),
              (0.08, 0.5)], [(0.75, 0.5), (0.93, 0.3), (0.93, 0.7), (0.75, 0.5)],
             [(0.24, 0.45), (0.26, 0.47)]],
    "sun": [ring(0.5, 0.5, 0.17)] + [
        [(0.5 + 0.26 * math.cos(a), 0.5 + 0.26 * math.sin(a)),
         (0.5 + 0.42 * math.cos(a), 0.5 + 0.42 * math.sin(a))]
        for a in np.linspace(0, 2 * math.pi, 8, endpoint=False)
    ],
    "key": [ring(0.25, 0.5, 0.15), [(0.4, 0.5), (0.92, 0.5)], [(0.72, 0.5), (0.72, 0.66)],
            [(0.85, 0.5), (0.85, 0.66)]],
    "umbrella": [[(0.08, 0.5), (0.25, 0.22), (0.5, 0.12), (0.75, 0.22), (0.92, 0.5),
                  (0.08, 0.5)], [(0.5, 0.5), (0.5, 0.86), (0.42, 0.93), (0.33, 0.86)]],
    "eye": [[(0.06, 0.5), (0.3, 0.3), (0.5, 0.26), (0.7, 0.3), (0.94, 0.5), (0.7, 0.7),
             (0.5, 0.74), (0.3, 0.7), (0.06, 0.5)], ring(0.5, 0.5, 0.1)],
}
# fmt: on
SYMBOLS = "%@&?λΣΩπ"


def held_out_non_digits(uci: Any, rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
    """PER_KIND 28x28 inputs of each kind, made as predict would see them."""
    fonts = [ImageFont.truetype(str(font_dir() / n), RENDER_SIZE) for n in FONT_FILES[:16]]
    letters, shapes = list(LETTERS.values()), list(SHAPES.values())
    kinds: dict[str, list[np.ndarray]] = {"letters": [], "symbols": [], "shapes": [], "pairs": []}
    for _ in range(PER_KIND):
        kinds["letters"].append(draw(letters[int(rng.integers(len(letters)))], rng))
        font = fonts[int(rng.integers(len(fonts)))]
        symbol = SYMBOLS[int(rng.integers(len(SYMBOLS)))]
        kinds["symbols"].append(centre_digit(render_glyph(font, symbol)))
        kinds["shapes"].append(draw(shapes[int(rng.integers(len(shapes)))], rng))
        a, b = (uci.images[int(k)].numpy() for k in rng.integers(len(uci), size=2))
        gap = int(rng.integers(-3, 4))
        left, right = a[:, a.any(axis=0)], b[:, b.any(axis=0)]
        canvas = np.zeros((28, left.shape[1] + right.shape[1] + max(gap, 0)), np.float64)
        canvas[:, : left.shape[1]] = left / 255.0
        start = max(left.shape[1] + gap, 0)
        part = canvas[:, start : start + right.shape[1]]
        canvas[:, start : start + right.shape[1]] = np.maximum(
            part, right[:, : part.shape[1]] / 255
        )
        kinds["pairs"].append(centre_digit(canvas))
    # After the others, so that adding this kind changed none of their images.
    drawings = list(DRAWINGS.values())
    kinds["drawings"] = [
        draw(drawings[int(rng.integers(len(drawings)))], rng) for _ in range(PER_KIND)
    ]
    return kinds


def digit_figures(probs: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    report = calibration_report(probs, labels)
    return {
        "accuracy": float((probs.argmax(axis=1) == labels).mean()),
        "refused": report["rejected"],
        "ece": report["ece"],
        "error_at_95": report["error_at_coverage"]["0.95"],
        "error_at_99": report["error_at_coverage"]["0.99"],
    }


def measure(models: list[str]) -> list[dict[str, Any]]:
    splits = load_splits(progress=False)
    uci = load_uci_digits()
    european = european_digits(200)
    european_inputs = np.stack([preprocess(image) for _, _, image in european])
    european_labels = np.array([STYLES[s][0] for s, _, _ in european])
    non_digits = held_out_non_digits(uci, np.random.default_rng(SEED))
    digit_sets = {
        "mnist_val": (splits.val.images.numpy(), splits.val.labels.numpy()),
        "mnist_test": (splits.test.images.numpy(), splits.test.labels.numpy()),
        "uci": (uci.images.numpy(), uci.labels.numpy()),
        "drawn": (european_inputs, european_labels),
    }
    rows = []
    for name in models:
        model, _ = load_model(None if name == "bundled" else name)
        row: dict[str, Any] = {"model": name}
        for set_name, (images, labels) in digit_sets.items():
            probs = np.concatenate(
                [probabilities(model, images[k : k + 1000]) for k in range(0, len(images), 1000)]
            )
            row[set_name] = digit_figures(probs, labels)
        row["non_digits_refused"] = {
            kind: float(refused(probabilities(model, np.stack(inputs))).mean())
            for kind, inputs in non_digits.items()
        }
        row["non_digits_refused"]["all"] = float(np.mean(list(row["non_digits_refused"].values())))
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="run directories, checkpoints or 'bundled'")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args(argv)
    rows = measure(args.models)
    if args.json is not None:
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
