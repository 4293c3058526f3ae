"""The `lenet5` command line: a thin layer over the package's API."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from lenet5 import __version__
from lenet5.config import TrainConfig
from lenet5.data import DATASETS
from lenet5.errors import Lenet5Error
from lenet5.models import INIT_NAMES, MODEL_NAMES

DEFAULTS = TrainConfig()
RUNS_ROOT = Path("runs")


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dataset", choices=tuple(DATASETS), help=f"dataset to use (default: {DEFAULTS.dataset})"
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        help="folder with the four IDX files (default: $LENET5_DATA, then the user "
        "cache folder, downloading there when missing)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lenet5", description="Train, study and serve LeNet-5 on handwritten digits."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # Training flags default to None so that --resume can tell which ones were given;
    # the help shows the TrainConfig default that applies otherwise.
    t = sub.add_parser(
        "train",
        help="train a model, writing a run directory",
        description="Train a model; each run writes its own directory.",
    )
    t.add_argument("--model", choices=MODEL_NAMES, help=f"model (default: {DEFAULTS.model})")
    t.add_argument(
        "--optimizer",
        choices=("adam", "sgd"),
        help=f"optimizer; sgd is plain gradient descent (default: {DEFAULTS.optimizer})",
    )
    t.add_argument("--lr", type=_positive(float), help=f"learning rate (default: {DEFAULTS.lr})")
    t.add_argument(
        "--batch-size",
        type=_positive(int),
        help=f"training batch size (default: {DEFAULTS.batch_size})",
    )
    t.add_argument(
        "--epochs", type=_positive(int), help=f"number of epochs (default: {DEFAULTS.epochs})"
    )
    t.add_argument(
        "--dropout",
        type=_probability,
        help="probability of dropping an input of the first fully connected layer; "
        f"0.25 is the tutorial's keep_prob 0.75 (default: {DEFAULTS.dropout})",
    )
    t.add_argument(
        "--init",
        choices=INIT_NAMES,
        help="weight initialisation: the tutorial's truncated normal (std 0.1) or "
        f"PyTorch's default (default: {DEFAULTS.init})",
    )
    t.add_argument("--seed", type=int, help=f"random seed (default: {DEFAULTS.seed})")
    _add_data_args(t)
    t.add_argument(
        "--run-dir",
        type=Path,
        help=f"run directory (default: {RUNS_ROOT}/<model>-<optimizer>-NN, next free NN)",
    )
    t.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its last checkpoint",
    )
    t.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where to train (default: %(default)s: cuda when available)",
    )
    t.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (it is shown only when stderr is a terminal)",
    )

    s = sub.add_parser("summary", help="print the per-layer parameter table of a model")
    s.add_argument(
        "--model", choices=MODEL_NAMES, default="lenet5", help="model (default: %(default)s)"
    )
    return parser


def _config_from_args(args: argparse.Namespace) -> TrainConfig:
    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if getattr(args, f.name, None) is not None
    }
    return dataclasses.replace(DEFAULTS, **given)


def _train(args: argparse.Namespace) -> int:
    from lenet5.data import load_splits
    from lenet5.train import fit, next_run_dir, prepare_new_run_dir, read_run_config, resolve_device

    if args.resume is not None:
        if args.run_dir is not None:
            raise Lenet5Error("give either --resume RUN_DIR or --run-dir, not both")
        run_dir = args.resume
        config = read_run_config(run_dir)
        changed = [
            f"--{f.name.replace('_', '-')}"
            for f in dataclasses.fields(TrainConfig)
            if f.name != "epochs"
            and getattr(args, f.name, None) is not None
            and getattr(args, f.name) != getattr(config, f.name)
        ]
        if changed:
            raise Lenet5Error(
                f"cannot change {', '.join(changed)} when resuming "
                f"(only --epochs, --data-dir and --device)"
            )
        if args.epochs is not None:
            config = dataclasses.replace(config, epochs=args.epochs)
    else:
        config = _config_from_args(args)
    device = resolve_device(args.device)
    splits = load_splits(config.dataset, args.data_dir, progress=sys.stderr.isatty())
    if args.resume is None:
        run_dir = args.run_dir if args.run_dir is not None else next_run_dir(RUNS_ROOT, config)
        prepare_new_run_dir(run_dir)
    print(
        f"training {config.model} ({config.optimizer}, lr {config.lr}, batch "
        f"{config.batch_size}, {config.epochs} epochs) on {config.dataset}, {device}; "
        f"run directory {run_dir}",
        flush=True,
    )
    summary = fit(
        config,
        splits,
        run_dir,
        device,
        resume=args.resume is not None,
        progress=sys.stderr.isatty() and not args.no_progress,
        echo=lambda line: print(line, flush=True),
    )
    print(f"run {run_dir}: test accuracy {summary['test_accuracy']:.4f}")
    return 0


def _summary(args: argparse.Namespace) -> int:
    from lenet5.models import build_model
    from lenet5.summary import format_table, layer_table

    print(format_table(layer_table(build_model(args.model))))
    return 0


COMMANDS = {"train": _train, "summary": _summary}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (errors print one line to stderr)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return int(exc.code or 0)
    try:
        return COMMANDS[args.command](args)
    except Lenet5Error as exc:
        print(f"lenet5: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
