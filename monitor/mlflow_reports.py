"""Monitoring reports in MLflow: one monitoring run per model version, a report per invocation.

Every registered version monitored gets one run in the experiment ``crm-modes-monitoring``
(tagged with the version and the pinned URI); each ``crm-modes monitor`` adds its HTML and
JSON under ``reports/<UTC time>/`` and its headline figures as metrics at the next step, so
the run's metric charts show a version's drift over time.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import mlflow
from mlflow import MlflowClient

EXPERIMENT = "crm-modes-monitoring"
VERSION_TAG = "monitoring.model_version"


def headline(report: dict) -> dict[str, float]:
    """The figures charted per report: PSI of each score and mix, flags, and backtest figures."""
    stable = report["stability"]
    figures: dict[str, float] = {f"psi.{e['name']}": e["psi"] for e in stable["scores"] + stable["mixes"]}
    figures["psi.inputs_max"] = max((e["psi"] for e in stable["inputs"]), default=0.0)
    figures["flags.watch"] = sum(flag["level"] == "watch" for flag in report["flags"])
    figures["flags.act"] = sum(flag["level"] == "act" for flag in report["flags"])
    figures["rows_scored"] = report["rows_scored"]
    if report.get("backtest"):
        for name, overall in report["backtest"]["overall"].items():
            for key in ("auc", "calibration_in_the_large", "ece"):
                if overall[key] is not None:
                    figures[f"{name}.{key}"] = overall[key]
    return {key: float(value) for key, value in figures.items() if value is not None}


def log_report(report: dict, page: str) -> str:
    """Log ``report`` (JSON-safe) and its page on the model version's monitoring run; return the run id."""
    experiment = mlflow.set_experiment(EXPERIMENT)
    client = MlflowClient()
    version = report["model_version"]
    found = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`{VERSION_TAG}` = '{version}'", max_results=1
    )
    run_id = found[0].info.run_id if found else None
    stamp = time.strftime("%Y-%m-%dT%H-%M-%SZ", time.gmtime())
    with mlflow.start_run(run_id=run_id, run_name=None if run_id else f"monitoring {version}") as run:
        if run_id is None:
            mlflow.set_tags({VERSION_TAG: version, "monitoring.model_uri": report["model_uri"]})
        step = len(client.get_metric_history(run.info.run_id, "rows_scored"))
        mlflow.log_metrics(headline(report), step=step)
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "report.json").write_text(json.dumps(report, indent=1))
            (Path(folder) / "report.html").write_text(page)
            mlflow.log_artifacts(folder, artifact_path=f"reports/{stamp}")
        return run.info.run_id
