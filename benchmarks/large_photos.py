"""Phone-sized photos through `load_image` + `preprocess`: time, memory, and the same digit.

Each of 100 README photo-test digits (tests/photos.py, seed 2024) is blown up into a 12-megapixel
phone photo (4000x3000 JPEG, quality 90, with sensor noise) and read two ways, one after the
other in one process: decoding the whole image as `load_image` did before it shrank images
while decoding ("full"), and today's `load_image`. Reports median and worst milliseconds and
how often the bundled model reads the same digit both ways (and the right one). Then, each in
a fresh process, the memory that the largest PNG allowed (40 megapixels of gray, 33 of colour)
adds to the process (peak RSS growth).

    LENET5_DATA=../shared/data/mnist python benchmarks/large_photos.py
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from lenet5.data.mnist import load_splits
from lenet5.data.preprocess import load_image, preprocess
from lenet5.inference.checkpoint import load_model
from lenet5.inference.predict import predict_inputs
from photos import render_photo

PHOTOS = 100
PHOTO_SEED = 2024
PHONE = (4000, 3000)

# Peak RSS growth of one read, in a fresh process: the peak (VmHWM) is reset first, since
# importing torch peaks higher than reading an image does.
MEMORY_CHILD = """
import sys
from pathlib import Path
from PIL import Image
from lenet5.data.preprocess import load_image, preprocess

def status(key):
    lines = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in lines if line.startswith(key + ":")) / 1024

raw = open(sys.argv[1], "rb").read()
Path("/proc/self/clear_refs").write_text("5")
before = status("VmRSS")
if sys.argv[2] == "full":
    image = Image.open(sys.argv[1]); image.load(); preprocess(image)
else:
    preprocess(load_image(raw))
print(status("VmHWM") - before)
"""


def phone_photo(photo: bytes, rng: np.random.Generator) -> bytes:
    """A 300x300 photo-test image as a 12 MP phone photo: the digit's square 3000 px high, the
    paper around it continued from its edges, sensor noise, JPEG quality 90."""
    square = Image.open(io.BytesIO(photo)).convert("L").resize((3000, 3000), Image.BICUBIC)
    paper = np.pad(np.asarray(square, dtype=np.float32), ((0, 0), (500, 500)), mode="edge")
    paper += rng.normal(0, 3, size=paper.shape).astype(np.float32)
    rgb = np.repeat(np.clip(paper, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=90)
    return out.getvalue()


def full_decode(raw: bytes) -> np.ndarray:
    """The reading before images were shrunk while decoding."""
    image = Image.open(io.BytesIO(raw))
    image.load()
    return preprocess(image)


def timed(read: object, raw: bytes) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    x = read(raw)  # type: ignore[operator]
    return x, (time.perf_counter() - started) * 1000


def big_png(path: Path, mode: str, size: tuple[int, int]) -> None:
    """A dark 1 drawn on white paper (a few kB compressed)."""
    image = Image.new(mode, size, "white")
    ImageDraw.Draw(image).line([(4000, 1000), (4000, 4000)], fill="black", width=300)
    image.save(path, format="PNG")


def memory_mb(path: Path, how: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, str(path), how],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=Path("docs/benchmarks/large-photos.json"))
    args = parser.parse_args()
    test = load_splits(progress=False).test
    model, _ = load_model(None)
    rng = np.random.default_rng(PHOTO_SEED)
    chosen = rng.choice(len(test), size=PHOTOS, replace=False)
    rows = {"full": [], "shrunk": []}  # type: dict[str, list[float]]
    inputs = {"full": [], "shrunk": []}  # type: dict[str, list[np.ndarray]]
    sizes = []
    for i in chosen:
        raw = phone_photo(render_photo(test.images[i].numpy(), rng), rng)
        sizes.append(len(raw))
        for how, read in (("full", full_decode), ("shrunk", lambda r: preprocess(load_image(r)))):
            x, ms = timed(read, raw)
            rows[how].append(ms)
            inputs[how].append(x)
    labels = test.labels[chosen].tolist()
    digits = {how: [p.digit for p in predict_inputs(model, xs)] for how, xs in inputs.items()}
    result = {
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "photos": PHOTOS,
        "photo_pixels": f"{PHONE[0]}x{PHONE[1]}",
        "median_jpeg_mb": statistics.median(sizes) / 2**20,
        **{
            f"{how}_ms": {"median": statistics.median(ms), "max": max(ms)}
            for how, ms in rows.items()
        },
        "same_digit": sum(a == b for a, b in zip(digits["full"], digits["shrunk"], strict=True)),
        "right_full": sum(a == b for a, b in zip(digits["full"], labels, strict=True)),
        "right_shrunk": sum(a == b for a, b in zip(digits["shrunk"], labels, strict=True)),
    }
    with tempfile.TemporaryDirectory() as tmp:
        # the largest allowed: 40 MP of gray (MAX_PIXELS), 33 MP of colour (MAX_DECODED_BYTES)
        for mode, size in (("L", (8000, 5000)), ("RGBA", (8000, 4190))):
            path = Path(tmp) / f"big-{mode}.png"
            big_png(path, mode, size)
            key = f"png_{size[0]}x{size[1]}_{mode}"
            result[f"{key}_kb"] = path.stat().st_size / 1024
            for how in ("full", "shrunk"):
                result[f"{key}_{how}_rss_mb"] = memory_mb(path, how)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
