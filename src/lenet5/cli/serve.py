"""`lenet5 serve`: the page to draw digits on and the JSON API."""

from __future__ import annotations

import argparse
from pathlib import Path

from lenet5.cli.common import (
    LIMITS,
    Commands,
    add_checkpoint_arg,
    add_engine_arg,
    positive_float,
    positive_int,
)
from lenet5.config import ServeLimits
from lenet5.errors import Lenet5Error


def add_parser(sub: Commands) -> None:
    p = sub.add_parser(
        "serve",
        help="web page to draw digits on, and a JSON API",
        description="Serve a page to draw digits on (GET /) and a JSON API (POST /api/predict, "
        "GET /api/health, GET /api/model, POST and GET /api/feedback for corrections, POST and "
        "GET /api/learn to fine-tune on them; OpenAPI docs at /docs) with the bundled model "
        "unless --model names another. Ctrl-C or SIGTERM stops it.",
    )
    add_checkpoint_arg(p)
    add_engine_arg(p, auto="onnx when the onnx extra is installed, torch otherwise")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind; 0.0.0.0 exposes it to the network (default: %(default)s)",
    )
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument(
        "--feedback",
        type=Path,
        metavar="FILE",
        help="SQLite file that keeps the corrections made on the page (default: feedback.sqlite "
        "in the user data folder, ~/.local/share/lenet5 on Linux)",
    )
    p.add_argument(
        "--allow-learning",
        action="store_true",
        help="let clients start fine-tuning (POST /api/learn) on a server bound to another "
        "address than loopback (on loopback it is always allowed)",
    )
    p.add_argument(
        "--read-timeout",
        type=positive_float,
        default=LIMITS.read_timeout,
        metavar="SECONDS",
        help="answer 408 and close a connection whose request sends no byte for this long "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--max-connections",
        type=positive_int,
        default=LIMITS.max_connections,
        metavar="N",
        help="open connections at most; more are answered 503 and closed (default: %(default)s)",
    )
    p.add_argument(
        "--keep-alive",
        type=positive_float,
        default=LIMITS.keep_alive,
        metavar="SECONDS",
        help="close an idle keep-alive connection after this long (default: %(default)s)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        from lenet5.serving.app import serve
    except ImportError as exc:
        raise Lenet5Error(
            f"serving needs extra packages ({exc.name}): pip install 'lenet5[serve]'"
        ) from None
    limits = ServeLimits(args.read_timeout, args.max_connections, args.keep_alive)
    serve(
        args.checkpoint,
        args.host,
        args.port,
        args.feedback,
        args.allow_learning,
        limits,
        args.engine,
    )
    return 0
