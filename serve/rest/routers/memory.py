"""The state store over REST: a facility's history, the alerts, and acknowledging one.

Histories and alerts are client data: each read is written to the state store's access log (who,
what, how many rows, when) before the answer leaves.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from crm_modes.serve.rest.access import Principal, Scope, requires
from crm_modes.serve.rest.dependencies import store
from crm_modes.serve.rest.limits import ADMIN_ERRORS, IDENTIFIER_LENGTH, Problem, excerpt
from crm_modes.serve.rest.strict_json import SmallJSONRoute
from crm_modes.shared.errors import InputError
from crm_modes.shared.text import storable
from crm_modes.state import queries

router = APIRouter(route_class=SmallJSONRoute)  # every body parsed strictly, and small

AlertStatus = Literal[queries.STATUSES]  # type: ignore[valid-type]
FacilityId = Annotated[str, Path(min_length=1, max_length=IDENTIFIER_LENGTH), AfterValidator(storable)]


class Acknowledgement(BaseModel):
    """Why an alert is acknowledged; who acknowledges it is the credential's holder."""

    model_config = ConfigDict(extra="forbid")
    note: Annotated[str | None, Field(default=None, max_length=2_000), AfterValidator(storable)]


@router.get(
    "/v1/facilities/{facility_id}/history",
    responses={**ADMIN_ERRORS, 404: {"model": Problem}},
)
def facility_history(
    principal: Annotated[Principal, requires(Scope.read)],
    facility_id: FacilityId,
    engine: Annotated[Engine, Depends(store)],
) -> dict:
    found = queries.history(engine, facility_id)
    rows = 0 if found is None else len(found["decisions"]) + len(found["alerts"]) + len(found["alert_events"])
    queries.log_access(engine, principal.holder, "history", facility_id, rows)
    if found is None:
        raise HTTPException(
            status_code=404, detail=f"facility {excerpt(facility_id, 64)!r} was never recorded"
        )
    return found


@router.get("/v1/alerts", responses={**ADMIN_ERRORS, 422: {"model": Problem}})
def list_alerts(
    principal: Annotated[Principal, requires(Scope.read)],
    engine: Annotated[Engine, Depends(store)],
    status: Annotated[AlertStatus | None, Query()] = "open",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1_000,
) -> dict:
    found = queries.list_alerts(engine, status=status, limit=limit)
    queries.log_access(engine, principal.holder, "alerts", f"status={status} limit={limit}", len(found))
    return {"alerts": found}


@router.post("/v1/alerts/{alert_id}/ack", responses={**ADMIN_ERRORS, 404: {"model": Problem}})
def acknowledge(
    principal: Annotated[Principal, requires(Scope.acknowledge)],
    alert_id: Annotated[int, Path(ge=1, le=2**62)],
    body: Acknowledgement,
    engine: Annotated[Engine, Depends(store)],
) -> dict:
    try:
        return queries.acknowledge(engine, alert_id, by=principal.holder, note=body.note)
    except queries.UnknownAlertError:
        raise HTTPException(status_code=404, detail=f"no alert {alert_id}") from None
    except InputError as error:
        raise HTTPException(status_code=409, detail=str(error)) from None
