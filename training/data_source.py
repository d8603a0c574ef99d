"""Load the training table a configuration names: generated, or read, and always gated.

Every table passes through the validation gate before a model sees it: the project's book
against its schema, a table of one's own against its profile (:mod:`crm_modes.data.profile`;
the configuration's ``data.profile``, with ``features.constraints`` over it). Rows that break
it are kept aside with their reasons (:attr:`TrainingTable.quarantine`), the job goes on with
the rest, and a table where more than ``data.max_quarantined_share`` of the rows break it stops
the job: a wrong file is not "cleaned" into nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from crm_modes.data.gate import SOURCE_ROW, FileReport, Gate, QuarantineLimitError, refuse_unusable
from crm_modes.data.generator import generate_book
from crm_modes.data.io import read_table, write_table
from crm_modes.data.profile import TableProfile, Use, infer_profile, load_profile
from crm_modes.data.schema import SCHEMA, Column
from crm_modes.shared.errors import InputError
from crm_modes.training.config import TrainingConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingTable:
    """The rows a job trains or evaluates on, and what the gate kept out."""

    table: pd.DataFrame
    description: str
    rows_in: int
    rows_quarantined: int
    data_hash: str
    #: rejected rows as read, with ``source_row`` and ``quarantine_reason``
    quarantine: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: problems per column (a row with two problems counts in both columns)
    problems: dict[str, int] = field(default_factory=dict)
    #: the profile a table of one's own was checked against (None: the project's schema)
    profile: TableProfile | None = None


def table_hash(table: pd.DataFrame) -> str:
    """SHA-256 of the table's contents (row order and column names included)."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, table.columns)).encode())
    digest.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def profile_uses(config: TrainingConfig) -> tuple[dict[str, Use], set[str]]:
    """The columns a configuration uses on a table of its own (column -> use), and the numeric ones."""
    features = config.features
    numeric = [name for name in features.numeric if name not in features.exclude]
    categorical = [name for name in features.categorical if name not in features.exclude]
    uses: dict[str, Use] = dict.fromkeys(features.identifiers, "identifier")
    uses |= dict.fromkeys([*numeric, *categorical], "feature")
    uses |= dict.fromkeys((model.target for model in config.models.values()), "target")
    if config.split.kind == "holdout_column" and config.split.holdout_column:
        uses[config.split.holdout_column] = "split"
    return uses, set(numeric)


def binary_targets(config: TrainingConfig) -> set[str]:
    """Targets of binary models without a ``positive_label``: each must hold exactly two classes."""
    return {m.target for m in config.models.values() if m.kind == "binary" and m.positive_label is None}


def configured_profile(config: TrainingConfig, raw: pd.DataFrame | None = None) -> TableProfile:
    """The profile a table of one's own is checked against: ``data.profile`` with
    ``features.constraints`` over it, or (no profile configured) inferred from ``raw`` itself.

    Raises:
        InputError: the profile lacks a column the configuration uses, or cannot be read.
    """
    uses, numeric = profile_uses(config)
    if config.data.profile is not None:
        profile = load_profile(config.data.profile)
        missing = [name for name in uses if name not in profile.names()]
        if missing:
            raise InputError(
                f"{config.data.profile}: the table profile lacks columns the configuration uses: {missing}; "
                "run `crm-modes profile` again"
            )
    else:
        if raw is None:
            raw = read_table(config.data.path)
        log.warning(
            "%s: no table profile configured (data.profile): the table is profiled from itself, so only "
            "values that do not parse are caught; run `crm-modes profile` and commit its output",
            config.data.path,
        )
        profile = infer_profile(
            raw,
            uses,
            numeric=numeric,
            source=os.path.basename(config.data.path or ""),
            binary_targets=binary_targets(config),
        )
    return profile.constrained(config.features.constraints)


def load_training_table(config: TrainingConfig) -> TrainingTable:
    """The table to train on, gated (see the module).

    Raises:
        TableReadError, TableSchemaError: the table cannot be read or misses a column.
        InputError: more rows than ``data.max_quarantined_share`` break the schema or the profile.
    """
    data = config.data
    profile = None
    if data.generate_rows is not None:
        raw = generate_book(
            data.generate_rows, data.seed, history_months=data.history_months, mode_noise=data.mode_noise
        )
        description = (
            f"synthetic book: {data.generate_rows:,} rows, seed {data.seed}, {data.history_months} months, "
            f"{data.mode_noise:.0%} of modes off the committee's rule"
        )
        gate = Gate()
    else:
        raw, description = read_table(data.path), data.path
        contract = data.book_contract()
        if contract is not None:  # a bank's book lacks the inputs the bank does not have
            gate = Gate(required=contract.required_columns(), columns=book_declarations(config))
        elif data.layout == "book":
            gate = Gate()
        else:
            profile = configured_profile(config, raw)
            gate = profile.gate()
    result = gate.check(raw)
    report = FileReport()
    report.add(result)
    target = quarantine_path(config)
    try:
        refuse_unusable(
            report,
            data.max_quarantined_share,
            description,
            setting="data.max_quarantined_share",
            quarantine=target,
        )
    except QuarantineLimitError:
        write_rejected(result.quarantine, target)  # kept for whoever fixes the feed
        raise
    table = profile.codes_as_numbers(result.valid) if profile is not None else result.valid
    return TrainingTable(
        table,
        description,
        result.rows_in,
        len(result.quarantine),
        table_hash(table),
        quarantine=result.quarantine,
        problems=dict(report.reasons),
        profile=profile,
    )


def book_declarations(config: TrainingConfig) -> tuple[Column, ...]:
    """What a bank's book is checked against: the schema, narrowed to the bank's reviewed profile
    (``data.profile``, written by ``crm-modes profile``) where there is one."""
    if config.data.profile is None:
        log.warning(
            "%s: no profile of the bank's book (data.profile): its rows are checked against the schema "
            "only; run `crm-modes profile --config ...` and review it",
            config.data.path,
        )
        return SCHEMA
    return load_profile(config.data.profile).tightening(SCHEMA)


def write_rejected(quarantine: pd.DataFrame, target: Path) -> Path:
    """Write rows the gate kept out, with their reasons, atomically (values as the text they came as)."""
    rejected = quarantine.astype({name: "string" for name in quarantine.columns if name != SOURCE_ROW})
    return write_table(rejected, target)


def write_quarantine(config: TrainingConfig, data: TrainingTable) -> Path | None:
    """Write the rows the gate kept out where the configuration says; None when there were none."""
    if not data.rows_quarantined:
        return None
    return write_rejected(data.quarantine, quarantine_path(config))


def quarantine_path(config: TrainingConfig) -> Path:
    """Where a job writes the rows its gate kept out."""
    if config.data.quarantine is not None:
        return Path(config.data.quarantine)
    stem = Path(config.data.path).stem if config.data.path else "book"
    return Path(f"{stem}.quarantine.csv")
