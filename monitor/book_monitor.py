"""One monitoring run: score the current book through the gate and the model, compare, report.

The current table streams through the validation gate and the registered model (the one
scoring path, :meth:`crm_modes.shared.model_loading.LoadedModel.predict`) chunk by chunk, and each
chunk is counted into the reference's bins (:class:`~crm_modes.models.reference.BookProfile`);
when the book has already been scored (``crm-modes score`` of the same file by the same
version), its output is read in step with the gate's valid rows instead of scoring them again
(:class:`ScoredRows`: same rows, same order, same version, or the run stops naming the first
difference);
only the rows whose outcomes are known are kept, as a few arrays, for backtesting. Memory is
flat in the size of the book. The reference and the alert policy (its master scale) come from
the model's own verified artifacts: a consumer of ``models:/crm-advisor@champion`` needs
nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from contextlib import nullcontext

import numpy as np
import pandas as pd

from crm_modes.data.bank_file import BankInput, read_bank_file
from crm_modes.data.gate import FileReport, TableSchemaError, UnseenInputs
from crm_modes.data.io import AtomicTableWriter, iter_chunks
from crm_modes.data.schema import KEY, input_names
from crm_modes.models.advisor import OUTPUT_TYPES, POLICY_ARTIFACT, REFERENCE_ARTIFACT, artifact_path
from crm_modes.models.alerts import load_policy
from crm_modes.models.bundle_book import scoring_gate
from crm_modes.models.reference import SLICE_COLUMNS, BookProfile, MonitoringReference, load_reference
from crm_modes.monitor.config import MonitoringConfig
from crm_modes.monitor.figures import Outcomes, compute
from crm_modes.shared.errors import InputError
from crm_modes.shared.model_loading import LoadedModel

LABELS = ("default_12m", "churn_12m")


def model_reference(model: LoadedModel) -> MonitoringReference:
    """The monitoring reference shipped with ``model`` (verified with its other artifacts).

    Raises:
        ValueError: the version carries no reference (registered before monitoring existed).
    """
    path = artifact_path(model.path, REFERENCE_ARTIFACT)
    if not path.exists():
        raise InputError(
            f"{model.version} carries no monitoring reference ({path.name}): it was registered "
            "before monitoring existed; train and register a new version"
        )
    return load_reference(path)


def read_outcomes(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Known outcomes by facility and snapshot: ``default_12m`` and ``churn_12m``.

    Rows where either is unknown (null: the 12-month window is still open) are dropped.

    Raises:
        TableSchemaError: the table lacks the key or the outcome columns.
    """
    parts = []
    for chunk in iter_chunks(path, 500_000):
        missing = [name for name in (*KEY, *LABELS) if name not in chunk.columns]
        if missing:
            raise TableSchemaError([f"{path}: the outcomes table lacks the columns {missing}"])
        part = chunk[[*KEY, *LABELS]].copy()
        for name in LABELS:
            part[name] = pd.to_numeric(part[name], errors="coerce")
        parts.append(part.dropna(subset=list(LABELS)))
    table = pd.concat(parts, ignore_index=True)
    table["snapshot_date"] = pd.to_datetime(table["snapshot_date"], errors="coerce")
    table["facility_id"] = table["facility_id"].astype(str)
    return table.drop_duplicates(subset=list(KEY), keep="first").set_index(list(KEY))


AGAIN = "score the same file with the same model, or leave out --scores"


