"""`lenet5 summary`: the per-layer parameter table of a model."""

from __future__ import annotations

import argparse

from lenet5.cli.common import Commands
from lenet5.config import MODEL_NAMES


def add_parser(sub: Commands) -> None:
    p = sub.add_parser("summary", help="print the per-layer parameter table of a model")
    p.add_argument(
        "--model", choices=MODEL_NAMES, default="lenet5", help="model (default: %(default)s)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from lenet5.models import build_model
    from lenet5.summary import format_table, layer_table

    print(format_table(layer_table(build_model(args.model))))
    return 0
