"""Train all configured models end to end and record time, peak memory and quality.

Run: ``.venv/bin/python benchmarks/bench_train.py [--config configs/train.yaml] [--rows N] [--name NAME]``.
``--rows`` overrides the configuration's generated book size; ``--beside-busy-core`` runs a
Python busy loop beside the training, as another job on a shared machine would. The run is the real one:
data generation, fitting, calibration, evaluation, permutation importance, plots, model
cards, MLflow logging and registration, into a temporary SQLite store.
Targets on the 2-core reference machine: 1,000,000 rows under 5 minutes (and within 60 s), the
default configuration within 30 s. Quality
targets (default configuration): mode accuracy against the noiseless policy >= 0.97; churn
and PD AUC within 0.02 of the oracle AUC on the same rows; PD ECE <= 0.01.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings

from _report import peak_memory_mib, save


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/train.yaml")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--name", default=None, help="result file name (default: train_<rows>)")
    parser.add_argument(
        "--beside-busy-core",
        action="store_true",
        help="run a Python busy loop beside the training (a shared machine's other job)",
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    os.environ.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")

    import mlflow

    from crm_modes.training.config import load_training_config
    from crm_modes.training.trainer import train

    config = load_training_config(args.config)
    if args.rows is not None:
        config = config.model_copy(
            update={"data": config.data.model_copy(update={"generate_rows": args.rows})}
        )
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        mlflow.set_tracking_uri(f"sqlite:///{folder}/mlflow.db")
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.beside_busy_core else None
        try:
            started = time.perf_counter()
            report = train(config)
            seconds = time.perf_counter() - started
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()

    models = {}
    for outcome in report.outcomes:
        entry = {"counts": outcome.counts, "calibration": outcome.calibration}
        for key in ("auc", "pr_auc", "ece", "brier", "accuracy", "macro_f1"):
            if key in outcome.metrics:
                entry[key] = round(outcome.metrics[key], 4)
                if key in outcome.benchmark_metrics:  # a logistic model is its own benchmark
                    entry[f"benchmark_{key}"] = round(outcome.benchmark_metrics[key], 4)
                entry[f"oracle_{key}"] = round(outcome.oracle_metrics[key], 4)
        if "auc" in outcome.metrics:
            entry["auc_gap_to_oracle"] = round(outcome.oracle_metrics["auc"] - outcome.metrics["auc"], 4)
        models[outcome.name] = entry
    checks = {
        "mode_accuracy_vs_policy_at_least_0.97": models["mode"]["oracle_accuracy"] >= 0.97,
        "churn_auc_within_0.02_of_oracle": models["churn"]["auc_gap_to_oracle"] <= 0.02,
        "pd_auc_within_0.02_of_oracle": models["default"]["auc_gap_to_oracle"] <= 0.02,
        "pd_ece_at_most_0.01": models["default"]["ece"] <= 0.01,
        "under_5_minutes": seconds < 300,
    }
    rows = config.data.generate_rows
    # Speed targets: the default configuration within 30 s, the three models on 1,000,000 rows within 60 s.
    if args.rows is None and args.config == "configs/train.yaml":
        checks["default_at_most_30_s"] = seconds <= 30
    elif rows == 1_000_000:
        checks["1m_rows_at_most_60_s"] = seconds <= 60
    save(
        args.name or f"train_{rows}",
        {
            "rows": rows,
            "beside_busy_core": args.beside_busy_core,
            "seconds": round(seconds, 1),
            "peak_memory_mib": round(peak_memory_mib(), 1),
            "models": models,
            "note": "oracle_accuracy of the mode model is its accuracy against the noiseless policy mode",
            "checks": checks,
        },
    )


if __name__ == "__main__":
    main()
