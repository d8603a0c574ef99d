"""The ``crm-modes`` application and what every command shares: consoles, options, set-up steps.

Commands live in one module per group (:mod:`~crm_modes.cli.book`, :mod:`~crm_modes.cli.modelling`,
:mod:`~crm_modes.cli.scoring`, :mod:`~crm_modes.cli.memory`, :mod:`~crm_modes.cli.monitoring`,
:mod:`~crm_modes.cli.system`) and register themselves on :data:`app`. They are thin: they parse
options, call the library, and print. Errors are not caught here: :func:`crm_modes.cli.main.run`
maps every error type to its exit code in one place. The model stack (MLflow, scikit-learn,
LightGBM) is imported inside the commands that need it, so ``--help`` and light commands start fast.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from crm_modes import __version__
from crm_modes.cli.progress import JobProgress

if TYPE_CHECKING:
    from crm_modes.shared.model_loading import LoadedModel
    from crm_modes.training.config import TrainingConfig

app = typer.Typer(
    name="crm-modes",
    help="Relationship modes, churn and default risk for project finance and corporate lending.",
    no_args_is_help=True,
    add_completion=False,
)
# soft_wrap: messages stay on one line whatever the terminal width, so they can be searched.
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

#: The state store of every command that uses one.
State = Annotated[
    str | None,
    typer.Option(
        "--state",
        help="State store URL: sqlite:///PATH or postgresql://USER@HOST/DB "
        "(default: $CRM_MODES_STATE_URL, else sqlite:///crm_state.db).",
    ),
]

#: The same option on every command; applied before numpy and scikit-learn load.
Threads = Annotated[
    int | None,
    typer.Option(
        min=0,
        help="Threads for the OpenMP and BLAS pools; idle threads sleep. 0: every CPU this process "
        "may use (affinity and cgroup quota). Default: $OMP_NUM_THREADS, else 1 (see the threads guide).",
    ),
]


#: The guard of every job that reads a table (crm_modes.data.gate.refuse_unusable).
Macro = Annotated[
    Path | None,
    typer.Option(
        help="A bank's macro series (period, value, published), for a bundle whose book contract joins one."
    ),
]
MaxQuarantined = Annotated[
    float | None,
    typer.Option(
        "--max-quarantined-share",
        min=0.0,
        max=1.0,
        help="Stop with exit code 2 when more than this share of the input's rows is quarantined (or "
        "none passes the gate): the quarantine is written, no other output. Default: 0.05, or a "
        "training configuration's data.max_quarantined_share.",
    ),
]


class UnseenChoice(StrEnum):
    score = "score"
    quarantine = "quarantine"


#: What becomes of a model input's category the schema does not declare.
UnseenCategories = Annotated[
    UnseenChoice,
    typer.Option(
        "--unseen-categories",
        help="A category of a model input the schema does not declare: score it (the models read it as "
        "their unknown category and the row's input_warnings say so) or quarantine the row. A new value "
        "of a reporting column (region) is always scored and counted.",
    ),
]


def quarantine_limit(given: float | None, configured: float | None = None) -> float:
    """The share of quarantined rows a job accepts: the option, else the configuration's, else the default."""
    from crm_modes.data.gate import DEFAULT_MAX_QUARANTINED_SHARE

    if given is not None:
        return given
    return DEFAULT_MAX_QUARANTINED_SHARE if configured is None else configured


def _version(value: bool) -> None:
    if value:
        console.print(f"crm-modes {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Relationship modes, churn and default risk for project finance and corporate lending."""


def configure_threads(threads: int | None) -> int:
    """Size this process's thread pools (:mod:`crm_modes.shared.threads`); first thing in a command."""
    from crm_modes.shared.threads import configure_threads as configure

    return configure(threads)


def quiet_mlflow() -> None:
    """No telemetry, no network and no progress bars from MLflow (set here, never at import)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@contextmanager
def model_stack() -> Iterator[None]:
    """The block in which a command imports the model stack and what it keeps to the end: skops
    imported first, the cyclic collector paused, what the block built frozen out of later full
    collections (:func:`crm_modes.shared.collector_pause.long_lived`), and MLflow kept quiet.

    When skops is imported it names every type it trusts by looking the type's module up among all
    the modules loaded so far; after MLflow and the rest of the model stack (thousands of modules)
    that lookup is what takes the time (docs/decisions/008-collector-paused-at-start-up.md).
    """
    from crm_modes.shared.collector_pause import long_lived

    quiet_mlflow()
    with long_lived():
        import skops.io  # noqa: F401 - imported for its side effect on import order

        yield


def progress(label: str, *, total: int | None = None, unit: str = "rows") -> JobProgress:
    """A long job's progress: a bar on a terminal, a plain line at most every 10 s anywhere else."""
    return JobProgress(console, label, total=total, unit=unit)


def load_verified(model: str) -> LoadedModel:
    """The registered model ``model``, verified and loaded under a status line; what loading built
    is kept to the end, out of the collector's later full passes."""
    from crm_modes.shared.collector_pause import long_lived

    with console.status(f"loading {model}"), long_lived():
        from crm_modes.shared.model_loading import load_model

        return load_model(model)


def training_config(path: Path) -> TrainingConfig:
    """The training configuration at ``path`` (an :class:`InputError` names what is wrong)."""
    from crm_modes.training.config import load_training_config

    return load_training_config(path)


def row_count(source: Path) -> int | None:
    """Rows in a Parquet file from its metadata; None for CSV (unknown without reading it)."""
    if source.suffix.lower() != ".parquet" or not source.exists():
        return None
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(source).metadata.num_rows
    except Exception:  # an unreadable file is reported by the reader, with its own message
        return None


def print_gate(rows_in: int, quarantined: int, problems: dict[str, int], written: Path | None) -> None:
    """The gate's reconciled count, the problems by column and where the rejected rows are."""
    line = f"rows in = used + quarantined: {rows_in:,} = {rows_in - quarantined:,} + {quarantined:,}"
    console.print(line + (f" -> {written}" if written is not None else ""))
    if problems:
        listed = ", ".join(f"{column} {count:,}" for column, count in sorted(problems.items()))
        console.print(f"quarantined for: {listed}", highlight=False)
