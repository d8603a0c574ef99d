"""Reading the state store: alerts, acknowledgements and a facility's history."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, func, select, update

from crm_modes.shared.errors import InputError
from crm_modes.state import lifecycle
from crm_modes.state.tables import access_log, alert_events, alerts, decisions

#: ``status`` filters: ``open`` means any status but resolved.
STATUSES = ("open", *lifecycle.OPEN, lifecycle.RESOLVED)


class UnknownAlertError(InputError):
    """No alert has the id asked for."""


def list_alerts(engine: Engine, status: str | None = None, limit: int | None = None) -> list[dict]:
    """Alerts, newest first, filtered by ``status`` (see :data:`STATUSES`)."""
    if status is not None and status not in STATUSES:
        raise InputError(f"status must be one of {list(STATUSES)}, got {status!r}")
    query = select(alerts).order_by(alerts.c.last_seen.desc(), alerts.c.id.desc())
    if status == "open":
        query = query.where(alerts.c.status != lifecycle.RESOLVED)
    elif status is not None:
        query = query.where(alerts.c.status == status)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def acknowledge(engine: Engine, alert_id: int, *, by: str, note: str | None = None) -> dict:
    """Mark an open alert acknowledged (who, when, why); recorded as an event too.

    Raises:
        UnknownAlertError: no such alert.
        InputError: the alert is resolved, or ``by`` is empty.
    """
    if not by.strip():
        raise InputError("say who acknowledges the alert (--by NAME)")
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as connection:
        row = (
            connection.execute(select(alerts).where(alerts.c.id == alert_id).with_for_update())
            .mappings()
            .first()
        )
        if row is None:
            raise UnknownAlertError(f"no alert {alert_id}")
        if row["status"] == lifecycle.RESOLVED:
            raise InputError(f"alert {alert_id} was resolved on {row['resolved_on']}; nothing to acknowledge")
        connection.execute(
            update(alerts)
            .where(alerts.c.id == alert_id)
            .values(status=lifecycle.ACKNOWLEDGED, acknowledged_by=by, acknowledged_at=now, note=note)
        )
        connection.execute(
            alert_events.insert().values(
                alert_id=alert_id,
                facility_id=row["facility_id"],
                event=lifecycle.ACKNOWLEDGED,
                code=row["code"],
                notified=False,
                at=now,
                by=by,
                note=note,
            )
        )
        return dict(connection.execute(select(alerts).where(alerts.c.id == alert_id)).mappings().one())


def history(engine: Engine, facility_id: str) -> dict | None:
    """A facility's decisions, alerts and alert events over time; None when it was never recorded."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(decisions)
            .where(decisions.c.facility_id == facility_id)
            .order_by(decisions.c.snapshot_date)
        ).mappings()
        found = [dict(row) for row in rows]
        if not found:
            return None
        its_alerts = connection.execute(
            select(alerts)
            .where(alerts.c.facility_id == facility_id)
            .order_by(alerts.c.first_seen, alerts.c.id)
        ).mappings()
        events = connection.execute(
            select(alert_events)
            .where(alert_events.c.facility_id == facility_id)
            .order_by(alert_events.c.at, alert_events.c.id)
        ).mappings()
        return {
            "facility_id": facility_id,
            "decisions": found,
            "alerts": [dict(row) for row in its_alerts],
            "alert_events": [dict(row) for row in events],
        }


def log_access(engine: Engine, holder: str, action: str, subject: str, rows: int) -> None:
    """Write one read of client data to the access log: who, what, how many rows, when."""
    with engine.begin() as connection:
        connection.execute(
            access_log.insert().values(
                at=dt.datetime.now(dt.UTC), holder=holder, action=action, subject=subject[:200], rows=rows
            )
        )


def access_entries(engine: Engine, *, holder: str | None = None, limit: int | None = None) -> list[dict]:
    """The access log, newest first (optionally one holder's reads only)."""
    query = select(access_log).order_by(access_log.c.at.desc(), access_log.c.id.desc())
    if holder is not None:
        query = query.where(access_log.c.holder == holder)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def previous_default_probabilities(engine: Engine, snapshot: dt.date) -> dict[str, float]:
    """Each facility's PD at the latest snapshot recorded before ``snapshot`` (for ``PD_RISE``)."""
    with engine.connect() as connection:
        before = connection.execute(
            select(func.max(decisions.c.snapshot_date)).where(decisions.c.snapshot_date < snapshot)
        ).scalar_one()
        if before is None:
            return {}
        rows = connection.execute(
            select(decisions.c.facility_id, decisions.c.default_probability).where(
                decisions.c.snapshot_date == before
            )
        )
        return {facility: float(pd) for facility, pd in rows if pd is not None}
