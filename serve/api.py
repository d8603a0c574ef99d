"""The project's REST service: validated requests, health, readiness, version, hot reload.

The request model is derived from the schema, so a bad field gets a 422 that names the
field and the problem. The model is loaded once at start; ``POST /admin/reload`` (with the
token from ``CRM_MODES_ADMIN_TOKEN``) loads the current version of the configured URI in
the background and swaps it in with one reference assignment: requests in flight finish
on the model they started with, and none is dropped.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import secrets
import threading
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import FastAPI, Header, HTTPException
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, create_model

from crm_modes.data.schema import SCHEMA, Column, Kind, input_names
from crm_modes.serve.registry import LoadedModel, load_model

TOKEN_VARIABLE = "CRM_MODES_ADMIN_TOKEN"
MAX_RECORDS = 10_000
#: Request fields that may be left out: identifiers are echoed back when given.
OPTIONAL_FIELDS = ("client_id", "facility_id", "snapshot_date")


def _field(column: Column) -> tuple[Any, Any]:
    """(annotation, default) of one request field, with the schema's rules as constraints."""
    if column.kind is Kind.CATEGORY:
        annotation: Any = Literal[column.categories]  # type: ignore[valid-type]
    elif column.kind is Kind.INT:
        annotation = Annotated[int, Field(ge=column.minimum, le=column.maximum, strict=False)]
    elif column.kind in (Kind.FLOAT, Kind.BINARY):
        annotation = Annotated[float, Field(ge=column.minimum, le=column.maximum, allow_inf_nan=False)]
    elif column.kind is Kind.DATE:
        annotation = dt.date
    else:
        annotation = Annotated[str, Field(min_length=1)]
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
    model_config = ConfigDict(extra="forbid")
    records: list[ScoringRecord] = Field(min_length=1, max_length=MAX_RECORDS)  # type: ignore[valid-type]


class ScoreResponse(BaseModel):
    model_version: str
    scores: list[dict[str, Any]]


def _json_safe(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return value


def _frame(request: ScoreRequest) -> pd.DataFrame:
    """The records as a DataFrame in the schema's types (numbers as float64, dates as dates)."""
    records = [record.model_dump() for record in request.records]
    columns: dict[str, Any] = {}
    for column in SCHEMA:
        if column.name not in records[0]:
            continue
        values = [record[column.name] for record in records]
        if column.name in OPTIONAL_FIELDS and all(value is None for value in values):
            continue  # an identifier nobody sent
        if column.kind is Kind.FLOAT:
            columns[column.name] = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
        elif column.kind is Kind.DATE:
            columns[column.name] = pd.to_datetime(values)
        else:
            columns[column.name] = values
    return pd.DataFrame(columns)


class ModelHolder:
    """The live model; replaced whole, never mutated, so readers always see a complete one."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.model: LoadedModel | None = None
        self.reload_lock = threading.Lock()

    def load(self) -> LoadedModel:
        with self.reload_lock:
            fresh = load_model(self.uri)
            self.model = fresh
            return fresh


def create_app(model_uri: str, *, load_at_start: bool = True) -> FastAPI:
    """The service for ``model_uri`` (e.g. ``models:/crm-advisor@champion``)."""
    holder = ModelHolder(model_uri)
    app = FastAPI(title="crm-modes advisor", version="1")
    app.state.holder = holder
    if load_at_start:
        holder.load()

    def live_model() -> LoadedModel:
        model = holder.model
        if model is None:
            raise HTTPException(status_code=503, detail="model not loaded yet")
        return model

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    def ready() -> dict[str, str]:
        model = live_model()
        return {"status": "ready", "model_version": model.version}

    @app.get("/version")
    def version() -> dict[str, str]:
        model = live_model()
        return {"model_uri": holder.uri, "model_version": model.version, "pinned_uri": model.uri}

    @app.post("/v1/score", response_model=ScoreResponse)
    def score(request: ScoreRequest) -> ScoreResponse:
        model = live_model()  # this request keeps this model even if a reload swaps it meanwhile
        advice = model.predict(_frame(request))
        scores = [{key: _json_safe(value) for key, value in row.items()} for row in advice.to_dict("records")]
        return ScoreResponse(model_version=model.version, scores=scores)

    @app.post("/admin/reload")
    async def reload(authorization: Annotated[str | None, Header()] = None) -> dict[str, str]:
        expected = os.environ.get(TOKEN_VARIABLE)
        if not expected:
            raise HTTPException(status_code=403, detail=f"reload is disabled: {TOKEN_VARIABLE} is not set")
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not secrets.compare_digest(given, expected):
            raise HTTPException(status_code=401, detail="missing or wrong token")
        before = holder.model.version if holder.model else "none"
        fresh = await run_in_threadpool(holder.load)
        return {"previous_version": before, "model_version": fresh.version}

    return app
