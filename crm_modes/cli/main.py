"""The ``crm-modes`` console script: every command group, and one rule for errors.

Exit codes, for a scheduler to act on:

- 0: done;
- 1: a job refused to act (:class:`~crm_modes.shared.errors.RefusedError`: a failed promotion gate,
  a champion moved meanwhile, a snapshot another recorder holds), a monitoring figure crossed an
  "act" threshold, or a fault of the program (with its traceback);
- 2: a problem with what the user gave (:class:`~crm_modes.shared.errors.InputError`), said in a
  message that names it, without a traceback.
"""

from __future__ import annotations

# Imported for their commands, which register themselves on the application.
from crm_modes.cli import book, memory, modelling, monitoring, scoring, system  # noqa: F401
from crm_modes.cli.app import app, errors
from crm_modes.shared.errors import InputError, RefusedError

EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2


def run() -> None:
    """Run the application; map the project's error types to their messages and exit codes."""
    try:
        app()
    except InputError as error:
        errors.print(f"[bold red]error:[/] {error}", highlight=False)
        raise SystemExit(EXIT_BAD_INPUT) from None
    except RefusedError as refused:
        errors.print(f"{refused.what}: {refused}", highlight=False)
        raise SystemExit(EXIT_REFUSED) from None
