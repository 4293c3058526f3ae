"""Turn any image of a handwritten digit into the model's 28x28 input, the way MNIST was made.

MNIST digits are white on black, scaled so the longer side of their bounding box is 20 px (aspect
ratio kept, anti-aliased) and placed in 28x28 with their centre of mass at the centre. The CLI,
the web app and tests all go through `load_image` and `preprocess`.
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
ORIENTATION = 0x0112  # the EXIF tag
SCALE = "lenet5.scale"  # info key of a loaded image: its file's pixels per decoded pixel
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
            image.info[SCALE] = width / image.width  # > 1 when shrunk while decoding
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
    """Any PIL image -> gray levels (H, W) in [0, 255]: uint8 for 8-bit images, float for
    16-bit and floating-point ones; EXIF orientation applied, transparency composited onto
    white, CMYK converted."""
    if image.getexif().get(ORIENTATION, 1) != 1:
        image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        gray = np.asarray(image, dtype=np.float64)
        top = 65535.0 if gray.max() > 255 else 1.0 if gray.max() <= 1 else 255.0
        return np.clip(gray * (255.0 / top), 0, 255)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") and not _opaque(image):
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image.convert("RGBA"))
    return np.asarray(image.convert("L"))


def _opaque(image: Image.Image) -> bool:
    """Whether every pixel's alpha is 255 (a page's canvas): nothing to composite then."""
    if image.mode == "RGBA":  # its alpha bytes alone: half the time of an alpha image's extrema
        return bool(np.frombuffer(image.tobytes("raw", "A"), np.uint8).min() == 255)
    return image.mode == "LA" and image.getchannel("A").getextrema() == (255, 255)


def _histogram(values: np.ndarray) -> np.ndarray:
    """Counts of the gray levels 0..255 (values clipped into that range, truncated)."""
    if values.dtype != np.uint8:
        values = np.clip(values, 0, 255).astype(np.uint8)
    # Pillow counts 8-bit levels in place; np.bincount first widens them to 64-bit indices.
    return np.array(Image.fromarray(values.reshape(1, -1)).histogram())


def _quantile(hist: np.ndarray, q: float) -> float:
    """The q-quantile (numpy's default, linear) of integer levels given their histogram."""
    cumulative = np.cumsum(hist)
    position = (cumulative[-1] - 1) * q
    below = int(position)
    low = int(np.searchsorted(cumulative, below, side="right"))
    high = int(np.searchsorted(cumulative, below + 1, side="right")) if position > below else low
    return float(low + (high - low) * (position - below))


def is_mnist_like(gray: np.ndarray) -> bool:
    """A 28x28 image with a dark background: already a model input."""
    return gray.shape == (SIZE, SIZE) and float(np.median(gray)) < 128


def otsu_threshold(values: np.ndarray) -> float:
    """The gray level that best separates two classes of `values` (Otsu 1979)."""
    return _otsu(_histogram(values))


def _otsu(hist: np.ndarray) -> float:
    """`otsu_threshold` from the values' `_histogram`."""
    hist = hist.astype(np.float64)
    levels = np.arange(256, dtype=np.float64)
    weight0 = np.cumsum(hist)
    weight1 = weight0[-1] - weight0
    moment0 = np.cumsum(hist * levels)
    mean0 = moment0 / np.maximum(weight0, 1)
    mean1 = (np.sum(hist * levels) - moment0) / np.maximum(weight1, 1)
    between = weight0 * weight1 * (mean0 - mean1) ** 2
    return float(np.argmax(between))


def ink_map(gray: np.ndarray) -> np.ndarray:
    """Gray levels -> ink intensity (float32) in [0, 1], ink bright, background exactly 0,
    cropped to the ink's bounding box."""
    return ink_region(gray)[0]


def ink_region(gray: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """`ink_map` and the (top, left) of its crop in `gray`.

    The image is inverted when its background (the median) is light. Uneven lighting is
    removed by subtracting a plane fitted to the background; then everything below the Otsu
    threshold is background noise. (On 8-bit images, the statistics come from the histogram of
    gray levels: the same numbers as sorting, several times faster; and when the lighting is
    even, as on a page's canvas or a scan, the ink's pixels come from a table of the 256
    levels, docs/benchmarks.md. Otherwise the work is in float32, in place where it can be.)
    """
    if gray.dtype == np.uint8:
        hist = _histogram(gray)
        median = _quantile(hist, 0.5)
        light = median >= 128
        if light:
            hist, median = hist[::-1], 255 - median  # the inverted levels' median, exactly
        levels = 255 - gray if light else gray
        if _quantile(hist, 0.999) - median < MIN_CONTRAST:
            raise ImageError("no ink found (the image is blank)")
        otsu = _otsu(hist)
        rows, cols = _background_plane(levels, levels < int(otsu))  # (whole: an 8-bit compare)
        if np.ptp(rows) + np.ptp(cols) < 1:
            last_cut = math.floor(_even_threshold(hist, median, otsu))  # levels up to it: paper
            box = _bounding_box(levels > last_cut)
            return _even_ink(levels[box], hist, median, last_cut), (box[0].start, box[1].start)
        ink = levels.astype(np.float32)
    else:
        ink = (255.0 - gray if np.median(gray) >= 128 else gray).astype(np.float32)
        spread = float(np.percentile(ink, 99.9)) - float(np.median(ink))
        if spread < MIN_CONTRAST:
            raise ImageError("no ink found (the image is blank)")
        rows, cols = _background_plane(ink, ink < otsu_threshold(ink))
    ink -= rows
    ink -= cols
    low, high = float(np.median(ink)), float(ink.max())
    otsu = otsu_threshold(ink)
    inked = ink > otsu
    ink_level = float(np.median(ink[inked])) if inked.any() else high
    threshold = _threshold(low, high, otsu, ink_level)
    kept = ink > threshold
    _scale(ink, low, high)
    ink[~kept] = 0.0
    box = _bounding_box(kept)
    return ink[box], (box[0].start, box[1].start)


def _even_ink(levels: np.ndarray, hist: np.ndarray, low: float, last_cut: int) -> np.ndarray:
    """`ink_map`'s last steps for 8-bit `levels` (ink bright, cropped to the ink; `hist` the
    histogram of the whole, `low` its median, levels up to `last_cut` not ink) evenly lit,
    their background plane varying by less than one gray level: it is not subtracted (ink is
    measured from the background's median level anyway), so the ink stays whole levels, every
    statistic comes from the histogram and the ink's pixels from a table of the 256 levels,
    with the arithmetic of the general path."""
    table = _scale(np.arange(256, dtype=np.float32), low, float(np.flatnonzero(hist)[-1]))
    table[: last_cut + 1] = 0.0
    return table[levels]


def _even_threshold(hist: np.ndarray, low: float, otsu: float) -> float:
    """`_threshold` from the histogram of evenly lit levels (`low` its median)."""
    high = float(np.flatnonzero(hist)[-1])
    above = hist[int(otsu) + 1 :]
    ink_level = otsu + 1 + _quantile(above, 0.5) if above.any() else high
    return _threshold(low, high, otsu, ink_level)


def _bounding_box(mask: np.ndarray) -> tuple[slice, slice]:
    """The smallest rectangle holding every True of a 2-D `mask` with at least one."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask[rows[0] : rows[-1] + 1].any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _threshold(low: float, high: float, otsu: float, ink_level: float) -> float:
    """The level below which ink is noise, from the background level `low`, the brightest ink
    `high`, the Otsu threshold and the typical ink level; ImageError when nothing is ink."""
    if high - low < MIN_CONTRAST:
        raise ImageError("no ink found (the image is blank)")
    # Otsu alone cuts too low when ink covers a few percent of the image (noise passes);
    # never cut below halfway between the background and the typical ink level.
    threshold = max(otsu, (low + ink_level) / 2, low + MIN_CONTRAST / 2)
    if threshold >= high:  # nothing would be kept
        raise ImageError("no ink found (the image is blank)")
    return threshold


def _scale(ink: np.ndarray, low: float, high: float) -> np.ndarray:
    """Ink (float32) from the background level `low` to the brightest `high` -> [0, 1], in
    place. (Ink keeps its anti-aliased edges; the caller cuts what is below the threshold.)"""
    ink -= low
    ink *= 1 / (high - low)
    np.clip(ink, 0.0, 1.0, out=ink)
    return ink


def _background_plane(image: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares plane a + b*row + c*col through the pixels marked as `background`, as its
    row and column terms (H, 1) and (1, W) (float32), which sum to the plane.

    Solved from the 3x3 normal equations, whose sums come from row and column sums of the
    mask: a few passes over the image instead of gathering every background pixel. For 8-bit
    levels they are integer sums, so the temporaries stay 8-bit (a large float temporary costs
    more in fresh memory pages than in arithmetic here)."""
    height, width = image.shape
    # Coordinates centred on the image keep the normal equations well conditioned.
    r = np.arange(height, dtype=np.float64) - height / 2
    c = np.arange(width, dtype=np.float64) - width / 2
    mask = background.view(np.uint8)  # 0 or 1
    values = image * mask  # the image's dtype
    total: type = np.uint32 if values.dtype == np.uint8 else np.float64  # exact for levels
    by_row = mask.sum(axis=1, dtype=np.uint32).astype(np.float64)
    by_col = mask.sum(axis=0, dtype=np.uint32).astype(np.float64)
    n = by_row.sum()
    if n < 3:
        return np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32)
    twice_c = 2 * np.arange(width, dtype=np.int32) - width  # integers, for an exact sum
    rc = r @ np.einsum("ij,j->i", mask, twice_c) / 2
    gram = np.array(
        [
            [n, by_row @ r, by_col @ c],
            [by_row @ r, by_row @ (r * r), rc],
            [by_col @ c, rc, by_col @ (c * c)],
        ]
    )
    by_row_values = values.sum(axis=1, dtype=total).astype(np.float64)
    by_col_values = values.sum(axis=0, dtype=total).astype(np.float64)
    moments = np.array([by_row_values.sum(), by_row_values @ r, by_col_values @ c])
    try:
        a, b, d = np.linalg.solve(gram, moments)
    except np.linalg.LinAlgError:  # the background lies on one line: a level plane instead
        a, b, d = moments[0] / n, 0.0, 0.0
    return (a + b * r[:, None]).astype(np.float32), (d * c[None, :]).astype(np.float32)


def centre_digit(ink: np.ndarray) -> np.ndarray:
    """Ink map (H, W) with some ink -> MNIST-style uint8 (28, 28): crop to the ink, fit the
    longer side to 20 px keeping the aspect ratio, centre the centre of mass at (14, 14)."""
    return _fit(ink[_bounding_box(ink != 0)])


def _fit(crop: np.ndarray) -> np.ndarray:
    """`centre_digit` of ink already cropped to its bounding box."""
    h, w = crop.shape
    scale = BOX / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    resized = Image.fromarray(np.ascontiguousarray(crop, np.float32), mode="F").resize(
        (new_w, new_h),
        Image.Resampling.LANCZOS,  # anti-aliased on downscaling
    )
    small = np.frombuffer(resized.tobytes(), np.float32).reshape(new_h, new_w)
    small = np.minimum(np.maximum(small, 0.0, dtype=np.float64), 1.0)
    # Thin pen strokes come out faint after downscaling; MNIST strokes are saturated at the core.
    strokes = small[small > 0.05]
    core = _percentile_90(strokes) if strokes.size else 1.0
    small = np.minimum(small / max(core, 1e-6), 1.0)
    # Placed with its box centred, then moved (by whole pixels, staying inside the 28x28) so
    # that its centre of mass lands on (14, 14).
    top, left = (SIZE - new_h) // 2, (SIZE - new_w) // 2
    total = small.sum()
    canvas = np.zeros((SIZE, SIZE))
    if total > 0:
        com_r = top + (small.sum(axis=1) @ np.arange(new_h)) / total
        com_c = left + (small.sum(axis=0) @ np.arange(new_w)) / total
        rows, cols = _bounding_box(small != 0)
        top += int(min(max(round(CENTRE - com_r), -top - rows.start), SIZE - top - rows.stop))
        left += int(min(max(round(CENTRE - com_c), -left - cols.start), SIZE - left - cols.stop))
        # the ink's box, which stays inside even when a blank edge of `small` would not
        canvas[top + rows.start : top + rows.stop, left + cols.start : left + cols.stop] = small[
            rows, cols
        ]
    return np.round(canvas * 255).astype(np.uint8)


def _percentile_90(values: np.ndarray) -> float:
    """np.percentile(values, 90) (linear interpolation) without its overhead on small arrays."""
    ordered = np.sort(values, axis=None)
    position = (len(ordered) - 1) * 0.9
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return float(ordered[below] + (ordered[above] - ordered[below]) * (position - below))


def preprocess(image: Image.Image) -> np.ndarray:
    """Any image of one digit -> the model's input as uint8 (28, 28), white ink on black.

    A 28x28 image with a dark background is taken as already MNIST-style and passes unchanged.
    Raises ImageError("no ink found") for a blank image.
    """
    gray = to_gray(image)
    if is_mnist_like(gray):
        if float(gray.max()) - float(np.median(gray)) < MIN_CONTRAST:
            raise ImageError("no ink found (the image is blank)")
        return np.round(gray).astype(np.uint8)
    return _fit(ink_map(gray))  # ink_map crops to the ink
