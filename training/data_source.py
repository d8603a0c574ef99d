"""Load the training table a configuration names: generated, or read and gated."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pandas as pd

from crm_modes.data.generator import generate_book
from crm_modes.data.io import read_table, table_format
from crm_modes.data.validation import validate
from crm_modes.training.config import DataConfig


@dataclass(frozen=True)
class TrainingTable:
    table: pd.DataFrame
    description: str
    rows_in: int
    rows_quarantined: int
    data_hash: str


def table_hash(table: pd.DataFrame) -> str:
    """SHA-256 of the table's contents (row order and column names included)."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, table.columns)).encode())
    digest.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def load_training_table(config: DataConfig) -> TrainingTable:
    """The table to train on.

    A generated book or a schema table goes through the validation gate (rows it
    quarantines are counted, not used); any other table is read with its own types.
    """
    if config.generate_rows is not None or config.schema_table:
        if config.generate_rows is not None:
            raw = generate_book(config.generate_rows, config.seed, history_months=config.history_months)
            description = (
                f"synthetic book: {config.generate_rows:,} rows, seed {config.seed}, "
                f"{config.history_months} months"
            )
        else:
            raw, description = read_table(config.path), config.path
        result = validate(raw)
        rows_in, rows_quarantined, table = result.rows_in, len(result.quarantine), result.valid
    else:
        fmt = table_format(config.path)
        table = pd.read_csv(config.path) if fmt == "csv" else pd.read_parquet(config.path)
        description, rows_in, rows_quarantined = config.path, len(table), 0
    return TrainingTable(table, description, rows_in, rows_quarantined, table_hash(table))
