"""What one POST /api/predict costs the server's event loop, measured in process.

Calls the app of `lenet5 serve` through its ASGI interface (no sockets, no HTTP parsing) with
--in-flight requests at a time, as under load, and times the CPU of the event loop's thread per
request; then, on the same thread, decoding and preprocessing the same PNG alone. The forward
passes run on the model's worker thread and are not counted, as in the server. Not part of the
test suite; the bounds it shows are in docs/benchmarks.md.

    python benchmarks/request_cost.py [CHECKPOINT] [--png-size 28 --png-size 280] [--engine onnx]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import torch
from serve_load import digit_png

from lenet5.inference.checkpoint import load_model
from lenet5.serving.app import create_app
from lenet5.serving.uploads import read_digit


def _scope(body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/predict",
        "raw_path": b"/api/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"image/png"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def app_cost(app: Any, body: bytes, requests: int, in_flight: int) -> float:
    """Event-loop CPU seconds per request, `in_flight` requests at a time; raises RuntimeError
    unless every answer is a 200."""
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def one() -> None:
        await app(_scope(body), receive, send)

    rounds = max(1, requests // in_flight)
    started = time.thread_time()
    for _ in range(rounds):
        await asyncio.gather(*(one() for _ in range(in_flight)))
    seconds = (time.thread_time() - started) / (rounds * in_flight)
    if set(statuses) != {200}:
        raise RuntimeError(f"the app answered {sorted(set(statuses))}")
    return seconds


def cpu_per_call(work: Callable[[], object], calls: int) -> float:
    started = time.thread_time()
    for _ in range(calls):
        work()
    return (time.thread_time() - started) / calls


def measure(
    checkpoint: str | None,
    sizes: list[int],
    engine: str,
    requests: int,
    in_flight: int,
    rounds: int,
) -> list[dict[str, Any]]:
    """One row per PNG size and round: milliseconds of event-loop CPU per request (app) and
    for decoding and preprocessing alone (read_digit)."""
    model, config = load_model(checkpoint)
    app = create_app(model, config, checkpoint, engine=engine)
    rows = []
    for size in sizes:
        body = digit_png(size)
        asyncio.run(app_cost(app, body, in_flight * 4, in_flight))  # warm-up
        for round_ in range(1, rounds + 1):
            app_s = asyncio.run(app_cost(app, body, requests, in_flight))
            read_s = cpu_per_call(lambda body=body: read_digit(body), requests)
            rows.append(
                {"png_size": size, "round": round_, "app_ms": app_s * 1e3, "read_ms": read_s * 1e3}
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "checkpoint", nargs="?", help="checkpoint or run directory (default: bundled)"
    )
    parser.add_argument("--png-size", type=int, action="append", help="28 and 280 unless given")
    parser.add_argument("--engine", default="onnx", choices=["onnx", "torch", "auto"])
    parser.add_argument("--requests", type=int, default=3200, help="per round")
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.in_flight < 1 or args.rounds < 1:
        parser.error("--requests, --in-flight and --rounds must be positive")
    torch.set_num_threads(1)  # as `lenet5 serve` runs its model
    sizes = args.png_size or [28, 280]
    rows = measure(args.checkpoint, sizes, args.engine, args.requests, args.in_flight, args.rounds)
    print("| PNG | round | event loop per request | of which decoding and preprocessing |")
    print("|---|---:|---:|---:|")
    for row in rows:
        side = row["png_size"]
        print(
            f"| {side}x{side} | {row['round']} | {row['app_ms']:.2f} ms | {row['read_ms']:.2f} ms |"
        )
    if args.json:
        report = {
            "date": date.today().isoformat(),
            "machine": f"{os.cpu_count()} CPUs, {platform.machine()}",
            "command": " ".join(["python benchmarks/request_cost.py", *(argv or sys.argv[1:])]),
            "engine": args.engine,
            "in_flight": args.in_flight,
            "requests_per_round": args.requests,
            "rows": rows,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
