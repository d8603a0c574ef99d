"""Labels from a bank's events, context derived from its panel, and its macro series, point in time.

- :func:`labels_from_events`: ``default_12m`` and ``churn_12m`` for each snapshot. An event in
  (snapshot, snapshot + horizon] sets the label; a window that runs past the last date the bank has
  observed gives a null label, never 0, even where an event was seen in it (knowing only the
  positives of those months would bias whatever is learnt or measured on them). A facility ends at
  its first default or exit: its rows on or after that date are dropped and counted. Events that
  cannot be used (a facility not in the panel, a date before its first snapshot or after the last
  observed date, a second default or exit, a date that does not parse) go to the events' quarantine
  with the reason.
- :func:`other_facilities_mode`: the highest mode among the client's other facilities at the same
  snapshot (``none`` when it has none).
- :func:`join_macro`: the value last published on or before each snapshot, and its change since the
  value published a year before; a value published after the snapshot is never used, and a month
  missing from the series is an error.

The horizon is counted in months from month-end to month-end (31 January + 12 months is
31 January; 29 February 2024 + 12 months is 28 February 2025).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crm_modes.data.book_contract import BookContract, EventsContract, MacroContract, parse_dates
from crm_modes.data.gate import REASON, SOURCE_ROW
from crm_modes.data.schema import MACRO_CHANGE_MONTHS, MODES
from crm_modes.shared.errors import InputError

_RANK = {mode: rank for rank, mode in enumerate(MODES, start=1)}


@dataclass
class Labelled:
    """A panel with its labels, and what was left out, counted."""

    rows: pd.DataFrame
    dropped_after_exit: int
    events_in: int
    events_used: int
    events_quarantine: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)


def horizon_end(snapshots: pd.Series, months: int) -> pd.Series:
    """``months`` after each snapshot, month-end to month-end."""
    month_ends = snapshots.dt.is_month_end.to_numpy()
    shifted = snapshots + pd.DateOffset(months=months)
    to_month_end = (snapshots + pd.offsets.MonthEnd(months)).where(month_ends, shifted)
    return to_month_end


def labels_from_events(rows: pd.DataFrame, events: pd.DataFrame, contract: BookContract) -> Labelled:
    """``rows`` (schema names, ``snapshot_date`` as dates) with ``default_12m`` and ``churn_12m``.

    Raises:
        InputError: the contract has no ``events`` section, or the events table lacks its columns.
    """
    if contract.events is None:
        raise InputError("the contract has no `events` section: it says which events are defaults and exits")
    spec = contract.events
    missing = [name for name in (spec.facility, spec.date, spec.type) if name not in events.columns]
    if missing:
        raise InputError(f"the events table has no column {missing} that the contract names")
    observed = pd.Timestamp(spec.observed_until) if spec.observed_until else rows["snapshot_date"].max()
    table = pd.DataFrame(
        {
            SOURCE_ROW: np.arange(1, len(events) + 1),
            "facility_id": events[spec.facility].astype("string").str.strip(),
            "date": parse_dates(events[spec.date], contract.date_format),
            "type": events[spec.type].astype("string").str.strip(),
        }
    )
    table["kind"] = np.select(
        [table["type"].isin(spec.default).fillna(False), table["type"].isin(spec.churn).fillna(False)],
        ["default", "churn"],
        default="other",
    )
    first_seen = rows.groupby("facility_id", sort=False)["snapshot_date"].min()
    reasons = _event_reasons(table, first_seen, observed, spec)
    usable = table[reasons.isna() & (table["kind"] != "other")].sort_values(
        ["facility_id", "date", SOURCE_ROW]
    )
    first = usable.drop_duplicates("facility_id", keep="first")
    later = usable.index.difference(first.index)
    reasons[later] = [
        f"a second default or exit of {facility}: its first is on {when:%Y-%m-%d}"
        for facility, when in zip(
            usable.loc[later, "facility_id"],
            first.set_index("facility_id").loc[usable.loc[later, "facility_id"], "date"],
            strict=True,
        )
    ]
    ending = first.set_index("facility_id")
    ends_on = rows["facility_id"].map(ending["date"])
    ends_as = rows["facility_id"].map(ending["kind"])
    after = (ends_on.notna() & (rows["snapshot_date"] >= ends_on)).to_numpy()
    kept = rows.loc[~after].reset_index(drop=True)
    ends_on, ends_as = ends_on[~after].reset_index(drop=True), ends_as[~after].reset_index(drop=True)
    window_end = horizon_end(kept["snapshot_date"], contract.horizon_months)
    in_window = ends_on.notna() & (ends_on > kept["snapshot_date"]) & (ends_on <= window_end)
    # A window the bank has not observed to its end is unknown, even where an event was seen in it:
    # only its positives would be known, and every rate learnt or measured on those months biased
    # (docs/decisions/021-labels-unknown-until-the-window-closes.md).
    censored = window_end > observed
    for label, kind in (("default_12m", "default"), ("churn_12m", "churn")):
        values = pd.array((in_window & (ends_as == kind)).astype(int), dtype="Int8")
        values[censored.to_numpy()] = pd.NA
        kept[label] = values
    quarantined = table.loc[reasons.notna(), [SOURCE_ROW]].copy()
    quarantine = events.loc[reasons.notna()].astype("string").reset_index(drop=True)
    quarantine.insert(0, SOURCE_ROW, quarantined[SOURCE_ROW].to_numpy())
    quarantine[REASON] = reasons[reasons.notna()].to_numpy()
    return Labelled(
        kept,
        int(after.sum()),
        len(events),
        len(first),
        quarantine,
        {"other event types": int((table["kind"] == "other").sum()), "censored windows": int(censored.sum())},
    )


def _event_reasons(
    table: pd.DataFrame, first_seen: pd.Series, observed: pd.Timestamp, spec: EventsContract
) -> pd.Series:
    reasons = pd.Series(None, index=table.index, dtype=object)
    starts = table["facility_id"].map(first_seen)
    checks = [
        (table["date"].isna(), "the date is not a date in the contract's format"),
        (table["facility_id"].isna(), "no facility"),
        (starts.isna() & table["facility_id"].notna(), "the facility is not in the panel"),
        (table["date"] < starts, "before the facility's first snapshot"),
        (table["date"] > observed, f"after the last date observed ({observed:%Y-%m-%d})"),
    ]
    for mask, reason in checks:
        flagged = mask.fillna(False).to_numpy(dtype=bool) & reasons.isna().to_numpy()
        reasons[flagged] = reason
    return reasons


def other_facilities_mode(rows: pd.DataFrame) -> pd.Series:
    """The highest mode among the client's other facilities at the same snapshot (``none``: none)."""
    rank = rows["assigned_mode"].map(_RANK).fillna(0).astype(int)
    keys = [rows["client_id"], rows["snapshot_date"]]
    top = rank.groupby(keys).transform("max")
    at_top = (rank == top).astype(int).groupby(keys).transform("sum")
    second = rank.where(rank < top, 0).groupby(keys).transform("max")
    # another facility is at the top unless this one is the only one there
    other = top.where(~((rank == top) & (at_top == 1)), second)
    names = np.array(["none", *MODES], dtype=object)
    return pd.Series(names[other.to_numpy()], index=rows.index)


