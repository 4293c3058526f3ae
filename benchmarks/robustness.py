"""How well models read handwriting from outside MNIST, side by side.

For each model (a run directory, a checkpoint, or `bundled`): MNIST validation accuracy (and test
accuracy with --test), scikit-learn's UCI digits read through predict's preprocessing, the
European-style digits drawn with strokes (tests/strokes.py: flagged 1s, crossed 7s) and, with
--photos, the README's photo test (1,000 MNIST test digits rendered as photos, tests/photos.py)
and the same rendering of 3,000 validation digits (photo_val: to choose by).

    LENET5_DATA=../shared/data/mnist python benchmarks/robustness.py bundled runs/robust-01 --test
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from lenet5.data.mnist import Split, load_splits
from lenet5.data.preprocess import load_image, preprocess
from lenet5.data.uci import load_uci_digits
from lenet5.inference.checkpoint import load_model
from lenet5.inference.evaluate import evaluate
from lenet5.inference.predict import predict, predict_inputs
from photos import render_photo
from strokes import STYLES, european_digits

EUROPEAN_PER_STYLE = 200
PHOTOS = 1000
PHOTO_SEED = 2024  # the README's photo test
# The same rendering of MNIST validation digits: a photo figure to choose models by (the photo
# test is drawn from the test split, so it is only measured).
PHOTOS_VAL, PHOTO_VAL_SEED = 3000, 7


def rendered_photos(split: Split, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` digits of `split` rendered as phone photos and read back through `preprocess`."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(split), size=count, replace=False)
    inputs = [preprocess(load_image(render_photo(split.images[i].numpy(), rng))) for i in chosen]
    return torch.from_numpy(np.stack(inputs)), split.labels[chosen]


def measure(models: list[str], test: bool, photos: bool) -> list[dict[str, Any]]:
    splits = load_splits(progress=False)
    uci = load_uci_digits()
    european = european_digits(EUROPEAN_PER_STYLE)
    european_inputs = [preprocess(image) for _, _, image in european]
    photo_sets = {}
    if photos:
        photo_sets = {
            "photo": rendered_photos(splits.test, PHOTOS, PHOTO_SEED),
            "photo_val": rendered_photos(splits.val, PHOTOS_VAL, PHOTO_VAL_SEED),
        }
    rows = []
    for name in models:
        model, _ = load_model(None if name == "bundled" else name)
        row: dict[str, Any] = {
            "model": name,
            "val_accuracy": evaluate(model, splits.val)["accuracy"],
            "uci_accuracy": evaluate(model, uci)["accuracy"],
        }
        if test:
            row["test_accuracy"] = evaluate(model, splits.test)["accuracy"]
        digits = [p.digit for p in predict_inputs(model, european_inputs)]
        for style, (label, _) in STYLES.items():
            read = [d for (s, _, _), d in zip(european, digits, strict=True) if s == style]
            row[style] = sum(d == label for d in read)
            row[f"{style} read as"] = {str(k): read.count(k) for k in sorted(set(read))}
        for name, (inputs, labels) in photo_sets.items():
            guesses = predict(model, inputs).argmax(1)
            row[f"{name}_accuracy"] = (guesses == labels).float().mean().item()
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="run directories, checkpoints or 'bundled'")
    parser.add_argument("--test", action="store_true", help="also report MNIST test accuracy")
    parser.add_argument("--photos", action="store_true", help="also run the photo test")
    parser.add_argument("--json", type=Path, help="write the rows to this file")
    args = parser.parse_args()
    rows = measure(args.models, args.test, args.photos)
    n = EUROPEAN_PER_STYLE
    test = "test | " if args.test else ""
    photo = " photo test | photo val |" if args.photos else ""
    print(f"\n| model | val | {test}UCI digits |{photo} flagged 1s | crossed 7s |")
    for r in rows:
        test = f"{r['test_accuracy']:.2%} | " if args.test else ""
        photo = (
            f" {r['photo_accuracy']:.2%} | {r['photo_val_accuracy']:.2%} |" if args.photos else ""
        )
        print(
            f"| {r['model']} | {r['val_accuracy']:.2%} | {test}{r['uci_accuracy']:.2%} |{photo} "
            f"{r['flagged 1']}/{n} | {r['crossed 7']}/{n} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
