"""The alert lifecycle: one open alert per facility and topic, and when it is worth a notification.

Pure functions, no database: :func:`step` takes an open alert (or none), what one scored
snapshot says about its topic, and the topic's policy (``notifications`` in
``configs/alert_policy.yaml``), and returns the alert after that snapshot, what happened to
it and whether the relationship manager hears about it.

==============  ===================================================  ========
what happened   when                                                 notifies
==============  ===================================================  ========
``new``         a code of the topic fires and no alert is open       yes
``escalated``   a more severe code of the topic than the open one    yes
``ongoing``     the topic still fires (same or less severe code)     after the cooldown
``cleared``     the topic does not fire, fewer snapshots than needed  no
``resolved``    it did not fire for ``resolve_after`` snapshots       no
==============  ===================================================  ========

An acknowledged alert keeps the status ``acknowledged`` while it goes on, and is not
notified again until it escalates.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from crm_modes.models.alerts import Topic
from crm_modes.shared.errors import InputError

NEW, ONGOING, ESCALATED, RESOLVED, ACKNOWLEDGED = "new", "ongoing", "escalated", "resolved", "acknowledged"
CLEARED = "cleared"
#: Statuses of an alert that is still open.
OPEN = (NEW, ONGOING, ESCALATED, ACKNOWLEDGED)
#: Row summary: the most telling thing that happened to any of a facility's alerts, first.
RANK = (ESCALATED, NEW, ONGOING, ACKNOWLEDGED, CLEARED, RESOLVED)


@dataclass(frozen=True)
class Alert:
    """An alert's state; ``clear_streak`` counts consecutive snapshots without its topic."""

    code: str
    status: str
    first_seen: dt.date
    last_seen: dt.date
    last_notified: dt.date | None
    clear_streak: int = 0


def months_between(earlier: dt.date, later: dt.date) -> int:
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def step(
    alert: Alert | None, code: str | None, topic: Topic, snapshot: dt.date
) -> tuple[Alert | None, str, bool]:
    """The alert after ``snapshot``, what happened to it and whether to notify.

    ``code`` is the most severe code of the topic that fired on the snapshot (None: none
    did). Returns ``(None, "", False)`` when there was no alert and nothing fired.
    """
    if alert is None:
        if code is None:
            return None, "", False
        return Alert(code, NEW, snapshot, snapshot, snapshot), NEW, True
    if code is None:
        streak = alert.clear_streak + 1
        if streak >= topic.resolve_after:
            return replace(alert, status=RESOLVED, clear_streak=streak), RESOLVED, False
        return replace(alert, clear_streak=streak), CLEARED, False
    if topic.codes.index(code) > topic.codes.index(alert.code):
        return (
            replace(
                alert, code=code, status=ESCALATED, last_seen=snapshot, last_notified=snapshot, clear_streak=0
            ),
            ESCALATED,
            True,
        )
    status = ACKNOWLEDGED if alert.status == ACKNOWLEDGED else ONGOING
    due = (
        status != ACKNOWLEDGED
        and alert.last_notified is not None
        and months_between(alert.last_notified, snapshot) >= topic.cooldown_months
    )
    updated = replace(
        alert,
        code=code,
        status=status,
        last_seen=snapshot,
        last_notified=snapshot if due else alert.last_notified,
        clear_streak=0,
    )
    return updated, status, due


def topic_codes(codes: str, topics: dict[str, Topic]) -> dict[str, str]:
    """Topic -> its most severe code among a row's comma-joined ``codes``."""
    found: dict[str, str] = {}
    of_code = {code: name for name, topic in topics.items() for code in topic.codes}
    for code in filter(None, codes.split(",")):
        name = of_code.get(code)
        if name is None:
            raise InputError(f"alert code {code!r} is in no notification topic of the policy")
        if name not in found or topics[name].codes.index(code) > topics[name].codes.index(found[name]):
            found[name] = code
    return found


def summary(events: list[str]) -> str:
    """The row's ``alert_status``: its most telling event, or ``none``."""
    return min(events, key=RANK.index) if events else "none"
