"""Commands that score: a table in batch (in-process or on Spark), and the REST service."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crm_modes.cli.app import (
    Macro,
    MaxQuarantined,
    State,
    Threads,
    UnseenCategories,
    UnseenChoice,
    app,
    configure_threads,
    console,
    load_verified,
    model_stack,
    progress,
    quarantine_limit,
    quiet_mlflow,
    row_count,
    training_config,
)
from crm_modes.cli.memory import record_file
from crm_modes.cli.tables import print_score_report
from crm_modes.shared.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from crm_modes.serve.batch import ScoreReport
    from crm_modes.shared.model_loading import LoadedModel


@dataclass(frozen=True)
class Guard:
    """What a scoring job accepts of its input: the share it may quarantine, and new categories."""

    max_quarantined_share: float
    unseen_inputs: str


@app.command()
def score(
    model: Annotated[str, typer.Option(help="Model URI, e.g. models:/crm-advisor@champion.")],
    source: Annotated[Path, typer.Option("--input", help="Table to score (.csv or .parquet).")],
    output: Annotated[Path, typer.Option(help="Where to write the scores (.csv or .parquet).")],
    quarantine: Annotated[
        Path | None, typer.Option(help="Rejected rows with reasons (default: <output>.quarantine.<ext>).")
    ] = None,
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="Rows scored at a time (on Spark, per Arrow batch); bounds memory.")
    ] = 50_000,
    engine: Annotated[str, typer.Option(help="inprocess (pandas, chunked) or spark.")] = "inprocess",
    spark_master: Annotated[str, typer.Option(help="Spark master URL for --engine spark.")] = "local[*]",
    spark_task_threads: Annotated[
        int, typer.Option(min=1, help="Threads each Spark task's pools may use (one task runs per core).")
    ] = 1,
    state: State = None,
    policy: Annotated[
        Path | None,
        typer.Option(help="Alert policy for recording (default: the one inside the bundle)."),
    ] = None,
    record_scores: Annotated[
        bool,
        typer.Option(
            "--record/--no-record",
            help="Record the scores in the state store (--state, $CRM_MODES_STATE_URL or crm_state.db) "
            "and add alert_status and notify to the output.",
        ),
    ] = False,
    max_quarantined_share: MaxQuarantined = None,
    unseen_categories: UnseenCategories = UnseenChoice.score,
    macro: Macro = None,
    threads: Threads = None,
) -> None:
    """Score a table with the advisor: scores, alerts and reasons, every row reconciled.

    A bundle trained on a bank's book reads the bank's own file through its book contract: the
    bank's names, codes, dates and units, with the macro series of ``--macro`` where it joins one.

    A table that could (almost) not be used stops with exit code 2 before any output is written:
    only its quarantine, with the reasons.
    """
    configure_threads(threads)
    with model_stack():
        from crm_modes.models.advisor import POLICY_ARTIFACT, artifact_path
    if engine not in ("inprocess", "spark"):
        raise InputError(f"--engine must be inprocess or spark, got {engine!r}")
    recording = bool(record_scores or state)
    guard = Guard(quarantine_limit(max_quarantined_share), unseen_categories.value)
    started = time.perf_counter()
    if engine == "spark":
        bundle = _score_on_spark(
            model, source, output, quarantine, spark_master, spark_task_threads, chunk_rows, guard, macro
        )
    else:
        report, loaded = _score_in_process(
            model,
            source,
            output,
            quarantine,
            chunk_rows,
            guard,
            recording=recording,
            state=state,
            macro=macro,
        )
        print_score_report(console, report, time.perf_counter() - started)
        bundle = loaded.path
    if recording:
        from crm_modes.models.bundle_book import bundle_contract

        contract = bundle_contract(bundle)
        record_file(
            output,
            state,
            policy or artifact_path(bundle, POLICY_ARTIFACT),
            annotate=output,
            max_quarantined_share=guard.max_quarantined_share,
            names=contract.identifier_names() if contract is not None else None,
        )


def _score_on_spark(
    model: str,
    source: Path,
    output: Path,
    quarantine: Path | None,
    master: str,
    task_threads: int,
    chunk_rows: int,
    guard: Guard,
    macro: Path | None = None,
) -> Path:
    """Score on Spark, print the reconciled summary; return the verified copy of the bundle."""
    from crm_modes.serve.spark import score_with_spark
    from crm_modes.shared.model_loading import fetch

    started = time.perf_counter()
    with console.status(f"scoring on Spark ({master})"):
        report = score_with_spark(
            model,
            source,
            output,
            quarantine=quarantine,
            master=master,
            task_threads=task_threads,
            chunk_rows=chunk_rows,
            max_quarantined_share=guard.max_quarantined_share,
            unseen_inputs=guard.unseen_inputs,
            macro=macro,
        )
    console.print(
        f"scored {report.rows_scored:,} rows with {report.model_version} on Spark "
        f"in {report.pieces} piece{'s' if report.pieces != 1 else ''} "
        f"in {time.perf_counter() - started:.1f} s ({report.seconds_after_session:.1f} s "
        f"after the session started) -> {output}"
    )
    console.print(
        f"rows in = scored + quarantined: {report.rows_in:,} = {report.rows_scored:,} + "
        f"{report.rows_quarantined:,} -> {report.quarantine}"
    )
    return fetch(model).path


def _score_in_process(
    model: str,
    source: Path,
    output: Path,
    quarantine: Path | None,
    chunk_rows: int,
    guard: Guard,
    *,
    recording: bool,
    state: str | None = None,
    macro: Path | None = None,
) -> tuple[ScoreReport, LoadedModel]:
    loaded = load_verified(model)
    from crm_modes.models.advisor import is_advisor
    from crm_modes.models.bundle_book import bank_input
    from crm_modes.serve.batch import score_file

    if recording and not is_advisor(loaded.path):
        raise InputError(
            f"{model} is a single model: only the advisor's decisions and alerts are recorded; "
            "drop --record and --state"
        )
    with progress("scoring", total=row_count(source)) as shown:
        report = score_file(
            loaded,
            source,
            output,
            quarantine=quarantine,
            chunk_rows=chunk_rows,
            max_quarantined_share=guard.max_quarantined_share,
            unseen_inputs=guard.unseen_inputs,
            on_chunk=shown.advance,
            previous_pd=_previous_pd_from(state) if recording else None,
            bank=bank_input(loaded.path, macro),
        )
    return report, loaded


def _previous_pd_from(state: str | None) -> Callable[[pd.DataFrame], pd.Series]:
    """Each row's PD at its facility's previous recorded snapshot, from the state store (NaN: none)."""
    import pandas as pd

    from crm_modes.state.queries import previous_default_probabilities
    from crm_modes.state.store import connect

    engine, known = connect(state), {}

    def lookup(rows: pd.DataFrame) -> pd.Series:
        found = pd.Series(float("nan"), index=rows.index)
        for snapshot, group in rows.groupby(rows["snapshot_date"].dt.date, sort=False):
            if snapshot not in known:
                known[snapshot] = previous_default_probabilities(engine, snapshot)
            found[group.index] = group["facility_id"].map(known[snapshot]).astype(float)
        return found

    return lookup


@app.command()
def serve(
    model: Annotated[str, typer.Option(help="Model URI to serve.")] = "models:/crm-advisor@champion",
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes, each with its own copy of the model; one per core the service may "
            "use. A reload reaches every worker.",
        ),
    ] = 1,
    threads: Annotated[
        int, typer.Option(min=1, help="Threads per worker for the models' OpenMP and BLAS pools.")
    ] = 1,
    max_records: Annotated[
        int, typer.Option(min=1, max=10_000, help="Most records one request may carry (413 above).")
    ] = 10_000,
    max_body_bytes: Annotated[
        int | None,
        typer.Option(min=1, help="Largest request body in bytes (413 above); default: 4 KiB per record."),
    ] = None,
    header_timeout: Annotated[
        float,
        typer.Option(min=0.1, help="Seconds a request's headers may take to arrive (then 408, closed)."),
    ] = 10.0,
    body_timeout: Annotated[
        float,
        typer.Option(min=0.1, help="Seconds a request's body may take after its headers (then 408, closed)."),
    ] = 60.0,
    credentials: Annotated[
        Path | None,
        typer.Option(
            help="Credentials file: token hashes with their holders and scopes, JWT settings "
            "(default: $CRM_MODES_CREDENTIALS). Without one the service is open.",
        ),
    ] = None,
    open_service: Annotated[
        bool,
        typer.Option(
            "--open",
            help="Serve without credentials on an interface other than the loopback (anyone who "
            "reaches the port may read client data).",
        ),
    ] = False,
    ssl_certfile: Annotated[Path | None, typer.Option(help="TLS certificate (PEM) to serve HTTPS.")] = None,
    ssl_keyfile: Annotated[
        Path | None, typer.Option(help="TLS private key (PEM) of the certificate.")
    ] = None,
    state: State = None,
    macro: Macro = None,
) -> None:
    """Serve the advisor over REST: scoring, health, version, reload, facility history and alerts.

    A bundle trained on a bank's book takes records in the bank's names, codes, dates and units
    (its book contract), with the macro series of ``--macro`` where it joins one."""
    configure_threads(threads)
    quiet_mlflow()
    import uvicorn

    from crm_modes.serve.rest.access import LOOPBACK, Gatekeeper
    from crm_modes.serve.rest.app import SERVICE_VARIABLE, ServiceSettings, create_app
    from crm_modes.serve.rest.limits import Limits
    from crm_modes.serve.rest.protocol import GuardedHttp
    from crm_modes.shared.model_loading import resolve

    access = Gatekeeper.from_file(credentials)
    if access.open and host not in LOOPBACK and not open_service:
        raise InputError(
            f"no credentials configured: serving on {host} would let anyone who reaches the port read "
            "client data; pass --credentials FILE (see `crm-modes credentials new`), or --open to mean it"
        )
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise InputError("TLS needs both --ssl-certfile and --ssl-keyfile")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    limits = Limits(
        max_records=max_records,
        max_body_bytes=max_body_bytes,
        header_seconds=header_timeout,
        body_seconds=body_timeout,
    )
    GuardedHttp.configure(limits)
    scheme = "https" if ssl_certfile else "http"
    server = {
        "host": host,
        "port": port,
        "log_level": "warning",
        "http": GuardedHttp,
        "ssl_certfile": str(ssl_certfile) if ssl_certfile else None,
        "ssl_keyfile": str(ssl_keyfile) if ssl_keyfile else None,
    }
    shown_access = "open to every caller" if access.open else "credentials required"
    if workers == 1:
        with console.status(f"loading {model}"):
            service = create_app(
                model, limits=limits, state=state, access=access, macro=str(macro) if macro else None
            )
        console.print(
            f"serving {service.state.served.model.version} on {scheme}://{host}:{port} ({shown_access})"
        )
        uvicorn.run(service, **server)
        return
    pinned, version = resolve(model)  # every worker starts with this very version
    given = str(credentials.resolve()) if credentials else None
    with tempfile.TemporaryDirectory(prefix="crm-modes-serve-") as folder:
        settings = ServiceSettings(
            model,
            pinned,
            limits,
            state,
            str(Path(folder) / "reloaded.json"),
            threads,
            given,
            str(macro.resolve()) if macro else None,
        )
        os.environ[SERVICE_VARIABLE] = settings.to_environment()
        console.print(
            f"serving {version} on {scheme}://{host}:{port} with {workers} workers ({shown_access})"
        )
        uvicorn.run("crm_modes.serve.rest.app:app_from_environment", factory=True, workers=workers, **server)


credentials_app = typer.Typer(help="Tokens for the REST service.", no_args_is_help=True)
app.add_typer(credentials_app, name="credentials")


@credentials_app.command("new")
def credentials_new(
    holder: Annotated[str, typer.Option(help="Who will hold the token (shown in the access log).")],
    scopes: Annotated[str, typer.Option(help="Comma-separated: score, read, acknowledge, admin.")] = "score",
) -> None:
    """Make a token: print it once (give it to its holder) and the entry for the credentials file,
    which holds only its salted hash."""
    import yaml

    from crm_modes.serve.rest.access import Credential, Scope, new_token, token_hash

    names = [name.strip() for name in scopes.split(",") if name.strip()]
    unknown = [name for name in names if name not in Scope.__members__]
    if unknown or not names:
        raise InputError(f"--scopes: {unknown or 'none given'}; choose from {', '.join(Scope)}")
    token = new_token()
    entry = Credential(holder=holder, scopes=tuple(Scope(name) for name in names), hash=token_hash(token))
    console.print(f"token (shown once; give it to {holder}): {token}", highlight=False, soft_wrap=True)
    console.print("entry for the credentials file's `credentials:` list:", highlight=False)
    print(yaml.safe_dump([entry.model_dump(mode="json")], sort_keys=False), end="")


@app.command()
def allocate(
    scores: Annotated[Path, typer.Option(help="A scored month (the output of `score`): values per mode.")],
    config: Annotated[Path, typer.Option(help="Training configuration: advisor.capacity and its economics.")],
    output: Annotated[Path, typer.Option(help="CSV of the moves to make, most valuable first.")],
    responsible_share: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="At most this share in responsible mode (default: the configuration's)."
        ),
    ] = None,
    moves_share: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="At most this share of the facilities moved (default: the configuration's).",
        ),
    ] = None,
    book: Annotated[
        Path | None,
        typer.Option(
            help="The table that was scored, for the column capacity.per names when the scores lack it "
            "(joined on --id-column)."
        ),
    ] = None,
    id_column: Annotated[
        str, typer.Option(help="The column that names a facility in the scores.")
    ] = "facility_id",
) -> None:
    """The recommended modes of a scored month within the bank's capacity, and the moves in order.

    Allocates the modes of highest total value within the configuration's capacity (responsible
    slots and RM hours, book-wide or per group of ``capacity.per``; moves per run), prices each
    bound (what one more slot, hour or move would add) and writes the moves, most valuable first.
    With the economics' ``move_confidence`` k, a move must beat k standard errors of its gain (the
    scores' ``gain_error_<mode>``). A facility the scores give no mode today is placed in its
    allocated mode and listed after the moves, without a gain.
    """
    import numpy as np
    import pandas as pd

    from crm_modes.data.io import check_writable, read_table, writing_to
    from crm_modes.data.schema import MODES
    from crm_modes.models.capacity import allocate as allocate_modes
    from crm_modes.models.capacity import move_list
    from crm_modes.models.economics import load_economics
    from crm_modes.models.scored_values import VALUE_COLUMNS, mode_index, scored_gain_errors
    from crm_modes.training.config import CapacityConfig

    settings = training_config(config)
    if settings.advisor is None:
        raise InputError(f"{config}: has no advisor section (its economics and capacity)")
    capacity = settings.advisor.capacity or CapacityConfig()
    overrides = {"responsible_share": responsible_share, "moves_share": moves_share}
    capacity = CapacityConfig(
        **{**capacity.model_dump(), **{key: value for key, value in overrides.items() if value is not None}}
    )
    check_writable(output)
    table = read_table(scores)
    missing = [name for name in (id_column, *VALUE_COLUMNS, "assigned_mode") if name not in table]
    if missing:
        raise InputError(f"{scores}: missing columns {missing}; allocate reads the output of `score`")
    if capacity.per is not None and capacity.per not in table:
        table = _with_book_column(table, book, capacity.per, id_column)
    values = table[list(VALUE_COLUMNS)].to_numpy(dtype=float)
    unreadable = int((~np.isfinite(values)).any(axis=1).sum())
    if unreadable:
        raise InputError(f"{scores}: {unreadable:,} rows without a finite value in every mode")
    current = mode_index(table["assigned_mode"])
    stated = table["assigned_mode"].notna().to_numpy()
    unknown = sorted(set(table["assigned_mode"][stated & (current < 0)].astype(str)))
    if unknown:
        raise InputError(f"{scores}: assigned_mode holds values that are not modes: {unknown[:5]}")
    economics = load_economics(settings.advisor.economics)
    budgets = capacity.budgets(current, table)
    allocation = allocate_modes(
        values,
        current,
        switching_cost=economics.switching_cost,
        budgets=budgets,
        uncertainty=scored_gain_errors(table, economics.move_confidence),
        confidence=economics.move_confidence,
    )
    moved = move_list(allocation, values, current, switching_cost=economics.switching_cost)
    placed = np.flatnonzero(current < 0)  # no mode today: placed, not moved
    rows = np.concatenate([moved["row"], placed])
    names = np.asarray(MODES, dtype=object)
    columns = {
        "rank": np.arange(1, len(rows) + 1),
        id_column: table[id_column].to_numpy()[rows],
        **({capacity.per: table[capacity.per].to_numpy()[rows]} if capacity.per else {}),
        "mode_today": np.concatenate([names[moved["mode_today"]], np.full(len(placed), None)]),
        "mode_allocated": names[allocation.modes[rows]],
        "gain": np.concatenate([moved["gain"], np.full(len(placed), np.nan)]),
    }
    with writing_to(output):
        pd.DataFrame(columns).to_csv(output, index=False)
    console.print(
        f"{len(table):,} facilities: {len(moved['row']):,} to move, "
        f"{len(placed):,} without a mode today placed, "
        f"{(allocation.modes == MODES.index('responsible')).sum():,} in responsible mode, "
        f"gain {moved['gain'].sum():,.2f}m"
    )
    for budget in budgets:
        prices = allocation.prices[budget.name]
        for label, limit, price in zip(budget.labels, budget.limit, prices, strict=True):
            where = "" if label == "book" else f" in {label}"
            console.print(
                f"  {budget.name}{where}: at most {limit:,.1f}; one more is worth {price:,.3f}m",
                highlight=False,
            )
    if allocation.gap:
        console.print(
            f"  the best allocation within these bounds is worth at most {allocation.gap:,.3f}m more"
        )
    console.print(f"wrote {output}")


def _with_book_column(table: pd.DataFrame, book: Path | None, column: str, id_column: str) -> pd.DataFrame:
    """The scores with the book's ``column``, joined on ``id_column`` (the capacity's groups).

    Raises:
        InputError: no book, the book lacks either column, or a scored facility is not in it.
    """
    from crm_modes.data.io import read_table

    if book is None:
        raise InputError(
            f"capacity per {column!r}: the scores have no column {column!r}; "
            "pass --book, the table that was scored"
        )
    source = read_table(book)
    absent = [name for name in (id_column, column) if name not in source]
    if absent:
        raise InputError(f"{book}: missing columns {absent}")
    groups = source.drop_duplicates(id_column, keep="last").set_index(id_column)[column]
    joined = table[id_column].map(groups)
    unmatched = int((~table[id_column].isin(groups.index)).sum())
    if unmatched:
        raise InputError(f"{book}: {unmatched:,} scored facilities are not in it (joined on {id_column})")
    return table.assign(**{column: joined.to_numpy()})
