"""Connections that slow or hostile clients cannot hoard: a read timeout and a connection cap.

uvicorn times out idle keep-alive connections, but a client that sends half its headers or half
its body, and then nothing, is kept forever; and it accepts connections until the process runs
out of file descriptors. This protocol (uvicorn's httptools one, plus two rules) answers 408
and closes a connection whose request has sent no bytes for `read_timeout` seconds, and answers
503 and closes at once any connection beyond `max_connections`.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

FD_RESERVE = 64  # descriptors kept for files, the store, the model's threads


def _answer(status: str, text: str) -> bytes:
    body = text.encode()
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


TIMED_OUT = _answer("408 Request Timeout", "request timed out: no bytes received in time\n")
TOO_MANY = _answer("503 Service Unavailable", "too many connections; try again shortly\n")


class BoundedProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol with a per-request read timeout and a connection cap."""

    def __init__(
        self, *args: Any, read_timeout: float, max_connections: int, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self.reading = True  # a request is being received (its headers or body)
        self.stall: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(TOO_MANY)
            transport.close()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.reading:
            self._arm()  # the clock runs from the last byte received

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.reading = True

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading = False  # the app has the request; it is not the client's turn
        self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.reading = True  # uvicorn's keep-alive timer runs until the next request's bytes

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self.stall = self.loop.call_later(self.read_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self.stall is not None:
            self.stall.cancel()
            self.stall = None

    def _timed_out(self) -> None:
        self.stall = None
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(TIMED_OUT)
        self.transport.close()


def usable_connections(wanted: int) -> int:
    """Raise this process's open-file limit as far as allowed; the connections it leaves room
    for, at most `wanted`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted + FD_RESERVE if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return wanted if soft == resource.RLIM_INFINITY else min(wanted, soft - FD_RESERVE)
