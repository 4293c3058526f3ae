"""Train the row reader that `lenet5 predict --multi` and the page's number pad use for digits
that touch, and ship it inside the package:

    LENET5_DATA=../shared/data/mnist python scripts/train_row_reader.py \
        --out src/lenet5/weights/lenet5-rows.pt

Its layers are LeNet-5's, wider (32, 64 and 256 against 6, 16 and 120), and start afresh;
a reader as wide as LeNet-5 (`--conv1 6 --conv2 16 --features 120`) can start from a trained
LeNet-5's conv1, conv2 and fc1 (`--init`). It learns from rows made of MNIST's training split
and generated digits (`lenet5.training.rows`; never MNIST's test split). The
file holds the weights of the epoch that read rows of MNIST validation digits best, the config
and that epoch's figures (its number, loss, exact rows of MNIST validation digits); it is
written as soon as an epoch reads them better than those before, so a run cut short keeps its
best reader so far. About 40 minutes on two cores with the defaults.

`--fresh` makes each epoch's rows anew instead of once (the same rows for any `--workers`,
processes that make the next epoch's rows while one trains); `--device cuda` trains on a GPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from lenet5.errors import Lenet5Error
from lenet5.models import CONV1_CHANNELS, CONV2_CHANNELS, FC1_UNITS
from lenet5.training.rows import RowTrainConfig, fit, save_row_reader


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="where to write the reader")
    parser.add_argument("--data-dir", help="MNIST's folder (default: $LENET5_DATA or the cache)")
    parser.add_argument(
        "--init",
        help="a LeNet-5 checkpoint, or `bundled`, to start from; only for a reader as wide as "
        "LeNet-5 (default: none, a fresh start)",
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where to train; auto picks cuda when present (default: auto)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="with --fresh, processes that make the next epoch's rows while one trains; the "
        f"rows are the same for any number (default: 0, made here; this machine has "
        f"{os.cpu_count()} cores)",
    )
    for field in dataclasses.fields(RowTrainConfig):  # --rows, --epochs, ..., --fresh
        flag = f"--{field.name.replace('_', '-')}"
        help = f"(default: {field.default})"
        if isinstance(field.default, bool):
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=False, help=help
            )
        else:
            parser.add_argument(flag, type=type(field.default), default=field.default, help=help)
    args = parser.parse_args()
    if args.workers < 0:
        parser.error("--workers must be 0 or more")
    fields = dataclasses.fields(RowTrainConfig)
    config = RowTrainConfig(**{f.name: getattr(args, f.name) for f in fields})
    lenet_widths = (CONV1_CHANNELS, CONV2_CHANNELS, FC1_UNITS)
    if args.init and (config.conv1, config.conv2, config.features) != lenet_widths:
        parser.error(
            "--init needs a reader as wide as LeNet-5 (--conv1 6 --conv2 16 --features 120)"
        )
    if min(config.conv1, config.conv2, config.features) < 1:
        parser.error("--conv1, --conv2 and --features must be 1 or more")
    try:
        from lenet5.data.mnist import load_splits
        from lenet5.inference.checkpoint import load_checkpoint
        from lenet5.inference.engines import resolve_device

        device = resolve_device(args.device)
        if config.fresh and args.workers and device.type == "cpu":
            import torch  # the cores the workers leave (two processes on one core crawl)

            torch.set_num_threads(max(1, (os.cpu_count() or 1) - args.workers))
        splits = load_splits(data_dir=args.data_dir)
        init = None
        if args.init:
            init = load_checkpoint(None if args.init == "bundled" else args.init)["model"]
        # Each new best epoch is written at once: a run cut short keeps its best reader so far.
        model, metrics = fit(
            config,
            splits.train,
            splits.val,
            init,
            device=device,
            workers=args.workers,
            on_best=lambda m, best: save_row_reader(args.out, m, config, best),
        )
        save_row_reader(args.out, model, config, metrics)
    except Lenet5Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
