"""Batch scoring in-process: stream a table through the gate and a registered model, resumably.

The advisor bundle (``crm-advisor``) is gated by the book's schema and answers with modes,
scores, alerts and reasons. A single model trained on a table of one's own ships the profile
its rows were checked against (``table_profile.yaml``): its rows pass through that profile's
gate (features and identifiers), and the output is the identifiers, the model's named
probability columns and the model version. A single model of the book is gated by the schema.

The input is read in chunks (memory is bounded by the chunk size, plus 8 bytes per row
for the duplicate-key check). Each chunk goes through the validation gate; bad rows go
to the quarantine file with their reasons; valid rows are scored, each with its
``input_warnings`` (a category the schema does not declare, scored as the models' unknown
one). A job that could use (almost) none of its input stops with exit code 2: only the
quarantine is written (:func:`crm_modes.data.gate.refuse_unusable`). Every scored chunk is
written atomically to a parts folder beside the output, with a small record of its
counts; a rerun with the same arguments skips the chunks already done, so a job killed
halfway finishes with exactly the output of an uninterrupted run. When every chunk is
done, the parts are assembled into the output (atomically) and the parts folder goes.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather

from crm_modes.data.bank_file import BankInput, read_bank_file
from crm_modes.data.gate import (
    DEFAULT_MAX_QUARANTINED_SHARE,
    WARNINGS_COLUMN,
    FileReport,
    Gate,
    QuarantineLimitError,
    TableSchemaError,
    UnseenInputs,
    refuse_unusable,
)
from crm_modes.data.io import (
    AtomicTableWriter,
    TableReadError,
    check_writable,
    holds_output,
    iter_chunks,
    remove_stale_temporaries,
    synced_replace,
    table_format,
    writing_to,
)
from crm_modes.data.profile import TableProfile, load_profile
from crm_modes.data.schema import KEY, MODES, input_names
from crm_modes.models.advisor import POLICY_ARTIFACT, artifact_path, is_advisor
from crm_modes.models.alerts import load_policy
from crm_modes.models.bundle_book import scoring_gate
from crm_modes.models.single_model import profile_path
from crm_modes.shared.model_loading import LoadedModel

TOP_ALERTS = 10
PREVIOUS_PD = "previous_default_probability"
#: Parts are read back once, at assembly, by this program: Arrow IPC files with LZ4 buffers,
#: faster to write and read than Parquet (docs/decisions/015-fast-scoring-path.md). The format is
#: part of the job's identity.
PART_FORMAT = "arrow-ipc-lz4+input-warnings"
PART_SUFFIX = ".arrow"


@dataclass
class ChunkCounts:
    rows_in: int = 0
    rows_scored: int = 0
    rows_quarantined: int = 0
    alerts: dict[str, int] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)
    mode_switches: int = 0

    def add(self, other: ChunkCounts) -> None:
        self.rows_in += other.rows_in
        self.rows_scored += other.rows_scored
        self.rows_quarantined += other.rows_quarantined
        self.mode_switches += other.mode_switches
        for mine, theirs in ((self.alerts, other.alerts), (self.modes, other.modes)):
            for key, value in theirs.items():
                mine[key] = mine.get(key, 0) + value


@dataclass
class ScoreReport:
    """What a scoring job did; ``counts`` reconcile: rows in = scored + quarantined."""

    model_version: str
    output: Path
    quarantine: Path
    counts: ChunkCounts
    chunks: int
    chunks_resumed: int
    top_alerts: pd.DataFrame
    #: the alert levels of the bundle's policy, least severe first
    levels: tuple[str, ...] = ()
    #: what the gate found: problems by column with an example each, new categories scored
    gate: FileReport = field(default_factory=FileReport)
    #: schema identifier -> the name the output gives it (a bank's, for a bank's bundle)
    names: dict[str, str] = field(default_factory=dict)

    @property
    def reconciles(self) -> bool:
        return self.counts.rows_in == self.counts.rows_scored + self.counts.rows_quarantined


def default_quarantine_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.quarantine{output.suffix}")


def _parts_folder(output: Path) -> Path:
    return output.with_name(f".{output.name}.parts")


def _job_identity(source: Path, model_version: str, chunk_rows: int) -> dict[str, object]:
    stat = source.stat()
    return {
        "input": str(source.resolve()),
        "input_size": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
        "model_version": model_version,
        "chunk_rows": chunk_rows,
        "parts": PART_FORMAT,  # leftovers of a release that wrote parts otherwise start over
    }


def _counts_of(advice: pd.DataFrame, rows_in: int, quarantined: int) -> ChunkCounts:
    counts = ChunkCounts(rows_in=rows_in, rows_scored=len(advice), rows_quarantined=quarantined)
    if len(advice) and "alert_level" in advice:  # the advisor's output
        counts.alerts = {str(k): int(v) for k, v in advice["alert_level"].value_counts().items()}
        counts.modes = {str(k): int(v) for k, v in advice["recommended_mode"].value_counts().items()}
        counts.mode_switches = int((advice["mode_change"] != "").sum())
    return counts


@dataclass(frozen=True)
class ScoringPlan:
    """How the rows of one model are gated and scored (see the module)."""

    gate: Gate
    score: Callable[[pd.DataFrame], pd.DataFrame]
    #: the alert levels of the advisor's policy, least severe first; () for a single model
    levels: tuple[str, ...] = ()


def scoring_plan(model: LoadedModel, unseen_inputs: UnseenInputs = "score") -> ScoringPlan:
    """The gate and the scoring of ``model``'s rows, from what its bundle ships."""
    if is_advisor(model.path):

        def advise(valid: pd.DataFrame) -> pd.DataFrame:
            return model.predict(valid[[name for name in input_names() if name in valid.columns]])

        policy = load_policy(artifact_path(model.path, POLICY_ARTIFACT))
        return ScoringPlan(scoring_gate(model.path, unseen_inputs), advise, policy.levels)
    shipped = profile_path(model.path)
    profile = load_profile(shipped).for_scoring() if shipped.exists() else None
    return _single_plan(model, profile, unseen_inputs)


