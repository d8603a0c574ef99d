"""The alert lifecycle applied to the store: every open alert of a chunk's facilities moved one
snapshot on (:func:`crm_modes.state.lifecycle.step`), alerts and their events written in bulk."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy import Connection, bindparam, case, update

from crm_modes.state import claims, lifecycle
from crm_modes.state.tables import alert_events, alerts
from crm_modes.state.writing import bulk_insert

if TYPE_CHECKING:
    from crm_modes.state.record import RecordReport


def apply_lifecycle(
    connection: Connection,
    rows: pd.DataFrame,
    snapshot: dt.date,
    topics: dict,
    open_alerts: dict,
    by_facility: dict[str, list[str]],
    report: RecordReport,
) -> None:
    """Move every alert of the chunk's facilities one snapshot on; write alerts and events in bulk.

    ``open_alerts`` ((facility, topic) -> stored row) and ``by_facility`` (facility -> its open
    topics) are the open alerts before this chunk; ``report`` counts the events and notifications.
    """
    now = claims.now()
    inserts, updates, events = [], [], []
    for facility, codes in zip(rows["facility_id"], rows["alert_codes"], strict=True):
        fired = lifecycle.topic_codes(codes, topics)
        moving = {*fired, *by_facility.get(facility, ())}
        for topic in (name for name in topics if name in moving):  # the policy's order: same ids every run
            stored = open_alerts.get((facility, topic))
            before = (
                None
                if stored is None
                else lifecycle.Alert(
                    stored.code,
                    stored.status,
                    stored.first_seen,
                    stored.last_seen,
                    stored.last_notified,
                    stored.clear_streak,
                )
            )
            after, event, notify = lifecycle.step(before, fired.get(topic), topics[topic], snapshot)
            if not event:
                continue
            report.events[event] = report.events.get(event, 0) + 1
            report.notifications += int(notify)
            change = {
                "facility_id": facility,
                "topic": topic,
                "code": after.code,
                "status": after.status,
                "first_seen": after.first_seen,
                "last_seen": after.last_seen,
                "last_notified": after.last_notified,
                "clear_streak": after.clear_streak,
                "resolved_on": snapshot if after.status == lifecycle.RESOLVED else None,
            }
            record = {
                "facility_id": facility,
                "snapshot_date": snapshot,
                "event": event,
                "code": after.code,
                "notified": notify,
                "at": now,
            }
            if stored is None:
                inserts.append((change, record))
            else:
                updates.append({**{f"new_{k}": v for k, v in change.items()}, "alert": stored.id})
                events.append({**record, "alert_id": stored.id})
    if inserts:
        ids = (
            connection.execute(
                alerts.insert().returning(alerts.c.id, sort_by_parameter_order=True), [c for c, _ in inserts]
            )
            .scalars()
            .all()
        )
        events.extend(
            {**record, "alert_id": alert_id} for (_, record), alert_id in zip(inserts, ids, strict=True)
        )
    if updates:
        keep_ack = case(
            (alerts.c.status == lifecycle.ACKNOWLEDGED, bindparam("new_status_if_ack")),
            else_=bindparam("new_status"),
        )
        for change in updates:
            change["new_status_if_ack"] = (
                lifecycle.ACKNOWLEDGED if change["new_status"] == lifecycle.ONGOING else change["new_status"]
            )
        connection.execute(
            update(alerts)
            .where(alerts.c.id == bindparam("alert"))
            .values(
                code=bindparam("new_code"),
                status=keep_ack,
                last_seen=bindparam("new_last_seen"),
                last_notified=bindparam("new_last_notified"),
                clear_streak=bindparam("new_clear_streak"),
                resolved_on=bindparam("new_resolved_on"),
            ),
            updates,
        )
    if events:
        columns = ["alert_id", "facility_id", "snapshot_date", "event", "code", "notified", "at"]
        bulk_insert(connection, alert_events, columns, ([event[c] for c in columns] for event in events))
