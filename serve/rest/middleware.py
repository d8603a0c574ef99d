"""ASGI middleware at the service's boundary: a body limit, and a catch-all for the unexpected."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

log = logging.getLogger(__name__)

#: After a body this large, memory the C allocator holds free is given back to the system.
TRIM_AFTER_BYTES = 1 << 20


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc
        return None


def give_back_memory() -> None:
    """Free what a large request left in reference cycles (an error's traceback holds the frames
    that parsed the body), then return the C allocator's free pages to the system (glibc keeps
    them per thread arena, so a worker that parsed a large body would otherwise keep its peak)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class BodyLimit:
    """ASGI middleware: a body above ``limit`` bytes gets a 413 before the application sees it.

    A declared ``Content-Length`` above the limit is refused without reading the body; a
    chunked body is counted as it arrives and refused as soon as it passes the limit.
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await self._refuse(send, 400, "Content-Length is not a number")
                return
            if int(declared) > self.limit:
                await self._refuse(send, 413, self._too_large(f"{int(declared):,} bytes declared"))
                return
        chunks: list[bytes] = []
        try:
            await self._read_and_pass(scope, receive, send, chunks)
        finally:
            if sum(map(len, chunks)) > TRIM_AFTER_BYTES:  # refused or answered: give it back
                chunks.clear()
                await run_in_threadpool(give_back_memory)

    async def _read_and_pass(
        self, scope: dict, receive: Callable, send: Callable, chunks: list[bytes]
    ) -> None:
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            chunks.append(chunk)
            if size > self.limit:
                await self._refuse(send, 413, self._too_large(f"more than {self.limit:,} bytes sent"))
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self, what: str) -> str:
        return f"request body too large: {what}; the limit is {self.limit:,} bytes"

    @staticmethod
    async def _refuse(send: Callable, status: int, message: str) -> None:
        body = json.dumps({"detail": message}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class HeadAsGet:
    """ASGI middleware: ``HEAD`` on any ``GET`` route answers its status and headers, no body."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: dict) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


class CatchAll:
    """ASGI middleware: an unexpected failure is a 500 with a request id and nothing else.

    The traceback is logged under the same id; the answer names no internals.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            request_id = uuid.uuid4().hex
            log.exception("request %s %s %s failed", request_id, scope.get("method"), scope.get("path"))
            if started:
                raise  # the answer is under way: the server can only close the connection
            body = json.dumps(
                {"detail": "internal error; quote the request id when reporting it", "request_id": request_id}
            ).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
            ]
            await send({"type": "http.response.start", "status": 500, "headers": headers})
            await send({"type": "http.response.body", "body": body})
