"""Faults of the environment a command cannot fix (the state store's database failing): one line
for the user, the traceback in a log file.

The log file is ``$CRM_MODES_LOG_DIR/faults.log``, else ``$XDG_STATE_HOME/crm-modes/faults.log``
(``~/.local/state/crm-modes/faults.log``). Statements appear there without their parameters (the
state store's engines hide them), so no client data is written.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import traceback
from pathlib import Path

#: The database drivers whose own warnings (a copy they could not end on a lost connection, say)
#: belong with the fault's traceback, not on the user's screen beside its one line.
DRIVER_LOGGERS = ("psycopg",)


def is_store_fault(error: BaseException) -> bool:
    """Whether ``error`` is the database's (SQLAlchemy's errors, and the drivers' under them)."""
    return type(error).__module__.split(".")[0] in ("sqlalchemy", "psycopg", "sqlite3")


def describe(error: BaseException) -> str:
    """One line: the driver's error type and the first line of its message, no statement."""
    cause = getattr(error, "orig", None) or error
    first = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first[:300]}"


def log_path() -> Path:
    folder = os.environ.get("CRM_MODES_LOG_DIR")
    if folder:
        return Path(folder) / "faults.log"
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "crm-modes" / "faults.log"


def log_fault(error: BaseException) -> str:
    """Append the traceback of ``error`` to the log file; return where (or why it could not be)."""
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write(f"--- {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC, pid {os.getpid()}\n")
            handle.write("".join(traceback.format_exception(error)))
    except OSError as failure:
        return f"not written: {failure.strerror}"
    return str(path)


class _FaultLogHandler(logging.Handler):
    """Appends a record to the fault log (:func:`log_path`), opened for each record: rare, and only
    when something already went wrong."""

    def emit(self, record: logging.LogRecord) -> None:
        path = log_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as handle:
                handle.write(f"--- {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC, pid {os.getpid()}\n")
                handle.write(self.format(record) + "\n")
        except OSError:
            pass  # the fault's own line still reaches the user


def drivers_to_fault_log() -> None:
    """Send the database drivers' warnings to the fault log instead of the screen."""
    for name in DRIVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(handler, _FaultLogHandler) for handler in logger.handlers):
            logger.addHandler(_FaultLogHandler(logging.WARNING))
        logger.propagate = False
