"""What every peer of the benchmark suite does the same way (standard library only, so that it
runs in the peers' own environment too): train until a test accuracy, time inference, report.

`train_to_target` and `time_inference` take the system's own steps as callables; `report`
prints the one JSON object that benchmarks/suite.py reads from the last line of output.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sized
from pathlib import Path
from typing import Any

BATCH = 1000  # inference batch, as for lenet5


def argument_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every peer takes: DATA_DIR, --max-epochs, --target, --seed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("data_dir", type=Path, help="folder of the four MNIST IDX files")
    parser.add_argument("--max-epochs", type=int, default=15, help="(default: 15)")
    parser.add_argument("--target", type=float, default=0.99, help="test accuracy (default: 0.99)")
    parser.add_argument("--seed", type=int, default=0, help="(default: 0)")
    return parser


def train_to_target(
    name: str,
    train_epoch: Callable[[], None],
    test_accuracy: Callable[[], float],
    max_epochs: int,
    target: float,
) -> list[dict[str, float]]:
    """Epochs of training until the test accuracy reaches `target` (or `max_epochs`); each
    epoch's training seconds (evaluation excluded) and test accuracy."""
    epochs: list[dict[str, float]] = []
    for epoch in range(1, max_epochs + 1):
        t0 = time.perf_counter()
        train_epoch()
        seconds = time.perf_counter() - t0
        accuracy = float(test_accuracy())
        epochs.append({"epoch": epoch, "seconds": seconds, "test_accuracy": accuracy})
        print(f"{name} epoch {epoch}: {seconds:.1f} s, test {accuracy:.4f}", flush=True)
        if accuracy >= target:
            break
    return epochs


def time_inference(forward: Callable[[Any], object], images: Sized) -> dict[str, float]:
    """Images per second in batches of BATCH, and the median milliseconds of one image.
    `forward(images[a:b])` must return only when the result is computed."""
    n = len(images)
    for _ in range(2):  # warm-up (graph tracing, allocations)
        forward(images[:BATCH])  # type: ignore[index]
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        forward(images[start : start + BATCH])  # type: ignore[index]
    images_per_s = n / (time.perf_counter() - t0)
    single = []
    for i in range(300):
        t0 = time.perf_counter()
        forward(images[i : i + 1])  # type: ignore[index]
        single.append(time.perf_counter() - t0)
    return {"images_per_s": images_per_s, "single_image_ms": statistics.median(single[50:]) * 1e3}


def report(
    system: str, versions: dict[str, str], epochs: list[dict[str, float]], **figures: Any
) -> None:
    print(json.dumps({"system": system, "versions": versions, "epochs": epochs, **figures}))
