"""The project's REST service: validated requests, health, readiness, version, hot reload.

The request model is derived from the schema, so a bad field gets a 422 that names the
field and the problem. The model is loaded once at start; ``POST /admin/reload`` (with the
token from ``CRM_MODES_ADMIN_TOKEN``) loads the current version of the configured URI in
the background and swaps it in with one reference assignment: requests in flight finish
on the model they started with, and none is dropped.

The service is a trust boundary. Bodies above :attr:`Limits.max_body_bytes` get a 413
before anything is parsed; JSON is parsed strictly (no ``NaN`` or ``Infinity``, no key
twice in one object, booleans are not numbers); error bodies carry at most a short excerpt
of what was sent; a facility-month sent twice in one request is refused, as the batch gate
quarantines it; anything unexpected is a 500 carrying only a request id, logged with its
traceback under that id.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import json
import logging
import math
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path as PathType
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model
from sqlalchemy import Engine

from crm_modes.data.schema import KEY, SCHEMA, Column, Kind, input_names
from crm_modes.serve.batcher import Batcher
from crm_modes.serve.holder import ModelHolder
from crm_modes.serve.registry import LoadedModel
from crm_modes.state import queries
from crm_modes.state.store import connect

log = logging.getLogger(__name__)

TOKEN_VARIABLE = "CRM_MODES_ADMIN_TOKEN"
MAX_RECORDS = 10_000
#: Request fields that may be left out: identifiers are echoed back when given.
OPTIONAL_FIELDS = ("client_id", "facility_id", "snapshot_date")
#: The longest identifier a request may carry (characters).
IDENTIFIER_LENGTH = 64
#: Bytes one record may take in a request body. A compact record is about 900 bytes; every
#: identifier at its longest and fully escaped, or pretty-printed JSON, stays below this.
RECORD_BYTES = 4_096
#: Dates a request may carry: within what pandas' nanosecond timestamps can hold.
EARLIEST_DATE, LATEST_DATE = dt.date(1900, 1, 1), dt.date(2261, 12, 31)
#: What an error body shows of a rejected value, and how many problems it lists.
EXCERPT_CHARS = 80
MAX_ERRORS = 20


@dataclass(frozen=True)
class Limits:
    """What one request may be: records, and bytes (by default enough for the most records)."""

    max_records: int = MAX_RECORDS
    max_body_bytes: int | None = None

    @property
    def body_bytes(self) -> int:
        return self.max_body_bytes or self.max_records * RECORD_BYTES + 4_096


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """A short, JSON-safe rendering of ``value`` for an error message."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _integral(value: object) -> object:
    """JSON writers may send 3.0 for 3; booleans and text are not integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _field(column: Column) -> tuple[Any, Any]:
    """(annotation, default) of one request field, with the schema's rules as constraints."""
    if column.kind is Kind.CATEGORY:
        annotation: Any = Literal[column.categories]  # type: ignore[valid-type]
    elif column.kind is Kind.INT:
        annotation = Annotated[
            int, Field(ge=column.minimum, le=column.maximum, strict=True), BeforeValidator(_integral)
        ]
    elif column.kind in (Kind.FLOAT, Kind.BINARY):
        annotation = Annotated[
            float, Field(ge=column.minimum, le=column.maximum, allow_inf_nan=False, strict=True)
        ]
    elif column.kind is Kind.DATE:
        annotation = Annotated[dt.date, Field(ge=EARLIEST_DATE, le=LATEST_DATE)]
    else:
        annotation = Annotated[str, Field(min_length=1, max_length=IDENTIFIER_LENGTH)]
    optional = column.nullable or not column.required or column.name in OPTIONAL_FIELDS
    if optional:
        return annotation | None, Field(default=None, description=column.description)
    return annotation, Field(description=column.description)


ScoringRecord: type[BaseModel] = create_model(
    "ScoringRecord",
    __config__=ConfigDict(extra="forbid"),
    __doc__="One client facility at a snapshot; fields and rules come from the schema.",
    **{column.name: _field(column) for column in SCHEMA if column.name in input_names()},
)


