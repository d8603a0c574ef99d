"""LightGBM beside HistGradientBoosting and logistic regression, on the same folds and rows.

Run: ``.venv/bin/python benchmarks/bench_estimators.py [--cv 5] [--book-rows 400000]``.

- Public tables (German credit, Taiwan default, bank churn): each configuration's own features,
  calibration and split into K stratified folds (the folds of ``crm-modes evaluate --cv K``),
  refit with the configured estimator and with plain HistGradientBoosting, plain LightGBM (each
  library's defaults) and logistic regression; AUC per fold, mean, and fit seconds. The check:
  the configured estimator reaches at least the best plain model minus 0.003 AUC.
- The synthetic book of ``configs/train.yaml``: its out-of-time split; the committee (mode)
  model with HistGradientBoosting and LightGBM (accuracy against the noiseless policy, macro F1),
  churn and PD with every type (AUC).

The boosting parameters are matched: the configured HistGradientBoosting parameters are
translated to LightGBM's names (rounds, learning rate, leaves or depth, minimum leaf size,
L2), so that the comparison is of the libraries, not of two settings.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from _report import save

from crm_modes.shared.threads import configure_threads
from crm_modes.training.config import EstimatorConfig, TrainingConfig, load_training_config
from crm_modes.training.cross_validation import cross_validate
from crm_modes.training.data_source import load_training_table
from crm_modes.training.trainer import fit_and_evaluate

REPO = Path(__file__).resolve().parents[1]
PUBLIC = ("german_credit", "taiwan_credit_card", "bank_churn")
#: HistGradientBoosting parameter -> the LightGBM parameters of the same meaning. HGB's only
#: constraint on a categorical split is its leaf size and L2, so LightGBM's extra regularization
#: of categorical splits (100 rows per category group, cat_l2 10) is set to the same.
TRANSLATION = {
    "max_iter": ("n_estimators",),
    "learning_rate": ("learning_rate",),
    "max_leaf_nodes": ("num_leaves",),
    "max_depth": ("max_depth",),
    "min_samples_leaf": ("min_child_samples", "min_data_per_group"),
    "l2_regularization": ("reg_lambda", "cat_l2"),
}
#: ``lightgbm``: the translation above; ``lightgbm_own_categorical``: the same, with LightGBM's
#: own (stronger) regularization of categorical splits left at its defaults.
TYPES = ("hist_gradient_boosting", "lightgbm", "lightgbm_own_categorical", "logistic_regression")
BOOSTING = TYPES[:3]
#: Public tables: the configured estimator beside each library at its defaults, on the same folds.
PLAIN = ("hist_gradient_boosting", "lightgbm", "logistic_regression")
PUBLIC_TYPES = ("configured", *PLAIN)
HGB_DEFAULTS = {
    "max_iter": 100,
    "learning_rate": 0.1,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 20,
    "l2_regularization": 0.0,
}


def lightgbm_params(hgb: dict[str, object], *, own_categorical: bool = False) -> dict[str, object]:
    """LightGBM parameters equivalent to HistGradientBoosting's (its defaults where unset)."""
    params = {
        name: value
        for key, value in {**HGB_DEFAULTS, **hgb}.items()
        for name in TRANSLATION.get(key, ())
        if not (own_categorical and name in ("min_data_per_group", "cat_l2"))
    }
    if "max_depth" in hgb and "max_leaf_nodes" not in hgb:  # HGB's default 31 leaves, within the depth
        params["num_leaves"] = min(31, 2 ** int(hgb["max_depth"]))
    return params


