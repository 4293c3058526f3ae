"""The web app: API through the test client, fuzzing from the OpenAPI schema, a real browser."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import schemathesis
import torch
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from PIL import Image
from schemathesis.checks import positive_data_acceptance

from lenet5.inference.checkpoint import load_model
from lenet5.inference.predict import Prediction, predict_inputs
from lenet5.serving import app as serve_module
from lenet5.serving.app import Batcher, create_app, wait_until_serving
from lenet5.serving.uploads import MAX_BODY_BYTES
from test_preprocess import _png, _png_header_claiming

from conftest import requires_real_data

EXAMPLES = Path(__file__).parent.parent / "docs" / "examples"


@pytest.fixture(scope="module")
def app(synthetic_run: tuple[Path, Path]):  # type: ignore[no-untyped-def]
    model, config = load_model(synthetic_run[1])
    return create_app(model, config, synthetic_run[1])


@pytest.fixture(scope="module")
def client(app) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(app)


def _digit_png() -> bytes:
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[5:23, 12:16] = 255
    return _png(Image.fromarray(digit))


def test_health_and_model(client: TestClient, synthetic_run: tuple[Path, Path]) -> None:
    assert client.get("/api/health").json() == {"status": "ok"}
    info = client.get("/api/model").json()
    recorded = json.loads((synthetic_run[1] / "summary.json").read_text())["test_accuracy"]
    assert info["architecture"] == "lenet5" and info["parameters"] == 61_706
    assert info["test_accuracy"] == recorded
    assert info["training_config"]["epochs"] == 2
    assert [layer["total"] for layer in info["layers"] if layer["total"]] == [
        156,
        2_416,
        48_120,
        10_164,
        850,
    ]


def test_page_and_assets_are_local(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    assert "pointerdown" in client.get("/static/app.js").text  # mouse, touch and pen


def _check_prediction(answer: dict) -> None:
    assert 0 <= answer["digit"] <= 9
    assert len(answer["probabilities"]) == 10
    assert sum(answer["probabilities"]) == pytest.approx(1.0, abs=1e-5)
    assert np.asarray(answer["preprocessed"]).shape == (28, 28)


def test_predict_raw_body_multipart_and_pixels(client: TestClient) -> None:
    raw = client.post("/api/predict", content=_digit_png(), headers={"content-type": "image/png"})
    form = client.post("/api/predict", files={"file": ("d.png", _digit_png(), "image/png")})
    pixels = np.asarray(Image.open(io.BytesIO(_digit_png()))) / 255
    as_json = client.post("/api/predict", json={"pixels": pixels.tolist()})
    for response in (raw, form, as_json):
        assert response.status_code == 200, response.text
        _check_prediction(response.json())
    assert raw.json() == form.json() == as_json.json()  # one inference path


@pytest.mark.parametrize(
    "kwargs, status, message",
    [
        ({"content": b"", "headers": {"content-type": "image/png"}}, 400, "empty request"),
        ({"content": b"hi", "headers": {"content-type": "text/plain"}}, 415, "unsupported"),
        (
            {"content": b"not an image", "headers": {"content-type": "image/png"}},
            422,
            "not an image",
        ),
        (
            {"content": _digit_png()[:60], "headers": {"content-type": "image/png"}},
            422,
            "cannot decode",
        ),
        (
            {
                "content": _png_header_claiming(100_000, 100_000),
                "headers": {"content-type": "image/png"},
            },
            422,
            "image too large",
        ),
        (
            {
                "content": _png(Image.new("L", (200, 200), 255)),
                "headers": {"content-type": "image/png"},
            },
            422,
            "no ink found",
        ),
        ({"json": {"pixels": [[0.0] * 28] * 28}}, 422, "no ink found"),
        ({"json": {"pixels": [[0.5] * 27] * 28}}, 422, "28 rows of 28"),
        ({"json": {"pixels": [[0.5] * 28] * 3}}, 422, "pixels"),
        ({"json": {"pixels": [[2.0] * 28] * 28}}, 422, "in [0, 1]"),
        ({"json": {"pixels": "lots"}}, 422, "pixels"),
        ({"json": [1, 2, 3]}, 422, "body"),
        (
            {
                "content": b'{"pixels": ['
                + b",".join([b"[" + b",".join([b"NaN"] * 28) + b"]"] * 28)
                + b"]}",
                "headers": {"content-type": "application/json"},
            },
            422,
            "finite",
        ),
        (
            {"content": b"{nope", "headers": {"content-type": "application/json"}},
            422,
            "not valid JSON",
        ),
        ({"files": {"other": ("d.png", b"x", "image/png")}}, 422, "no 'file' field"),
        (
            {"content": b"x" * (MAX_BODY_BYTES + 1), "headers": {"content-type": "image/png"}},
            413,
            "over 5 MiB",
        ),
    ],
)
def test_bad_requests_get_clear_4xx(
    client: TestClient, kwargs: dict, status: int, message: str
) -> None:
    response = client.post("/api/predict", **kwargs)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert client.get("/api/health").status_code == 200  # and the server keeps serving


def test_body_over_the_limit_without_content_length(client: TestClient) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(6):
            yield b"x" * 2**20

    response = client.post("/api/predict", content=chunks(), headers={"content-type": "image/png"})
    assert response.status_code == 413


# --- fuzzing from the app's own OpenAPI schema ----------------------------------------------


def test_fuzzing_finds_no_server_error_and_no_schema_violation(app) -> None:  # type: ignore[no-untyped-def]
    """Schemathesis generates requests from the OpenAPI schema (valid and invalid bodies of every
    declared content type) and checks each response: no 5xx, status code, content type and body
    as documented."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} == {"/api/health", "/api/model", "/api/predict"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case) -> None:  # type: ignore[no-untyped-def]
            # A schema-valid image may hold no digit (a blank 1x1 PNG): 422 by design, so the
            # "schema-valid data must be accepted" heuristic does not apply. Every other check,
            # the rejection of schema-invalid data included, runs.
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        check()


