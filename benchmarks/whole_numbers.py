"""How well whole numbers are read: rows of 4-6 handwritten digits, apart and touching.

The dev set is made here, the same on every run (seeded): rows of scikit-learn's UCI digits
(43 writers outside MNIST) and of MNIST's test split (measuring only: nothing trains on it),
each with gaps between the digits and with neighbours whose ink touches or overlaps by up to
8% of the height (`lenet5.data.rows`). For each model and reader:
- exact: the share of rows read as exactly their number (refused rows count as wrong);
- count: the share of rows given the right number of digits;
- refused: the share of rows answered "not a number";
- ms: the median time to read one row in process (the digit model on one thread, the row
  readers on torch's default, all the cores), and the same for 6-digit rows.
Readers: `sweep` (`lenet5 predict --multi`: ink that reads as one digit is one, groups of
touching digits go to the row reader, LeNet-5 swept along the row), `paths` (over-segmentation
and the best path through the pieces, each run read by the digit model) and `components` (each
connected piece of ink one digit: lenet5 0.1.0's reader).

    LENET5_DATA=../shared/data/mnist python benchmarks/whole_numbers.py bundled
    python benchmarks/whole_numbers.py bundled --row-reader runs/rows-01/lenet5-rows.pt \
        --save /tmp/rows
"""

from __future__ import annotations

import sys

# This file's folder comes first on the path when run as a script, and this file's name
# would then hide the standard library's `numbers` module from everything imported below.
if sys.path and sys.path[0] == __file__.rsplit("/", 1)[0]:
    del sys.path[0]

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lenet5.data.mnist import load_splits
from lenet5.data.rows import Row, ink_crop, make_rows
from lenet5.data.segment import split_digits
from lenet5.data.uci import render
from lenet5.inference.engines import Model
from lenet5.inference.numbers import read_number
from lenet5.inference.predict import load_inference_model, predict_inputs
from lenet5.inference.sweep import load_row_reader

SEED = 26


def dev_sets(count: int) -> dict[str, list[Row]]:
    """The four sets of `count` rows each."""
    from sklearn.datasets import load_digits

    uci = load_digits()
    test = load_splits().test
    sources = {
        "uci": (
            [ink_crop(np.asarray(render(c)), light_paper=True) for c in uci.images],
            uci.target,
        ),
        "mnist-test": ([ink_crop(x) for x in test.images.numpy()], test.labels.numpy()),
    }
    sets = {}
    for name, (crops, labels) in sources.items():
        for k, touching in enumerate((False, True)):
            seed = SEED + 2 * len(sets) + k
            sets[f"{name} {'touching' if touching else 'apart'}"] = make_rows(
                crops, labels, count, touching, seed=seed
            )
    return sets


def read_sweep(model: Model, image: Image.Image, reader: Any) -> tuple[str, bool]:
    reading = read_number(model, image, reader)
    return reading.closest, bool(reading.unread)


def read_paths(model: Model, image: Image.Image, reader: Any) -> tuple[str, bool]:
    reading = read_number(model, image)
    return reading.closest, bool(reading.unread)


def read_components(model: Model, image: Image.Image, reader: Any) -> tuple[str, bool]:
    predictions = predict_inputs(model, split_digits(image))
    return "".join(str(p.digit) for p in predictions), any(p.refused for p in predictions)


READERS: dict[str, Callable[[Model, Image.Image, Any], tuple[str, bool]]] = {
    "sweep": read_sweep,
    "paths": read_paths,
    "components": read_components,
}


def measure(model: Model, rows: list[Row], read: Callable, reader: Any) -> dict[str, Any]:
    exact = count = refused = 0
    times, six = [], []
    for row in rows:
        start = time.perf_counter()
        number, unread = read(model, row.image, reader)
        seconds = time.perf_counter() - start
        times.append(seconds)
        if len(row.number) == 6:
            six.append(seconds)
        exact += number == row.number and not unread
        count += len(number) == len(row.number)
        refused += unread
    n = len(rows)
    return {
        "exact": exact / n,
        "count": count / n,
        "refused": refused / n,
        "ms": 1000 * statistics.median(times),
        "ms_6_digits": 1000 * statistics.median(six) if six else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="`bundled` or checkpoint paths")
    parser.add_argument("--rows", type=int, default=200, help="rows per set (default: 200)")
    parser.add_argument("--readers", default="sweep,paths,components", help="(default: all)")
    parser.add_argument("--row-reader", type=Path, help="for sweep (default: the bundled three)")
    parser.add_argument("--save", type=Path, help="write the rows as PNG files and labels.json")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    sets = dev_sets(args.rows)
    if args.save:
        _save(sets, args.save)
    results: dict[str, Any] = {"rows_per_set": args.rows, "seed": SEED, "models": {}}
    reader = load_row_reader(args.row_reader)
    for name in args.models:
        model, _, _ = load_inference_model(None if name == "bundled" else name, engine="onnx")
        for way in args.readers.split(","):
            for set_name, rows in sets.items():
                figures = measure(model, rows, READERS[way], reader)
                results["models"].setdefault(name, {}).setdefault(way, {})[set_name] = figures
                print(
                    f"{name:28} {way:10} {set_name:20} exact {figures['exact']:.3f}  count "
                    f"{figures['count']:.3f}  refused {figures['refused']:.3f}  "
                    f"{figures['ms']:.1f} ms/row  (6 digits: {figures['ms_6_digits'] or 0:.1f})",
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


def _save(sets: dict[str, list[Row]], folder: Path) -> None:
    labels = {}
    for set_name, rows in sets.items():
        for k, row in enumerate(rows):
            name = f"{set_name.replace(' ', '-')}-{k:03d}.png"
            folder.mkdir(parents=True, exist_ok=True)
            row.image.save(folder / name)
            labels[name] = {"number": row.number, "boxes": [list(b) for b in row.boxes]}
    (folder / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    print(f"wrote {len(labels)} rows to {folder}")


if __name__ == "__main__":
    main()
