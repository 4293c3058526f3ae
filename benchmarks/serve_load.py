"""Load benchmark of `lenet5 serve` on 127.0.0.1 (not part of the test suite).

Starts the server, then drives it with wrk (Debian package `wrk`): 32 connections posting a PNG
digit, bounded by a request count and a time limit. Reports requests/s, latency percentiles,
errors and the server's memory (RSS) before and after; writes JSON and prints a Markdown row.

    python benchmarks/serve_load.py RUN_DIR [--requests 100000] [--connections 32]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from lenet5.serve import wait_until_serving

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "image/png"
local f = io.open(os.getenv("LOAD_PNG"), "rb")
wrk.body = f:read("*a")
f:close()
local limit = tonumber(os.getenv("LOAD_PER_THREAD"))
local seen = 0
function response(status, headers, body)
  seen = seen + 1
  if seen >= limit then wrk.thread:stop() end
end
"""


def digit_png(size: int) -> bytes:
    """A 7 drawn dark on white (size x size, like the page's canvas) or MNIST-style at 28."""
    image = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(image).line([(70, 60), (210, 60), (120, 230)], fill=0, width=18)
    if size == 28:  # white on black, fitted like MNIST
        image = Image.fromarray(255 - np.asarray(image.resize((28, 28), Image.Resampling.BOX)))
    else:
        image = image.resize((size, size))
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


def wrk(url: str, png: Path, requests: int, connections: int, threads: int, limit_s: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA)
    env = {**os.environ, "LOAD_PNG": str(png), "LOAD_PER_THREAD": str(requests // threads)}
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{limit_s}s",
            "--latency",
            "-s",
            script.name,
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)

    def ms(text: str) -> float:
        value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    latency = {p: ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.M)}
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)$", out, re.M)
    return {
        "requests": done,
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "latency_ms": latency,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "none",
        "wrk_output": out,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--limit-s", type=int, default=600, help="time limit of the main run")
    parser.add_argument("--png-size", type=int, default=28, help="28: MNIST-style; 280: canvas")
    parser.add_argument("--json", type=Path, default=Path("docs/benchmarks/serve_load.json"))
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("needs wrk: apt-get install wrk")

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "lenet5", "serve", args.checkpoint, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # one log line per request
    url = f"http://127.0.0.1:{port}"
    startup_s = wait_until_serving(url, server)
    payload = digit_png(args.png_size)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            png = Path(tmp) / "digit.png"
            png.write_bytes(payload)
            endpoint = url + "/api/predict"
            wrk(endpoint, png, 2_000, args.connections, args.threads, 30)  # warm-up
            rss_before = rss_mb(server.pid)
            result = wrk(endpoint, png, args.requests, args.connections, args.threads, args.limit_s)
            rss_after = rss_mb(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    figures = {
        "date": date.today().isoformat(),
        "machine": f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
        "png_bytes": len(payload),
        "png_side": args.png_size,
        "connections": args.connections,
        "startup_s": startup_s,
        "rss_before_mb": rss_before,
        "rss_after_mb": rss_after,
        **{k: v for k, v in result.items() if k != "wrk_output"},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print(result["wrk_output"])
    lat = result["latency_ms"]
    print(
        f"| {args.png_side}x{args.png_side} PNG ({figures['png_bytes']} B) | "
        f"{args.connections} | {result['requests']:,} | {result['requests_per_s']:.0f} | "
        f"{lat.get('50', float('nan')):.1f} | {lat.get('99', float('nan')):.1f} | "
        f"{result['non_2xx']} | {rss_before:.0f} -> {rss_after:.0f} MB |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
