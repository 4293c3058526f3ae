"""`lenet5 predict`: read the digit (or the row of digits) in image files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lenet5.cli.common import (
    Commands,
    add_checkpoint_arg,
    add_device_arg,
    add_engine_arg,
    inference_model,
)

if TYPE_CHECKING:
    import torch

    from lenet5.inference.numbers import NumberReading
    from lenet5.inference.predict import Prediction


def add_parser(sub: Commands) -> None:
    p = sub.add_parser(
        "predict",
        help="read digits in image files",
        description="Read the digit in each image (PNG, JPEG, BMP, GIF, WebP, TIFF); images are "
        "preprocessed as MNIST was (white on black, fitted to 20x20, centred by mass in 28x28). "
        "Uses the bundled model unless --model names another.",
    )
    add_checkpoint_arg(p)
    p.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="image files, folders of them, or - for one image on standard input",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per image per line: path, digit, probabilities",
    )
    p.add_argument(
        "--multi",
        action="store_true",
        help="each image holds a number, a row of digits that may touch (a year, a postcode): "
        "read them all, each with its box",
    )
    p.add_argument(
        "--row-reader",
        type=Path,
        metavar="FILE",
        help="with --multi: the row reader that reads touching digits, as "
        "scripts/train_row_reader.py writes it (default: the three bundled ones, voting)",
    )
    p.add_argument(
        "--save-preprocessed",
        type=Path,
        metavar="DIR",
        help="write the 28x28 images the model saw to DIR",
    )
    p.add_argument(
        "--explain",
        type=Path,
        metavar="DIR",
        help="write one PNG per image to DIR: the input, the maps of conv1, pool1, conv2 and "
        "pool2, and the saliency of the answer (integrated gradients) over the input",
    )
    add_engine_arg(p)
    add_device_arg(p, default="cpu")
    p.set_defaults(run=run)


def _image_sources(items: list[str]) -> list[str]:
    """Expand folders into the image files they hold; "-" stands for standard input."""
    from lenet5.data.preprocess import EXTENSIONS

    sources: list[str] = []
    for item in items:
        path = Path(item)
        if item != "-" and path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in EXTENSIONS)
            sources += [str(p) for p in found] or [item]  # an empty folder reports an error
        else:
            sources.append(item)
    return sources


def run(args: argparse.Namespace) -> int:
    from lenet5.data.preprocess import ImageError, load_image
    from lenet5.inference.numbers import read_number
    from lenet5.inference.predict import predict_image

    model, _ = inference_model(args)
    reader = None
    if args.multi:  # (torch is imported for the row reader only: one digit reads without it)
        from lenet5.inference.sweep import load_row_reader

        reader = load_row_reader(args.row_reader)
    explained = None  # --explain reads the layers of a PyTorch model, whatever the engine
    if args.explain is not None:
        from lenet5.inference.checkpoint import load_model
        from lenet5.inference.engines import OnnxModel

        explained = load_model(args.checkpoint)[0] if isinstance(model, OnnxModel) else model
    failures = 0
    for source in _image_sources(args.images):
        try:
            if source != "-" and Path(source).is_dir():
                raise ImageError("folder holds no PNG, JPEG, BMP, GIF, WebP or TIFF files")
            image = load_image(sys.stdin.buffer.read() if source == "-" else source)
            if args.multi:
                reading = read_number(model, image, reader)
                predictions = reading.digits
            else:
                reading, predictions = None, [predict_image(model, image)]
        except ImageError as exc:
            failures += 1
            if args.json:
                print(json.dumps({"path": source, "error": str(exc)}), flush=True)
            else:
                print(f"{source}: error: {exc}", file=sys.stderr, flush=True)
            continue
        _print_prediction(args, source, predictions, reading)
        stem = "stdin" if source == "-" else Path(source).stem
        _save_pictures(args, stem, predictions, explained)
    return 1 if failures else 0


def _print_prediction(
    args: argparse.Namespace,
    source: str,
    predictions: list[Prediction],
    reading: NumberReading | None,
) -> None:
    from lenet5.inference.predict import NOT_A_DIGIT

    if args.json:
        answer = reading.answer() if reading is not None else predictions[0].answer()
        print(json.dumps({"path": source, **answer}), flush=True)
    elif reading is not None:
        sure = "  ".join(f"{p.digit}: {p.probabilities[p.digit]:.3f}" for p in predictions)
        if reading.unread:
            where = ", ".join(map(str, reading.unread))
            print(
                f"{source}: not a number ({NOT_A_DIGIT} at {where}; closest: {reading.closest}"
                f"  ({sure}))",
                flush=True,
            )
        else:
            print(f"{source}: {reading.closest}  ({sure})", flush=True)
    elif predictions[0].refused:
        pred = predictions[0]
        top = pred.probabilities[pred.digit]
        print(f"{source}: {NOT_A_DIGIT} (closest: {pred.digit}, {top:.2f})", flush=True)
    else:
        top3 = "  ".join(f"{d}: {p:.3f}" for d, p in predictions[0].top(3))
        print(f"{source}: {predictions[0].digit}  ({top3})", flush=True)


def _save_pictures(
    args: argparse.Namespace,
    stem: str,
    predictions: list[Prediction],
    explained: torch.nn.Module | None,
) -> None:
    """--save-preprocessed: the 28x28 inputs; --explain: what `explained` saw of each."""
    if args.save_preprocessed is None and args.explain is None:
        return
    import numpy as np
    from PIL import Image

    from lenet5.files import atomic_write

    for k, pred in enumerate(predictions):
        name = f"{stem}-{k}.png" if args.multi else f"{stem}.png"
        if args.save_preprocessed is not None:
            picture = Image.fromarray(np.ascontiguousarray(pred.image))
            atomic_write(
                args.save_preprocessed / name, lambda f, im=picture: im.save(f, format="PNG")
            )
        if explained is not None:
            from lenet5.inference.explain import explain
            from lenet5.plots import plot_explanation

            inside = explain(explained, pred.image, pred.digit)
            title = f"{stem}: read as {pred.digit} ({pred.probabilities[pred.digit]:.3f})"
            plot_explanation(
                pred.image, inside.activations, inside.saliency, args.explain / name, title
            )
            print(f"wrote {args.explain / name}", flush=True)
