"""Learning a population's handwriting from 10% of it, as the page's corrections would teach it.

The population: digits drawn with strokes in European styles (tests/strokes.py: flagged 1s and
crossed 7s, --per-style of each, seed 11). 10% of it (per style) become corrections in a
feedback store; `lenet5.training.finetune` (the command's defaults) learns from them; the
other 90% are read before and after, and the MNIST test split after.

    LENET5_DATA=../shared/data/mnist python benchmarks/learn_population.py [--model RUN] ...
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from lenet5.data.feedback import FeedbackStore
from lenet5.data.mnist import load_splits
from lenet5.data.preprocess import preprocess
from lenet5.inference.checkpoint import load_model
from lenet5.inference.evaluate import evaluate
from lenet5.inference.predict import predict_inputs
from lenet5.training.finetune import finetune
from strokes import european_digits


def accuracy(model_path: str | None, inputs: list[np.ndarray], labels: list[int]) -> float:
    model, _ = load_model(model_path)
    digits = [p.digit for p in predict_inputs(model, inputs)]
    return float(np.mean([d == y for d, y in zip(digits, labels, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="base models (default: the bundled)")
    parser.add_argument("--per-style", type=int, default=400)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    drawings = european_digits(args.per_style, seed=11)
    inputs = [preprocess(image) for _, _, image in drawings]
    labels = [label for _, label, _ in drawings]
    # The first 10% of each style teach; the other 90% measure.
    teach = {i for i in range(len(drawings)) if i % args.per_style < args.per_style // 10}
    measured = [i for i in range(len(drawings)) if i not in teach]
    splits = load_splits(progress=False)
    rows = []
    for base in args.model or [None]:
        with tempfile.TemporaryDirectory() as tmp:
            store = FeedbackStore(Path(tmp) / "fb.sqlite")
            base_model, _ = load_model(base)
            for i, answer in zip(
                sorted(teach),
                predict_inputs(base_model, [inputs[i] for i in sorted(teach)]),
                strict=True,
            ):
                store.add(labels[i], answer.digit, answer.probabilities, inputs[i], None, "base")
            store.close()
            run = Path(tmp) / "run"
            result = finetune(base, store.path, splits, run, echo=lambda _: None)
            before = accuracy(base, [inputs[i] for i in measured], [labels[i] for i in measured])
            after = accuracy(str(run), [inputs[i] for i in measured], [labels[i] for i in measured])
            tuned, _ = load_model(run)
            row = {
                "base": base or "bundled",
                "taught": len(teach),
                "measured": len(measured),
                "population_before": before,
                "population_after": after,
                "mnist_test_before": evaluate(base_model, splits.test)["accuracy"],
                "mnist_test_after": evaluate(tuned, splits.test)["accuracy"],
                "val_before": result["before"]["val_accuracy"],
                "val_after": result["after"]["val_accuracy"],
            }
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