class ScoredRows:
    """What ``crm-modes score`` wrote for the current book, taken in step with the gate's valid rows.

    ``score`` writes one output row per valid input row, in input order, so the scored file
    streams beside the current one with memory bounded by a chunk. Each taken block must
    carry the same keys (``facility_id``, ``snapshot_date``) in the same order, and every
    row the version being monitored; a file of another book, another version, another
    gate or an interrupted job stops the run with the first difference named.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        model_version: str,
        chunk_rows: int,
        names: Mapping[str, str] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.model_version = model_version
        renamed = {bank: name for name, bank in (names or {}).items()}  # a bank's names: the schema's
        self._chunks = (chunk.rename(columns=renamed) for chunk in iter_chunks(path, chunk_rows))
        self._buffer = pd.DataFrame()
        self.taken = 0

    def take(self, valid: pd.DataFrame) -> pd.DataFrame:
        """The scored rows of ``valid`` (the next ``len(valid)`` rows of the file), checked."""
        parts, wanted = [], len(valid)
        while wanted:
            if self._buffer.empty:
                chunk = next(self._chunks, None)
                if chunk is None:
                    raise InputError(
                        f"{self.path} holds {self.taken + len(valid) - wanted} scored rows, fewer than the "
                        f"current book's valid rows: {AGAIN}"
                    )
                self._buffer = self._checked(chunk)
            part, self._buffer = self._buffer.iloc[:wanted], self._buffer.iloc[wanted:]
            parts.append(part)
            wanted -= len(part)
        advice = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
        self._same_keys(valid, advice)
        self.taken += len(advice)
        return advice

    def finish(self) -> None:
        """Raise if the file holds rows beyond the current book's valid rows."""
        extra = len(self._buffer) + sum(len(chunk) for chunk in self._chunks)
        if extra:
            raise InputError(
                f"{self.path} holds {self.taken + extra} scored rows, more than the current book's "
                f"{self.taken} valid rows: {AGAIN}"
            )

    def _checked(self, chunk: pd.DataFrame) -> pd.DataFrame:
        missing = [name for name in (*KEY, *OUTPUT_TYPES) if name not in chunk.columns]
        if missing:
            raise InputError(f"{self.path} is not an advisor's scored output: it lacks the columns {missing}")
        versions = pd.unique(chunk["model_version"].astype(str))
        others = [version for version in versions if version != self.model_version]
        if others:
            raise InputError(
                f"{self.path} was scored by {others[0]}, not by {self.model_version}, the version monitored"
            )
        chunk = chunk.copy()
        for name, kind in OUTPUT_TYPES.items():
            if kind == "double":
                values = pd.to_numeric(chunk[name], errors="coerce")
                if (values.isna() & chunk[name].notna()).any():
                    raise InputError(f"{self.path}: column {name!r} holds values that are not numbers")
                chunk[name] = values
        return chunk

    def _same_keys(self, valid: pd.DataFrame, advice: pd.DataFrame) -> None:
        same = valid["facility_id"].astype(str).to_numpy() == advice["facility_id"].astype(str).to_numpy()
        same &= _dates(valid["snapshot_date"]) == _dates(advice["snapshot_date"])
        if not same.all():
            row = int(np.argmin(same))
            raise InputError(
                f"{self.path} does not match the current book: its scored row {self.taken + row + 1} is "
                f"{advice['facility_id'].iloc[row]} {advice['snapshot_date'].iloc[row]}, the current book's "
                f"valid row is {valid['facility_id'].iloc[row]} {valid['snapshot_date'].iloc[row]}"
            )


def _dates(values: pd.Series) -> np.ndarray:
    return pd.to_datetime(values, errors="coerce").to_numpy(dtype="datetime64[ns]")


