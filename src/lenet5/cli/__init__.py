"""The `lenet5` command line: one module per command, each with its flags and `run(args)`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from lenet5 import __version__
from lenet5.cli import (
    evaluate,
    experiments,
    export,
    feedback,
    finetune,
    predict,
    serve,
    summary,
    train,
)
from lenet5.errors import Lenet5Error

COMMANDS = (train, evaluate, predict, export, experiments, serve, finetune, feedback, summary)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lenet5", description="Train, study and serve LeNet-5 on handwritten digits."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (errors print one line to stderr)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return int(exc.code or 0)
    try:
        return int(args.run(args))
    except Lenet5Error as exc:
        print(f"lenet5: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (keeps interpreter exit quiet)
        return 141
    except OSError as exc:  # a file the command needed, when no more specific error said so
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"lenet5: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
