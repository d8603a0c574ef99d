"""The propensity each decision records, against the out-of-time year it is later read on.

For each seed the default configuration's book (configs/train.yaml, 400,000 rows) is split as
training splits it. Each candidate is fitted on the committee model's training months, with the
committee model's features less the readings the mode moves, and calibrated per mode on its
calibration months (training/propensity.fit_recorded_propensity); the committee model itself, as
training fits it, is the candidate a bundle recorded before. Each is judged on the outcome models'
evaluation year (training/policy_report.evaluation_rows: facilities the models have seen, as a
bank's later off-policy evaluation of its recorded decisions sees them) by every mode's mean
inverse-propensity weight, ``mean(1[a = m] / p(m | x))``, one when the probabilities are right,
with the value gate's floor. Fit times are wall-clock seconds of one fit.

    .venv/bin/python benchmarks/bench_recorded_propensity.py [--seeds 42 7 11]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import save

SEEDS = (42, 7, 11)
TARGET = (0.9, 1.1)

#: The candidates: LightGBM parameters, each calibrated on the calibration months.
CANDIDATES: dict[str, dict[str, object]] = {
    "the report's cross-fitted settings (60 trees, 31 leaves, 500 a leaf)": {
        "n_estimators": 60,
        "learning_rate": 0.1,
        "num_leaves": 31,
        "min_child_samples": 500,
        "reg_lambda": 1.0,
    },
    "60 trees, 7 leaves, 20,000 a leaf": {
        "n_estimators": 60,
        "learning_rate": 0.1,
        "num_leaves": 7,
        "min_child_samples": 20_000,
        "reg_lambda": 1.0,
    },
    "30 trees, 7 leaves, 20,000 a leaf": {
        "n_estimators": 30,
        "learning_rate": 0.1,
        "num_leaves": 7,
        "min_child_samples": 20_000,
        "reg_lambda": 1.0,
    },
    "30 trees, 7 leaves, 5,000 a leaf (shipped)": {
        "n_estimators": 30,
        "learning_rate": 0.1,
        "num_leaves": 7,
        "min_child_samples": 5_000,
        "reg_lambda": 1.0,
    },
}


def judge_seed(seed: int) -> dict[str, object]:

    from crm_modes.data.schema import MODES
    from crm_modes.models.advisor import in_mode_order
    from crm_modes.training.config import EstimatorConfig, load_training_config
    from crm_modes.training.data_source import load_training_table
    from crm_modes.training.fit import fit_model
    from crm_modes.training.off_policy import mode_weights
    from crm_modes.training.policy_report import evaluation_rows
    from crm_modes.training.propensity import fit_recorded_propensity
    from crm_modes.training.trainer import model_split, training_rows

    config = load_training_config("configs/train.yaml")
    config = config.model_copy(update={"data": config.data.model_copy(update={"seed": seed})})
    table = load_training_table(config).table
    split, _ = model_split(table, config, config.models["mode"])
    later = evaluation_rows(config, table)
    applied = later["assigned_mode"].astype(str).map(MODES.index).to_numpy()
    floor = config.advisor.value_gate.propensity_floor

    def weights(pipeline: object) -> dict[str, float]:
        return mode_weights(applied, in_mode_order(pipeline.predict_proba(later), pipeline.classes_), floor)

    results: dict[str, dict[str, object]] = {}
    committee = config.models["mode"].model_copy(update={"baseline": False})
    fit_rows, _ = training_rows(split, committee)
    started = time.perf_counter()
    pipeline = fit_model("mode", committee, config.features, table[fit_rows], table.iloc[:0]).pipeline
    results["the committee model (recorded before)"] = {
        "fit_seconds": round(time.perf_counter() - started, 1),
        "mean_weight_by_mode": weights(pipeline),
    }
    for name, params in CANDIDATES.items():
        estimator = EstimatorConfig(type="lightgbm", params=params)
        candidate = config.model_copy(
            update={"advisor": config.advisor.model_copy(update={"recorded_propensity": estimator})}
        )
        started = time.perf_counter()
        pipeline = fit_recorded_propensity(candidate, table, split)
        results[name] = {
            "fit_seconds": round(time.perf_counter() - started, 1),
            "mean_weight_by_mode": weights(pipeline),
        }
    print(seed, {name: result["mean_weight_by_mode"] for name, result in results.items()}, flush=True)
    return {
        "seed": seed,
        "training_rows": int(split.train.sum()),
        "calibration_rows": int(split.calibration.sum()),
        "evaluation_rows": len(later),
        "candidates": results,
    }


def summary(runs: list[dict[str, object]]) -> dict[str, object]:
    names = list(runs[0]["candidates"])
    ranges = {}
    for name in names:
        weights = [w for run in runs for w in run["candidates"][name]["mean_weight_by_mode"].values()]
        ranges[name] = [min(weights), max(weights)]
    shipped = next(name for name in names if "shipped" in name)
    return {
        "mean_weight_range": ranges,
        "shipped": shipped,
        "shipped_weight_range": ranges[shipped],
        "shipped_within_target": TARGET[0] <= ranges[shipped][0] and ranges[shipped][1] <= TARGET[1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    seeds = parser.parse_args().seeds
    runs = [judge_seed(seed) for seed in seeds]
    save(
        "recorded_propensity",
        {
            "config": "configs/train.yaml (400,000 rows) with each seed",
            "seeds": seeds,
            "target": list(TARGET),
            "summary": summary(runs),
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
