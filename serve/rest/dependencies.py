"""What a route needs from the running service, as FastAPI dependencies: the live model, the state
store, the limits and the batcher, all kept on the application's state by the factory."""

from __future__ import annotations

import functools

from fastapi import HTTPException, Request
from sqlalchemy import Engine

from crm_modes.serve.rest.bank_records import BankDialect
from crm_modes.serve.rest.batcher import Batcher
from crm_modes.serve.rest.limits import Limits, excerpt
from crm_modes.serve.rest.served_model import ServedModel
from crm_modes.shared.model_loading import LoadedModel


class StateStore:
    """The state store, opened on first use: a service that never reads it creates no database."""

    def __init__(self, url: str | None) -> None:
        self.url = url

    @functools.cached_property
    def engine(self) -> Engine:
        from crm_modes.state.store import connect

        return connect(self.url)


def served(request: Request) -> ServedModel:
    return request.app.state.served


def current_model(service: ServedModel) -> LoadedModel:
    """The model that answers now (another worker may have reloaded; 503 before any load)."""
    service.follow()
    model = service.model
    if model is None:
        raise HTTPException(status_code=503, detail="model not loaded yet")
    return model


def live_model(request: Request) -> LoadedModel:
    """:func:`current_model` as a dependency: the model that answers this request."""
    return current_model(served(request))


def store(request: Request) -> Engine:
    """The state store's engine; an unreachable or unusable store is the service's problem, a 503."""
    try:
        return request.app.state.store.engine
    except ValueError as error:
        raise HTTPException(
            status_code=503, detail=f"state store unavailable: {excerpt(str(error), 300)}"
        ) from None


def limits(request: Request) -> Limits:
    return request.app.state.limits


def batcher(request: Request) -> Batcher:
    return request.app.state.batcher


def dialect(request: Request) -> BankDialect | None:
    """How the service takes records: a bank's (its bundle reads a bank's book), or the schema's."""
    return request.app.state.dialect
