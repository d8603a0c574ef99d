"""The service's application factory: middleware, strict JSON, the routers, and what they share.

The model is loaded once at start (``pinned``: a version chosen by the caller, as every worker of
a multi-worker service is started with the same one); the state store is opened on first use.
``crm-modes serve --workers N`` configures each worker through :data:`SERVICE_VARIABLE`
(:func:`app_from_environment`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from crm_modes.models.bundle_book import bank_input
from crm_modes.serve.rest.access import Gatekeeper
from crm_modes.serve.rest.bank_records import BankDialect
from crm_modes.serve.rest.batcher import Batcher
from crm_modes.serve.rest.dependencies import StateStore
from crm_modes.serve.rest.limits import Limits, problem_list
from crm_modes.serve.rest.middleware import BodyLimit, CatchAll, HeadAsGet
from crm_modes.serve.rest.records import ScoreRequest, json_rows, records_frame
from crm_modes.serve.rest.routers import admin, memory, scoring
from crm_modes.serve.rest.served_model import ServedModel
from crm_modes.serve.rest.strict_json import StrictJSONRoute
from crm_modes.shared.errors import InputError

#: Every router of the service (a test checks that each of their routes declares its access).
ROUTERS = (admin.router, scoring.router, memory.router)

#: The environment variable through which ``crm-modes serve --workers N`` configures each worker.
SERVICE_VARIABLE = "CRM_MODES_SERVICE"


async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    return JSONResponse(problem_list(list(error.errors())), status_code=422)


def create_app(
    model_uri: str,
    *,
    load_at_start: bool = True,
    limits: Limits | None = None,
    state: str | None = None,
    shared: Path | None = None,
    pinned: str | None = None,
    access: Gatekeeper | None = None,
    macro: str | None = None,
) -> FastAPI:
    """The service for ``model_uri`` (e.g. ``models:/crm-advisor@champion``).

    ``state`` is the state store's URL (see :func:`crm_modes.state.store.state_url`) for the
    history and alert endpoints. ``shared`` is the reload announcement file of a service with
    several workers (:mod:`crm_modes.serve.rest.served_model`); ``pinned`` the version to load at
    start (default: the current version of ``model_uri``). ``access``: who may call which route
    (default: an open service, as on the loopback without credentials). A bundle trained on a
    bank's book takes the bank's records (:mod:`crm_modes.serve.rest.bank_records`), with the
    macro series at ``macro`` where its contract joins one; every later version the service
    loads must read the same book.
    """
    limits = limits or Limits()
    app = FastAPI(title="crm-modes advisor", version="1")
    app.router.route_class = StrictJSONRoute
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_middleware(BodyLimit, limit=limits.body_bytes)
    app.add_middleware(HeadAsGet)
    app.add_middleware(CatchAll)  # added last, so outermost: it sees every failure
    app.state.served = ServedModel(model_uri, shared=shared)
    app.state.batcher = Batcher(lambda model, records: json_rows(model.predict(records_frame(records))))
    app.state.limits = limits
    app.state.store = StateStore(state)
    app.state.access = access or Gatekeeper(None)
    app.state.dialect = None
    if load_at_start:
        loaded = app.state.served.load(pinned)
        bank = bank_input(loaded.path, macro)
        if bank is not None:
            app.state.dialect = BankDialect.of(bank.contract, bank.macro)
            app.state.served.contract = bank.contract  # a reload must keep to it
    elif macro is not None:
        raise InputError("a macro series is for a bundle trained on a bank's book, loaded at start")
    _document_the_score_request(app)
    return app


def _document_the_score_request(app: FastAPI) -> None:
    """Put the scoring request's schema in the OpenAPI document (the route validates it itself, in
    the thread pool; see :mod:`crm_modes.serve.rest.routers.scoring`)."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            document = generate()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            dialect = app.state.dialect
            model = dialect.request if dialect is not None else ScoreRequest
            request = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(request.pop("$defs", {}))
            schemas["ScoreRequest"] = request
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


@dataclass(frozen=True)
class ServiceSettings:
    """What every worker of one service is started with (passed as JSON in the environment)."""

    model_uri: str
    pinned_uri: str
    limits: Limits
    state: str | None
    shared: str
    threads: int
    credentials: str | None = None
    macro: str | None = None

    def to_environment(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_environment(cls) -> ServiceSettings:
        settings = json.loads(os.environ[SERVICE_VARIABLE])
        return cls(**{**settings, "limits": Limits(**settings["limits"])})


def app_from_environment() -> FastAPI:
    """One worker's service, configured by ``crm-modes serve`` (an application factory for uvicorn)."""
    from crm_modes.shared.threads import configure_threads

    settings = ServiceSettings.from_environment()
    configure_threads(settings.threads)
    return create_app(
        settings.model_uri,
        limits=settings.limits,
        state=settings.state,
        shared=Path(settings.shared),
        pinned=settings.pinned_uri,
        access=Gatekeeper.from_file(settings.credentials),
        macro=settings.macro,
    )
