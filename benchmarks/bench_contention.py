"""Jobs sharing the machine: each alone, then two copies at once, then beside a training job.

Runs the real command line as separate processes, the way a scheduler or a second user would:

- ``train``: ``crm-modes train --config configs/train.yaml`` (400,000 rows);
- ``evaluate``: ``crm-modes evaluate --config configs/bank_churn.yaml --cv 3`` (public table);
- ``score``: ``crm-modes score`` of a 200,000-row book with the champion trained first (untimed).

Target: each copy run beside another takes at most 2.5x its time alone (a fair share on a
2-core machine is 2x). Before thread control, two `evaluate` runs took 527 s against 12 s alone.

    .venv/bin/python benchmarks/bench_contention.py [--jobs train,evaluate,score]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import save

REPO = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("crm-modes"))
LIMIT = 2.5


def commands(folder: Path) -> dict[str, list[str]]:
    return {
        "train": [CLI, "train", "--config", str(REPO / "configs" / "train.yaml")],
        "evaluate": [CLI, "evaluate", "--config", str(REPO / "configs" / "bank_churn.yaml"), "--cv", "3"],
        "score": [
            CLI,
            "score",
            "--model",
            "models:/crm-advisor@champion",
            "--input",
            str(folder / "book.parquet"),
            "--output",
            "{out}",
        ],
    }


def run_together(jobs: list[list[str]], folder: Path, env: dict[str, str]) -> list[float]:
    """Start every job at once; return each one's wall time."""
    started = time.perf_counter()
    processes = []
    for index, job in enumerate(jobs):
        argv = [
            part.replace("{out}", str(folder / f"scores-{index}-{time.time_ns()}.parquet")) for part in job
        ]
        processes.append(
            subprocess.Popen(argv, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        )
    times = []
    for process in processes:
        _, stderr = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(stderr.decode()[-2000:])
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="train,evaluate,score")
    args = parser.parse_args()
    names = args.jobs.split(",")
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "OPENBLAS_", "MKL_"))},
            "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        if "score" in names:  # a champion to score with, and a book (untimed)
            for step in (
                [CLI, "generate", "--rows", "200000", "--seed", "3", "--out", str(folder / "book.parquet")],
                [CLI, "train", "--config", str(REPO / "configs" / "train.yaml")],
                [CLI, "promote", "--config", str(REPO / "configs" / "train.yaml")],
            ):
                subprocess.run(step, cwd=folder, env=env, check=True, capture_output=True)
        jobs = commands(folder)
        for name in names:
            alone = run_together([jobs[name]], folder, env)[0]
            pair = run_together([jobs[name], jobs[name]], folder, env)
            beside_training = run_together([jobs[name], jobs["train"]], folder, env)[0]
            worst = max(*pair, beside_training)
            results[name] = {
                "alone_s": round(alone, 1),
                "two_at_once_s": [round(t, 1) for t in pair],
                "beside_a_training_s": round(beside_training, 1),
                "worst_ratio": round(worst / alone, 2),
                f"within_{LIMIT}x": worst <= LIMIT * alone,
            }
            print(name, results[name], flush=True)
    save("contention", {"limit": f"each copy <= {LIMIT}x its time alone", "jobs": results})


if __name__ == "__main__":
    main()
