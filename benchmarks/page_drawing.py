"""Capture what the drawing page really sends: a 7 drawn with the mouse in chromium.

Starts `lenet5 serve` (the bundled model), opens its page in Debian's chromium through
Playwright, drags the mouse through a 7 with a slight waver, as a hand does, and once the page
has read it keeps its canvas as the page posts it to /api/predict (the same toBlob call): a
280x280 RGBA PNG encoded by the browser, its strokes anti-aliased. benchmarks/serve_load.py
and benchmarks/engines.py post that file as the page's traffic (--png-size 280).

    python benchmarks/page_drawing.py [--out benchmarks/page-drawing.png]
"""

from __future__ import annotations

import argparse
import itertools
import math
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from serve_load import free_port

from lenet5.files import atomic_write
from lenet5.serving.app import wait_until_serving

HERE = Path(__file__).resolve().parent
TO_PNG = """() => new Promise((resolve) => document.getElementById("pad").toBlob(
    (blob) => blob.arrayBuffer().then((buffer) => resolve(Array.from(new Uint8Array(buffer))))))"""
CORNERS = [(0.25, 0.2), (0.75, 0.2), (0.43, 0.82)]  # the 7, as fractions of the canvas


def pen_path(steps: int = 24) -> list[tuple[float, float]]:
    """Points along the 7's two strokes, wavering sideways by about 0.5% of the canvas."""
    points = []
    for (x0, y0), (x1, y1) in itertools.pairwise(CORNERS):
        for k in range(steps):
            t = k / steps
            points.append((x0 + (x1 - x0) * t + 0.005 * math.sin(len(points)), y0 + (y1 - y0) * t))
    return [*points, CORNERS[-1]]


def capture(url: str, chromium: str) -> bytes:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        box = page.locator("#pad").bounding_box()
        assert box is not None
        path = [
            (box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in pen_path()
        ]
        page.mouse.move(*path[0])
        page.mouse.down()
        for x, y in path[1:]:
            page.mouse.move(x, y, steps=2)
        page.mouse.up()
        expect(page.locator("#digit")).to_have_text("7", timeout=10_000)
        # What the page posts: its canvas, encoded by the same toBlob call.
        png = bytes(page.evaluate(TO_PNG))
        browser.close()
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise RuntimeError("the page's canvas gave no PNG")
    return png


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "page-drawing.png")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    if not Path(args.chromium).exists():
        sys.exit("needs chromium (apt-get install chromium) and playwright")
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen(
            [
                *(sys.executable, "-m", "lenet5", "serve", "--port", str(port)),
                *("--feedback", str(Path(tmp) / "fb.sqlite")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(url, server)
            png = capture(url, args.chromium)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=20)
    atomic_write(args.out, lambda f: f.write(png))
    print(f"{args.out}: {len(png):,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
