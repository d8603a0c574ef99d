"""JSON parsed strictly: no ``NaN`` or ``Infinity``, and no key twice in one object (a 422 naming it)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import HTTPException, Request
from fastapi.routing import APIRoute

from crm_modes.serve.rest.limits import excerpt


class _StrictJSONError(ValueError):
    pass


def _refuse_constant(name: str) -> float:
    raise _StrictJSONError(f"{name} is not a JSON number; send finite numbers, or null where allowed")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        repeated = next(key for key in keys if keys.count(key) > 1)
        raise _StrictJSONError(f"key {excerpt(repeated, 40)!r} appears twice in one JSON object")
    return dict(pairs)


class StrictJSONRequest(Request):
    """A request whose JSON body is parsed strictly (see the module's docstring)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = json.loads(body, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
            except _StrictJSONError as error:
                raise HTTPException(status_code=422, detail=str(error)) from None
        return self._json


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Awaitable[Any]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Any:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict
