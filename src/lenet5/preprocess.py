"""Turn any image of a handwritten digit into the model's 28x28 input, the way MNIST was made.

MNIST digits are white on black, scaled so the longer side of their bounding box is 20 px (aspect
ratio kept, anti-aliased) and placed in 28x28 with their centre of mass at the centre. The CLI,
the web app and tests all go through `load_image` and `preprocess` (or `split_digits`).
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from lenet5.errors import Lenet5Error

SIZE = 28  # model input side
BOX = 20  # MNIST fits each digit's longer side to 20 px...
CENTRE = 14.0  # ...and puts its centre of mass at (14, 14) (measured on the MNIST test set)
MAX_PIXELS = 40_000_000  # larger images are refused from their header, before decoding
MAX_DECODED_BYTES = 128 * 2**20  # what decoding may take: 40 MP of gray, 33 MP of colour
WORK_SIDE = 768  # larger images are shrunk while decoding to at most this: ample for 20 px
MIN_CONTRAST = 32  # gray levels between background and ink below which we call an image blank
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class ImageError(Lenet5Error):
    """An input that is not a usable image of a digit."""


def load_image(source: str | Path | bytes) -> Image.Image:
    """Open and fully decode an image file (or its bytes), refusing anything dangerous.

    Raises ImageError for a file that is not an image, truncated, of an unsupported format, or
    larger than MAX_PIXELS (checked from the header, so a decompression bomb is never decoded).
    """
    try:
        raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read: {exc.strerror or exc}") from None
    if not raw:
        raise ImageError("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(raw), formats=FORMATS)
            width, height = opened.size
            if width * height > MAX_PIXELS:
                raise ImageError(f"image too large: {width}x{height} pixels (limit {MAX_PIXELS:,})")
            image = _decode_small(opened)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not an image (or not PNG, JPEG, BMP, GIF, WebP or TIFF)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own guard, from the header, for sizes far beyond ours
        raise ImageError(f"image too large (over {MAX_PIXELS:,} pixels)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"cannot decode image ({exc})") from None
    return image


def _decode_small(image: ImageFile.ImageFile) -> Image.Image:
    """Decode `image`, its longer side at most WORK_SIDE: a phone photo's JPEG straight from its
    DCT at 1/2, 1/4 or 1/8 scale, anything else box-reduced right after decoding, before any
    per-pixel work in floating point (docs/benchmarks/large-photos.json)."""
    side = max(image.size)
    if image.format == "JPEG" and side >= WORK_SIDE:
        scale = min(8, 2 ** int(math.log2(2 * side / WORK_SIDE)))  # to WORK_SIDE/2..WORK_SIDE
        image.draft(image.mode, (image.size[0] // scale, image.size[1] // scale))
    width, height = image.size
    # Pillow keeps 1 byte a pixel for bits, gray and palette images, 2 for 16-bit gray and 4
    # for the rest (RGB included).
    depth = 1 if image.mode in ("1", "L", "P") else 2 if image.mode.startswith("I;16") else 4
    if width * height * depth > MAX_DECODED_BYTES:
        mib = width * height * depth / 2**20
        raise ImageError(
            f"image too large: {width}x{height} {image.mode} takes {mib:.0f} MiB decoded "
            f"(limit {MAX_DECODED_BYTES // 2**20} MiB)"
        )
    image.load()
    side = max(image.size)
    if side <= WORK_SIDE:
        return image
    return _reduce(image, math.ceil(side / WORK_SIDE))


def _reduce(image: Image.Image, factor: int) -> Image.Image:
    """Average each `factor` x `factor` block, a strip of rows at a time: reduce() copies a
    whole image with transparency first (premultiplied), 160 MB more for 40 MP of RGBA."""
    width, height = image.size
    strip_rows = 64 * factor  # a multiple of factor: the strips' blocks are the whole's
    out: Image.Image | None = None
    for top in range(0, height, strip_rows):
        strip = image.crop((0, top, width, min(height, top + strip_rows)))
        if strip.mode in ("1", "P"):  # no averaging on bits or palette indices
            strip = strip.convert("RGBA" if strip.mode == "P" else "L")
        try:
            small = strip.reduce(factor)
        except ValueError:  # a mode reduce() does not take (16-bit gray...)
            size = (math.ceil(strip.width / factor), math.ceil(strip.height / factor))
            small = strip.resize(size, Image.Resampling.BOX)
        if out is None:
            out = Image.new(small.mode, (math.ceil(width / factor), math.ceil(height / factor)))
            if "exif" in image.info:  # its orientation
                out.info["exif"] = image.info["exif"]
        out.paste(small, (0, top // factor))
    assert out is not None
    return out


def to_gray(image: Image.Image) -> np.ndarray:
    """Any PIL image -> float gray levels (H, W) in [0, 255]: EXIF orientation applied,
    transparency composited onto white, 16-bit and CMYK converted."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        gray = np.asarray(image, dtype=np.float64)
        top = 65535.0 if gray.max() > 255 else 1.0 if gray.max() <= 1 else 255.0
        return np.clip(gray * (255.0 / top), 0, 255)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image.convert("RGBA"))
    return np.asarray(image.convert("L"), dtype=np.float64)