def monitor_file(
    model: LoadedModel,
    current: str | os.PathLike[str],
    config: MonitoringConfig,
    *,
    outcomes: str | os.PathLike[str] | None = None,
    scores: str | os.PathLike[str] | None = None,
    quarantine: str | os.PathLike[str] | None = None,
    previous: dict | None = None,
    unseen_inputs: UnseenInputs = "score",
    chunk_rows: int = 100_000,
    on_chunk: Callable[[int], None] | None = None,
    bank: BankInput | None = None,
) -> dict:
    """Every monitoring figure of the book at ``current`` scored by ``model`` (see the module).

    ``bank``: ``current`` is a bank's own file, read through the book contract of ``model``'s
    bundle as a scoring job reads it (:mod:`crm_modes.data.bank_file`).

    ``scores``: ``crm-modes score``'s output of ``current`` by ``model``, read instead of
    scoring the rows again (:class:`ScoredRows`). ``quarantine``: where the rows the gate kept out
    are written, with their reasons. ``previous``: the previous run's report (or its
    ``portfolio.current`` figures), for the book's levels month on month.

    Returns:
        The report (:func:`crm_modes.monitor.figures.compute`), with the model version, the
        reconciled row counts (``rows_in = rows_scored + rows_quarantined``) and what the gate
        found (``gate``: :meth:`FileReport.to_dict`).

    Raises:
        TableReadError, TableSchemaError: the current or outcomes table cannot be used.
        ValueError: the model carries no monitoring reference.
    """
    reference = model_reference(model)
    policy = load_policy(artifact_path(model.path, POLICY_ARTIFACT))
    known = read_outcomes(outcomes) if outcomes is not None else None
    profile = reference.profile.empty_like()
    collected = Outcomes() if known is not None else None
    gate, checked = scoring_gate(model.path, unseen_inputs), FileReport()
    book = read_bank_file(current, bank) if bank is not None else None
    names = book.names if book is not None else None
    scored = ScoredRows(scores, model.version, chunk_rows, names) if scores is not None else None
    chunks = book.chunks(chunk_rows) if book is not None else iter_chunks(current, chunk_rows)
    with AtomicTableWriter(quarantine) if quarantine is not None else nullcontext() as rejected:
        for chunk in chunks:
            result = gate.check(chunk)
            checked.add(result)
            if rejected is not None and (len(result.quarantine) or rejected.rows_written == 0):
                if book is not None:
                    rejected.write(book.as_received(result.quarantine))
                else:
                    rejected.write(result.quarantine.astype({name: "string" for name in chunk.columns}))
            _count(result.valid, model, scored, profile, known, collected)
            if on_chunk is not None:
                on_chunk(len(chunk))
        if book is not None and len(book.unmapped):  # the rows the contract could not map
            checked.merge(book.unmapped_report())
            if rejected is not None:
                rejected.write(book.unmapped)
    if checked.rows_in == 0:
        raise TableSchemaError([f"{current}: the table has a header but no data rows"])
    if scored is not None:
        scored.finish()
    if previous is not None and "portfolio" in previous:
        previous = previous["portfolio"]["current"]
    grades = [grade.grade for grade in policy.risk_grades]
    report = compute(reference, profile, collected, grades, config, gate=checked, previous=previous)
    report.update(
        model_version=model.version,
        model_uri=model.uri,
        current=os.fspath(current),
        outcomes=os.fspath(outcomes) if outcomes is not None else None,
        scored_file=os.fspath(scores) if scores is not None else None,
        quarantine_file=os.fspath(quarantine) if quarantine is not None else None,
        rows_in=checked.rows_in,
        rows_scored=profile.rows,
        rows_quarantined=checked.rows_quarantined,
        gate=checked.to_dict(),
    )
    return report


def _count(
    valid: pd.DataFrame,
    model: LoadedModel,
    scored: ScoredRows | None,
    profile: BookProfile,
    known: pd.DataFrame | None,
    collected: Outcomes | None,
) -> None:
    """Score (or take the scores of) one chunk's valid rows and count them into the profile, keeping
    the rows whose outcomes are known."""
    if not len(valid):
        return
    advice = (
        scored.take(valid)
        if scored is not None
        else model.predict(valid[[name for name in input_names() if name in valid.columns]])
    )
    profile.add(valid, advice)
    if collected is not None and known is not None:
        keys = pd.MultiIndex.from_arrays([valid["facility_id"].astype(str), valid["snapshot_date"]])
        labels = known.reindex(keys).reset_index(drop=True)
        dimensions = [name for name in SLICE_COLUMNS if name in valid.columns]
        collected.add(valid, advice, labels, dimensions)


def json_safe(value: object) -> object:
    """The report with NaN and infinities as null (JSON has neither)."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
