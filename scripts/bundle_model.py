"""Make a finished run the model shipped inside the package, with its card.

The bundled model is built in two stages (docs/robustness.md). First the robust recipe
distilled from three robust runs (the bundled model of lenet5 0.1.0):

    for s in 0 1 2; do lenet5 train --recipe robust --seed $s --run-dir runs/robust-s$s; done
    lenet5 train --recipe robust --seed 0 --epochs 60 --distill 1.0 --temperature 1.0 \
        --teacher runs/robust-s0 --teacher runs/robust-s1 --teacher runs/robust-s2 \
        --run-dir runs/bundled
    LENET5_DATA=../shared/data/mnist python scripts/bundle_model.py runs/bundled

Then that model, saved as a file, learns to answer "not a digit" while it keeps its own answers
on the digits (it is its own teacher); once trained it reads at three scales, and is calibrated
at the end of the run:

    git show 2526bdf:src/lenet5/weights/lenet5-robust.pt > runs/lenet5-robust-0.1.pt
    lenet5 train --recipe robust --seed 0 --epochs 6 --lr 0.001 --outliers 30000 \
        --read-scale 1 --read-scale 0.85 --read-scale 1.15 \
        --distill 1.0 --temperature 1.0 --teacher runs/lenet5-robust-0.1.pt \
        --init-from runs/lenet5-robust-0.1.pt --run-dir runs/not-a-digit
    LENET5_DATA=../shared/data/mnist python scripts/bundle_model.py runs/not-a-digit \
        --base-card card-0.1.json   # the first stage's card, kept in the new one

Last, a judge: LeNet-5's layers wider, trained apart on more kinds of non-digits, which says
whether an image is a digit at all (`lenet5.models.Judged`, docs/robustness.md):

    lenet5 train --model judge --recipe robust --seed 22 --outliers 60000 --broad-outliers \
        --read-scale 1 --read-scale 0.85 --read-scale 1.15 --run-dir runs/judge-s22
    LENET5_DATA=../shared/data/mnist python scripts/bundle_model.py \
        src/lenet5/weights/lenet5-robust.pt --base-card runs/card-0.1.json \
        --judge runs/judge-s22 --judge-below 0.25

`--read-scale` sets the scales on a run made without them (the bundled weights got theirs so:
`python scripts/bundle_model.py src/lenet5/weights/lenet5-robust.pt --base-card card-0.1.json
--read-scale 1 --read-scale 0.85 --read-scale 1.15`).

writes src/lenet5/weights/lenet5-robust.pt (the run's final weights and config, no optimizer
state), lenet5-robust.onnx (the same network for onnxruntime, checked against PyTorch on the
test split) and lenet5-robust.json (the SHA-256 of both, the commands that train the model and
its teachers, and the accuracies measured here on MNIST and scikit-learn's UCI digits).
docs/model-card.md quotes the figures; tests/test_bundled.py checks them against the weights.
A plain `--recipe robust` run is taken too (the card then has no teachers).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from torch import nn

from lenet5.cli.common import positive_float
from lenet5.config import RECIPES, TrainConfig
from lenet5.data.mnist import Split, load_splits
from lenet5.data.uci import load_uci_digits
from lenet5.files import atomic_write, atomic_write_text
from lenet5.inference.bundled import BUNDLED, BUNDLED_CARD, BUNDLED_ONNX
from lenet5.inference.checkpoint import judge_entry, load_checkpoint, load_model, save_checkpoint
from lenet5.inference.evaluate import evaluate
from lenet5.inference.export import compare_with_onnx, export_onnx
from lenet5.models import Judged, build_model, digit_reader
from lenet5.training.loop import calibrate

RECIPE = "robust"
DISTILLATION = ("epochs", "teachers", "distill", "temperature")  # what a distilled run may change
NOT_A_DIGIT = (*DISTILLATION, "init_from", "outliers", "lr", "read_scales")  # the second stage
JUDGE = ("model", "outliers", "broad_outliers", "read_scales")  # what the judge's run changes


def finished_run(
    run_dir: Path | str, may_change: tuple[str, ...] = ()
) -> tuple[TrainConfig, dict[str, Any]]:
    """The config and last checkpoint of a finished `--recipe robust` run that changed nothing
    but `may_change` (and the seed); SystemExit otherwise."""
    state = load_checkpoint(run_dir)
    config = TrainConfig.from_dict(state["config"])
    recipe = TrainConfig(**RECIPES[RECIPE], seed=config.seed)
    changed = [
        f.name
        for f in dataclasses.fields(TrainConfig)
        if getattr(config, f.name) != getattr(recipe, f.name) and f.name not in may_change
    ]
    if changed:
        raise SystemExit(f"{run_dir} is not a --recipe {RECIPE} run: {changed} differ")
    if state["epoch"] != config.epochs:
        raise SystemExit(f"{run_dir} has not finished ({state['epoch']}/{config.epochs})")
    return config, state


def train_command(config: TrainConfig, run_dir: str = "") -> str:
    """The `lenet5 train` command line of a robust run, plain or distilled."""
    words = ["lenet5 train", f"--recipe {RECIPE}", f"--seed {config.seed}"]
    if config.model != "lenet5":
        words.insert(1, f"--model {config.model}")
    if config.epochs != RECIPES[RECIPE]["epochs"]:
        words.append(f"--epochs {config.epochs}")
    if config.lr != RECIPES[RECIPE]["lr"]:
        words.append(f"--lr {config.lr}")
    if config.outliers:
        words.append(f"--outliers {config.outliers}")
    if config.broad_outliers:
        words.append("--broad-outliers")
    words += [f"--read-scale {scale:g}" for scale in config.read_scales]
    if config.teachers:
        words += [f"--distill {config.distill}", f"--temperature {config.temperature}"]
        words += [f"--teacher {teacher}" for teacher in config.teachers]
    if config.init_from:
        words.append(f"--init-from {config.init_from}")
    if run_dir:
        words.append(f"--run-dir {run_dir}")
    return " ".join(words)


def read_with_scales(model: nn.Module, config: TrainConfig, val: Split) -> nn.Module:
    """`model` rebuilt to read with `config.read_scales`, its temperature fitted again on `val`
    (as `lenet5 train --read-scale` fits it at the end of a run)."""
    scaled = build_model(config.model, config.dropout, "pytorch", config.read_scales)
    scaled.load_state_dict(model.state_dict())
    calibrate(scaled, val)
    return scaled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a finished robust run (distilled or plain)")
    parser.add_argument(
        "--read-scale",
        dest="read_scales",
        action="append",
        type=positive_float,
        metavar="S",
        help="read the run's model as `lenet5 train --read-scale S` does (repeat for several): "
        "its temperature is fitted again on validation, as at the end of such a run",
    )
    parser.add_argument("--judge", type=Path, help="a finished judge run to bundle with the model")
    parser.add_argument(
        "--judge-below",
        type=positive_float,
        default=0.25,
        help="the judge's probability under which it doubts the image is a digit "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--base-card",
        type=Path,
        help="the card of the model a second-stage run started from (its --init-from file)",
    )
    args = parser.parse_args()
    config, state = finished_run(args.run_dir, NOT_A_DIGIT if args.base_card else DISTILLATION)
    base = None
    if args.base_card:
        # The second stage: its base model is its teacher too, and its card says how it was made.
        base = json.loads(args.base_card.read_text())
        start = Path(config.init_from)
        if config.teachers != [config.init_from] or not start.is_file():
            raise SystemExit(f"{args.run_dir} must start from and learn from one model file")
        if hashlib.sha256(start.read_bytes()).hexdigest() != base["sha256"]:
            raise SystemExit(f"{start} is not the model of {args.base_card}")
        teachers = [{"file": config.init_from, "card": base}]
    else:
        # Each teacher must be a plain robust run, so that its command reproduces it.
        teachers = [
            {"run": run, "command": train_command(finished_run(run)[0], run)}
            for run in config.teachers
        ]
    model = digit_reader(load_model(args.run_dir)[0])  # (a bundled file may have a judge)
    splits = load_splits(progress=False)
    if args.read_scales:
        config = dataclasses.replace(config, read_scales=args.read_scales)
        model = read_with_scales(model, config, splits.val)
    judge = None
    if args.judge:
        judge = judge_entry(args.judge, args.judge_below)
        judge_config = finished_run(args.judge, JUDGE)[0]
        model = Judged(model, load_model(args.judge)[0], args.judge_below).eval()
    with tempfile.TemporaryDirectory() as tmp:  # weights only, written like any checkpoint
        slim = Path(tmp) / "model.pt"
        save_checkpoint(
            slim,
            config=config,
            model=digit_reader(model),
            epoch=state["epoch"],
            best_val_accuracy=state["best_val_accuracy"],
            judge=judge,
        )
        raw = slim.read_bytes()
        export_onnx(model, Path(tmp) / "model.onnx")
        onnx = (Path(tmp) / "model.onnx").read_bytes()
        check = compare_with_onnx(model, Path(tmp) / "model.onnx", splits.test)
    if not check["within_tolerance"] or check["agreement"] < 1.0:
        raise SystemExit(f"the ONNX export does not match PyTorch: {check}")
    card = {
        "name": BUNDLED.stem,
        "sha256": hashlib.sha256(raw).hexdigest(),
        "onnx_sha256": hashlib.sha256(onnx).hexdigest(),
        "command": train_command(config),
        "teachers": teachers,
        "recipe": RECIPE,
        "seed": config.seed,
        "epochs": config.epochs,
        "test_accuracy": evaluate(model, splits.test)["accuracy"],
        "val_accuracy": evaluate(model, splits.val)["accuracy"],
        "uci_digits_accuracy": evaluate(model, load_uci_digits())["accuracy"],
        "calibration_temperature": float(digit_reader(model).get_buffer("temperature")),
        "config": config.to_dict(),
    }
    if args.judge:
        card["judge"] = {
            "run": str(args.judge),
            "command": train_command(judge_config, str(args.judge)),
            "below": args.judge_below,
            "test_accuracy": evaluate(model.judge, splits.test)["accuracy"],
            "val_accuracy": evaluate(model.judge, splits.val)["accuracy"],
            "calibration_temperature": float(model.judge.get_buffer("temperature")),
        }
    atomic_write(BUNDLED, lambda f: f.write(raw))
    atomic_write(BUNDLED_ONNX, lambda f: f.write(onnx))
    atomic_write_text(BUNDLED_CARD, json.dumps(card, indent=2) + "\n")
    print(json.dumps({k: v for k, v in card.items() if k != "config"}, indent=2))


if __name__ == "__main__":
    main()