def is_mnist_like(gray: np.ndarray) -> bool:
    """A 28x28 image with a dark background: already a model input."""
    return gray.shape == (SIZE, SIZE) and float(np.median(gray)) < 128


def otsu_threshold(values: np.ndarray) -> float:
    """The gray level that best separates two classes of `values` (Otsu 1979)."""
    hist = np.bincount(np.clip(values, 0, 255).astype(np.uint8).ravel(), minlength=256)
    hist = hist.astype(np.float64)
    levels = np.arange(256, dtype=np.float64)
    weight0 = np.cumsum(hist)
    weight1 = weight0[-1] - weight0
    mean0 = np.cumsum(hist * levels) / np.maximum(weight0, 1)
    mean1 = (np.sum(hist * levels) - np.cumsum(hist * levels)) / np.maximum(weight1, 1)
    between = weight0 * weight1 * (mean0 - mean1) ** 2
    return float(np.argmax(between))


def ink_map(gray: np.ndarray) -> np.ndarray:
    """Gray levels -> ink intensity in [0, 1], ink bright, background exactly 0.

    The image is inverted when its background (the median) is light. Uneven lighting is
    removed by subtracting a plane fitted to the background; then everything below the Otsu
    threshold is background noise.
    """
    ink = 255.0 - gray if np.median(gray) >= 128 else gray.copy()
    if float(np.percentile(ink, 99.9)) - float(np.median(ink)) < MIN_CONTRAST:
        raise ImageError("no ink found (the image is blank)")
    ink = ink - _background_plane(ink, ink < otsu_threshold(ink))
    low, high = float(np.median(ink)), float(ink.max())
    if high - low < MIN_CONTRAST:
        raise ImageError("no ink found (the image is blank)")
    # Otsu alone cuts too low when ink covers a few percent of the image (noise passes);
    # never cut below halfway between the background and the typical ink level.
    otsu = otsu_threshold(ink)
    ink_level = float(np.median(ink[ink > otsu])) if (ink > otsu).any() else high
    threshold = max(otsu, (low + ink_level) / 2, low + MIN_CONTRAST / 2)
    # Ink keeps its anti-aliased edges: scale from the background level, cut below the threshold.
    out = np.where(ink > threshold, np.clip((ink - low) / (high - low), 0.0, 1.0), 0.0)
    if not out.any():
        raise ImageError("no ink found (the image is blank)")
    return out


