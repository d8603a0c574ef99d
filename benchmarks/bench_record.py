"""Recording 1,000,000 decisions into the state store: SQLite and PostgreSQL side by side.

Run: ``.venv/bin/python benchmarks/bench_record.py [--rows 1000000] [--postgres URL]``. A scores
file of ``--rows`` facilities in one snapshot (a fifth with a PD or delinquency alert, as a
stressed month would have) is recorded into a new SQLite file and into a new database on
the PostgreSQL server: decisions appended, alerts opened with their events, in chunks of
50,000 rows, end to end as ``crm-modes record`` does it. Targets: SQLite <= 30 s,
PostgreSQL <= 60 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import peak_memory_mib, save

REPO = Path(__file__).resolve().parents[1]


def scores(rows: int, seed: int = 1) -> pd.DataFrame:
    random = np.random.default_rng(seed)
    codes = np.array(["", "PD_WATCH", "PD_WARNING,DPD_1", "DPD_30", "CHURN_WATCH,MODE_UPGRADE"], dtype=object)
    return pd.DataFrame(
        {
            "client_id": [f"C{i // 2:08d}" for i in range(rows)],
            "facility_id": [f"F{i:09d}" for i in range(rows)],
            "snapshot_date": pd.Timestamp("2026-10-31"),
            "recommended_mode": random.choice(["basic", "reactive", "responsible"], rows),
            "committee_mode": random.choice(["basic", "reactive", "responsible"], rows),
            "assigned_mode": random.choice(["basic", "reactive", "responsible"], rows),
            "value_basic": random.normal(0.1, 0.05, rows),
            "value_reactive": random.normal(0.1, 0.05, rows),
            "value_responsible": random.normal(0.1, 0.05, rows),
            "default_probability": random.beta(1, 60, rows),
            "churn_probability": random.beta(2, 20, rows),
            "risk_grade": random.choice([str(g) for g in range(1, 11)], rows),
            "alert_level": "watch",
            "alert_codes": codes[random.choice(5, rows, p=[0.8, 0.1, 0.04, 0.03, 0.03])],
            "model_version": "crm-advisor v1",
        }
    )


def timed_record(url: str, path: Path) -> dict[str, object]:
    from crm_modes.models.alerts import load_policy
    from crm_modes.state.record import record_scores
    from crm_modes.state.store import connect

    engine = connect(url)
    started = time.perf_counter()
    report = record_scores(engine, path, load_policy(REPO / "configs" / "alert_policy.yaml"))
    seconds = time.perf_counter() - started
    engine.dispose()
    return {
        "seconds": round(seconds, 1),
        "decisions_per_second": round(report.rows_recorded / seconds),
        "rows_recorded": report.rows_recorded,
        "alert_events": sum(report.events.values()),
        "reconciles": report.reconciles,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scores.parquet"
        scores(args.rows).to_parquet(path)
        sqlite = timed_record(f"sqlite:///{folder}/crm_state.db", path)
        name = f"bench_state_{uuid.uuid4().hex[:8]}"
        admin = create_engine(
            f"{args.postgres.replace('postgresql://', 'postgresql+psycopg://')}/postgres",
            isolation_level="AUTOCOMMIT",
        )
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            postgres = timed_record(f"{args.postgres}/{name}", path)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    save(
        "record",
        {
            "rows": args.rows,
            "sqlite": sqlite,
            "postgresql": postgres,
            "peak_memory_mib": round(peak_memory_mib()),
            "checks": {
                "sqlite_at_most_30_s": sqlite["seconds"] <= 30,
                "postgresql_at_most_60_s": postgres["seconds"] <= 60,
            },
        },
    )


if __name__ == "__main__":
    main()
