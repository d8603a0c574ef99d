"""The value policy against the simulation's counterfactual truth, on the default configuration.

Trains configs/train.yaml (untimed) in a scratch MLflow store, then runs
`crm-modes policy-report` on its evaluation rows and records every figure: value_captured,
the value of each policy, the doubly robust estimate and interval against the truth.

    .venv/bin/python benchmarks/bench_value_policy.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import save

REPO = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("crm-modes")


def main() -> None:
    config = REPO / "configs" / "train.yaml"
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        subprocess.run(
            [CLI, "train", "--config", config], cwd=folder, env=env, check=True, capture_output=True
        )
        report_path = Path(folder) / "policy.json"
        subprocess.run(
            [CLI, "policy-report", "--config", config, "--json", report_path],
            cwd=folder,
            env=env,
            check=True,
            capture_output=True,
        )
        report = json.loads(report_path.read_text())
    save(
        "value_policy",
        {
            "config": "configs/train.yaml (400,000 rows, seed 42) + configs/economics.yaml",
            "targets": {"value_captured_at_least": 0.90, "dr_relative_error_within": 0.10},
            "met": {
                "value_captured": report["value_captured"] >= 0.90,
                "dr_within_10_percent": abs(report["dr_relative_error"]) <= 0.10,
                "dr_interval_covers_truth": report["dr_interval_covers_truth"],
            },
            "report": report,
        },
    )


if __name__ == "__main__":
    main()
