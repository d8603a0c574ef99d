"""Writing to the state store in bulk: decisions, and the bookkeeping of runs and snapshots."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from sqlalchemy import Connection, Table

from crm_modes.state.tables import decisions


def bulk_insert(connection: Connection, table: Table, columns: list[str], rows: Iterable[tuple]) -> None:
    """Append ``rows`` (tuples in ``columns`` order) in the connection's transaction, in bulk.

    PostgreSQL: ``COPY ... FROM STDIN``; SQLite: one prepared ``INSERT`` run for every row.
    Both skip SQLAlchemy's per-row parameter handling, which costs more than the database.
    """
    raw = connection.connection.driver_connection
    names = ", ".join(columns)
    if connection.dialect.name == "postgresql":
        with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join("?" for _ in columns)
        raw.executemany(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", list(rows))


def insert_decisions(connection: Connection, rows: pd.DataFrame, run_id: str) -> None:
    """Append the decisions of ``rows`` (typed scores) for run ``run_id``."""
    columns = [c.name for c in decisions.columns if c.name != "id"]
    frame = rows.assign(run_id=run_id).reindex(columns=columns)
    frame = frame.astype(object).where(frame.notna(), None)
    bulk_insert(connection, decisions, columns, frame.itertuples(index=False, name=None))
