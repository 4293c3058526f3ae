"""Load benchmark of `lenet5 serve` on 127.0.0.1 (not part of the test suite).

Starts the server, then drives it with wrk (Debian package `wrk`): 32 connections posting a PNG
digit, in rounds of --round-s seconds until --requests have been answered or --limit-s has
passed. Reports requests/s over all rounds, the median p50 and the worst p99 of the rounds (wrk
prints percentiles, not histograms), errors, and the server's memory (RSS) before and after;
writes JSON and prints a Markdown row.

    python benchmarks/serve_load.py RUN_DIR [--requests 100000] [--connections 32]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from wrk_rounds import LUA, LUA_FEEDBACK, LUA_HOSTILE, run_round

from lenet5.serving.app import wait_until_serving

PAGE_DRAWING = Path(__file__).resolve().parent / "page-drawing.png"


def digit_png(size: int) -> bytes:
    """A 7 as the page's canvas sends it (benchmarks/page-drawing.png, captured from chromium by
    benchmarks/page_drawing.py: a 280x280 RGBA PNG), resized to `size`; or MNIST-style at 28
    (gray, white on black)."""
    if size == 280:
        return PAGE_DRAWING.read_bytes()
    if size == 28:  # white on black, fitted like MNIST
        image = Image.new("L", (280, 280), 255)
        ImageDraw.Draw(image).line([(70, 60), (210, 60), (120, 230)], fill=17, width=18)
        image = Image.fromarray(255 - np.asarray(image.resize((28, 28), Image.Resampling.BOX)))
    else:
        image = Image.open(PAGE_DRAWING).resize((size, size))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "checkpoint", nargs="?", help="checkpoint or run directory (default: the bundled model)"
    )
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--round-s", type=int, default=10, help="length of one wrk round")
    parser.add_argument("--limit-s", type=int, default=400, help="time limit of all rounds")
    parser.add_argument("--png-size", type=int, default=28, help="28: MNIST-style; 280: canvas")
    parser.add_argument("--engine", default="auto", help="the server's --engine")
    parser.add_argument("--json", type=Path, default=Path("docs/benchmarks/serve_load.json"))
    parser.add_argument(
        "--learn",
        action="store_true",
        help="store 100 corrections, start POST /api/learn, and measure while it runs",
    )
    parser.add_argument(
        "--feedback-share",
        type=float,
        default=0.0,
        help="share of the requests that are corrections (POST /api/feedback)",
    )
    parser.add_argument(
        "--malformed-share",
        type=float,
        default=0.0,
        help="share of the requests that are malformed (truncated images, huge declared "
        "lengths, wrong types, bad JSON...)",
    )
    return parser.parse_args()


def drive(
    args: argparse.Namespace, url: str, server: subprocess.Popen, store: Path, payload: bytes
) -> dict:
    """Warm the server up, then run wrk rounds until --requests or --limit-s (and, with --learn,
    until the fine-tuning ends) -> the rounds, with the server's memory and start-up time."""
    startup_s = wait_until_serving(url, server)
    rounds: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        png, script = Path(tmp) / "digit.png", Path(tmp) / "post.lua"
        png.write_bytes(payload)
        script.write_text(
            LUA_HOSTILE if args.malformed_share else LUA_FEEDBACK if args.feedback_share else LUA
        )
        endpoint = url + "/api/predict"
        run_round(endpoint, script, png, 3, args.connections, args.threads)  # warm-up
        stored_before = _stored(store)
        rss_before = rss_mb(server.pid)
        learning = _start_learning(url, payload) if args.learn else None
        started = time.monotonic()
        while (
            sum(r["requests"] for r in rounds) < args.requests
            and time.monotonic() - started < args.limit_s
        ) or (args.learn and _learn_state(url)["state"] == "running"):
            rounds.append(
                run_round(
                    endpoint,
                    script,
                    png,
                    args.round_s,
                    args.connections,
                    args.threads,
                    args.feedback_share,
                    args.malformed_share,
                )
            )
        return {
            "startup_s": startup_s,
            "rounds": rounds,
            "stored_before": stored_before,
            "rss_before_mb": rss_before,
            "rss_after_mb": rss_mb(server.pid),
            "learning": {"started": learning, "ended": _learn_state(url)} if args.learn else None,
        }


