"""`lenet5 experiments`: the tutorial's study, trained, compared, plotted and profiled."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lenet5.cli.common import DEFAULTS, Commands, add_data_args, add_device_arg, positive_int
from lenet5.config import EXPERIMENTS, QUICK_TRAIN_IMAGES


def add_parser(sub: Commands) -> None:
    p = sub.add_parser(
        "experiments",
        help="reproduce the tutorial's study: train, compare, plot, profile",
        description="Train the tutorial's configurations (softmax-gd, lenet5-sgd, lenet5-adam, "
        "lenet5-adam-dropout) and the best recipe; write results.md, results.csv, plots, an "
        "inference trace and report.md. Finished runs are reused, interrupted ones resumed. One "
        "study writes to a folder at a time: a second one on the same --out is refused.",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("experiments"),
        help="output folder, one run directory per configuration and seed (default: %(default)s)",
    )
    p.add_argument(
        "--seeds",
        type=positive_int,
        default=1,
        help="seeds per configuration; results give mean and std (default: 1)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"1 epoch on {QUICK_TRAIN_IMAGES:,} training images per configuration (a smoke test)",
    )
    p.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="worker processes training runs side by side, sharing the CPU threads (default: 1)",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        help="CPU threads per run (default: the machine's threads divided among the jobs); "
        "results are identical for the same threads per run, whatever --jobs",
    )
    p.add_argument(
        "--only",
        nargs="+",
        choices=[e.name for e in EXPERIMENTS],
        metavar="NAME",
        help="run only these configurations: "
        + ", ".join(e.name for e in EXPERIMENTS)
        + " (default: all)",
    )
    add_data_args(p)
    add_device_arg(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from lenet5.data.mnist import load_splits
    from lenet5.inference.engines import resolve_device
    from lenet5.training.experiments import results_table, run_experiments
    from lenet5.training.locks import hold

    dataset = args.dataset or DEFAULTS.dataset
    device = resolve_device(args.device)
    splits = load_splits(dataset, args.data_dir, progress=sys.stderr.isatty())
    with hold(args.out):  # a second study on this folder is refused, not run twice
        rows = run_experiments(
            splits,
            args.out,
            args.seeds,
            args.quick,
            device,
            dataset,
            echo=lambda line: print(line, flush=True),
            only=tuple(args.only or ()),
            jobs=args.jobs,
            data_dir=args.data_dir,
            threads=args.threads,
        )
    print(results_table(rows))
    print(f"report: {args.out / 'report.md'}")
    return 0
