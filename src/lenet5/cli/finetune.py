"""`lenet5 finetune`: teach a model the corrections collected by the page."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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
    result = finetune(
        args.checkpoint,
        args.feedback,
        splits,
        run_dir,
        settings,
        resolve_device(args.device),
        echo=lambda line: print(line, flush=True),
        progress=args.progress or sys.stderr.isatty(),
    )
    print(format_result(result))
    print(f"run {run_dir}: use it with --model {run_dir}")
    return 0