def _single_plan(
    model: LoadedModel, profile: TableProfile | None, unseen_inputs: UnseenInputs
) -> ScoringPlan:
    inputs = model.pyfunc.metadata.get_input_schema().input_names()
    if profile is None:  # a single model of the book
        gate, identifiers, prepare = Gate(unseen_inputs=unseen_inputs), list(KEY), (lambda frame: frame)
    else:
        identifiers = [column.name for column in profile.columns if column.use == "identifier"]
        gate, prepare = profile.gate(unseen_inputs), profile.codes_as_numbers

    def score(valid: pd.DataFrame) -> pd.DataFrame:
        probabilities = model.predict(prepare(valid[inputs]))
        scored = valid[[name for name in identifiers if name in valid.columns]].reset_index(drop=True)
        scored = pd.concat([scored, probabilities.reset_index(drop=True)], axis=1)
        scored["model_version"] = model.version
        return scored

    return ScoringPlan(gate, score)


def _most_severe(frame: pd.DataFrame, count: int, levels: tuple[str, ...]) -> pd.DataFrame:
    """The ``count`` rows of highest alert level (then highest PD), in that order; none unalerted.

    ``levels``: the policy's alert levels, least severe (no alert) first.
    """
    if frame.empty:
        return frame
    severity = pd.Categorical(frame["alert_level"], categories=list(levels)).codes  # unknown level: -1
    alerted = np.flatnonzero(severity > 0)
    probability = frame["default_probability"].to_numpy()[alerted]
    ranked = alerted[np.lexsort((-probability, -severity[alerted]))[:count]]  # stable on ties
    return frame.iloc[ranked]


