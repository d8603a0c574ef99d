"""The ``crm-modes`` console script: every command group, and one rule for errors.

Exit codes, for a scheduler to act on:

- 0: done;
- 1: a job refused to act (:class:`~crm_modes.shared.errors.RefusedError`: a failed promotion gate,
  a champion moved meanwhile, a snapshot another recorder holds), a monitoring figure crossed an
  "act" threshold, or a fault of the program (with its traceback);
- 2: a problem with what the user gave (:class:`~crm_modes.shared.errors.InputError`), said in a
  message that names it, without a traceback.

A fault of the state store (a connection dropped, a database gone) is a fault of the environment,
not of the program: one line naming it and exit 1, the traceback in a log file
(:func:`crm_modes.cli.faults.log_fault`), which names statements but never the data they carried.
"""

from __future__ import annotations

# Imported for their commands, which register themselves on the application.
from crm_modes.cli import book, memory, modelling, monitoring, scoring, system  # noqa: F401
from crm_modes.cli.app import app, errors
from crm_modes.cli.faults import describe, drivers_to_fault_log, is_store_fault, log_fault
from crm_modes.shared.errors import InputError, RefusedError

EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2


def run() -> None:
    """Run the application; map the project's error types to their messages and exit codes."""
    drivers_to_fault_log()
    try:
        app()
    except InputError as error:
        errors.print(f"[bold red]error:[/] {error}", highlight=False)
        raise SystemExit(EXIT_BAD_INPUT) from None
    except RefusedError as refused:
        errors.print(f"{refused.what}: {refused}", highlight=False)
        raise SystemExit(EXIT_REFUSED) from None
    except Exception as error:
        if not is_store_fault(error):
            raise
        errors.print(
            f"[bold red]state store fault:[/] {describe(error)} (traceback: {log_fault(error)})",
            highlight=False,
        )
        raise SystemExit(EXIT_REFUSED) from None
