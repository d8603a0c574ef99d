"""MLflow runs at the edge: what a training or cross-validation run records besides its models."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow


def git_commit() -> str:
    """The commit of the working tree the code runs from, or ``unknown``."""
    try:
        here = Path(__file__).resolve().parent
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10, check=True
        )
        return result.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class FoldLogger:
    """Logs cross-validation folds on an open MLflow run, each as it finishes (see :func:`evaluation_run`)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.logged: dict[str, int] = {}

    def __call__(self, model: str, figures: dict[str, float]) -> None:
        step = self.logged.get(model, 0)
        mlflow.log_metrics(
            {f"{model}.fold_{key}": value for key, value in figures.items() if key not in ("repeat", "fold")},
            step=step,
        )
        self.logged[model] = step + 1

    def summary(self, results: list) -> None:
        """Each model's mean and spread over the folds, and its fold table."""
        for result in results:
            mlflow.log_metrics({f"{result.model}.cv_{key}": value for key, value in result.summary().items()})
            mlflow.log_text(result.table().to_csv(index=False), f"cross_validation/{result.model}_folds.csv")


@contextmanager
def evaluation_run(config_name: str, config_text: str, *, folds: int, repeats: int) -> Iterator[FoldLogger]:
    """An MLflow run for ``crm-modes evaluate`` that folds are logged on as they finish.

    A run stopped halfway (an error, a kill) keeps the folds logged so far; MLflow marks it
    failed or killed.
    """
    with mlflow.start_run(run_name="evaluate") as run:
        mlflow.log_params({"cv_folds": folds, "cv_repeats": repeats, "git_commit": git_commit()})
        mlflow.log_text(config_text, f"config/{config_name}")
        yield FoldLogger(run.info.run_id)
