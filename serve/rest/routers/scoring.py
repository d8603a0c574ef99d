"""``POST /v1/score``: records in, one row of advice per record out, with the model version.

The body is parsed and validated in the thread pool (a dependency that is a plain function), not
on the event loop: ten thousand records take a few hundred milliseconds to read, and ``/health``
must not wait for them. The request model is still the OpenAPI document's request body.
"""

from __future__ import annotations

import functools
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from crm_modes.serve.rest.access import Scope, requires
from crm_modes.serve.rest.bank_records import BankDialect
from crm_modes.serve.rest.batcher import Batcher
from crm_modes.serve.rest.dependencies import batcher, current_model, dialect, limits, served
from crm_modes.serve.rest.limits import ERRORS, MAX_ERRORS, Limits, Problem
from crm_modes.serve.rest.records import (
    OPTIONAL_FIELDS,
    ScoreRequest,
    ScoreResponse,
    ScoringRecord,
    duplicate_keys,
)
from crm_modes.serve.rest.served_model import ServedModel
from crm_modes.serve.rest.strict_json import StrictJSONRoute, invalid_json

router = APIRouter(route_class=StrictJSONRoute)  # every body parsed strictly


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()  # strict, in the thread pool (StrictJSONRequest)
    except json.JSONDecodeError as error:
        raise invalid_json(error) from None


#: Records validated at a time: each slice holds the GIL for a few milliseconds, so ``/health``
#: gets its turn between slices while ten thousand records are validated.
SLICE_RECORDS = 250
_RECORDS = TypeAdapter(list[ScoringRecord])  # type: ignore[valid-type]


@functools.lru_cache(maxsize=4)
def _bank_records(record: type[BaseModel]) -> TypeAdapter:
    """A list of a bank's records, validated as one (built once per record model)."""
    return TypeAdapter(list[record])  # type: ignore[valid-type]


def _score_request(
    body: Annotated[Any, Depends(_json_body)],
    allowed: Annotated[Limits, Depends(limits)],
    bank: Annotated[BankDialect | None, Depends(dialect)],
) -> ScoreRequest:
    """The body as a :class:`ScoreRequest`, in the thread pool; too many records: 413 unread.

    The envelope is checked first, then the records a slice at a time (the first
    :data:`~crm_modes.serve.rest.limits.MAX_ERRORS` problems are reported, in order). A service
    whose bundle reads a bank's book takes the bank's records and maps them onto the schema's
    (:mod:`crm_modes.serve.rest.bank_records`).
    """
    record = bank.record if bank is not None else ScoringRecord
    adapter = _bank_records(record) if bank is not None else _RECORDS
    fields = len(record.model_fields)
    records = body.get("records") if isinstance(body, dict) else None
    if isinstance(records, list) and len(records) > allowed.max_records:
        raise HTTPException(
            status_code=413,
            detail=f"{len(records):,} records in one request; this service takes at most "
            f"{allowed.max_records:,}",
        )
    try:
        envelope = ScoreRequestBody.model_validate(body)
    except ValidationError as error:
        raise _invalid(error.errors(include_url=False)) from None
    problems: list[dict] = []
    validated: list[Any] = []
    for start in range(0, len(envelope.records), SLICE_RECORDS):
        part = envelope.records[start : start + SLICE_RECORDS]
        for offset, given in enumerate(part):  # more keys than fields: refused before validation
            if isinstance(given, dict) and len(given) > fields:
                unknown = [key for key in given if key not in record.model_fields][:5]
                problems.append(
                    {
                        "type": "extra_forbidden",
                        "loc": ("records", start + offset),
                        "input": unknown,
                        "msg": f"{len(given):,} fields; a record has at most {fields} (unknown: {unknown})",
                    }
                )
        if problems:
            break
        try:
            checked = adapter.validate_python(part)
        except ValidationError as error:
            for problem in error.errors(include_url=False):
                index, *rest = problem["loc"]
                problems.append({**problem, "loc": ("records", start + int(index), *rest)})
            if len(problems) >= MAX_ERRORS:
                break
            continue
        if bank is not None:
            checked, wrong = bank.to_schema(checked, first=start)
            problems += wrong
            if len(problems) >= MAX_ERRORS:
                break
        validated += checked
    if problems:
        raise _invalid(problems)
    return ScoreRequest.model_construct(records=validated)


class ScoreRequestBody(BaseModel):
    """The body around the records: checked first, cheaply (the records are checked a slice at a time)."""

    model_config = ConfigDict(extra="forbid")
    records: list[Any] = Field(min_length=1)


def _invalid(problems: list[dict]) -> RequestValidationError:
    """The problems as FastAPI's own 422 (their places under ``body``)."""
    return RequestValidationError([{**problem, "loc": ("body", *problem["loc"])} for problem in problems])


#: The request body as the OpenAPI document shows it (the schema is added by the app factory).
REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ScoreRequest"}}},
    }
}


@router.post(
    "/v1/score",
    response_model=ScoreResponse,
    responses={**ERRORS, 503: {"model": Problem}},
    dependencies=[requires(Scope.score)],
    openapi_extra=REQUEST_BODY,
)
def score(
    request: Annotated[ScoreRequest, Depends(_score_request)],
    scorer: Annotated[Batcher, Depends(batcher)],
    service: Annotated[ServedModel, Depends(served)],
    bank: Annotated[BankDialect | None, Depends(dialect)],
) -> ScoreResponse:
    """Score the records; the request keeps the model it started with even if a reload swaps it."""
    records = request.records  # type: ignore[attr-defined]
    repeated = duplicate_keys(records)
    if repeated:
        raise HTTPException(status_code=422, detail=repeated)
    model = current_model(service)  # checked after the request itself: a bad request is a 4xx first
    scores = scorer(model, records)  # with the records of requests waiting meanwhile
    unsent = [name for name in OPTIONAL_FIELDS if all(getattr(r, name) is None for r in records)]
    if unsent:  # as if scored alone: an identifier the request never sent is not answered
        scores = [{key: value for key, value in row.items() if key not in unsent} for row in scores]
    if bank is not None:
        scores = bank.named(scores)
    return ScoreResponse(model_version=model.version, scores=scores)
