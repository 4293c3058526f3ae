"""`lenet5 evaluate`: accuracy, per-class metrics and confusion matrix of a trained model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lenet5.cli.common import (
    Commands,
    add_checkpoint_arg,
    add_data_args,
    add_device_arg,
    add_engine_arg,
    inference_model,
)
from lenet5.config import UCI_DIGITS


def add_parser(sub: Commands) -> None:
    p = sub.add_parser(
        "evaluate",
        help="accuracy, per-class metrics and confusion matrix of a trained model",
        description="Evaluate a trained model (the bundled one unless --model names another) on a "
        "split of its data set, or on scikit-learn's UCI digits (--dataset uci-digits).",
    )
    add_checkpoint_arg(p)
    p.add_argument(
        "--split",
        choices=("test", "val", "train"),
        default="test",
        help="split to evaluate (default: %(default)s; uci-digits has one set of 1,797)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--plots",
        type=Path,
        metavar="DIR",
        help="write the confusion matrix, the most confidently wrong images, the reliability "
        "diagram and the risk-coverage curve as PNG",
    )
    add_data_args(p, dataset_default="the one the model was trained on", extra=(UCI_DIGITS,))
    add_engine_arg(p)
    add_device_arg(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from lenet5.data.mnist import load_splits
    from lenet5.data.uci import load_uci_digits
    from lenet5.inference.calibration import REFUSE_BELOW, calibration_report, risk_coverage
    from lenet5.inference.checkpoint import resolve_checkpoint
    from lenet5.inference.engines import OnnxModel, default_threads
    from lenet5.inference.evaluate import describe_split, evaluate, format_report, per_class_metrics
    from lenet5.inference.predict import probabilities
    from lenet5.plots import plot_calibration, plot_confident_errors, plot_confusion_matrix

    model, config = inference_model(args, threads=default_threads())
    device = "cpu" if isinstance(model, OnnxModel) else next(model.parameters()).device
    dataset = args.dataset or config.dataset
    if dataset == UCI_DIGITS:
        split, split_name = load_uci_digits().to(device), None
    else:
        splits = load_splits(dataset, args.data_dir, progress=sys.stderr.isatty())
        split, split_name = getattr(splits, args.split).to(device), args.split
    result = evaluate(model, split, config.eval_batch_size)
    images, labels = split.images.cpu().numpy(), split.labels.cpu().numpy()
    probs = np.concatenate(
        [probabilities(model, images[k : k + 1000]) for k in range(0, len(images), 1000)]
    )
    report = {
        "checkpoint": str(resolve_checkpoint(args.checkpoint)),
        "engine": "onnxruntime" if isinstance(model, OnnxModel) else "torch",
        "dataset": dataset,
        "split": split_name,
        "examples": len(split),
        "accuracy": result["accuracy"],
        "loss": result["loss"],
        "per_class": per_class_metrics(result["confusion_matrix"]),
        "confusion_matrix": result["confusion_matrix"],
        **calibration_report(probs, labels),
    }
    if args.plots is not None:
        args.plots.mkdir(parents=True, exist_ok=True)
        title = f"{config.model} on {describe_split(report)}: accuracy {result['accuracy']:.4f}"
        plot_confusion_matrix(
            result["confusion_matrix"], args.plots / "confusion_matrix.png", title
        )
        plot_confident_errors(images, labels, probs, args.plots / "confident_errors.png")
        coverage, error = risk_coverage(probs, labels)
        plot_calibration(
            report["reliability"], coverage, error, REFUSE_BELOW, args.plots / "calibration.png"
        )
        report["plots"] = [
            str(args.plots / n)
            for n in ("confusion_matrix.png", "confident_errors.png", "calibration.png")
        ]
    if args.json:
        print(json.dumps(report))
    else:
        print(format_report(report))
        for plot in report.get("plots", []):
            print(f"wrote {plot}")
    return 0
