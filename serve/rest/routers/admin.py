"""The service itself: health, readiness, the version it serves, and hot reload."""

from __future__ import annotations

import logging
import os
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.concurrency import run_in_threadpool

from crm_modes.serve.rest.access import Scope, requires
from crm_modes.serve.rest.dependencies import live_model, served
from crm_modes.serve.rest.limits import ADMIN_ERRORS, Problem, excerpt
from crm_modes.serve.rest.served_model import ServedModel
from crm_modes.serve.rest.strict_json import SmallJSONRoute
from crm_modes.shared.model_loading import LoadedModel

log = logging.getLogger(__name__)
router = APIRouter(route_class=SmallJSONRoute)  # every body parsed strictly, and small


@router.get("/health", dependencies=[requires(None)])
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", responses={503: {"model": Problem}}, dependencies=[requires(None)])
def ready(model: Annotated[LoadedModel, Depends(live_model)]) -> dict[str, str]:
    return {"status": "ready", "model_version": model.version}


@router.get("/version", responses={503: {"model": Problem}}, dependencies=[requires(None)])
def version(
    model: Annotated[LoadedModel, Depends(live_model)], service: Annotated[ServedModel, Depends(served)]
) -> dict[str, str]:
    return {
        "model_uri": service.uri,
        "model_version": model.version,
        "pinned_uri": model.uri,
        "worker": str(os.getpid()),
    }


@router.post("/admin/reload", responses=ADMIN_ERRORS, dependencies=[requires(Scope.admin)])
async def reload(service: Annotated[ServedModel, Depends(served)]) -> dict[str, str]:
    """Load the current version of the configured URI and swap it in; requests in flight finish on
    the model they started with, and none is dropped. A reload while one runs is a 409; a reload
    that fails (say, files that do not match their digests) a 503, the old model still serving."""
    if not service.reload_lock.acquire(blocking=False):
        raise HTTPException(status_code=409, detail="a reload is already in progress")
    before = service.model.version if service.model else "none"
    try:
        fresh = await run_in_threadpool(service.load_locked)
    except Exception as error:
        log.exception("reload of %s failed; still serving %s", service.uri, before)
        raise HTTPException(
            status_code=503,
            detail=f"reload of {service.uri} failed, still serving {before}: "
            f"{type(error).__name__}: {excerpt(str(error), 300)}",
        ) from None
    finally:
        service.reload_lock.release()
    return {"previous_version": before, "model_version": fresh.version}
