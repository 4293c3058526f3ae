"""The served connections' bounds, on a real `lenet5 serve` (short limits to keep it quick)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from lenet5.serving.app import wait_until_serving

READ_TIMEOUT = 1.0
MAX_CONNECTIONS = 20
KEEP_ALIVE = 1.0


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The port of a server whose log, once it has stopped, must hold no traceback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    store = tmp_path_factory.mktemp("http") / "fb.sqlite"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "lenet5", "serve", "--port", str(free)),
            *("--feedback", str(store), "--read-timeout", str(READ_TIMEOUT)),
            *("--max-connections", str(MAX_CONNECTIONS), "--keep-alive", str(KEEP_ALIVE)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{free}", process, timeout=60)
        yield free
    finally:
        process.send_signal(signal.SIGTERM)
        log, _ = process.communicate(timeout=20)
    assert "Traceback" not in log, log


def _connect(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port))
    conn.settimeout(10)
    return conn


def _read_all(conn: socket.socket) -> bytes:
    """Everything until the server closes the connection."""
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data


def _health(port: int) -> bytes:
    with _connect(port) as conn:
        conn.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return _read_all(conn)


@pytest.mark.parametrize(
    "sent",
    [
        b"POST /api/predict HTTP/1.1\r\nHost: x\r\n",  # headers never finished
        b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
        b"Content-Length: 1000\r\n\r\n0123456789",  # body never finished
        b"",  # nothing at all
    ],
    ids=["headers", "body", "silent"],
)
def test_a_stalled_request_gets_408_and_is_closed(port: int, sent: bytes) -> None:
    with _connect(port) as conn:
        conn.sendall(sent)
        started = time.monotonic()
        answer = _read_all(conn)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert READ_TIMEOUT * 0.9 < waited < READ_TIMEOUT + 3


def test_a_slow_but_steady_client_is_served(port: int) -> None:
    """The timeout counts from the last byte received, not from the start."""
    request = b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with _connect(port) as conn:
        for i in range(0, len(request), 12):  # about 2.5 read timeouts in all
            conn.sendall(request[i : i + 12])
            time.sleep(READ_TIMEOUT / 2)
        assert _read_all(conn).startswith(b"HTTP/1.1 200 OK\r\n")


def test_connections_past_the_cap_get_503_at_once(port: int) -> None:
    held = [_connect(port) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)  # all accepted by the server
        started = time.monotonic()
        with _connect(port) as extra:
            answer = _read_all(extra)
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert time.monotonic() - started < 1.0
        for conn in held:  # freed by the read timeout
            assert _read_all(conn).startswith(b"HTTP/1.1 408 ")
    finally:
        for conn in held:
            conn.close()
    assert _health(port).startswith(b"HTTP/1.1 200 OK\r\n")


def test_an_idle_keep_alive_connection_is_closed(port: int) -> None:
    with _connect(port) as conn:
        conn.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        first = conn.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 OK\r\n")
        started = time.monotonic()
        assert _read_all(conn) == b""  # closed by the server, with nothing more sent
        assert time.monotonic() - started < KEEP_ALIVE + 3


def test_serve_help_shows_the_limits(capsys: pytest.CaptureFixture[str]) -> None:
    from lenet5.cli import main

    assert main(["serve", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--read-timeout SECONDS", "--max-connections N", "--keep-alive SECONDS"):
        assert flag in text
    assert "(default: 30.0)" in text and "(default: 4096)" in text and "(default: 5.0)" in text
