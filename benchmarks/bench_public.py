"""Cross-validated AUC, Brier and ECE on the public tables, each from its configuration alone.

Run: ``.venv/bin/python benchmarks/bench_public.py [--cv 5] [--repeats 1]`` (the same as
``crm-modes evaluate --config configs/<table>.yaml --cv 5 --repeats R`` for each table,
without MLflow). Targets (5-fold AUC): German credit 0.80, Taiwan default 0.79, bank churn 0.87.

Each repeat is a complete K-fold cross-validation under its own shuffle of the rows, so
``auc_by_repeat`` shows how much the single K-fold figure moves with the shuffle alone
(repeat 1 is exactly ``crm-modes evaluate --cv K`` with the default seed); the headline
``auc_mean`` averages every fold of every repeat.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from _report import save

from crm_modes.training.config import load_training_config
from crm_modes.training.cross_validation import cross_validate
from crm_modes.training.data_source import load_training_table

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"german_credit": 0.80, "taiwan_credit_card": 0.79, "bank_churn": 0.87}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    tables = {}
    for name, target in TARGETS.items():
        config = load_training_config(REPO / "configs" / f"{name}.yaml")
        table = load_training_table(config).table
        started = time.perf_counter()
        (result,) = cross_validate(config, table, folds=args.cv, repeats=args.repeats)
        summary = {key: round(value, 4) for key, value in result.summary().items()}
        by_repeat = result.table().groupby("repeat")["auc"].mean()
        model = next(iter(config.models.values()))
        tables[name] = {
            "rows": len(table),
            "estimator": model.estimator.type,
            "tuning": model.tuning.enabled,
            "calibration": f"{model.calibration}, {model.calibration_folds}-fold cross-fitted"
            if model.calibration_folds
            else model.calibration,
            **summary,
            "auc_by_repeat": [round(float(value), 4) for value in by_repeat],
            "seconds": round(time.perf_counter() - started, 1),
            "target_auc": target,
            "meets_target": summary["auc_mean"] >= target,
        }
        print(name, summary["auc_mean"], "by repeat", tables[name]["auc_by_repeat"], "target", target)
    save("public_tables", {"cv_folds": args.cv, "cv_repeats": args.repeats, "tables": tables})


if __name__ == "__main__":
    main()
