"""Monitoring runs remembered: the book's levels each run saw, read back by the next run.

``crm-modes monitor --state URL`` records the figures of every run (the report's
``portfolio.current``: rows, snapshot, mean PD and churn, expected defaults, grade and tail
shares) and compares the next run of the same model version with the latest one, so a level that
moves month on month is seen even when it stays near the reference.
"""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import Engine, select

from crm_modes.state.tables import monitoring_runs


def remember(engine: Engine, model_version: str, status: str, figures: dict) -> None:
    """Record one run's figures (JSON-safe) under its model version and snapshot."""
    snapshot = figures.get("snapshot")
    with engine.begin() as connection:
        connection.execute(
            monitoring_runs.insert().values(
                model_version=model_version,
                snapshot_date=dt.date.fromisoformat(snapshot) if snapshot else None,
                status=status,
                figures=json.dumps(figures),
                at=dt.datetime.now(dt.UTC),
            )
        )


def latest(engine: Engine, model_version: str) -> dict | None:
    """The figures of the latest run of ``model_version`` (None when there is none).

    The latest, whatever its snapshot: a book of the same snapshot again is then seen for what it
    most likely is, last month's file again.
    """
    query = (
        select(monitoring_runs.c.figures)
        .where(monitoring_runs.c.model_version == model_version)
        .order_by(monitoring_runs.c.id.desc())
        .limit(1)
    )
    with engine.connect() as connection:
        found = connection.execute(query).scalar_one_or_none()
    return json.loads(found) if found is not None else None
