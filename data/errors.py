"""The one error type for problems with what a user gave: a file, a table, a configuration, an option.

Raised anywhere in the project, an :class:`InputError` reaches the command line as a message and
exit code 2, without a traceback: the message names the problem, and the user can fix it. Any other
exception is a fault of the program: it keeps its traceback and the command exits 1, so that it
is reported, not mistaken for bad input. (It is a ``ValueError``, so scikit-learn's contract that
a bad parameter raises ``ValueError`` still holds for the project's estimators.)
"""

from __future__ import annotations


class InputError(ValueError):
    """A problem with the user's input, said in a message that names it (exit code 2)."""
