"""Progress of a long command that shows on a terminal and in a log alike.

On a terminal, a rich progress bar (or a spinner when the total is unknown). Anywhere else (a
scheduler's log, a pipe, CI) a terminal's live display draws nothing, and a job that runs for
twenty minutes would look dead; so there a plain line is printed at most every 10 seconds
(``$CRM_MODES_PROGRESS_SECONDS``), saying what is done, the rate and the time left::

    12:04:31 cross-validating: 3 of 10 folds (30%), 0.7 folds/min, about 10 min left (bank_churn, fold 4/5)

Stage messages (``stage("fitting churn")``) are printed once each, as they come.
"""

from __future__ import annotations

import os
import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from crm_modes.shared.errors import InputError

#: Seconds between two plain progress lines, at most (``CRM_MODES_PROGRESS_SECONDS`` overrides it).
EVERY = 10.0
INTERVAL_VARIABLE = "CRM_MODES_PROGRESS_SECONDS"


def interval() -> float:
    """Seconds between two plain progress lines: ``$CRM_MODES_PROGRESS_SECONDS``, else :data:`EVERY`.

    Raises:
        InputError: the variable is set to something other than a number of seconds >= 0.
    """
    given = os.environ.get(INTERVAL_VARIABLE)
    if given is None or not given.strip():
        return EVERY
    try:
        seconds = float(given)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also catches nan
        raise InputError(f"{INTERVAL_VARIABLE}={given!r}: expected a number of seconds >= 0")
    return seconds


class JobProgress:
    """Progress of ``label`` over ``total`` ``unit`` (None: unknown); a context manager.

    Args:
        console: where to print (its ``is_terminal`` decides bar or lines).
        label: what the job does, e.g. ``"scoring"``.
        total: how many units the job will do, when known.
        unit: what is counted (``"rows"``, ``"folds"``).
        every: seconds between two plain lines, at most (default: :func:`interval`).
    """

    def __init__(
        self,
        console: Console,
        label: str,
        *,
        total: int | None = None,
        unit: str = "rows",
        every: float | None = None,
    ) -> None:
        self.console, self.label, self.total, self.unit = console, label, total, unit
        self.every = interval() if every is None else every
        self.done = 0
        self.note = ""
        self.started = self.last_line = time.monotonic()
        self._bar: Progress | None = None
        self._task = None

    def __enter__(self) -> JobProgress:
        self.started = self.last_line = time.monotonic()
        if self.console.is_terminal:
            self._bar = Progress(
                SpinnerColumn(),
                TextColumn(self.label),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("", total=self.total)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, error, traceback)

    def advance(self, count: int = 1, note: str | None = None) -> None:
        """``count`` more units done (``note``: what is being done now, shown beside)."""
        self.done += count
        if note is not None:
            self.note = note
        if self._bar is not None:
            self._bar.update(self._task, advance=count, description=self.note)
            return
        now = time.monotonic()
        if now - self.last_line >= self.every:
            self.last_line = now
            self.console.print(self.line(now), highlight=False, soft_wrap=True)

    def stage(self, message: str) -> None:
        """A new stage of the job: shown beside the bar, or printed as a line of its own."""
        self.note = message
        if self._bar is not None:
            self._bar.update(self._task, description=message)
        else:
            self.console.print(
                f"{time.strftime('%H:%M:%S')} {self.label}: {message}", highlight=False, soft_wrap=True
            )

    def line(self, now: float | None = None) -> str:
        """The plain progress line: done, share, rate, time left, and the current note."""
        now = time.monotonic() if now is None else now
        elapsed = max(now - self.started, 1e-9)
        per_minute = self.unit != "rows"
        rate = self.done / elapsed * (60 if per_minute else 1)
        rate_text = f"{rate:,.1f} {self.unit}/min" if per_minute else f"{rate:,.0f} {self.unit}/s"
        parts = [f"{self.done:,}" + (f" of {self.total:,}" if self.total else "") + f" {self.unit}"]
        if self.total:
            parts[0] += f" ({self.done / self.total:.0%})"
        parts.append(rate_text)
        if self.total and self.done:
            left = (self.total - self.done) * elapsed / self.done
            parts.append(f"about {_duration(left)} left")
        note = f" ({self.note})" if self.note else ""
        return f"{time.strftime('%H:%M:%S')} {self.label}: " + ", ".join(parts) + note


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