def join_macro(
    rows: pd.DataFrame, macro: pd.DataFrame, spec: MacroContract, date_format: str
) -> pd.DataFrame:
    """``spec.column``, the value last published on or before each snapshot, and
    ``spec.change_column`` (unless null), that value less the one last published on or before the
    same day :data:`~crm_modes.data.schema.MACRO_CHANGE_MONTHS` months earlier.

    Raises:
        InputError: a column is missing, a month is missing from the series, a value or date does
            not parse, a snapshot has no value published before it (or, for the change, none a year
            before it: the series starts too late), or the value it would take describes a month more
            than ``spec.max_age_months`` before it (the series ends too early).
    """
    series = _macro_series(macro, spec, date_format)
    snapshots = pd.Series(rows["snapshot_date"].to_numpy())
    level = _published_on(series, snapshots, spec)
    joined = {spec.column: level}
    if spec.change_column is not None:
        before = snapshots - pd.DateOffset(months=MACRO_CHANGE_MONTHS)
        unknown = before < series["published"].min()
        if unknown.any():
            first = snapshots[unknown].min()
            raise InputError(
                f"the macro series starts too late for {spec.change_column}: the snapshot {first:%Y-%m-%d} "
                f"needs {spec.column} as published {MACRO_CHANGE_MONTHS} months before it; add the "
                "earlier months, or set the contract's macro.change_column to null"
            )
        joined[spec.change_column] = level - _published_on(series, before, spec)
    return pd.DataFrame(joined, index=rows.index)


def _macro_series(macro: pd.DataFrame, spec: MacroContract, date_format: str) -> pd.DataFrame:
    """The series as (published, period, value), by publication date, checked for gaps."""
    missing = [name for name in (spec.period, spec.value, spec.published) if name not in macro.columns]
    if missing:
        raise InputError(f"the macro series has no column {missing}")
    period = pd.to_datetime(macro[spec.period].astype("string").str.strip(), format="%Y-%m", errors="coerce")
    period = period.fillna(parse_dates(macro[spec.period], date_format)).dt.to_period("M")
    published = parse_dates(macro[spec.published], date_format)
    value = pd.to_numeric(macro[spec.value], errors="coerce")
    broken = period.isna() | published.isna() | value.isna()
    if broken.any():
        row = int(np.flatnonzero(broken.to_numpy())[0])
        raise InputError(f"the macro series' row {row} does not parse: {macro.iloc[row].to_dict()}")
    months = pd.period_range(period.min(), period.max(), freq="M")
    gaps = months.difference(pd.PeriodIndex(period.unique()))
    if len(gaps):
        raise InputError(
            f"the macro series misses {[str(month) for month in gaps[:5]]}: a gap is never filled by guess"
        )
    series = pd.DataFrame({"published": published, "period": period, "value": value}).sort_values(
        ["published", "period"]
    )
    return series.drop_duplicates("published", keep="last")


def _published_on(series: pd.DataFrame, dates: pd.Series, spec: MacroContract) -> np.ndarray:
    """The value last published on or before each date, not older than ``spec.max_age_months``."""
    order = np.argsort(dates.to_numpy(), kind="stable")
    left = pd.DataFrame({"snapshot_date": dates.to_numpy()[order], "position": order})
    joined = pd.merge_asof(left, series, left_on="snapshot_date", right_on="published", direction="backward")
    if joined["value"].isna().any():
        first = joined.loc[joined["value"].isna(), "snapshot_date"].iloc[0]
        raise InputError(f"no {spec.column} was published on or before the snapshot {first:%Y-%m-%d}")
    age = joined["snapshot_date"].dt.to_period("M").astype("int64") - joined["period"].astype("int64")
    stale = age > spec.max_age_months
    if stale.any():
        first = joined.loc[stale].iloc[-1]
        raise InputError(
            f"the macro series ends too early: the snapshot {first['snapshot_date']:%Y-%m-%d} would take "
            f"{spec.column} of {first['period']}, {int(age[stale].iloc[-1])} months old (at most "
            f"{spec.max_age_months}); add the months published since"
        )
    values = np.empty(len(dates))
    values[joined["position"].to_numpy()] = joined["value"].to_numpy()
    return values
