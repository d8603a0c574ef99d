"""What one request may be, and what an error answer may show of it."""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

#: A repr that stops after a few items and characters, however large the object.
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist, _SHORT.maxstring, _SHORT.maxother = 2, 4, 4, 60, 60

#: Records one request may carry at most (a service may be configured to take fewer).
MAX_RECORDS = 10_000
#: The longest identifier a request may carry (characters).
IDENTIFIER_LENGTH = 64
#: Bytes one record may take in a request body. A compact record is about 900 bytes; every
#: identifier at its longest and fully escaped, or pretty-printed JSON, stays below this.
RECORD_BYTES = 4_096
#: What an error body shows of a rejected value, and how many problems it lists.
EXCERPT_CHARS = 80
MAX_ERRORS = 20


#: Bytes a request's headers may take (a 431 above), and the deadlines for headers and body.
HEADER_BYTES = 64 * 1024
HEADER_SECONDS = 10.0
BODY_SECONDS = 60.0


@dataclass(frozen=True)
class Limits:
    """What one request may be: records, and bytes (by default enough for the most records); how
    large its headers may be, and how long its headers and body may take to arrive."""

    max_records: int = MAX_RECORDS
    max_body_bytes: int | None = None
    header_bytes: int = HEADER_BYTES
    header_seconds: float = HEADER_SECONDS
    body_seconds: float = BODY_SECONDS

    @property
    def body_bytes(self) -> int:
        return self.max_body_bytes or self.max_records * RECORD_BYTES + 4_096


class Problem(BaseModel):
    """An error answer: what is wrong, never more than an excerpt of what was sent."""

    detail: str | list[dict[str, Any]]


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """A short, JSON-safe rendering of ``value`` for an error message (lone surrogates escaped, so
    that the answer can always be encoded)."""
    text = value if isinstance(value, str) else _SHORT.repr(value)  # bounded: never the whole input
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def problem_list(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """Validation errors as a bounded answer: location, message, type and an excerpt of the input."""
    detail = [
        {
            "loc": [
                part if isinstance(part, int) else excerpt(str(part), 40) for part in error.get("loc", ())
            ],
            "msg": excerpt(str(error.get("msg", "")), 300),
            "type": str(error.get("type", "")),
            "input": excerpt(error.get("input")),
        }
        for error in errors[:MAX_ERRORS]
    ]
    answer: dict[str, Any] = {"detail": detail}
    if len(errors) > MAX_ERRORS:
        answer["more_errors"] = len(errors) - MAX_ERRORS
    return answer


#: The error answers a route may give, for the OpenAPI document.
ERRORS = {status: {"model": Problem} for status in (400, 401, 403, 413, 422, 500)}
ADMIN_ERRORS = {status: {"model": Problem} for status in (401, 403, 409, 503)}
