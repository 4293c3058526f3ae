"""`lenet5 serve` under slow clients and phone photos: is everybody else still answered at once?

1. Slow clients: --slow connections each send half a request's headers and then nothing. While
   they are held, 4 clients (keep-alive) alternate GET /api/health and POST /api/predict (a
   28x28 PNG) for --seconds; then the script waits for the server's read timeout and counts the
   slow connections the server has closed, and the descriptors the server still holds.
2. Photo uploads: 5 clients post a 12-megapixel phone photo (benchmarks/large_photos.py) over
   and over for --seconds while one client asks GET /api/health every 20 ms.
Latencies are p50/p99 in milliseconds; everything runs on this machine, server included.

    python benchmarks/serve_stress.py [--slow 2000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from large_photos import phone_photo
from serve_load import digit_png, free_port, rss_mb

from lenet5.config import ServeLimits
from lenet5.serving.app import wait_until_serving
from photos import render_photo

HALF_REQUEST = b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"


def percentiles(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "requests": len(ordered),
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "max_ms": ordered[-1],
    }


def client(
    port: int, until: float, requests: list[tuple[str, str, bytes]], out: list[float], errors: list
) -> None:
    """Send `requests` in turn on one keep-alive connection until `until`; latencies to out."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    k = 0
    while time.monotonic() < until:
        method, path, body = requests[k % len(requests)]
        k += 1
        started = time.perf_counter()
        try:
            headers = {"Content-Type": "image/png"} if body else {}
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                errors.append(response.status)
        except OSError as exc:
            errors.append(type(exc).__name__)
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            continue
        out.append((time.perf_counter() - started) * 1000)
        if path == "/api/health" and len(requests) == 1:
            time.sleep(0.02)
    conn.close()


def run_clients(port: int, seconds: float, plan: list[list[tuple[str, str, bytes]]]) -> list:
    until = time.monotonic() + seconds
    results: list[tuple[list[float], list]] = [([], []) for _ in plan]
    threads = [
        threading.Thread(target=client, args=(port, until, requests, *results[i]))
        for i, requests in enumerate(plan)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _until_closed(conn: socket.socket) -> bytes | None:
    """What the server sent before closing the connection; None if it is still open."""
    conn.settimeout(2)
    data = b""
    try:
        while chunk := conn.recv(65536):
            data += chunk
    except OSError:
        return None
    return data


def slow_clients(port: int, pid: int, slow: int, seconds: float, limits: ServeLimits) -> dict:
    png = digit_png(28)
    held = []
    for _ in range(slow):
        conn = socket.create_connection(("127.0.0.1", port))
        conn.sendall(HALF_REQUEST)
        held.append(conn)
    time.sleep(0.5)
    opened_at = time.monotonic()
    fds_held = open_fds(pid)
    mixed = [("GET", "/api/health", b""), ("POST", "/api/predict", png)]
    results = run_clients(port, seconds, [mixed] * 4)
    health = [ms for ms_list, _ in results for ms in ms_list[0::2]]
    predict = [ms for ms_list, _ in results for ms in ms_list[1::2]]
    errors = [e for _, errs in results for e in errs]
    time.sleep(max(0.0, limits.read_timeout + 2 - (time.monotonic() - opened_at)))
    answers: dict[str, int] = {}
    for conn in held:
        answer = _until_closed(conn)
        key = answer.split(b"\r\n")[0].decode() if answer else "closed with no answer"
        if answer is None:
            key = "still open"
        answers[key] = answers.get(key, 0) + 1
        conn.close()
    return {
        "slow_connections": slow,
        "server_fds_while_held": fds_held,
        "health": percentiles(health),
        "predict": percentiles(predict),
        "errors": errors,
        "slow_connections_after_timeout": answers,
        "server_fds_after": open_fds(pid),
    }


def photo_uploads(port: int, seconds: float) -> dict:
    rng = np.random.default_rng(2024)
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[4:24, 12:16] = 255  # a 1
    jpeg = phone_photo(render_photo(digit, rng), rng)
    check = Image.open(io.BytesIO(jpeg))
    uploads = [("POST", "/api/predict", jpeg)]
    health = [("GET", "/api/health", b"")]
    results = run_clients(port, seconds, [uploads] * 5 + [health])
    return {
        "photo": f"{check.size[0]}x{check.size[1]} JPEG, {len(jpeg) / 2**20:.2f} MB",
        "uploaders": 5,
        "uploads": percentiles([ms for ms_list, _ in results[:5] for ms in ms_list]),
        "health": percentiles(results[5][0]),
        "errors": [e for _, errs in results for e in errs],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=2000, help="slow connections to hold")
    parser.add_argument("--seconds", type=float, default=20, help="length of each load")
    parser.add_argument("--json", type=Path, default=Path("docs/benchmarks/serve_stress.json"))
    args = parser.parse_args()
    limits = ServeLimits()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lenet5",
                "serve",
                "--port",
                str(port),
                "--feedback",
                str(Path(tmp) / "fb.sqlite"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_serving(f"http://127.0.0.1:{port}", server)
            rss_before = rss_mb(server.pid)
            result = {
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
                f"Python {platform.python_version()}",
                "limits": limits.__dict__,
                "slow_clients": slow_clients(port, server.pid, args.slow, args.seconds, limits),
                "photo_uploads": photo_uploads(port, args.seconds),
                "server_rss_mb": {"before": rss_before, "after": rss_mb(server.pid)},
            }
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
