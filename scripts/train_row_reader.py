"""Train the row reader that `lenet5 predict --multi` and the page's number pad use for digits
that touch, and ship it inside the package:

    LENET5_DATA=../shared/data/mnist python scripts/train_row_reader.py \
        --out src/lenet5/weights/lenet5-rows.pt

It starts from the bundled LeNet-5's conv1, conv2 and fc1 and learns from rows made of MNIST's
training split and generated digits (`lenet5.training.rows`; never MNIST's test split). The
file holds the weights of the epoch that read rows of MNIST validation digits best, the config
and that epoch's figures (its number, loss, exact rows of MNIST validation digits). About 27
minutes on two cores with the defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from lenet5.errors import Lenet5Error
from lenet5.training.rows import RowTrainConfig, fit, save_row_reader


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="where to write the reader")
    parser.add_argument("--data-dir", help="MNIST's folder (default: $LENET5_DATA or the cache)")
    parser.add_argument(
        "--init", type=Path, help="a LeNet-5 checkpoint to start from (default: the bundled one)"
    )
    for field in dataclasses.fields(RowTrainConfig):  # --rows, --epochs, ...
        parser.add_argument(
            f"--{field.name.replace('_', '-')}",
            type=type(field.default),
            default=field.default,
            help=f"(default: {field.default})",
        )
    args = parser.parse_args()
    fields = dataclasses.fields(RowTrainConfig)
    config = RowTrainConfig(**{f.name: getattr(args, f.name) for f in fields})
    try:
        from lenet5.data.mnist import load_splits
        from lenet5.inference.checkpoint import load_checkpoint

        splits = load_splits(data_dir=args.data_dir)
        init = load_checkpoint(args.init)["model"]
        model, metrics = fit(config, splits.train, splits.val, init)
        save_row_reader(args.out, model, config, metrics)
    except Lenet5Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
