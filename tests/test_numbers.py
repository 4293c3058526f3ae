"""Reading whole numbers (lenet5.inference.numbers) with the bundled model: no data needed."""

from __future__ import annotations

import itertools
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFont

from lenet5.cli import main
from lenet5.data.fonts import FONT_FILES, RENDER_SIZE, font_dir, render_glyph
from lenet5.data.preprocess import ImageError, load_image
from lenet5.data.rows import ink_crop, make_row
from lenet5.inference import numbers
from lenet5.inference.numbers import MAX_RUN, read_number
from lenet5.inference.predict import load_inference_model
from lenet5.inference.sweep import load_row_reader


def _splits(count: int) -> list[list[tuple[int, int]]]:
    """Every way to cut pieces 0..count-1 into runs of at most MAX_RUN (a second way)."""
    found = []
    for cuts in itertools.product([False, True], repeat=count - 1):
        edges = [0, *[k + 1 for k, c in enumerate(cuts) if c], count]
        runs = list(itertools.pairwise(edges))
        if all(j - i <= MAX_RUN for i, j in runs):
            found.append(runs)
    return found


def test_best_path_is_the_best_of_every_split() -> None:
    rng = np.random.default_rng(3)
    for count in range(1, 9):
        scores = {
            (i, j): float(rng.normal(-2, 2))
            for i in range(count)
            for j in range(i + 1, min(count, i + MAX_RUN) + 1)
            if j == i + 1 or rng.random() < 0.8  # some runs are never read
        }
        possible = [s for s in _splits(count) if all(r in scores for r in s)]
        best = max(possible, key=lambda s: sum(scores[r] for r in s))
        path = numbers._best_path(count, scores)
        assert math.isclose(sum(scores[r] for r in path), sum(scores[r] for r in best))


def test_ink_wider_than_a_digit_is_never_one_digit() -> None:
    """However sure the digit model is of it (a row of touching digits squeezed into 28x28 can
    read as a 2 at 0.42), ink wider than WIDEST digits' heights goes to the row reader."""
    from lenet5.data.preprocess import ink_region, to_gray
    from lenet5.data.segment import cut_row

    for text, one in (("5", True), ("375204", False)):
        row = make_row(_glyphs(text), [0] * len(text), np.random.default_rng(1), touching=True)
        atoms = cut_row(ink_region(to_gray(row.image))[0])
        assert numbers._one_digit(atoms, 0, len(atoms), 0.99) is one, text
        assert not numbers._one_digit(atoms, 0, len(atoms), 0.3)  # refused: never one digit


@pytest.fixture(scope="module")
def bundled():
    return load_inference_model(None, engine="torch")[0]


@pytest.fixture(scope="module", params=["paths", "sweep"])
def reader(request):
    """How touching digits are read: the best path through their pieces (no row reader), or
    the bundled row reader (what predict --multi uses)."""
    return load_row_reader() if request.param == "sweep" else None


