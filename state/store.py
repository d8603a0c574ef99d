"""Opening the state store: which database, the driver, and its schema brought up to date.

The URL comes from ``--state``, else ``CRM_MODES_STATE_URL``, else a SQLite file
``crm_state.db`` in the working directory (beside MLflow's default store; it needs no
server). ``postgresql://user@host/db`` uses psycopg 3. Opening a store applies any
migration it lacks (Alembic, ``migrations/versions``), under a lock on PostgreSQL so that
two processes opening a new database at once do not both build it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.exc import OperationalError

from crm_modes.shared.errors import InputError

DEFAULT_URL = "sqlite:///crm_state.db"
URL_VARIABLE = "CRM_MODES_STATE_URL"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "crm_state_version"
#: Any number; PostgreSQL advisory locks are keyed by one.
_MIGRATION_LOCK = 7_314_159_265


def state_url(given: str | None = None) -> str:
    """``given``, else ``CRM_MODES_STATE_URL``, else the SQLite default."""
    return given or os.environ.get(URL_VARIABLE) or DEFAULT_URL


def _driver_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def connect(url: str | None = None, *, migrate: bool = True) -> Engine:
    """An engine on the state store at ``url`` (see :func:`state_url`), migrated to the newest revision.

    Raises:
        ValueError: the URL names no database this project supports, or it cannot be reached.
    """
    given = state_url(url)
    url = _driver_url(given)
    shown = given if "://" not in given else make_url(given).render_as_string(hide_password=True)
    if not url.startswith(("sqlite:", "postgresql+psycopg:")):
        raise InputError(f"state store {shown!r}: use sqlite:///PATH or postgresql://USER@HOST[:PORT]/DB")
    # hide_parameters: a failed statement's message names the statement, never the client data
    # it carried (facility ids, alert rows), so that a fault can be logged and shown safely.
    if url.startswith("sqlite:"):
        engine = create_engine(url, connect_args={"timeout": 60}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_settings)
    else:
        engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
    if migrate:
        try:
            upgrade(engine)
        except OperationalError as error:
            raise InputError(f"state store {shown}: cannot open it: {error.orig}") from None
    return engine


def _sqlite_settings(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the one writer
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; concurrent openers do it once."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    for attempt in range(5):
        try:
            with engine.begin() as connection:
                if engine.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
            return
        except OperationalError:
            if engine.dialect.name != "sqlite" or attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))  # another process was building the same new file


def revision(engine: Engine) -> str | None:
    """The schema revision the store is at (None: empty)."""
    with engine.connect() as connection:
        return MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()
