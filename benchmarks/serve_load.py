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
import re
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

from lenet5.serving.app import wait_until_serving

PAGE_DRAWING = Path(__file__).resolve().parent / "page-drawing.png"

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "image/png"
local f = io.open(os.getenv("LOAD_PNG"), "rb")
wrk.body = f:read("*a")
f:close()
"""

# With --feedback-share, that share of the requests are corrections (POST /api/feedback, a
# multipart body with the PNG and a label); the 201s are counted to compare with the rows stored.
LUA_FEEDBACK = r"""
local f = io.open(os.getenv("LOAD_PNG"), "rb")
local png = f:read("*a")
f:close()
local share = tonumber(os.getenv("LOAD_FEEDBACK_SHARE"))
local boundary = "lenet5loadboundary"
local form = "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"label\"\r\n\r\n7\r\n"
  .. "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"file\"; "
  .. "filename=\"d.png\"\r\nContent-Type: image/png\r\n\r\n" .. png .. "\r\n--" .. boundary
  .. "--\r\n"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) acked = 0 end
function request()
  if math.random() < share then
    return wrk.format("POST", "/api/feedback",
      {["Content-Type"] = "multipart/form-data; boundary=" .. boundary}, form)
  end
  return wrk.format("POST", "/api/predict", {["Content-Type"] = "image/png"}, png)
end
function response(status, headers, body)
  if status == 201 then acked = acked + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("acked") end
  io.write("ACKED " .. total .. "\n")
