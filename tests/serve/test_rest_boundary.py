"""The service's trust boundary in-process: the ASGI application called as a server calls it.

Limits below the defaults, a body that arrives in chunks, and an unexpected failure inside
a route: cases a real server cannot be made to produce on demand. The same cases against a
real server on 127.0.0.1 are in test_rest.py and test_rest_fuzz.py.
"""

import asyncio
import json
import logging

from crm_modes.serve.rest.app import create_app
from crm_modes.serve.rest.limits import RECORD_BYTES, Limits, excerpt
from tests.serve.test_rest import records


def asgi(app, method: str, path: str, chunks: list[bytes], headers: dict | None = None) -> tuple[int, dict]:
    """One HTTP request through the ASGI interface; the body is sent in ``chunks``."""
    sent: list[dict] = []
    pending = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks or [b""])
    ]

    async def receive() -> dict:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 5000),
        "headers": [(b"content-type", b"application/json")]
        + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body)


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit():
    app = create_app("models:/crm-advisor@champion", load_at_start=False, limits=Limits(max_body_bytes=1_000))
    status, answer = asgi(app, "POST", "/v1/score", [b"{" + b" " * 600, b" " * 600, b"}"])
    assert status == 413
    assert answer["detail"] == "request body too large: more than 1,000 bytes sent; the limit is 1,000 bytes"


def test_the_default_body_limit_follows_the_records_allowed():
    assert Limits().body_bytes == 10_000 * RECORD_BYTES + 4_096
    assert Limits(max_records=10).body_bytes == 10 * RECORD_BYTES + 4_096
    compact = len(json.dumps(records(1)[0]).encode())
    assert compact * 3 < RECORD_BYTES  # room for long identifiers, escapes and indentation


def test_more_records_than_the_service_takes_is_a_413():
    app = create_app("models:/crm-advisor@champion", load_at_start=False, limits=Limits(max_records=2))
    rows = records(3)
    status, answer = asgi(app, "POST", "/v1/score", [json.dumps({"records": rows}).encode()])
    assert status == 413
    assert answer["detail"] == "3 records in one request; this service takes at most 2"


def test_no_model_yet_is_a_503_naming_it():
    app = create_app("models:/crm-advisor@champion", load_at_start=False)
    assert asgi(app, "GET", "/ready", []) == (503, {"detail": "model not loaded yet"})


def test_an_unexpected_failure_is_a_500_with_a_request_id_and_no_internals(caplog):
    app = create_app("models:/crm-advisor@champion", load_at_start=False)

    @app.get("/broken")
    def broken() -> None:
        raise RuntimeError("secret internals: /etc/bank/keys")

    with caplog.at_level(logging.ERROR, logger="crm_modes.serve.rest.middleware"):
        status, answer = asgi(app, "GET", "/broken", [])
    assert status == 500
    assert "secret" not in json.dumps(answer)
    assert answer["detail"] == "internal error; quote the request id when reporting it"
    logged = [record for record in caplog.records if answer["request_id"] in record.getMessage()]
    assert logged
    assert "secret internals" in str(logged[0].exc_info[1])  # the traceback is in the log, not the answer


def test_head_on_a_get_route_answers_its_status_without_a_body():
    app = create_app("models:/crm-advisor@champion", load_at_start=False)
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "HEAD",
        "path": "/health",
        "raw_path": b"/health",
        "query_string": b"",
        "headers": [],
        "root_path": "",
        "scheme": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 200
    assert dict(sent[0]["headers"])[b"content-length"] == b"15"  # as GET's
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b""


def test_excerpts_are_short():
    assert excerpt("x" * 1_000) == "x" * 77 + "..."
    assert excerpt(float("nan")) == "nan"
    assert len(excerpt([{"a": "b" * 500}] * 100)) == 80
    assert excerpt("\ud800").encode("utf-8") == b"\\ud800"  # a lone surrogate can always be sent back


def test_an_unreachable_state_store_is_a_503_naming_it():
    app = create_app(
        "models:/crm-advisor@champion", load_at_start=False, state="postgresql://nobody@127.0.0.1:1/none"
    )
    status, answer = asgi(app, "GET", "/v1/alerts", [])
    assert status == 503
    assert answer["detail"].startswith(
        "state store unavailable: state store postgresql://nobody@127.0.0.1:1/none"
    )
