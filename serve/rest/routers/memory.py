"""The state store over REST: a facility's history, the alerts, and acknowledging one."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from crm_modes.serve.rest.auth import token_required
from crm_modes.serve.rest.dependencies import store
from crm_modes.serve.rest.limits import ADMIN_ERRORS, IDENTIFIER_LENGTH, Problem, excerpt
from crm_modes.serve.rest.strict_json import StrictJSONRoute
from crm_modes.shared.errors import InputError
from crm_modes.state import queries

router = APIRouter(route_class=StrictJSONRoute)  # every body parsed strictly

AlertStatus = Literal[queries.STATUSES]  # type: ignore[valid-type]


class Acknowledgement(BaseModel):
    """Who acknowledges an alert, and why."""

    model_config = ConfigDict(extra="forbid")
    by: str = Field(min_length=1, max_length=200)
    note: str | None = Field(default=None, max_length=2_000)


@router.get("/v1/facilities/{facility_id}/history", responses={404: {"model": Problem}})
def facility_history(
    facility_id: Annotated[str, Path(min_length=1, max_length=IDENTIFIER_LENGTH)],
    engine: Annotated[Engine, Depends(store)],
) -> dict:
    found = queries.history(engine, facility_id)
    if found is None:
        raise HTTPException(
            status_code=404, detail=f"facility {excerpt(facility_id, 64)!r} was never recorded"
        )
    return found


@router.get("/v1/alerts", responses={422: {"model": Problem}})
def list_alerts(
    engine: Annotated[Engine, Depends(store)],
    status: Annotated[AlertStatus | None, Query()] = "open",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1_000,
) -> dict:
    return {"alerts": queries.list_alerts(engine, status=status, limit=limit)}


@router.post(
    "/v1/alerts/{alert_id}/ack",
    responses={**ADMIN_ERRORS, 404: {"model": Problem}},
    dependencies=[Depends(token_required("acknowledging"))],
)
def acknowledge(
    alert_id: Annotated[int, Path(ge=1, le=2**62)],
    body: Acknowledgement,
    engine: Annotated[Engine, Depends(store)],
) -> dict:
    try:
        return queries.acknowledge(engine, alert_id, by=body.by, note=body.note)
    except queries.UnknownAlertError:
        raise HTTPException(status_code=404, detail=f"no alert {alert_id}") from None
    except InputError as error:
        raise HTTPException(status_code=409, detail=str(error)) from None