end
"""


# With --malformed-share, that share of the requests are malformed, each kind in turn; the
# answers are counted by status, and a 200 whose digit is not the PNG's 7 counts as wrong.
LUA_HOSTILE = r"""
local f = io.open(os.getenv("LOAD_PNG"), "rb")
local png = f:read("*a")
f:close()
local share = tonumber(os.getenv("LOAD_MALFORMED_SHARE"))
local boundary = "lenet5loadboundary"
local bad = {
  wrk.format("POST", "/api/predict", {["Content-Type"] = "image/png"},
    png:sub(1, math.floor(#png / 2))),                                  -- truncated image
  "POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
    .. "Content-Length: 999999999\r\n\r\n",                              -- huge declared length
  wrk.format("POST", "/api/predict", {["Content-Type"] = "text/plain"}, "seven"),  -- wrong type
  wrk.format("POST", "/api/predict", {["Content-Type"] = "application/json"},
    '{"pixels": [[0.5, '),                                              -- bad JSON
  wrk.format("POST", "/api/predict", {["Content-Type"] = "image/png"},
    string.rep("\0\1\2\3", 256)),                                       -- not an image
  wrk.format("POST", "/api/predict",
    {["Content-Type"] = "multipart/form-data; boundary=" .. boundary},
    "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--"
    .. boundary .. "--\r\n"),                                           -- no file field
  wrk.format("POST", "/api/feedback", {["Content-Type"] = "application/json"},
    '{"label": 12}'),                                                   -- no pixels, bad label
}
local good = wrk.format("POST", "/api/predict", {["Content-Type"] = "image/png"}, png)
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) sent_bad, sent_good, right, wrong, s4xx, s5xx, k = 0, 0, 0, 0, 0, 0, 0 end
function request()
  if math.random() < share then
    k = k % #bad + 1
    sent_bad = sent_bad + 1
    return bad[k]
  end
  sent_good = sent_good + 1
  return good
end
function response(status, headers, body)
  if status == 200 then
    if body:find('"digit":7', 1, true) then right = right + 1 else wrong = wrong + 1 end
  elseif status >= 500 then s5xx = s5xx + 1
  elseif status >= 400 then s4xx = s4xx + 1 end
end
function done(summary, latency, requests)
  for _, key in ipairs({"sent_bad", "sent_good", "right", "wrong", "s4xx", "s5xx"}) do
    local total = 0
    for _, t in ipairs(threads) do total = total + t:get(key) end
    io.write("HOSTILE " .. key .. " " .. total .. "\n")
  end
end
"""


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


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    assert match, text
    return float(match.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[match.group(2)]


def wrk(
    url: str,
    script: Path,
    png: Path,
    seconds: int,
    connections: int,
    threads: int,
    share: float = 0.0,
    malformed: float = 0.0,
) -> dict:
    """One round of wrk; its figures."""
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        env={
            **os.environ,
            "LOAD_PNG": str(png),
            "LOAD_FEEDBACK_SHARE": str(share),
            "LOAD_MALFORMED_SHARE": str(malformed),
        },
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    done = re.search(r"(\d+) requests in ([\d.]+)(s|m)", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert done and rate, out
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)$", out, re.M)
    acked = re.search(r"^ACKED (\d+)$", out, re.M)
    return {
        "hostile": {k: int(v) for k, v in re.findall(r"^HOSTILE (\w+) (\d+)$", out, re.M)},
        "acknowledged": int(acked.group(1)) if acked else 0,
        "requests": int(done.group(1)),
        "requests_per_s": float(rate.group(1)),
        "latency_ms": {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.M)},
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "none",
        "output": out,
    }


def main() -> int:
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
    args = parser.parse_args()
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
    rounds: list[dict] = []
    try:
        startup_s = wait_until_serving(url, server)
        with tempfile.TemporaryDirectory() as tmp:
            png, script = Path(tmp) / "digit.png", Path(tmp) / "post.lua"
            png.write_bytes(payload)
            script.write_text(
                LUA_HOSTILE
                if args.malformed_share
                else LUA_FEEDBACK
                if args.feedback_share
                else LUA
            )
            endpoint = url + "/api/predict"
            wrk(endpoint, script, png, 3, args.connections, args.threads)  # warm-up
            stored_before = _stored(store)
            rss_before = rss_mb(server.pid)
            if args.learn:
                learning = _start_learning(url, payload)
            started = time.monotonic()
            while (
                sum(r["requests"] for r in rounds) < args.requests
                and time.monotonic() - started < args.limit_s
            ) or (args.learn and _learn_state(url)["state"] == "running"):
                rounds.append(
                    wrk(
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
            rss_after = rss_mb(server.pid)
            learned = _learn_state(url) if args.learn else None
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    stored_all = _stored(store)
    stored = stored_all - stored_before - (100 if args.learn else 0)
    server_acks = log.read_text().count('"POST /api/feedback HTTP/1.1" 201')
    store_dir.cleanup()
    total = sum(r["requests"] for r in rounds)
    figures = {
        "date": date.today().isoformat(),
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}",
        "png_side": args.png_size,
        "engine": args.engine,
        "png_bytes": len(payload),
        "connections": args.connections,
        "startup_s": startup_s,
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
        "hostile": {
            key: sum(r["hostile"].get(key, 0) for r in rounds)
            for key in ("sent_bad", "sent_good", "right", "wrong", "s4xx", "s5xx")
        }
        if args.malformed_share
        else None,
        "learning": {"started": learning, "ended": learned} if args.learn else None,
        "corrections_acknowledged": sum(r["acknowledged"] for r in rounds),
        "corrections_stored": stored,
        "corrections_acknowledged_by_server_all": server_acks,
        "corrections_stored_all": stored_all,
        "rss_before_mb": rss_before,
        "rss_after_mb": rss_after,
        "rounds_detail": [{k: v for k, v in r.items() if k != "output"} for r in rounds],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print(rounds[-1]["output"])
    print(
        f"| {args.png_size}x{args.png_size} PNG ({len(payload)} B) | {args.connections} | "
        f"{total:,} | {figures['requests_per_s']:.0f} | {figures['p50_ms_median_round']:.1f} | "
        f"{figures['p99_ms_median_round']:.1f} / {figures['p99_ms_worst_round']:.1f} | "
        f"{figures['non_2xx']} | {rss_before:.0f} -> {rss_after:.0f} MB | {startup_s:.2f} s |"
    )
    if args.feedback_share:
        print(
            f"corrections in the measured rounds: {figures['corrections_acknowledged']} 201s "
            f"received by wrk, {stored} rows stored (a round's cut-off drops the answers in "
            f"flight); over the whole run: {server_acks} 201s sent by the server (its log), "
            f"{stored_all} rows stored"
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
