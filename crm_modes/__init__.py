"""crm-modes: relationship modes, churn and default risk for corporate and project lending."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("crm-modes")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
