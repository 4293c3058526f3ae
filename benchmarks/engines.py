"""PyTorch against ONNX Runtime, side by side in one run (issue 15's targets 3-5).

- inference on MNIST's 10,000 test images (batches of 1,000, best of --passes), images/s;
- one image, preprocessed input in, probabilities out (median of 2,000), microseconds;
- `lenet5.inference.explain` of one digit (median of 200), milliseconds;
- a 280x280 drawing as the page sends it (RGBA PNG) read into the model's input: decoding,
  preprocessing, both (median of 500), milliseconds;
- with --serve, benchmarks/serve_load.py for each engine and each PNG size (28: MNIST-style,
  280: the page's canvas), one after the other, --requests each.

    LENET5_DATA=../shared/data/mnist python benchmarks/engines.py [--serve]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve_load import digit_png

from lenet5.data.mnist import load_splits
from lenet5.data.preprocess import load_image, preprocess
from lenet5.inference.engines import default_threads
from lenet5.inference.predict import load_inference_model, probabilities

HERE = Path(__file__).resolve().parent


def best_rate(run: Any, images: np.ndarray, passes: int, batch: int = 1000) -> float:
    """Images per second of `run(batch)` over `images`, the best of `passes`."""
    best = float("inf")
    for _ in range(passes):
        started = time.perf_counter()
        for k in range(0, len(images), batch):
            run(images[k : k + batch])
        best = min(best, time.perf_counter() - started)
    return len(images) / best


def median_s(run: Any, repeats: int) -> float:
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def inference(passes: int) -> dict[str, Any]:
    images = load_splits(progress=False).test.images.numpy()
    threads = default_threads()
    torch.set_num_threads(threads)
    onnx_batch, _, _ = load_inference_model(None, "onnx", threads)
    onnx_one, _, _ = load_inference_model(None, "onnx", 1)
    model, _, _ = load_inference_model(None, "torch")
    fast = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    rates = {
        "onnxruntime": best_rate(lambda x: probabilities(onnx_batch, x), images, passes),
        "torch": best_rate(lambda x: probabilities(fast, x), images, passes),
    }
    model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    torch.set_num_threads(1)
    x = images[:1]
    one = {
        "onnxruntime": median_s(lambda: probabilities(onnx_one, x), 2000) * 1e6,
        "torch": median_s(lambda: probabilities(model, x), 2000) * 1e6,
    }
    return {
        "threads": threads,
        "images_per_s": rates,
        "one_image_us": one,
        "agree": bool(
            (
                probabilities(onnx_batch, images).argmax(1)
                == probabilities(model, images).argmax(1)
            ).all()
        ),
    }


def explaining() -> dict[str, float]:
    """`lenet5.inference.explain` on one test digit (activations, 64-step integrated gradients)."""
    from lenet5.inference.explain import explain

    torch.set_num_threads(1)
    model, _, _ = load_inference_model(None, "torch")
    image = load_splits(progress=False).test.images[0].numpy()
    inside = explain(model, image)
    return {
        "explain_ms": median_s(lambda: explain(model, image), 200) * 1e3,
        "to_json_ms": median_s(inside.to_json, 200) * 1e3,
    }


def drawing() -> dict[str, float]:
    png = digit_png(280)
    image = load_image(png)
    return {
        "decode_ms": median_s(lambda: load_image(png), 500) * 1e3,
        "preprocess_ms": median_s(lambda: preprocess(image), 500) * 1e3,
        "png_to_input_ms": median_s(lambda: preprocess(load_image(png)), 500) * 1e3,
    }


def serve(requests: int) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for engine in ("torch", "onnx"):
            for size in (28, 280):
                out = Path(tmp) / f"{engine}-{size}.json"
                subprocess.run(
                    [
                        sys.executable,
                        str(HERE / "serve_load.py"),
                        *("--engine", engine, "--png-size", str(size)),
                        *("--requests", str(requests), "--json", str(out)),
                    ],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
                row = json.loads(out.read_text())
                rows[f"{engine} {size}"] = {
                    k: row[k]
                    for k in (
                        "requests",
                        "requests_per_s",
                        "p50_ms_median_round",
                        "p99_ms_worst_round",
                        "non_2xx",
                        "socket_errors",
                    )
                }
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--serve", action="store_true", help="also run serve_load.py 4 times")
    parser.add_argument("--requests", type=int, default=30_000, help="per serve_load.py run")
    parser.add_argument("--json", type=Path, default=Path("docs/benchmarks/engines.json"))
    args = parser.parse_args()
    measured: dict[str, Any] = {
        "inference": inference(args.passes),
        "drawing_280": drawing(),
        "explain": explaining(),
    }
    if args.serve:
        measured["serve"] = serve(args.requests)
    stamp = {
        "date": date.today().isoformat(),
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}",
        "torch": torch.__version__,
    }
    print(json.dumps(measured, indent=2))
    # Each section keeps the figures of the run that measured it (a run without --serve keeps
    # the last serve figures).
    result = json.loads(args.json.read_text()) if args.json.is_file() else {}
    result.update({name: {**stamp, **figures} for name, figures in measured.items()})
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