def _background_plane(image: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Least-squares plane a + b*row + c*col through the pixels marked as `background`."""
    grid = np.indices(image.shape, dtype=np.float64)
    rows, cols = grid[0], grid[1]
    step = max(1, int(np.sqrt(image.size / 20_000)))  # a subsample is plenty for 3 numbers
    mask = background[::step, ::step]
    if np.count_nonzero(mask) < 3:
        return np.zeros_like(image)
    design = np.stack(
        [np.ones(np.count_nonzero(mask)), rows[::step, ::step][mask], cols[::step, ::step][mask]]
    )
    coef, *_ = np.linalg.lstsq(design.T, image[::step, ::step][mask], rcond=None)
    return coef[0] + coef[1] * rows + coef[2] * cols


def centre_digit(ink: np.ndarray) -> np.ndarray:
    """Ink map (H, W) with some ink -> MNIST-style uint8 (28, 28): crop to the ink, fit the
    longer side to 20 px keeping the aspect ratio, centre the centre of mass at (14, 14)."""
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = crop.shape
    scale = BOX / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    resized = Image.fromarray(crop.astype(np.float32), mode="F").resize(
        (new_w, new_h),
        Image.Resampling.LANCZOS,  # anti-aliased on downscaling
    )
    small = np.clip(np.asarray(resized, dtype=np.float64), 0.0, 1.0)
    # Thin pen strokes come out faint after downscaling; MNIST strokes are saturated at the core.
    core = np.percentile(small[small > 0.05], 90) if (small > 0.05).any() else 1.0
    small = np.clip(small / max(core, 1e-6), 0.0, 1.0)
    canvas = np.zeros((SIZE, SIZE))
    top, left = (SIZE - new_h) // 2, (SIZE - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = small
    total = canvas.sum()
    if total > 0:
        grid_r, grid_c = np.indices(canvas.shape)
        com_r, com_c = (
            (canvas * grid_r).sum() / total,
            (canvas * grid_c).sum() / total,
        )  # (row, col)
        canvas = _shift(canvas, round(CENTRE - com_r), round(CENTRE - com_c))
    return np.round(canvas * 255).astype(np.uint8)


def _shift(image: np.ndarray, dr: int, dc: int) -> np.ndarray:
    """Translate by whole pixels, filling with zeros (never wrapping around)."""
    # The digit is at most 20 px wide in 28: keep it inside the canvas.
    rows = np.flatnonzero(image.any(axis=1))
    cols = np.flatnonzero(image.any(axis=0))
    dr = int(np.clip(dr, -rows[0], SIZE - 1 - rows[-1]))
    dc = int(np.clip(dc, -cols[0], SIZE - 1 - cols[-1]))
    return np.roll(image, (dr, dc), axis=(0, 1))


def preprocess(image: Image.Image) -> np.ndarray:
    """Any image of one digit -> the model's input as uint8 (28, 28), white ink on black.

    A 28x28 image with a dark background is taken as already MNIST-style and passes unchanged.
    Raises ImageError("no ink found") for a blank image.
    """
    gray = to_gray(image)
    if is_mnist_like(gray):
        if gray.max() - np.median(gray) < MIN_CONTRAST:
            raise ImageError("no ink found (the image is blank)")
        return np.round(gray).astype(np.uint8)
    return centre_digit(ink_map(gray))


def split_digits(image: Image.Image, min_area: float = 0.02) -> list[np.ndarray]:
    """An image of a row of digits -> one MNIST-style (28, 28) uint8 image per digit, left to
    right. Connected ink components that overlap horizontally are one digit (a 5's detached
    bar); components smaller than `min_area` of the largest are noise."""
    from scipy import ndimage

    ink = ink_map(to_gray(image))
    labels, count = ndimage.label(ink > 0, structure=np.ones((3, 3)))
    slices = ndimage.find_objects(labels)
    areas = ndimage.sum_labels(np.ones_like(ink), labels, index=np.arange(1, count + 1))
    keep = [i for i in range(count) if areas[i] >= min_area * areas.max()]
    groups: list[tuple[int, int, list[int]]] = []  # (left, right, component ids)
    for i in sorted(keep, key=lambda i: slices[i][1].start):
        left, right = slices[i][1].start, slices[i][1].stop
        if groups and left < groups[-1][1]:  # overlaps the previous digit horizontally
            g_left, g_right, ids = groups[-1]
            groups[-1] = (g_left, max(g_right, right), [*ids, i + 1])
        else:
            groups.append((left, right, [i + 1]))
    return [centre_digit(np.where(np.isin(labels, ids), ink, 0.0)) for _, _, ids in groups]