# --- a real server and a real browser -------------------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _served(*flags: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """`lenet5 serve FLAGS` on a free port: its URL, and, once the block ends and the server
    has stopped on SIGTERM, its log and exit status in the dict."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "lenet5", "serve", "--port", str(port), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url, ended = f"http://127.0.0.1:{port}", dict[str, Any]()
    try:
        wait_until_serving(url, server, timeout=30)
        yield url, ended
    finally:
        server.send_signal(signal.SIGTERM)
        ended["log"], _ = server.communicate(timeout=20)
        ended["returncode"] = server.returncode


def _chromium(p):  # type: ignore[no-untyped-def]
    return p.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    )


def _stroke(page, box, points: list[tuple[float, float]]) -> None:  # type: ignore[no-untyped-def]
    """Drag the mouse through `points` given as fractions of the canvas."""
    x0, y0 = box["x"], box["y"]
    page.mouse.move(x0 + points[0][0] * box["width"], y0 + points[0][1] * box["height"])
    page.mouse.down()
    for fx, fy in points[1:]:
        page.mouse.move(x0 + fx * box["width"], y0 + fy * box["height"], steps=8)
    page.mouse.up()


DRAWINGS = {
    "1": [[(0.5, 0.15), (0.5, 0.85)]],
    "7": [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]],
    "0": [
        [(0.5 + 0.22 * np.sin(t), 0.5 - 0.33 * np.cos(t)) for t in np.linspace(0, 2 * np.pi, 40)]
    ],
}


