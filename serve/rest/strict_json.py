"""JSON parsed strictly and off the event loop, after the caller is known.

No ``NaN`` or ``Infinity``, no key twice in one object, no NUL or lone surrogate in any string
(each a 422 naming it). The duplicate check is a set per object, so parsing stays linear in the
body; parsing runs in the thread pool, so a large body never stalls ``/health``. A route that needs
a scope checks the caller before it reads the body: an unknown caller costs no parsing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from crm_modes.serve.rest.access import authorize, bearer_token, route_scope
from crm_modes.serve.rest.limits import excerpt
from crm_modes.shared.text import text_problem

#: Escapes that may decode to text no store can hold (checked string by string when present).
_SUSPECT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


class _StrictJSONError(ValueError):
    pass


def _refuse_constant(name: str) -> float:
    raise _StrictJSONError(f"{name} is not a JSON number; send finite numbers, or null where allowed")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):  # find the repeated key: a set, so linear in the object's size
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _StrictJSONError(f"key '{excerpt(key, 40)}' appears twice in one JSON object")
            seen.add(key)
    return result


def _unstorable(value: Any) -> str | None:
    """The first string in ``value`` (keys included) no store can hold, described; else None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return f"the string '{excerpt(item, 40)}' holds {problem}, which no store can hold"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def parse_strict(body: bytes) -> Any:
    """The JSON document in ``body``, parsed strictly (see the module), or an HTTP 400/422."""
    try:
        parsed = json.loads(body, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except _StrictJSONError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    except json.JSONDecodeError:
        raise  # FastAPI's own 422 names its place
    except UnicodeDecodeError as error:
        raise HTTPException(
            status_code=400, detail=f"the body is not UTF-8: {excerpt(str(error), 200)}"
        ) from None
    except RecursionError:
        raise HTTPException(status_code=422, detail="the JSON document is nested too deeply") from None
    except ValueError as error:  # e.g. an integer of more digits than Python converts
        raise HTTPException(status_code=422, detail=f"the body holds {excerpt(str(error), 200)}") from None
    if _SUSPECT.search(body):
        problem = _unstorable(parsed)
        if problem:
            raise HTTPException(status_code=422, detail=problem)
    return parsed


def invalid_json(error: json.JSONDecodeError) -> RequestValidationError:
    """A body that is not JSON, as FastAPI itself answers it (a 422 naming the place)."""
    return RequestValidationError(
        [
            {
                "type": "json_invalid",
                "loc": ("body", error.pos),
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": error.msg},
            }
        ]
    )


class StrictJSONRequest(Request):
    """A request whose JSON body is parsed strictly, in the thread pool (see the module's docstring)."""

    #: The largest body this route takes (None: the service's body limit alone).
    max_body_bytes: int | None = None

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            limit = self.max_body_bytes
            declared = self.headers.get("content-length", "")
            if limit is not None and declared.isdigit() and int(declared) > limit:
                raise HTTPException(
                    status_code=413, detail=f"this route takes a body of at most {limit:,} bytes"
                )
            body = await self.body()
            if limit is not None and len(body) > limit:
                raise HTTPException(
                    status_code=413, detail=f"this route takes a body of at most {limit:,} bytes"
                )
            self._json = await run_in_threadpool(parse_strict, body)
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose body is parsed strictly, after its caller is known."""

    #: The largest body a route of this class takes (None: the service's body limit alone).
    max_body_bytes: int | None = None

    def get_route_handler(self) -> Callable[[Request], Awaitable[Any]]:
        handler = super().get_route_handler()
        scope = route_scope(self.dependant.dependencies)

        async def strict(request: Request) -> Any:
            if scope is not None:  # before the body is read
                authorize(request, scope, bearer_token(request))
            strict_request = StrictJSONRequest(request.scope, request.receive)
            strict_request.max_body_bytes = self.max_body_bytes
            return await handler(strict_request)

        return strict


class SmallJSONRoute(StrictJSONRoute):
    """A route whose body is a few fields (an acknowledgement, a reload): 16 KiB at most, so that a
    large body never reaches validation on the event loop."""

    max_body_bytes = 16 * 1024
