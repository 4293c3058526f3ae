"""Flags and values that several commands share: one definition each."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from lenet5.config import (
    BUNDLED_NAME,
    DATASET_NAMES,
    ENGINES,
    UCI_DIGITS,
    FinetuneSettings,
    ServeLimits,
    TrainConfig,
)
from lenet5.errors import Lenet5Error

if TYPE_CHECKING:
    from lenet5.inference.predict import Model

DEFAULTS = TrainConfig()
LIMITS = ServeLimits()
FINETUNE = FinetuneSettings()
RUNS_ROOT = Path("runs")
# What each command module's add_parser(sub) receives: argparse's group of subcommands.
Commands = argparse._SubParsersAction


def _number(
    kind: Callable[[str], float], accept: Callable[[float], bool], requirement: str
) -> Callable[[str], float]:
    """An argparse type: parse with `kind`, then refuse values that `accept` rejects."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (math.isfinite(value) and accept(value)):
            raise argparse.ArgumentTypeError(f"{requirement}, got {text}")
        return value

    return parse


positive_float = _number(float, lambda v: v > 0, "must be positive")
positive_int = _number(int, lambda v: v > 0, "must be positive")
non_negative = _number(float, lambda v: v >= 0, "must not be negative")
non_negative_int = _number(int, lambda v: v >= 0, "must not be negative")
probability = _number(float, lambda v: 0.0 <= v < 1.0, "must be in [0, 1)")
share = _number(float, lambda v: 0.0 <= v <= 1.0, "must be in [0, 1]")


def add_data_args(
    p: argparse.ArgumentParser,
    dataset_default: str = DEFAULTS.dataset,
    extra: tuple[str, ...] = (),
) -> None:

    uci = (
        f"; {UCI_DIGITS} is scikit-learn's 1,797 UCI handwritten digits, drawn as ink on paper "
        "and read through predict's preprocessing"
        if UCI_DIGITS in extra
        else ""
    )
    p.add_argument(
        "--dataset",
        choices=(*DATASET_NAMES, *extra),
        help=f"dataset to use (default: {dataset_default}){uci}",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        help="folder with the four IDX files (default: $LENET5_DATA, then the user "
        "cache folder, downloading there when missing)",
    )


def add_checkpoint_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        dest="checkpoint",
        type=Path,
        metavar="CKPT_OR_RUN_DIR",
        help="a checkpoint file, or a run directory (its last checkpoint) "
        f"(default: the bundled model, {BUNDLED_NAME})",
    )


def add_device_arg(p: argparse.ArgumentParser, default: str = "auto") -> None:
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default=default,
        help="where to run; auto picks cuda when available (default: %(default)s)",
    )


def add_engine_arg(
    p: argparse.ArgumentParser,
    auto: str = "onnx for the bundled model when onnxruntime is installed, torch otherwise",
) -> None:
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="what runs the model: onnxruntime (onnx; a checkpoint you name is exported in "
        f"memory first) or PyTorch (torch); auto is {auto} (default: %(default)s)",
    )


def inference_model(args: argparse.Namespace, threads: int = 1) -> tuple[Model, TrainConfig]:
    """The model `predict` and `evaluate` run, on the engine and device asked for, and its
    config; a note on stderr when onnxruntime was wanted but PyTorch runs."""
    from lenet5.inference.engines import OnnxModel
    from lenet5.inference.predict import load_inference_model

    engine = args.engine
    if args.device == "cuda":
        if engine == "onnx":
            raise Lenet5Error(
                "--engine onnx runs on the CPU; use --engine torch with --device cuda"
            )
        engine = "torch"
    model, config, note = load_inference_model(args.checkpoint, engine, threads)
    if note:
        print(f"lenet5: {note}", file=sys.stderr)
    if not isinstance(model, OnnxModel):
        from lenet5.inference.engines import resolve_device

        model = model.to(resolve_device(args.device))
    return model, config
