"""Contract mapping and label building for a bank's panel of 1,000,000 snapshots and 100,000 events.

Run: ``.venv/bin/python benchmarks/bench_bank_book.py [--rows 1000000 --events 100000]``. A panel
and an events table are made as a bank's CSV export reads (text in every cell: the keys, dates
written ``31.12.2024``, modes and segments as codes, money in currency units), then timed through
:func:`~crm_modes.data.book_contract.map_panel`, :func:`~crm_modes.data.book_labels.labels_from_events`
and :func:`~crm_modes.data.book_labels.other_facilities_mode`, in a fresh process whose peak
resident memory is read from the kernel. Targets: at most 15 s and 2 GiB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import save

CONTRACT = {
    "columns": {
        "client_id": "CUST_ID",
        "facility_id": "FACILITY_NO",
        "snapshot_date": "AS_OF",
        "assigned_mode": "SERVICE_MODE",
        "segment": "SEGMENT_CD",
        "exposure": "EXPOSURE_AMT",
        "facility_amount": "LIMIT_AMT",
        "margin_bps": "MARGIN_BPS",
        "collateral_coverage": "COLL_COVER",
        "days_past_due": "DAYS_PAST_DUE",
    },
    "codes": {
        "assigned_mode": {"B": "basic", "R": "reactive", "P": "responsible"},
        "segment": {"S": "sme", "M": "mid_corporate", "L": "large_corporate", "X": "multinational"},
    },
    "date_format": "%d.%m.%Y",
    "units": {"money": "units"},
    "events": {
        "facility": "FACILITY_NO",
        "date": "EVENT_DATE",
        "type": "EVENT_TYPE",
        "default": ["DPD90", "WRITE_OFF"],
        "churn": ["CLOSED"],
    },
}


def export(rows: int, events: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A panel of ``rows`` snapshots (24 months per facility) and ``events`` events, all text."""
    rng = np.random.default_rng(seed)
    months = 24
    facilities = -(-rows // months)
    rows = facilities * months  # whole facilities: at least the rows asked for
    facility = np.repeat(np.arange(facilities), months)
    month_ends = pd.date_range("2023-01-31", periods=months, freq="ME").strftime("%d.%m.%Y").to_numpy()
    ids = np.array([f"F{i:08d}" for i in range(facilities)], dtype=object)
    clients = np.array([f"C{i:08d}" for i in range(facilities)], dtype=object)[
        rng.integers(0, facilities * 2 // 3, facilities)
    ]
    panel = pd.DataFrame(
        {
            "CUST_ID": clients[facility],
            "FACILITY_NO": ids[facility],
            "AS_OF": np.tile(month_ends, facilities),
            "SERVICE_MODE": np.array(["B", "R", "P"], dtype=object)[rng.integers(0, 3, rows)],
            "SEGMENT_CD": np.array(["S", "M", "L", "X"], dtype=object)[rng.integers(0, 4, rows)],
            "EXPOSURE_AMT": (rng.gamma(2.0, 5e6, rows)).round(2).astype(str),
            "LIMIT_AMT": (rng.gamma(2.0, 8e6, rows)).round(2).astype(str),
            "MARGIN_BPS": rng.integers(50, 600, rows).astype(str),
            "COLL_COVER": rng.uniform(0, 2, rows).round(3).astype(str),
            "DAYS_PAST_DUE": rng.integers(0, 40, rows).astype(str),
        }
    )
    chosen = rng.choice(facilities, size=events, replace=events > facilities)
    at = pd.Timestamp("2023-01-31") + pd.to_timedelta(rng.integers(30, 700, events), unit="D")
    table = pd.DataFrame(
        {
            "FACILITY_NO": ids[chosen],
            "EVENT_DATE": at.strftime("%d.%m.%Y"),
            "EVENT_TYPE": np.array(["DPD90", "WRITE_OFF", "CLOSED", "LIMIT_CHANGE"], dtype=object)[
                rng.integers(0, 4, events)
            ],
        }
    )
    return panel, table


def measure(rows: int, events: int) -> dict:
    """Build the export, then time the mapping and labels (run in a fresh process)."""
    from crm_modes.data.book_contract import BookContract, map_panel
    from crm_modes.data.book_labels import labels_from_events, other_facilities_mode

    contract = BookContract.model_validate(CONTRACT)
    panel, table = export(rows, events)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    mapped = map_panel(panel, contract)
    mapped_at = time.perf_counter()
    labelled = labels_from_events(mapped.rows, table, contract)
    labelled_at = time.perf_counter()
    labelled.rows["other_facilities_mode"] = other_facilities_mode(labelled.rows)
    done = time.perf_counter()
    return {
        "rows": rows,
        "events": events,
        "seconds": round(done - started, 2),
        "map_seconds": round(mapped_at - started, 2),
        "label_seconds": round(labelled_at - mapped_at, 2),
        "context_seconds": round(done - labelled_at, 2),
        "peak_memory_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "memory_before_mib": round(before, 1),
        "rows_labelled": len(labelled.rows),
        "rows_quarantined": len(mapped.quarantine),
        "dropped_after_exit": labelled.dropped_after_exit,
        "events_used": labelled.events_used,
        "events_quarantined": len(labelled.events_quarantine),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.rows, args.events)))
        return
    result = subprocess.run(
        [sys.executable, __file__, "--child", "--rows", str(args.rows), "--events", str(args.events)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["checks"] = {
        "at_most_15_s": figures["seconds"] <= 15,
        "peak_memory_at_most_2_gib": figures["peak_memory_mib"] <= 2048,
    }
    save("bank_book", figures)


if __name__ == "__main__":
    main()
