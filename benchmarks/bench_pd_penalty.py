"""How strongly to penalize the PD model, chosen on the training rows only.

Run: ``.venv/bin/python benchmarks/bench_pd_penalty.py [--seeds 42 7 11] [--values 1.0 0.01 0.003 0.001]``.

For each seed's default book (``configs/train.yaml``, that seed) and each candidate ``C`` of the
PD model's logistic regression, the whole PD pipeline (features and estimator) is fitted on the
training rows up to two years before their end and scored on their last year ("forward": the
12-month label horizon lies between), the way the out-of-time evaluation itself is split. The
evaluation year's AUC and calibration in the large are reported beside it, to show what the
choice does, not to choose it. The oracle AUC on the same evaluation rows is the ceiling.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import save

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 11])
    parser.add_argument("--values", type=float, nargs="+", default=[1.0, 0.01, 0.003, 0.001])
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import pandas as pd

    from crm_modes.training.config import load_training_config
    from crm_modes.training.data_source import load_training_table
    from crm_modes.training.fit import fit_model
    from crm_modes.training.trainer import model_split, training_rows

    base = load_training_config(REPO / "configs" / "train.yaml")
    results = []
    for seed in args.seeds:
        config = base.model_copy(update={"data": base.data.model_copy(update={"seed": seed})})
        table = load_training_table(config).table
        model = config.models["default"]
        split, _ = model_split(table, config, model)
        fit_rows, _ = training_rows(split, model)
        train, evaluation = table[fit_rows], table[split.evaluation]
        dates = pd.to_datetime(train[config.split.date_column])
        last_year = dates > dates.max() - pd.DateOffset(years=1)
        inner_fit = dates <= dates.max() - pd.DateOffset(years=2)
        y_inner = train.loc[last_year, model.target].to_numpy()
        y_evaluation = evaluation[model.target].to_numpy()
        oracle = float(roc_auc_score(y_evaluation, evaluation["oracle_default_probability"]))
        for value in args.values:
            params = {**model.estimator.params, "C": value}
            candidate = model.model_copy(
                update={"estimator": model.estimator.model_copy(update={"params": params})}
            )
            inner = fit_model(
                "default", candidate, config.features, train[inner_fit.to_numpy()], train.iloc[:0]
            )
            forward = roc_auc_score(y_inner, inner.pipeline.predict_proba(train[last_year.to_numpy()])[:, 1])
            whole = fit_model("default", candidate, config.features, train, train.iloc[:0])
            predicted = whole.pipeline.predict_proba(evaluation)[:, 1]
            results.append(
                {
                    "seed": seed,
                    "C": value,
                    "forward_auc": round(float(forward), 4),
                    "evaluation_auc": round(float(roc_auc_score(y_evaluation, predicted)), 4),
                    "oracle_auc": round(oracle, 4),
                    "calibration_in_the_large": round(
                        float(np.mean(predicted) / np.mean(y_evaluation) - 1), 4
                    ),
                }
            )
            print(results[-1], flush=True)
    chosen = {
        seed: max((r for r in results if r["seed"] == seed), key=lambda r: r["forward_auc"])["C"]
        for seed in args.seeds
    }
    save("pd_penalty", {"runs": results, "best_forward_C_by_seed": chosen})


if __name__ == "__main__":
    main()