def variants(
    config: TrainingConfig, name: str, types: tuple[str, ...], *, plain: bool = False
) -> dict[str, TrainingConfig]:
    """``config`` with model ``name``'s estimator replaced by each type (boosting parameters matched;
    ``plain``: each library's defaults); ``configured`` is the configuration's own estimator."""
    model = config.models[name]
    own = model.estimator
    hgb = own.params if own.type == "hist_gradient_boosting" and not plain else {}
    estimators = {
        "configured": own,
        "hist_gradient_boosting": EstimatorConfig(type="hist_gradient_boosting", params=hgb),
        "lightgbm": EstimatorConfig(type="lightgbm", params=lightgbm_params(hgb)),
        "lightgbm_own_categorical": EstimatorConfig(
            type="lightgbm", params=lightgbm_params(hgb, own_categorical=True)
        ),
        "logistic_regression": own
        if own.type == "logistic_regression"
        else EstimatorConfig(type="logistic_regression", params={"C": 1.0, "max_iter": 2000}),
    }
    if plain:  # LightGBM's own defaults (the estimator's differ only in rounds: 200)
        estimators["lightgbm"] = EstimatorConfig(type="lightgbm", params={"n_estimators": 100})
    out = {}
    for kind in types:
        changed = model.model_copy(update={"estimator": estimators[kind], "baseline": False})
        out[kind] = config.model_copy(update={"models": {name: changed}})
    return out


def public_tables(folds: int) -> dict[str, object]:
    results: dict[str, object] = {}
    for table_name in PUBLIC:
        config = load_training_config(REPO / "configs" / f"{table_name}.yaml")
        table = load_training_table(config).table
        (name,) = config.models
        figures = {}
        for kind, variant in variants(config, name, PUBLIC_TYPES, plain=True).items():
            started = time.perf_counter()
            (result,) = cross_validate(variant, table, folds=folds)
            aucs = result.table()["auc"].to_numpy()
            figures[kind] = {
                "auc_mean": round(float(aucs.mean()), 4),
                "auc_by_fold": [round(float(a), 4) for a in aucs],
                "seconds": round(time.perf_counter() - started, 2),
            }
            print(table_name, kind, figures[kind]["auc_mean"], figures[kind]["seconds"], "s", flush=True)
        best = max(PLAIN, key=lambda kind: figures[kind]["auc_mean"])
        results[table_name] = {
            "rows": len(table),
            "folds": folds,
            "configured_estimator": config.models[name].estimator.type,
            "estimators": figures,
            "best_plain": best,
            "configured_minus_best_plain": round(
                figures["configured"]["auc_mean"] - figures[best]["auc_mean"], 4
            ),
            "configured_at_least_best_plain_minus_0.003": figures["configured"]["auc_mean"]
            >= figures[best]["auc_mean"] - 0.003,
        }
    return results


def synthetic_book(rows: int) -> dict[str, object]:
    config = load_training_config(REPO / "configs" / "train.yaml")
    config = config.model_copy(update={"data": config.data.model_copy(update={"generate_rows": rows})})
    table = load_training_table(config).table
    results: dict[str, object] = {"rows": rows}
    for name, types in (
        ("mode", BOOSTING),
        ("churn", TYPES),
        ("default", TYPES),
    ):
        figures = {}
        for kind, variant in variants(config, name, types).items():
            started = time.perf_counter()
            _, evaluation, _, _ = fit_and_evaluate(name, variant, table)
            seconds = time.perf_counter() - started
            metrics = evaluation.metrics
            keep = ("accuracy", "macro_f1") if name == "mode" else ("auc", "ece", "brier")
            figures[kind] = {key: round(float(metrics[key]), 4) for key in keep if key in metrics}
            if name == "mode" and evaluation.oracle_metrics:  # against the noiseless policy
                figures[kind]["policy_accuracy"] = round(float(evaluation.oracle_metrics["accuracy"]), 4)
            figures[kind]["fit_and_evaluate_seconds"] = round(seconds, 2)
            print("book", name, kind, figures[kind], flush=True)
        results[name] = figures
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--book-rows", type=int, default=400_000)
    parser.add_argument("--skip-book", action="store_true")
    args = parser.parse_args()
    configure_threads(1)  # every library one thread, as the command line runs by default
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    report: dict[str, object] = {"public_tables": public_tables(args.cv)}
    if not args.skip_book:
        report["synthetic_book"] = synthetic_book(args.book_rows)
    save("estimators", report)


if __name__ == "__main__":
    main()
