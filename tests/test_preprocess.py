from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from lenet5.data import preprocess as preprocess_module
from lenet5.data.preprocess import (
    WORK_SIDE,
    ImageError,
    _background_plane,
    _histogram,
    _percentile_90,
    _quantile,
    ink_map,
    load_image,
    otsu_threshold,
    preprocess,
)
from lenet5.data.segment import split_digits


def _png(image: Image.Image, **kwargs: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=kwargs.pop("format", "PNG"), **kwargs)  # type: ignore[arg-type]
    return out.getvalue()


def _paper_with_bar(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    """Dark ink (a filled rectangle) on white paper."""
    image = Image.new("L", size, 255)
    ImageDraw.Draw(image).rectangle(box, fill=20)
    return image


def _bbox(x: np.ndarray) -> tuple[int, int]:
    rows, cols = np.flatnonzero(x.any(1)), np.flatnonzero(x.any(0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def test_otsu_known_answer() -> None:
    values = np.array([10] * 50 + [200] * 50)
    assert 10 <= otsu_threshold(values) < 200


@pytest.mark.parametrize("size", [1, 2, 3, 10, 1001, 78_400])
def test_statistics_from_the_histogram_are_numpys(size: int) -> None:
    """The fast statistics of 8-bit images give numpy's own numbers (a second implementation)."""
    rng = np.random.default_rng(size)
    for values in (
        rng.integers(0, 256, size, dtype=np.uint8),
        np.where(rng.random(size) < 0.9, 255, rng.integers(0, 256, size)).astype(np.uint8),
    ):
        hist = _histogram(values)
        for q in (0.5, 0.999, 0.0, 1.0):
            assert _quantile(hist, q) == pytest.approx(np.quantile(values, q), abs=1e-9)
        floats = rng.random(size)
        assert _percentile_90(floats) == pytest.approx(np.percentile(floats, 90), abs=1e-12)


def test_histogram_counts_any_layout() -> None:
    rng = np.random.default_rng(3)
    levels = rng.integers(0, 256, (97, 131), dtype=np.uint8)
    for values in (levels, levels[::-1, ::2], levels.T, levels[5]):
        assert np.array_equal(_histogram(values), np.bincount(values.ravel(), minlength=256))
    floats = rng.normal(128, 100, (40, 50))
    expected = np.bincount(np.clip(floats, 0, 255).astype(np.uint8).ravel(), minlength=256)
    assert np.array_equal(_histogram(floats), expected)


@pytest.mark.parametrize("shape", [(280, 280), (97, 131)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_background_plane_is_the_least_squares_plane(shape: tuple[int, int], dtype: type) -> None:
    """Against numpy's least squares over the background pixels themselves."""
    rng = np.random.default_rng(shape[1])
    height, width = shape
    r, c = np.mgrid[:height, :width]
    image = 90 + 0.3 * r - 0.2 * c + rng.normal(0, 4, shape)
    image[height // 4 : height // 2, width // 3 : width // 2] = 250  # ink, left out
    image = np.clip(image, 0, 255).astype(dtype)
    background = image < 200
    rows, cols = _background_plane(image, background)
    design = np.stack([np.ones_like(r), r - height / 2, c - width / 2], axis=-1)[background]
    coef = np.linalg.lstsq(design.astype(float), image[background].astype(float), rcond=None)[0]
    expected = coef[0] + coef[1] * (r - height / 2) + coef[2] * (c - width / 2)
    assert np.abs(rows + cols - expected).max() < 1e-3


def _drawing(paper: int, ink: int, lit: float = 0.0) -> np.ndarray:
    """A 7 drawn on paper of one level, its strokes' level going from `ink` at the left to
    halfway to the paper at the right (so the ink has many levels), the whole lit unevenly
    when `lit` is given (the levels changing by that much across the image)."""
    stroke = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(stroke).line([(70, 60), (210, 60), (120, 230)], fill=255, width=18)
    ink_levels = ink + np.linspace(0, (paper - ink) / 2, 280)[None, :]
    gray = np.where(np.asarray(stroke) > 0, ink_levels, paper) + np.linspace(0, lit, 280)
    return np.clip(np.round(gray), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("paper", "ink", "lit"),
    [(255, 17, 0.0), (215, 17, 0.0), (30, 240, 0.0), (215, 17, 40.0)],
)
def test_even_lighting_gives_the_general_paths_ink(paper: int, ink: int, lit: float) -> None:
    """8-bit images evenly lit (a canvas, gray paper, light ink on dark) take the table of
    levels; the general path in float32 (which 16-bit images take) gives the same ink. So does
    the unevenly lit one, on the general path in both."""
    gray = _drawing(paper, ink, lit)
    fast, general = ink_map(gray), ink_map(gray.astype(np.float32))
    assert fast.dtype == general.dtype == np.float32
    assert fast.shape == general.shape
    assert np.abs(fast - general).max() < 1e-6
    assert fast.min() == 0.0 and fast.max() == 1.0


@pytest.mark.parametrize("paper", [40, 215])
def test_even_lighting_needs_no_plane(paper: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A noisy, evenly lit paper under anti-aliased strokes: the table of levels gives exactly
    what the general path gives without its plane (which only moves the background's level,
    from which ink is measured anyway)."""
    rng = np.random.default_rng(paper)
    big = Image.new("L", (560, 560), 0)
    ImageDraw.Draw(big).line([(140, 120), (420, 120), (240, 460)], fill=255, width=36)
    stroke = np.asarray(big.resize((140, 140), Image.Resampling.BOX), dtype=np.float64) / 255
    ink = 250 if paper < 128 else 10
    gray = paper + rng.integers(-3, 4, stroke.shape) + stroke * (ink - paper)
    gray = np.clip(np.round(gray), 0, 255).astype(np.uint8)
    levels = 255 - gray if paper >= 128 else gray
    rows, cols = _background_plane(levels, levels < otsu_threshold(levels))
    assert np.ptp(rows) + np.ptp(cols) < 1  # evenly lit
    assert np.abs(rows + cols - 40).max() < 1  # the plane lies at the paper's level
    fast = ink_map(gray)

    def no_plane(image: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32)

    monkeypatch.setattr(preprocess_module, "_background_plane", no_plane)
    assert np.array_equal(fast, ink_map(gray.astype(np.float32)))


def test_an_opaque_canvas_reads_as_its_gray_version() -> None:
    """The page sends RGBA drawings whose alpha is 255 everywhere: read exactly like the same
    drawing in gray, or composited onto white (the step skipped for them)."""
    canvas = Image.new("RGBA", (280, 280), (255, 255, 255, 255))
    ImageDraw.Draw(canvas).line([(70, 60), (210, 60), (120, 230)], fill=(17, 17, 17), width=18)
    expected = preprocess(canvas.convert("L"))
    assert np.array_equal(preprocess(canvas), expected)
    see_through = canvas.copy()
    see_through.putalpha(254)  # not opaque: composited onto white, much the same picture
    assert np.abs(preprocess(see_through).astype(int) - expected).max() <= 8


def test_mnist_style_input_passes_unchanged() -> None:
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[5:20, 10:14] = 255
    digit[3, 3] = 17  # even odd pixels stay where they are
    assert np.array_equal(preprocess(Image.fromarray(digit)), digit)


def test_off_centre_dark_digit_on_paper_becomes_mnist_style() -> None:
    image = Image.new("L", (300, 300), 240)
    ImageDraw.Draw(image).line([(30, 40), (60, 200), (110, 120)], fill=30, width=9)
    x = preprocess(image)
    assert x.shape == (28, 28) and x.dtype == np.uint8
    assert x[0].max() == 0 and x[:, 0].max() == 0  # background black, ink white
    assert max(_bbox(x)) in (20, 21)  # longer side fitted to 20 px (anti-aliasing may add one)
    row, col = ndimage.center_of_mass(x.astype(float))  # (row, column)
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5


def test_aspect_ratio_is_kept() -> None:
    x = preprocess(_paper_with_bar((200, 300), (90, 50, 110, 250)))  # 21 wide, 201 tall
    height, width = _bbox(x)
    assert height in (20, 21) and 1 <= width <= 4


def test_exif_orientation_is_honoured() -> None:
    bar = _paper_with_bar((300, 200), (50, 90, 250, 110))  # a horizontal bar...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...stored sideways: viewers rotate it 90 degrees to upright
    x = preprocess(load_image(_png(bar, format="JPEG", exif=exif)))
    height, width = _bbox(x)
    assert height > 3 * width  # upright, the bar stands vertical


def test_transparency_is_composited_onto_white() -> None:
    image = Image.new("RGBA", (100, 100), (0, 0, 0, 0))  # transparent black everywhere
    ImageDraw.Draw(image).rectangle((45, 10, 55, 90), fill=(0, 0, 0, 255))
    x = preprocess(load_image(_png(image)))
    assert _bbox(x)[0] in (20, 21)  # only the opaque stroke counts as ink


def test_sixteen_bit_and_cmyk_images_are_converted() -> None:
    reference = preprocess(_paper_with_bar((120, 120), (50, 20, 65, 100)))
    gray16 = np.asarray(_paper_with_bar((120, 120), (50, 20, 65, 100)), dtype=np.uint16) * 257
    sixteen = load_image(_png(Image.fromarray(gray16)))
    assert sixteen.mode.startswith("I")
    assert np.abs(preprocess(sixteen).astype(int) - reference).max() <= 2
    cmyk = load_image(
        _png(
            _paper_with_bar((120, 120), (50, 20, 65, 100)).convert("CMYK"),
            format="JPEG",
            quality=95,
        )
    )
    assert cmyk.mode == "CMYK"
    assert np.abs(preprocess(cmyk).astype(int) - reference).mean() < 8


def test_uneven_lighting_and_noise_leave_no_stray_ink() -> None:
    rng = np.random.default_rng(0)
    paper = 200 + np.linspace(-30, 30, 300)[None, :] + rng.normal(0, 5, (300, 300))
    paper[100:200, 140:155] = 40  # the digit: a thick bar
    x = preprocess(Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8)))
    height, width = _bbox(x)
    assert height in (20, 21) and width <= 5


@pytest.mark.parametrize("color", [0, 255, 128])
@pytest.mark.parametrize("size", [64, 28])  # 28x28 would otherwise pass through unchanged
def test_blank_image_has_no_ink(color: int, size: int) -> None:
    with pytest.raises(ImageError, match="no ink found"):
        preprocess(Image.new("L", (size, size), color))


def test_faint_noise_alone_is_blank() -> None:
    rng = np.random.default_rng(1)
    noise = np.clip(230 + rng.normal(0, 3, (100, 100)), 0, 255).astype(np.uint8)
    with pytest.raises(ImageError, match="no ink found"):
        preprocess(Image.fromarray(noise))


def test_not_an_image() -> None:
    with pytest.raises(ImageError, match="not an image"):
        load_image(b"hello, I am a text file")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty file"):
        load_image(tmp_path / "empty.png")


def test_truncated_image() -> None:
    data = _png(_paper_with_bar((200, 200), (50, 50, 150, 150)), format="JPEG")
    with pytest.raises(ImageError, match="cannot decode"):
        load_image(data[: len(data) // 2])


def _png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims huge dimensions (a decompression bomb's calling card)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 100))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [8_000, 100_000])
def test_decompression_bomb_is_refused_before_decoding(side: int) -> None:
    # Decoding would need side * side bytes (64 MB, 10 GB); the file is 100 bytes.
    with pytest.raises(ImageError, match="image too large"):
        load_image(_png_header_claiming(side, side))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="cannot read"):
        load_image(tmp_path / "nope.png")


def test_split_digits_left_to_right_merging_overlapping_pieces() -> None:
    image = Image.new("L", (400, 120), 255)
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 20, 30, 100), fill=0)  # a "1"
    draw.ellipse((80, 20, 150, 100), outline=0, width=10)  # a "0"
    draw.rectangle((200, 15, 260, 25), fill=0)  # a "5"-like: its detached top bar...
    draw.arc((195, 35, 265, 105), 200, 160, fill=0, width=10)  # ...and its body
    draw.rectangle((320, 20, 332, 100), fill=0)  # another "1"
    digits = split_digits(image)
    assert len(digits) == 4
    widths = [_bbox(d)[1] for d in digits]
    assert widths[0] < 8 and widths[3] < 8 and widths[1] > 12 and widths[2] > 12
    assert np.array_equal(digits[0], preprocess(_paper_with_bar((100, 120), (20, 20, 30, 100))))


def test_split_digits_ignores_specks() -> None:
    image = _paper_with_bar((300, 120), (40, 10, 60, 110))
    ImageDraw.Draw(image).point([(200, 60), (201, 60)], fill=0)
    assert len(split_digits(image)) == 1


def _seven(size: tuple[int, int], mode: str = "L") -> Image.Image:
    """A dark 7 drawn large on white paper, its stroke a sixtieth of the height."""
    w, h = size
    image = Image.new(mode, size, "white")
    points = [(0.35 * w, 0.3 * h), (0.65 * w, 0.3 * h), (0.45 * w, 0.75 * h)]
    ImageDraw.Draw(image).line(points, fill="black", width=h // 60, joint="curve")
    return image


def _full_decode(raw: bytes) -> Image.Image:
    """Every pixel decoded, as load_image did before it shrank large images."""
    image = Image.open(io.BytesIO(raw))
    image.load()
    return image


@pytest.mark.parametrize(
    "mode, fmt, size",
    [
        ("RGB", "JPEG", (4000, 3000)),  # a phone photo: decoded at a quarter scale
        ("L", "PNG", (3000, 5000)),  # box-reduced after decoding
        ("I;16", "PNG", (2100, 1500)),  # a mode reduce() refuses: resized instead
    ],
)
def test_large_images_are_shrunk_while_decoding_and_read_alike(
    mode: str, fmt: str, size: tuple[int, int]
) -> None:
    image = _seven(size, "L")
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image, dtype=np.uint16) * 257)
    raw = _png(image.convert(mode) if mode == "RGB" else image, format=fmt)
    loaded = load_image(raw)
    assert WORK_SIDE // 2 <= max(loaded.size) <= WORK_SIDE
    assert abs(loaded.size[0] / loaded.size[1] - size[0] / size[1]) < 0.01
    shrunk, full = preprocess(loaded), preprocess(_full_decode(raw))
    assert np.abs(shrunk.astype(int) - full).mean() < 6
    assert _bbox(shrunk) == _bbox(full)


def test_a_large_photo_keeps_its_exif_orientation() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: viewers rotate it 90 degrees
    bar = _paper_with_bar((4000, 3000), (500, 1400, 3500, 1600))  # a horizontal bar
    x = preprocess(load_image(_png(bar, format="JPEG", exif=exif)))
    height, width = _bbox(x)
    assert height > 3 * width


def test_colour_too_large_to_decode_is_refused_before_decoding() -> None:
    raw = _png(Image.new("RGBA", (6000, 6000), "white"))  # 36 MP: 137 MiB in memory
    with pytest.raises(ImageError, match=r"6000x6000 RGBA takes 137 MiB decoded \(limit 128"):
        load_image(raw)
    assert load_image(_png(Image.new("L", (6000, 6000), "white"))).size == (750, 750)  # /8
