"""The HTTP connection itself: a bound on header bytes, and deadlines for headers and body.

uvicorn's compiled parser (httptools) sets neither: a request may send headers without end, or
send half of them and wait, and each such connection costs memory and parser time on the event
loop that answers ``/health``. :class:`GuardedHttp` is uvicorn's protocol with three checks:

- headers above :attr:`~crm_modes.serve.rest.limits.Limits.header_bytes` get a 431 and the
  connection is closed (counted as bytes arrive, before the parser holds them all, and as the
  parser reads them, for many small headers that arrive at once);
- headers not complete within ``header_seconds`` of the connection (or of the request's first
  byte, on a kept-alive connection) get a 408 and the connection is closed;
- a body not complete within ``body_seconds`` of its headers gets a 408 and is closed.

It is passed to uvicorn as ``http=GuardedHttp``; :func:`GuardedHttp.configure` sets its limits in
each worker (the service factory calls it).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from crm_modes.serve.rest.limits import Limits

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class _RefusedError(Exception):
    """Raised inside a parser callback to stop parsing a request already answered."""


class GuardedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header size limit and read deadlines (see the module)."""

    limits: ClassVar[Limits] = Limits()

    @classmethod
    def configure(cls, limits: Limits) -> None:
        cls.limits = limits

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_bytes = self._parsed_bytes = 0
        self._reading_headers = True
        self._refused = False
        self._deadline: asyncio.TimerHandle | None = None

    # Deadlines
    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire, what, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, what: str, seconds: float) -> None:
        self._deadline = None
        if self._refused or self.transport.is_closing():
            return
        self._refuse(408, f"the request's {what} did not arrive within {seconds:g} s")

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` (unless an answer is under way) and close the connection."""
        self._refused = True
        self._disarm()
        cycle = self.cycle
        answering = cycle is not None and (cycle.response_started or cycle.response_complete)
        if not answering and not self.transport.is_closing():
            body = json.dumps({"detail": message}).encode()
            self.transport.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n" % (status, _REASONS[status], len(body)) + body
            )
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the application's receive() ends; its answer is dropped
            cycle.message_event.set()
        self.transport.close()

    # The protocol's events
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_seconds, "headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._reading_headers:
            self._header_bytes += len(data)
        super().data_received(data)  # a _RefusedError raised by a callback ends as a parser error there
        if self._reading_headers and self._header_bytes > self.limits.header_bytes and not self._refused:
            self._refuse(431, f"request headers above {self.limits.header_bytes:,} bytes")

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # a refusal raised inside the parser is already answered
            super().send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = self._parsed_bytes = 0
        self._reading_headers = True
        if self._deadline is None:  # from the connection, or from this request's first byte
            self._arm(self.limits.header_seconds, "headers")

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        """Count the headers as the parser reads them (many small headers arrive in one read)."""
        if self._refused:
            raise _RefusedError
        self._parsed_bytes += size
        if self._parsed_bytes > self.limits.header_bytes:
            self._refuse(431, f"request headers above {self.limits.header_bytes:,} bytes")
            raise _RefusedError

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._arm(self.limits.body_seconds, "body")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()
