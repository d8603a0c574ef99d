"""Who may do what: the routes that change the service or the state store ask for the admin token.

``POST /admin/reload`` and ``POST /v1/alerts/{id}/ack`` need ``Authorization: Bearer <token>``,
the token from ``CRM_MODES_ADMIN_TOKEN``, compared in constant time on bytes. Without the
variable those routes are disabled (403). The check is one FastAPI dependency
(:func:`token_required`), declared on each route that needs it.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from typing import Annotated

from fastapi import Header, HTTPException

TOKEN_VARIABLE = "CRM_MODES_ADMIN_TOKEN"


def token_matches(authorization: str | None, expected: str) -> bool:
    """Only ``Authorization: Bearer <token>``; compared in constant time, on bytes."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme != "Bearer" or not given:
        return False
    # Header values arrive decoded as Latin-1, so this recovers the bytes that were sent.
    return hmac.compare_digest(given.encode("latin-1", "replace"), expected.encode("utf-8"))


def token_required(what: str) -> Callable[..., None]:
    """The dependency of a guarded route (``what`` names it in a refusal): 403 when the service has
    no token, 401 for a missing or wrong one."""

    def require_token(authorization: Annotated[str | None, Header()] = None) -> None:
        expected = os.environ.get(TOKEN_VARIABLE)
        if not expected:
            raise HTTPException(status_code=403, detail=f"{what} is disabled: {TOKEN_VARIABLE} is not set")
        if not token_matches(authorization, expected):
            raise HTTPException(
                status_code=401, detail="missing or wrong token: send 'Authorization: Bearer <token>'"
            )

    return require_token
