"""Digits rendered from fonts, as extra training images in MNIST's format.

The fonts are the ones matplotlib ships inside its package (DejaVu, STIX, Computer Modern), so
every machine renders the same images. Their 1s carry the flag and foot that European writers
draw and MNIST's American writers mostly leave out; each 7 is rendered a second time with the
crossbar written across its stem in much of Europe.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from lenet5.data.mnist import Split
from lenet5.data.preprocess import centre_digit

FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "STIXGeneralBolIta.ttf",
    "cmr10.ttf",
    "cmb10.ttf",
    "cmss10.ttf",
    "cmtt10.ttf",
    "cmti10.ttf",
)
RENDER_SIZE = 96  # font size in pixels; centre_digit then fits each glyph to 20 px
CROSSBAR = (0.45, 0.62, 0.1)  # crossed 7: bar height, length and thickness, shares of the glyph


def font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def render_glyph(font: ImageFont.FreeTypeFont, glyph: int | str) -> np.ndarray:
    """One digit (or letter) as an ink map (H, W) in [0, 1], cropped to its ink."""
    text = str(glyph)
    left, top, right, bottom = (round(v) for v in font.getbbox(text))
    canvas = Image.new("L", (right - left + 8, bottom - top + 8), 0)
    ImageDraw.Draw(canvas).text((4 - left, 4 - top), text, fill=255, font=font)
    ink = np.asarray(canvas, dtype=np.float64) / 255.0
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def cross_seven(ink: np.ndarray) -> np.ndarray:
    """A 7 glyph with a short horizontal bar across its stem."""
    h, w = ink.shape
    height, length, thickness = CROSSBAR
    row = int(h * height)
    # The stem's centre at that height: the middle of the ink on that row.
    on_row = np.flatnonzero(ink[row] > 0.5)
    centre = int(on_row.mean()) if on_row.size else w // 2
    half, bar = max(1, int(w * length / 2)), max(2, int(h * thickness))
    crossed = ink.copy()
    crossed[row - bar // 2 : row - bar // 2 + bar, max(0, centre - half) : centre + half] = 1.0
    return crossed


def remove_foot(ink: np.ndarray) -> np.ndarray | None:
    """A 1 glyph without the serif foot at the bottom of its stem (None if it has none)."""
    widths = (ink > 0.5).sum(axis=1)
    stem = np.median(widths[widths > 0])
    wide = widths > 1.8 * stem
    rows = len(widths)
    cut = rows
    while cut > rows // 2 and wide[cut - 1]:
        cut -= 1
    # Keep the anti-aliased rows under the foot out too: cut at the first wide row.
    return ink[:cut] if cut < rows else None


def font_digits() -> Split:
    """Every digit in every font of FONT_FILES, plus a crossed 7 and a 1 without its foot per
    font, as 28x28 uint8 MNIST-style images (white on black, fitted to 20 px, centred by mass)."""
    images, labels = [], []
    for name in FONT_FILES:
        font = ImageFont.truetype(str(font_dir() / name), RENDER_SIZE)
        for digit in range(10):
            ink = render_glyph(font, digit)
            variants = [ink]
            if digit == 7:
                variants.append(cross_seven(ink))
            if digit == 1 and (footless := remove_foot(ink)) is not None:
                variants.append(footless)
            images += [centre_digit(v) for v in variants]
            labels += [digit] * len(variants)
    return Split(torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.int64))