@pytest.mark.browser
@pytest.mark.data
@requires_real_data
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
def test_drawing_in_a_real_browser(mnist_run: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    flags = ("--model", str(mnist_run), "--feedback", str(tmp_path / "fb.sqlite"))
    with _served(*flags) as (url, ended), sync_playwright() as p:
        browser = _chromium(p)
        page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        page.goto(url)
        box = page.locator("#pad").bounding_box()
        for digit, strokes in DRAWINGS.items():
            page.click("#clear")
            for points in strokes:
                _stroke(page, box, points)
            expect(page.locator("#digit")).to_have_text(digit, timeout=10_000)
        _check_inside_panel(page)
        page.keyboard.press("6")  # "no, it is a 6": a correction by key
        expect(page.locator("#teach-status")).to_contain_text("Kept: a 6, read as 0")
        expect(page.locator("#counts")).to_contain_text("1 correction: 0: 0, 1: 0")
        expect(page.locator("#store-file")).to_have_text(str(tmp_path / "fb.sqlite"))
        shot = Path(os.environ.get("LENET5_SCREENSHOT", tmp_path / "serve.png"))
        page.screenshot(path=str(shot), full_page=True)
        assert shot.read_bytes()[:4] == b"\x89PNG"
        page.click("#clear")
        page.set_input_files("#file", str(EXAMPLES / "seven.jpg"))
        expect(page.locator("#digit")).to_have_text("7", timeout=10_000)
        expect(page.locator("#bars li")).to_have_count(10)
        browser.close()
    log = ended["log"]
    # uvicorn shuts down cleanly, then exits by the signal it caught (as Ctrl-C would).
    assert ended["returncode"] in (0, -signal.SIGTERM), log
    assert "Application shutdown complete" in log
    assert 'POST /api/predict?explain=true HTTP/1.1" 200' in log  # one line per request
    assert "Traceback" not in log


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
def test_the_page_says_not_a_digit(tmp_path: Path) -> None:
    """The bundled model on the page: a letter is answered "not a digit" with the closest digit
    small beside it, and can be kept as a "not a digit" correction."""
    from playwright.sync_api import expect, sync_playwright

    with _served("--feedback", str(tmp_path / "fb.sqlite")) as (url, ended), sync_playwright() as p:
        browser = _chromium(p)
        page = browser.new_page(viewport={"width": 1024, "height": 900})  # a desktop
        page.goto(url)
        page.set_input_files("#file", str(EXAMPLES / "letter-a.png"))
        expect(page.locator("#digit")).to_have_text("not a digit", timeout=10_000)
        expect(page.locator("#status")).to_contain_text("closest: 4")
        expect(page.locator("#confirm")).to_be_disabled()
        page.click("button[data-digit='not-a-digit']")
        expect(page.locator("#teach-status")).to_contain_text("Kept: not a digit, read right")
        expect(page.locator("#counts")).to_contain_text("not a digit: 1")
        shot = Path(os.environ.get("LENET5_SCREENSHOT_REFUSED", tmp_path / "refused.png"))
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert "Traceback" not in ended["log"]


def _check_inside_panel(page) -> None:  # type: ignore[no-untyped-def]
    """The page's panel draws every map, conv1's kernels and the saliency with the API's
    numbers: each canvas pixel is the colour its value maps to (gray scaled per layer;
    blue-white-red for signed values)."""
    answer = page.evaluate("() => window.lenet5Answer")
    inside = answer["explain"]
    canvases = page.evaluate(
        """() => [...document.querySelectorAll('#layers canvas')].map((c) => ({
            layer: c.dataset.layer, index: Number(c.dataset.index),
            rgb: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)
                .filter((_, i) => i % 4 !== 3)}))"""
    )
    assert len(canvases) == 1 + 6 + 6 + 6 + 16 + 16
    for canvas in canvases:
        if canvas["layer"] in ("saliency", "kernels"):
            values = np.array(inside[canvas["layer"]])
            t = values / np.abs(values).max()
            if canvas["layer"] == "kernels":
                t = t[canvas["index"]]
            fade = 255 * (1 - np.abs(t))
            expected = np.stack(
                [
                    np.where(t >= 0, 255, fade),
                    fade,
                    np.where(t >= 0, fade, 255),
                ],
                axis=-1,
            )
        else:
            maps = np.array(inside["layers"][canvas["layer"]])
            gray = 255 * maps[canvas["index"]] / maps.max()
            expected = np.repeat(gray[..., None], 3, axis=-1)
        drawn = np.array(canvas["rgb"]).reshape(expected.shape)
        assert np.abs(drawn - np.floor(expected + 0.5)).max() <= 1, canvas["layer"]
    assert np.array(inside["layers"]["conv1"]).shape == (6, 28, 28)


def _inputs(n: int) -> list[np.ndarray]:
    return [np.random.default_rng(i).integers(0, 256, (28, 28), dtype=np.uint8) for i in range(n)]


def test_batcher_runs_concurrent_requests_as_one_batch(
    synthetic_run: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each request gets the answer it would get alone; requests that wait together share one
    forward pass; a second event loop (as a test client makes) is served too."""
    model, _ = load_model(synthetic_run[1])
    batcher = Batcher(model)
    sizes: list[int] = []

    def spy(m: torch.nn.Module, xs: list[np.ndarray]) -> list[Prediction]:
        sizes.append(len(xs))
        return predict_inputs(m, xs)

    monkeypatch.setattr(serve_module, "predict_inputs", spy)
    inputs = _inputs(40)

    async def ask_all() -> list[Prediction]:
        return list(await asyncio.gather(*(batcher.predict(x) for x in inputs)))

    for _ in range(2):  # two loops, one after the other
        results = asyncio.run(ask_all())
        alone = [predict_inputs(model, [x])[0] for x in inputs]
        assert [r.digit for r in results] == [a.digit for a in alone]
        # Batched and single convolutions round differently; the calibration temperature
        # divides the logits and those differences alike, so the bound is divided by it too.
        temperature = float(model.get_buffer("temperature"))
        np.testing.assert_allclose(
            [r.probabilities for r in results],
            [a.probabilities for a in alone],
            atol=1e-6 / temperature,
        )
        assert all(np.array_equal(r.image, x) for r, x in zip(results, inputs, strict=True))
    assert sizes == [40, 40]


def test_batcher_hands_a_model_error_to_every_waiting_request(
    synthetic_run: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, _ = load_model(synthetic_run[1])
    batcher = Batcher(model)

    def broken(m: torch.nn.Module, xs: list[np.ndarray]) -> list[Prediction]:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(serve_module, "predict_inputs", broken)

    async def ask_all() -> list[object]:
        return list(
            await asyncio.gather(*(batcher.predict(x) for x in _inputs(5)), return_exceptions=True)
        )

    errors = asyncio.run(ask_all())
    assert [str(e) for e in errors] == ["out of memory"] * 5
    monkeypatch.undo()
    assert asyncio.run(batcher.predict(_inputs(1)[0])).digit in range(10)  # still serving
