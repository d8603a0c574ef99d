"""``POST /v1/score``: records in, one row of advice per record out, with the model version."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException

from crm_modes.serve.rest.batcher import Batcher
from crm_modes.serve.rest.dependencies import batcher, current_model, limits, served
from crm_modes.serve.rest.limits import ERRORS, Limits, Problem
from crm_modes.serve.rest.records import OPTIONAL_FIELDS, ScoreRequest, ScoreResponse, duplicate_keys
from crm_modes.serve.rest.served_model import ServedModel
from crm_modes.serve.rest.strict_json import StrictJSONRoute

router = APIRouter(route_class=StrictJSONRoute)  # every body parsed strictly


@router.post("/v1/score", response_model=ScoreResponse, responses={**ERRORS, 503: {"model": Problem}})
def score(
    request: ScoreRequest,
    allowed: Annotated[Limits, Depends(limits)],
    scorer: Annotated[Batcher, Depends(batcher)],
    service: Annotated[ServedModel, Depends(served)],
) -> ScoreResponse:
    """Score the records; the request keeps the model it started with even if a reload swaps it."""
    records = request.records  # type: ignore[attr-defined]
    if len(records) > allowed.max_records:
        raise HTTPException(
            status_code=413,
            detail=f"{len(records):,} records in one request; this service takes at most "
            f"{allowed.max_records:,}",
        )
    repeated = duplicate_keys(records)
    if repeated:
        raise HTTPException(status_code=422, detail=repeated)
    model = current_model(service)  # checked after the request itself: a bad request is a 4xx first
    scores = scorer(model, records)  # with the records of requests waiting meanwhile
    unsent = [name for name in OPTIONAL_FIELDS if all(getattr(r, name) is None for r in records)]
    if unsent:  # as if scored alone: an identifier the request never sent is not answered
        scores = [{key: value for key, value in row.items() if key not in unsent} for row in scores]
    return ScoreResponse(model_version=model.version, scores=scores)
