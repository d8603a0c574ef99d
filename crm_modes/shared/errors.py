"""The error types every command maps to an exit code, in one place (:func:`crm_modes.cli.run`).

- :class:`InputError`: a problem with what a user gave (a file, a table, a configuration, an
  option). Raised anywhere in the project, it reaches the command line as a message and exit
  code 2, without a traceback: the message names the problem, and the user can fix it. (It is a
  ``ValueError``, so scikit-learn's contract that a bad parameter raises ``ValueError`` still
  holds for the project's estimators.)
- :class:`RefusedError`: a job that declined to act and says why (a promotion that failed its
  gates, a champion that moved meanwhile, a snapshot another recorder holds): a message and exit
  code 1, nothing changed.

Any other exception is a fault of the program: it keeps its traceback and the command exits 1,
so that it is reported, not mistaken for bad input.
"""

from __future__ import annotations


class InputError(ValueError):
    """A problem with the user's input, said in a message that names it (exit code 2)."""


class RefusedError(RuntimeError):
    """A job that declined to act, said in a message (exit code 1); nothing was changed."""

    #: What the command line prints before the message.
    what = "refused"