@holds_output
def score_file(
    model: LoadedModel,
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    quarantine: str | os.PathLike[str] | None = None,
    chunk_rows: int = 50_000,
    max_quarantined_share: float = DEFAULT_MAX_QUARANTINED_SHARE,
    unseen_inputs: UnseenInputs = "score",
    on_chunk: Callable[[int], None] | None = None,
    previous_pd: Callable[[pd.DataFrame], pd.Series] | None = None,
    bank: BankInput | None = None,
) -> ScoreReport:
    """Score the table at ``source`` with ``model`` into ``output`` (CSV or Parquet).

    ``previous_pd``: each valid row's PD at the facility's previous snapshot (e.g. from the state
    store), used where the table has no ``previous_default_probability`` of its own, so that a
    sharp rise (``PD_RISE``) is seen on a bank's book too.

    ``bank``: the table is a bank's own file, read through the book contract of ``model``'s bundle
    (:mod:`crm_modes.data.bank_file`): its rows are mapped before the gate, rows it cannot map are
    quarantined with their reasons, quarantined rows are written as the bank wrote them, and the
    scores carry the bank's identifier names.

    Raises:
        TableReadError, TableSchemaError: the input cannot be read, misses required columns, or
            has a header but no rows.
        QuarantineLimitError: no row passed the gate, or more than ``max_quarantined_share`` of the
            rows were quarantined; the quarantine is written, the output is not.
        TableWriteError: the output, the quarantine or the parts folder cannot be written.
        OutputBusyError: another live job is writing ``output``.
    """
    source, output = Path(source), Path(output)
    table_format(output)
    if not source.is_file():
        raise TableReadError(f"{source}: no such file")
    quarantine = Path(quarantine) if quarantine else default_quarantine_path(output)
    parts = _parts_folder(output)
    identity = {
        **_job_identity(source, model.version, chunk_rows),
        "unseen_inputs": unseen_inputs,
        "previous_pd": previous_pd is not None,  # a part scored without it is not reused with it
        "bank": bank.identity() if bank is not None else None,
    }
    manifest = parts / "job.json"
    for target in (output, quarantine):
        check_writable(target)
        remove_stale_temporaries(target)  # left by a job killed while writing it
    with writing_to(parts):
        if parts.exists() and (not manifest.exists() or json.loads(manifest.read_text()) != identity):
            shutil.rmtree(parts)  # another job's leftovers: start over
        parts.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps(identity))

    plan = scoring_plan(model, unseen_inputs)
    gate, levels = plan.gate, plan.levels
    total, checked = ChunkCounts(), FileReport()
    resumed = 0
    top = pd.DataFrame()
    index = -1
    book = read_bank_file(source, bank) if bank is not None else None
    chunks = book.chunks(chunk_rows) if book is not None else iter_chunks(source, chunk_rows)
    for index, chunk in enumerate(chunks):
        result = gate.check(chunk)  # always: the duplicate-key check needs every earlier chunk
        checked.add(result)
        done = parts / f"{index:06d}.json"
        scored_part = parts / f"{index:06d}{PART_SUFFIX}"
        rejected_part = parts / f"{index:06d}.quarantine{PART_SUFFIX}"
        if done.exists():
            counts = ChunkCounts(**json.loads(done.read_text()))
            advice = feather.read_table(scored_part).to_pandas()
            resumed += 1
        else:
            valid = result.valid
            if previous_pd is not None and len(valid) and PREVIOUS_PD not in valid:
                valid = valid.assign(**{PREVIOUS_PD: previous_pd(valid).to_numpy()})
            advice = plan.score(valid) if len(valid) else pd.DataFrame()
            if len(advice):
                advice[WARNINGS_COLUMN] = result.input_warnings
            if book is not None:
                advice = book.named(advice)
            _write_part(advice, scored_part)
            if book is not None:
                rejected = book.as_received(result.quarantine)
            else:
                rejected = result.quarantine.astype({name: "string" for name in chunk.columns})
            _write_part(rejected, rejected_part)
            counts = _counts_of(advice, len(chunk), len(result.quarantine))
            temporary = done.with_suffix(".tmp")
            with writing_to(done):
                temporary.write_text(json.dumps(asdict(counts)))
                os.replace(temporary, done)  # the chunk counts as done only once this exists
        total.add(counts)
        if levels:
            top = _most_severe(
                pd.concat([top, _most_severe(advice, TOP_ALERTS, levels)], ignore_index=True),
                TOP_ALERTS,
                levels,
            )
        if on_chunk is not None:
            on_chunk(len(chunk))

    quarantine_parts = index + 1
    if book is not None and len(book.unmapped):  # the rows the contract could not map, last
        _write_part(book.unmapped, parts / f"{quarantine_parts:06d}.quarantine{PART_SUFFIX}")
        quarantine_parts += 1
        unmapped = len(book.unmapped)
        total.add(ChunkCounts(rows_in=unmapped, rows_quarantined=unmapped))
        checked.merge(book.unmapped_report())
    if total.rows_in == 0:
        shutil.rmtree(parts)
        raise TableSchemaError([f"{source}: the table has a header but no data rows"])
    _assemble(parts, quarantine_parts, quarantine, f".quarantine{PART_SUFFIX}")
    try:
        refuse_unusable(checked, max_quarantined_share, str(source), quarantine=quarantine)
    except QuarantineLimitError:
        shutil.rmtree(parts)  # the quarantine is kept; no output, and no parts to resume from
        raise
    _assemble(parts, index + 1, output, PART_SUFFIX)
    shutil.rmtree(parts)
    names = book.names if book is not None else {}
    return ScoreReport(
        model.version, output, quarantine, total, index + 1, resumed, top, levels, checked, names
    )


def _write_part(frame: pd.DataFrame, path: Path) -> None:
    """Write one chunk's part atomically: synced under a temporary name, then renamed."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    temporary = path.with_name(f".{path.name}.tmp")
    with writing_to(path):
        feather.write_feather(table, temporary, compression="lz4")
        synced_replace(temporary, path)


def _assemble(parts: Path, chunks: int, target: Path, suffix: str) -> None:
    """Stream the parts into ``target`` atomically, in chunk order (Arrow tables: no pandas round trip)."""
    with AtomicTableWriter(target) as writer:
        first_columns = None
        for index in range(chunks):
            part = feather.read_table(parts / f"{index:06d}{suffix}")
            if first_columns is None and part.num_columns:
                first_columns = part.column_names
            if part.num_rows or (writer.rows_written == 0 and index == chunks - 1):
                writer.write(
                    part if first_columns is None or not part.num_rows else part.select(first_columns)
                )


def mode_mix(counts: ChunkCounts) -> dict[str, float]:
    total = sum(counts.modes.values())
    return {mode: counts.modes.get(mode, 0) / total for mode in MODES} if total else {}