class ScoreRequest(BaseModel):
    """The body of ``POST /v1/score``; a service may be configured to take fewer records."""

    model_config = ConfigDict(extra="forbid")
    records: list[ScoringRecord] = Field(min_length=1, max_length=MAX_RECORDS)  # type: ignore[valid-type]


class ScoreResponse(BaseModel):
    model_version: str
    scores: list[dict[str, Any]]


class Problem(BaseModel):
    """An error answer: what is wrong, never more than an excerpt of what was sent."""

    detail: str | list[dict[str, Any]]


def json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as JSON-ready dicts: NaN and NaT as None, dates as ``YYYY-MM-DD``.

    Each column's kind is read from its dtype's ``kind`` ("M" dates, "f" floats), the same
    split as pandas' ``is_datetime64_any_dtype`` and ``is_float_dtype`` at a tenth of the cost.
    """
    columns = {}
    for name, values in frame.items():
        kind = values.dtype.kind
        if kind == "M":
            text = values.dt.strftime("%Y-%m-%d")
            columns[name] = [None if pd.isna(value) else value for value in text.tolist()]
        elif kind == "f":
            columns[name] = [None if value != value else value for value in values.to_numpy().tolist()]
        else:
            columns[name] = [None if pd.isna(value) else value for value in values.tolist()]
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


#: The dtype of a column of each kind when no record leaves it empty (pandas infers the same;
#: whole numbers only when the schema bounds them within int64).
_COMPLETE_DTYPES = {Kind.INT: np.int64, Kind.BINARY: np.float64, Kind.CATEGORY: object, Kind.STRING: object}
_INT64 = np.iinfo(np.int64)


def _complete_dtype(column: Column) -> Any:
    """The dtype pandas infers for ``column`` when every record gives it, or None (let it infer)."""
    if column.kind is Kind.INT and not (
        column.minimum is not None
        and column.maximum is not None
        and _INT64.min <= column.minimum
        and column.maximum <= _INT64.max
    ):
        return None
    return _COMPLETE_DTYPES.get(column.kind)


def _frame(records: list[BaseModel]) -> pd.DataFrame:
    """The records as a DataFrame in the schema's types (numbers as float64, dates as dates).

    A column with an empty value is left to pandas' inference (float64 with NaN, object when
    every value is empty); a complete one is built in the dtype pandas would infer, which
    spares the inference (a third of the cost of one record's frame).
    """
    rows = [record.model_dump() for record in records]
    columns: dict[str, Any] = {}
    for column in SCHEMA:
        if column.name not in rows[0]:
            continue
        values = [row[column.name] for row in rows]
        complete = None not in values
        if not complete and column.name in OPTIONAL_FIELDS and all(value is None for value in values):
            continue  # an identifier nobody sent
        if column.kind is Kind.FLOAT:
            columns[column.name] = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
        elif column.kind is Kind.DATE:  # dates (validated within EARLIEST_DATE..LATEST_DATE) or None
            columns[column.name] = np.array(values, dtype="datetime64[ns]")
        elif complete and (dtype := _complete_dtype(column)) is not None:
            columns[column.name] = np.array(values, dtype=dtype)
        else:
            columns[column.name] = values
    return pd.DataFrame(columns, copy=False)  # the columns are this call's own


def duplicate_keys(records: list[BaseModel]) -> str | None:
    """Why the records are refused when one facility-month appears twice, else None."""
    seen: dict[tuple[object, ...], int] = {}
    for index, record in enumerate(records):
        key = tuple(getattr(record, name) for name in KEY)
        if any(part is None for part in key):
            continue
        if key in seen:
            shown = ", ".join(f"{name} {excerpt(str(part), 40)}" for name, part in zip(KEY, key, strict=True))
            return (
                f"records {seen[key]} and {index} are the same facility-month ({shown}): "
                "each may be scored once per request (the batch gate quarantines repeats)"
            )
        seen[key] = index
    return None


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
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(send, 413, self._too_large(f"more than {self.limit:,} bytes sent"))
                return
            chunks.append(message.get("body", b""))
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


def _problem_list(errors: list[dict[str, Any]]) -> dict[str, Any]:
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


def token_matches(authorization: str | None, expected: str) -> bool:
    """Only ``Authorization: Bearer <token>``; compared in constant time, on bytes."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme != "Bearer" or not given:
        return False
    # Header values arrive decoded as Latin-1, so this recovers the bytes that were sent.
    return hmac.compare_digest(given.encode("latin-1", "replace"), expected.encode("utf-8"))


_ERRORS = {status: {"model": Problem} for status in (400, 413, 422, 500)}
_ADMIN_ERRORS = {status: {"model": Problem} for status in (401, 403, 409, 503)}


AlertStatus = Literal[queries.STATUSES]  # type: ignore[valid-type]


class Acknowledgement(BaseModel):
    """Who acknowledges an alert, and why."""

    model_config = ConfigDict(extra="forbid")
    by: str = Field(min_length=1, max_length=200)
    note: str | None = Field(default=None, max_length=2_000)


def create_app(
    model_uri: str,
    *,
    load_at_start: bool = True,
    limits: Limits | None = None,
    state: str | None = None,
    shared: PathType | None = None,
    pinned: str | None = None,
) -> FastAPI:
    """The service for ``model_uri`` (e.g. ``models:/crm-advisor@champion``).

    ``state`` is the state store's URL (see :func:`crm_modes.state.store.state_url`) for the
    history and alert endpoints. ``shared`` is the reload announcement file of a service with
    several workers (:mod:`crm_modes.serve.holder`); ``pinned`` the version to load at start
    (default: the current version of ``model_uri``).
    """
    limits = limits or Limits()

    @functools.cache
    def open_store() -> Engine:  # opened on first use: a service that never reads it creates no database
        return connect(state)

    def store() -> Engine:
        try:
            return open_store()
        except ValueError as error:  # unreachable or unusable: the service's problem, said plainly
            raise HTTPException(
                status_code=503, detail=f"state store unavailable: {excerpt(str(error), 300)}"
            ) from None

    holder = ModelHolder(model_uri, shared=shared)
    batcher: Batcher = Batcher(lambda model, records: json_rows(model.predict(_frame(records))))
    app = FastAPI(title="crm-modes advisor", version="1")
    app.router.route_class = StrictJSONRoute
    app.add_middleware(BodyLimit, limit=limits.body_bytes)
    app.add_middleware(CatchAll)  # added last, so outermost: it sees every failure
    app.state.holder = holder
    app.state.batcher = batcher
    app.state.limits = limits
    if load_at_start:
        holder.load(pinned)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(_problem_list(list(error.errors())), status_code=422)

    def live_model() -> LoadedModel:
        holder.follow()  # another worker may have reloaded
        model = holder.model
        if model is None:
            raise HTTPException(status_code=503, detail="model not loaded yet")
        return model

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", responses={503: {"model": Problem}})
    def ready() -> dict[str, str]:
        model = live_model()
        return {"status": "ready", "model_version": model.version}

    @app.get("/version", responses={503: {"model": Problem}})
    def version() -> dict[str, str]:
        model = live_model()
        return {
            "model_uri": holder.uri,
            "model_version": model.version,
            "pinned_uri": model.uri,
            "worker": str(os.getpid()),
        }

    @app.post("/v1/score", response_model=ScoreResponse, responses={**_ERRORS, 503: {"model": Problem}})
    def score(request: ScoreRequest) -> ScoreResponse:  # type: ignore[valid-type]
        records = request.records  # type: ignore[attr-defined]
        if len(records) > limits.max_records:
            raise HTTPException(
                status_code=413,
                detail=f"{len(records):,} records in one request; this service takes at most "
                f"{limits.max_records:,}",
            )
        repeated = duplicate_keys(records)
        if repeated:
            raise HTTPException(status_code=422, detail=repeated)
        model = live_model()  # this request keeps this model even if a reload swaps it meanwhile
        scores = batcher(model, records)  # with the records of requests waiting meanwhile
        unsent = [name for name in OPTIONAL_FIELDS if all(getattr(r, name) is None for r in records)]
        if unsent:  # as if scored alone: an identifier the request never sent is not answered
            scores = [{key: value for key, value in row.items() if key not in unsent} for row in scores]
        return ScoreResponse(model_version=model.version, scores=scores)

    def authorize(authorization: str | None, what: str) -> None:
        expected = os.environ.get(TOKEN_VARIABLE)
        if not expected:
            raise HTTPException(status_code=403, detail=f"{what} is disabled: {TOKEN_VARIABLE} is not set")
        if not token_matches(authorization, expected):
            raise HTTPException(
                status_code=401, detail="missing or wrong token: send 'Authorization: Bearer <token>'"
            )

    @app.get("/v1/facilities/{facility_id}/history", responses={404: {"model": Problem}})
    def facility_history(
        facility_id: Annotated[str, Path(min_length=1, max_length=IDENTIFIER_LENGTH)],
    ) -> dict:
        found = queries.history(store(), facility_id)
        if found is None:
            raise HTTPException(
                status_code=404, detail=f"facility {excerpt(facility_id, 64)!r} was never recorded"
            )
        return found

    @app.get("/v1/alerts", responses={422: {"model": Problem}})
    def list_alerts(
        status: Annotated[AlertStatus | None, Query()] = "open",
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1_000,
    ) -> dict:
        return {"alerts": queries.list_alerts(store(), status=status, limit=limit)}

    @app.post("/v1/alerts/{alert_id}/ack", responses={**_ADMIN_ERRORS, 404: {"model": Problem}})
    def acknowledge(
        alert_id: Annotated[int, Path(ge=1, le=2**62)],
        body: Acknowledgement,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict:
        authorize(authorization, "acknowledging")
        try:
            return queries.acknowledge(store(), alert_id, by=body.by, note=body.note)
        except KeyError:
            raise HTTPException(status_code=404, detail=f"no alert {alert_id}") from None
        except ValueError as error:
            raise HTTPException(status_code=409, detail=str(error)) from None

    @app.post("/admin/reload", responses=_ADMIN_ERRORS)
    async def reload(authorization: Annotated[str | None, Header()] = None) -> dict[str, str]:
        authorize(authorization, "reload")
        if not holder.reload_lock.acquire(blocking=False):
            raise HTTPException(status_code=409, detail="a reload is already in progress")
        before = holder.model.version if holder.model else "none"
        try:
            fresh = await run_in_threadpool(holder.load_locked)
        except Exception as error:
            log.exception("reload of %s failed; still serving %s", holder.uri, before)
            raise HTTPException(
                status_code=503,
                detail=f"reload of {holder.uri} failed, still serving {before}: "
                f"{type(error).__name__}: {excerpt(str(error), 300)}",
            ) from None
        finally:
            holder.reload_lock.release()
        return {"previous_version": before, "model_version": fresh.version}

    return app


#: The environment variable through which ``crm-modes serve --workers N`` configures each worker.
SERVICE_VARIABLE = "CRM_MODES_SERVICE"


@dataclass(frozen=True)
class ServiceSettings:
    """What every worker of one service is started with (passed as JSON in the environment)."""

    model_uri: str
    pinned_uri: str
    limits: Limits
    state: str | None
    shared: str
    threads: int

    def to_environment(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_environment(cls) -> ServiceSettings:
        settings = json.loads(os.environ[SERVICE_VARIABLE])
        return cls(**{**settings, "limits": Limits(**settings["limits"])})


def app_from_environment() -> FastAPI:
    """One worker's service, configured by ``crm-modes serve`` (an application factory for uvicorn)."""
    from crm_modes.models.threads import configure_threads

    settings = ServiceSettings.from_environment()
    configure_threads(settings.threads)
    return create_app(
        settings.model_uri,
        limits=settings.limits,
        state=settings.state,
        shared=PathType(settings.shared),
        pinned=settings.pinned_uri,
    )