def _glyphs(text: str) -> list[np.ndarray]:
    """The characters of `text` from one of the fonts, as ink crops."""
    font = ImageFont.truetype(str(font_dir() / FONT_FILES[0]), RENDER_SIZE)
    return [ink_crop(np.round(render_glyph(font, c) * 255)) for c in text]


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two boxes (x0, y0, x1, y1)."""
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize("touching", [False, True])
def test_reads_a_number_and_boxes_each_digit(bundled, reader, touching: bool) -> None:
    """(Touching loops, a 0 or an 8, may still be cut in two: benchmarks/whole_numbers.py
    measures how often; these digits are read whole.)"""
    row = make_row(_glyphs("3752"), [3, 7, 5, 2], np.random.default_rng(1), touching)
    reading = read_number(bundled, row.image, reader)
    assert reading.closest == "3752" and reading.unread == []
    for digit, truth in zip(reading.digits, row.boxes, strict=True):
        assert _overlap(digit.box, truth) > 0.6, (digit.box, truth)
    answer = reading.answer()
    assert answer["number"] == "3752" and len(answer["digits"][0]["probabilities"]) == 10
    assert answer["digits"][0]["box"] == list(reading.digits[0].box)


@pytest.mark.parametrize("touching", [False, True])
def test_boxes_are_in_the_files_pixels_when_a_large_image_is_shrunk(
    bundled, reader, tmp_path: Path, touching: bool
) -> None:
    row = make_row(_glyphs("37"), [3, 7], np.random.default_rng(2), touching)
    small = read_number(bundled, row.image, reader)
    big = row.image.resize((row.image.width * 10, row.image.height * 10), Image.Resampling.NEAREST)
    path = tmp_path / "big.png"
    big.save(path)
    large = read_number(bundled, load_image(path), reader)  # decoded at most 768 px wide
    assert large.closest == small.closest == "37"
    # The large file is cut into other pieces, so a sliver where the digits overlap may go to
    # the other digit; the boxes agree, in the file's pixels, with each other and the truth.
    for a, b, truth in zip(small.digits, large.digits, row.boxes, strict=True):
        shrunk = tuple(v / 10 for v in b.box)
        assert _overlap(shrunk, a.box) > 0.8 and _overlap(shrunk, truth) > 0.8, (a.box, b.box)


@pytest.mark.parametrize("touching", [False, True])
def test_a_row_that_is_not_a_number_says_so(bundled, reader, touching: bool) -> None:
    letters = make_row(_glyphs("4W"), [4, 0], np.random.default_rng(5), touching)
    answer = read_number(bundled, letters.image, reader).answer()
    assert answer["number"] is None and answer["reason"].startswith("not a digit at position")
    if not (touching and reader is not None):
        assert answer["closest"].startswith("4")
    # (A 4 touching a W: the row reader reads the two as one thing that is not a digit, so the
    # number is refused, but its closest reading is not 4 then.)


def test_blank_and_absurd_rows_get_clear_answers(bundled, reader) -> None:
    with pytest.raises(ImageError, match="no ink"):
        read_number(bundled, Image.new("L", (200, 60), 255), reader)
    dot = Image.new("L", (200, 60), 255)
    dot.putpixel((100, 30), 0)
    with pytest.raises(ImageError, match="no ink"):  # one pixel in 12,000: paper's noise
        read_number(bundled, dot)
    dot.paste(0, (100, 30, 106, 36))
    assert len(read_number(bundled, dot, reader).digits) == 1  # one piece, read or refused
    forty = make_row(_glyphs("1234567890" * 4), [0] * 40, np.random.default_rng(0), False)
    assert len(read_number(bundled, forty.image, reader).closest) == 40


def test_predict_multi_json_gives_boxes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    row = make_row(_glyphs("375"), [3, 7, 5], np.random.default_rng(4), touching=True)
    path = tmp_path / "row.png"
    row.image.save(path)
    saved = tmp_path / "pieces"
    assert main(["predict", str(path), "--multi", "--json", "--save-preprocessed", str(saved)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["path"] == str(path) and answer["number"] == "375"
    assert [len(d["box"]) for d in answer["digits"]] == [4, 4, 4]
    assert sorted(p.name for p in saved.iterdir()) == ["row-0.png", "row-1.png", "row-2.png"]


def test_api_reads_a_number_with_multi(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from lenet5.data.feedback import FeedbackStore
    from lenet5.inference.checkpoint import load_model
    from lenet5.serving.app import create_app

    model, config = load_model(None)
    store = FeedbackStore(tmp_path / "fb.sqlite")
    client = TestClient(create_app(model, config, None, feedback=store))
    row = make_row(_glyphs("375"), [3, 7, 5], np.random.default_rng(4), touching=True)
    path = tmp_path / "row.png"
    row.image.save(path)
    with path.open("rb") as f:
        response = client.post("/api/predict?multi=true", files={"file": ("row.png", f)})
    assert response.status_code == 200
    answer = response.json()
    reading = read_number(model, row.image, load_row_reader())  # as the server reads
    pieces = [d.pop("preprocessed") for d in answer["digits"]]
    assert answer == json.loads(json.dumps(reading.answer())) and answer["number"] == "375"
    assert pieces == [p.image.tolist() for p in reading.digits]
    # a piece sent back as pixels is kept as a correction of that piece, read as before
    pixels = (np.array(pieces[1]) / 255).tolist()
    kept = client.post("/api/feedback", json={"pixels": pixels, "label": "1"})
    assert kept.status_code == 201
    again = client.post("/api/predict", json={"pixels": pixels}).json()
    assert again["preprocessed"] == pieces[1] and again["digit"] == 7
    assert store.stats()["per_label"]["1"] == store.stats()["total"] == 1
    blank = Image.new("L", (90, 30), 255)
    blank.save(path)
    refused = client.post(
        "/api/predict?multi=true", content=path.read_bytes(), headers={"content-type": "image/png"}
    )
    assert refused.status_code == 422 and "no ink" in refused.json()["detail"]
    both = client.post(
        "/api/predict?multi=true&explain=true",
        content=path.read_bytes(),
        headers={"content-type": "image/png"},
    )
    assert both.status_code == 400


# A number written on the page's wide pad (3:1), in fractions of the pad: 1, 7 and 0 apart.
NUMBER_DRAWING = [
    [(0.17, 0.15), (0.17, 0.85)],
    [(0.36, 0.2), (0.56, 0.2), (0.44, 0.85)],
    [(0.8 + 0.07 * np.sin(t), 0.5 - 0.33 * np.cos(t)) for t in np.linspace(0, 2 * np.pi, 40)],
]


@pytest.mark.browser
@pytest.mark.parametrize(
    "viewport", [{"width": 1024, "height": 900}, {"width": 390, "height": 844}], ids=str
)
def test_the_page_reads_a_number_and_corrects_one_digit(tmp_path: Path, viewport: dict) -> None:
    """On the page's "a number" pad (bundled model), a written 170 reads as 170 with a box
    around each digit; the third digit is corrected as a 6, kept as that piece."""
    from playwright.sync_api import expect, sync_playwright

    from test_serve import CHROMIUM, _chromium, _served, _stroke

    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian's chromium")
    store = tmp_path / "fb.sqlite"
    with _served("--feedback", str(store)) as (url, ended), sync_playwright() as p:
        browser = _chromium(p)
        page = browser.new_page(viewport=viewport)
        page.goto(url)
        page.check("input[name=mode][value=number]")
        expect(page.locator("#title")).to_have_text("Write a number")
        box = page.locator("#pad").bounding_box()
        assert box["width"] > 2.9 * box["height"]  # the wide pad, on a phone too
        assert box["x"] + box["width"] <= viewport["width"]
        for points in NUMBER_DRAWING:
            _stroke(page, box, points)
        expect(page.locator("#digit")).to_have_text("170", timeout=10_000)
        expect(page.locator("#row button")).to_have_count(3)
        answer = page.evaluate("() => window.lenet5Answer")
        centres = [(d["box"][0] + d["box"][2]) / 2 / 840 for d in answer["digits"]]
        assert [round(c, 1) for c in centres] == [0.2, 0.5, 0.8]
        page.click("#row button[data-position='3']")
        expect(page.locator("#which")).to_have_text("Digit 3 of the number: ")
        page.keyboard.press("6")
        expect(page.locator("#teach-status")).to_contain_text("Digit 3: Kept: a 6, read as 0")
        expect(page.locator("#counts")).to_contain_text("1 correction")
        # the chosen digit's box is drawn on the pad in orange (#d9480f), the others in blue
        colours = page.evaluate(
            """() => { const c = document.getElementById('boxes');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let orange = 0, blue = 0;
                for (let i = 0; i < d.length; i += 4) {
                  if (d[i+3] < 200) continue;  // (anti-aliased edges)
                  if (d[i] > 180 && d[i+1] < 110 && d[i+2] < 60) orange++;
                  if (d[i] < 80 && d[i+1] > 90 && d[i+2] > 180) blue++;
                }
                return [orange, blue]; }"""
        )
        assert colours[0] > 200 and colours[1] > 200
        shot = tmp_path / f"number-{viewport['width']}.png"
        if viewport["width"] > 800 and "LENET5_SCREENSHOT_NUMBER" in os.environ:
            shot = Path(os.environ["LENET5_SCREENSHOT_NUMBER"])  # docs/serve-number.png
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert "Traceback" not in ended["log"]
    import sqlite3

    with sqlite3.connect(store) as db:
        (label, predicted), *more = db.execute("SELECT label, predicted FROM corrections")
    assert (label, predicted, more) == (6, 0, [])