def figures_of(args: argparse.Namespace, payload: bytes, run: dict, store_log: dict) -> dict:
    """The JSON record of a run (`drive`'s rounds; the store's and the server log's counts)."""
    rounds = run["rounds"]
    total = sum(r["requests"] for r in rounds)
    hostile_keys = ("sent_bad", "sent_good", "right", "wrong", "s4xx", "s5xx")
    return {
        "date": date.today().isoformat(),
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}",
        "png_side": args.png_size,
        "engine": args.engine,
        "png_bytes": len(payload),
        "connections": args.connections,
        "startup_s": run["startup_s"],
        "requests": total,
        "rounds": len(rounds),
        "requests_per_s": total / (args.round_s * len(rounds)),
        "p50_ms_median_round": statistics.median(r["latency_ms"]["50"] for r in rounds),
        "p99_ms_worst_round": max(r["latency_ms"]["99"] for r in rounds),
        "p99_ms_median_round": statistics.median(r["latency_ms"]["99"] for r in rounds),
        "non_2xx": sum(r["non_2xx"] for r in rounds),
        "socket_errors": [r["socket_errors"] for r in rounds if r["socket_errors"] != "none"],
        "feedback_share": args.feedback_share,
        "malformed_share": args.malformed_share,
        "hostile": {key: sum(r["hostile"].get(key, 0) for r in rounds) for key in hostile_keys}
        if args.malformed_share
        else None,
        "learning": run["learning"],
        "corrections_acknowledged": sum(r["acknowledged"] for r in rounds),
        **store_log,
        "rss_before_mb": run["rss_before_mb"],
        "rss_after_mb": run["rss_after_mb"],
        "rounds_detail": [{k: v for k, v in r.items() if k != "output"} for r in rounds],
    }


def main() -> int:
    args = parse_args()
    if not shutil.which("wrk"):
        sys.exit("needs wrk: apt-get install wrk")
    port = free_port()
    model = ["--model", args.checkpoint] if args.checkpoint else []
    store_dir = tempfile.TemporaryDirectory()
    store = Path(store_dir.name) / "feedback.sqlite"
    log = Path(store_dir.name) / "server.log"
    with log.open("wb") as log_file:  # one line per request: the 201s it sent are counted
        server = subprocess.Popen(
            [
                *(sys.executable, "-m", "lenet5", "serve", *model),
                *("--port", str(port), "--feedback", str(store), "--engine", args.engine),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    payload = digit_png(args.png_size)
    try:
        run = drive(args, url, server, store, payload)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    stored_all = _stored(store)
    store_log = {
        "corrections_stored": stored_all - run["stored_before"] - (100 if args.learn else 0),
        "corrections_acknowledged_by_server_all": log.read_text().count(
            '"POST /api/feedback HTTP/1.1" 201'
        ),
        "corrections_stored_all": stored_all,
    }
    store_dir.cleanup()
    figures = figures_of(args, payload, run, store_log)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print(run["rounds"][-1]["output"])
    print(
        f"| {args.png_size}x{args.png_size} PNG ({len(payload)} B) | {args.connections} | "
        f"{figures['requests']:,} | {figures['requests_per_s']:.0f} | "
        f"{figures['p50_ms_median_round']:.1f} | {figures['p99_ms_median_round']:.1f} / "
        f"{figures['p99_ms_worst_round']:.1f} | {figures['non_2xx']} | "
        f"{figures['rss_before_mb']:.0f} -> {figures['rss_after_mb']:.0f} MB | "
        f"{figures['startup_s']:.2f} s |"
    )
    if args.feedback_share:
        print(
            f"corrections in the measured rounds: {figures['corrections_acknowledged']} 201s "
            f"received by wrk, {figures['corrections_stored']} rows stored (a round's cut-off "
            f"drops the answers in flight); over the whole run: "
            f"{figures['corrections_acknowledged_by_server_all']} 201s sent by the server (its "
            f"log), {stored_all} rows stored"
        )
    return 0


def _start_learning(url: str, png: bytes) -> dict:
    """Store 100 corrections (the load's PNG, labelled 7), then start fine-tuning."""
    import urllib.request

    boundary = "lenet5benchboundary"
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="label"\r\n\r\n7\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="d.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    for _ in range(100):
        request = urllib.request.Request(url + "/api/feedback", data=form, headers=headers)
        urllib.request.urlopen(request, timeout=10).read()
    request = urllib.request.Request(url + "/api/learn", data=b"", method="POST")
    return json.loads(urllib.request.urlopen(request, timeout=10).read())


def _learn_state(url: str) -> dict:
    import urllib.request

    return json.loads(urllib.request.urlopen(url + "/api/learn", timeout=10).read())


def _stored(store: Path) -> int:
    import sqlite3

    if not store.exists():
        return 0
    with sqlite3.connect(store) as db:
        return int(db.execute("SELECT count(*) FROM corrections").fetchone()[0])


if __name__ == "__main__":
    raise SystemExit(main())
