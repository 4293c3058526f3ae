"""`lenet5 finetune`: teach a model the corrections collected by the page."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lenet5.cli.common import (
    DEFAULTS,
    FINETUNE,
    RUNS_ROOT,
    Commands,
    add_checkpoint_arg,
    add_data_args,
    add_device_arg,
    positive_float,
    positive_int,
    probability,
)
from lenet5.config import FinetuneSettings


def add_parser(sub: Commands) -> None:
    p = sub.add_parser(
        "finetune",
        help="teach a model the corrections collected by the page",
        description="Fine-tune a model on the corrections of a feedback store, mixed with "
        "MNIST's training images so that MNIST accuracy holds. A share of each digit's "
        "corrections is kept apart; accuracy on them and on MNIST validation is printed before "
        "and after. Writes a normal run directory.",
    )
    p.add_argument(
        "--feedback", type=Path, required=True, metavar="FILE", help="feedback store (SQLite)"
    )
    add_checkpoint_arg(p)
    p.add_argument(
        "--run-dir",
        type=Path,
        help=f"run directory (default: {RUNS_ROOT}/finetune-NN, next free NN)",
    )
    p.add_argument(
        "--epochs",
        type=positive_int,
        default=FINETUNE.epochs,
        help="passes over MNIST's training images (default: %(default)s)",
    )
    p.add_argument(
        "--lr",
        type=positive_float,
        default=FINETUNE.lr,
        help="learning rate (default: %(default)s)",
    )
    p.add_argument(
        "--repeat",
        type=positive_int,
        default=FINETUNE.repeat,
        help="copies of each correction per epoch (default: %(default)s)",
    )
    p.add_argument(
        "--holdout",
        type=probability,
        default=FINETUNE.holdout,
        help="share of each digit's corrections kept apart to measure (default: %(default)s)",
    )
    p.add_argument("--seed", type=int, default=FINETUNE.seed, help="random seed (default: 0)")
    p.add_argument(
        "--threads", type=positive_int, help="CPU threads to use (default: PyTorch's choice)"
    )
    p.add_argument(
        "--progress",
        action="store_true",
        help="show the progress bar even when stderr is not a terminal",
    )
    p.add_argument(
        "--progress-json",
        action="store_true",
        help="write only JSON lines on stdout, for a program that follows the fine-tuning: "
        '{"epoch", "epochs", "step", "steps"} at each percent of an epoch, {"message"} for '
        'each line of text, and {"result", "run_dir"} at the end',
    )
    add_data_args(p)
    add_device_arg(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from lenet5.data.mnist import load_splits
    from lenet5.inference.engines import resolve_device
    from lenet5.training.finetune import finetune, format_result
    from lenet5.training.runs import next_numbered_dir, prepare_new_run_dir

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = FinetuneSettings(args.epochs, args.lr, args.repeat, args.holdout, args.seed)
    splits = load_splits(args.dataset or DEFAULTS.dataset, args.data_dir, progress=False)
    run_dir = args.run_dir or next_numbered_dir(RUNS_ROOT, "finetune")
    prepare_new_run_dir(run_dir)
    echo: Callable[[str], None] = _json_message if args.progress_json else _print_line
    report = _json_line if args.progress_json else None
    result = finetune(
        args.checkpoint,
        args.feedback,
        splits,
        run_dir,
        settings,
        resolve_device(args.device),
        echo=echo,
        progress=not args.progress_json and (args.progress or sys.stderr.isatty()),
        report=report,
    )
    if args.progress_json:
        _json_line({"result": result, "run_dir": str(run_dir)})
        return 0
    print(format_result(result))
    print(f"run {run_dir}: use it with --model {run_dir}")
    return 0


def _json_line(event: dict[str, Any]) -> None:
    """One line of --progress-json."""
    print(json.dumps(event), flush=True)


def _json_message(line: str) -> None:
    _json_line({"message": line})


def _print_line(line: str) -> None:
    print(line, flush=True)
