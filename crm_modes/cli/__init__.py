"""The ``crm-modes`` command line: thin wrappers over the library, one module per command group."""

from crm_modes.cli.main import app, run

__all__ = ["app", "run"]
