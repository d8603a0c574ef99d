"""Commands about the installation itself: the configuration reference and the machine."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from crm_modes import __version__
from crm_modes.cli.app import Threads, app, configure_threads, console
from crm_modes.shared.errors import InputError


@app.command("config-schema")
def config_schema(
    kind: Annotated[
        str,
        typer.Argument(help="training, features, monitoring, alert-policy or economics."),
    ] = "training",
    markdown: Annotated[
        bool,
        typer.Option("--markdown", help="Every key of every kind as the documentation's reference tables."),
    ] = False,
) -> None:
    """Print the JSON Schema of a kind of configuration file: every key, its type, default and meaning."""
    from crm_modes.cli.config_reference import json_schema, kinds
    from crm_modes.cli.config_reference import markdown as reference

    if markdown:
        print(reference())
        return
    if kind not in kinds():
        raise InputError(f"unknown kind {kind!r}; use one of {list(kinds())}")
    print(json_schema(kind))


@app.command()
def info(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    threads: Threads = None,
) -> None:
    """The versions, the CPUs this process may use and its thread pools, as the libraries report them."""
    configured = configure_threads(threads)  # first: the wait policy must be set before OpenMP loads
    import lightgbm  # loads LightGBM's OpenMP runtime
    import numpy  # noqa: F401 - loads BLAS
    import sklearn
    from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: F401 - loads OpenMP

    from crm_modes.shared.threads import WAIT_POLICY, available_cpus, thread_pools

    configure_threads(threads)  # limit the pools that the imports above just loaded
    report = {
        "crm_modes": __version__,
        "scikit_learn": sklearn.__version__,
        "lightgbm": lightgbm.__version__,
        "available_cpus": available_cpus(),
        "threads": configured,
        "omp_wait_policy": os.environ.get(WAIT_POLICY),
        "thread_pools": thread_pools(),
    }
    if as_json:
        console.print_json(json.dumps(report))
        return
    for key, value in report.items():
        console.print(f"{key}: {value}")
