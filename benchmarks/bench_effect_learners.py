"""Mode-effect learners on the same rows: the S-learner the bundle ships against a DR-learner.

For each seed the default configuration (configs/train.yaml, 400,000 rows) is trained in a scratch
MLflow store (untimed). On its outcome models' training rows:

- nuisances, cross-fitted by client (3 folds): churn and PD probabilities in every mode from the
  configured logistic models refit without the domain's order, and the committee's propensity
  (training/policy_report.cross_fitted_propensity: calibrated out of fold), floored at the value
  gate's ``propensity_floor``;
- the AIPW pseudo-outcome of each mode, ``mu_m + 1[a = m] / e_m (y - mu_a)``, for default and churn;
- each mode's average effect against reactive (the mean pseudo-outcome difference), with a 95%
  client-bootstrap interval, against the simulation's truth on the same rows;
- the DR-learner (Kennedy): each mode's effect against reactive, a ridge regression of the
  pseudo-outcome difference on the linear features.

On the out-of-time evaluation rows, the value policy is then chosen with each learner's churn and PD
in every mode (the DR-learner's: the S-learner's reactive probability plus its effects, clipped to
[0.0001, 0.9999]) and judged against the truth: value captured, the share of the oracle-best
policy's gain over the committee, under configs/economics.yaml.

    .venv/bin/python benchmarks/bench_effect_learners.py [--seeds 42 7]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import save
from bench_value_policy import train_seed

SEEDS = (42, 7)
FOLDS = 3
REFERENCE = "reactive"
RIDGE_ALPHA = 1.0
RESAMPLES = 200


def judge_seed(seed: int, folder: Path) -> dict[str, object]:
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GroupKFold

    from crm_modes.data.schema import MODES, input_names
    from crm_modes.features import fast
    from crm_modes.features.columns import Columns
    from crm_modes.models import sklearn_adapter
    from crm_modes.models.advisor import bundle_advisor
    from crm_modes.models.economics import choose_modes, policy_value
    from crm_modes.shared.model_loading import load_model
    from crm_modes.training.config import load_training_config
    from crm_modes.training.data_source import load_training_table
    from crm_modes.training.fit import fit_model
    from crm_modes.training.policy_report import (
        LABELS,
        client_groups,
        cross_fitted_propensity,
        evaluation_rows,
        mode_index,
        row_values,
        true_values,
    )
    from crm_modes.training.propensity import refit_settings
    from crm_modes.training.trainer import model_split

    config_path, _ = train_seed(seed, folder)
    config = load_training_config(config_path)
    table = load_training_table(config).table
    split, _ = model_split(table, config, config.models["churn"])
    train = table[split.train | split.calibration]
    train = train[train[list(LABELS)].notna().all(axis=1)].reset_index(drop=True)
    evaluation = evaluation_rows(config, table)
    inputs = [name for name in input_names() if name in train]
    loaded = load_model(f"models:/{config.advisor.registered_name}@challenger")
    advisor = bundle_advisor(loaded.path, model_version=loaded.version)
    reference = MODES.index(REFERENCE)

    # nuisances on the training rows, cross-fitted by client
    groups = client_groups(train)
    outcome = {name: np.zeros((len(train), len(MODES))) for name in ("churn", "default")}
    for fit_rows, held_rows in GroupKFold(FOLDS).split(train, groups=groups):
        refit = {}
        for name in ("churn", "default"):
            model = refit_settings(config.models[name], calibration="none", mode_effect_order=None)
            fitted = fit_model(name, model, config.features, train.iloc[fit_rows], train.iloc[:0])
            refit[name] = sklearn_adapter.install(fitted.pipeline)
        predicted = replace(advisor, **refit).counterfactual(train.iloc[held_rows][inputs])
        outcome["churn"][held_rows] = predicted.churn
        outcome["default"][held_rows] = predicted.default
    propensity = np.maximum(
        cross_fitted_propensity(config, train), config.advisor.value_gate.propensity_floor
    )
    applied = mode_index(train["assigned_mode"])
    rows = np.arange(len(train))
    chosen = np.zeros_like(propensity)
    chosen[rows, applied] = 1.0
    features = advisor.default["features"]
    matrix = fast.matrix(features, Columns(train[inputs]))
    evaluation_matrix = fast.matrix(features, Columns(evaluation[inputs]))

    truth_train = {
        "churn": train[[f"oracle_churn_probability_{mode}" for mode in MODES]].to_numpy(),
        "default": train[[f"oracle_default_probability_{mode}" for mode in MODES]].to_numpy(),
    }
    rng = np.random.default_rng(seed)
    clients, client_rows = np.unique(groups, return_inverse=True)
    effects: dict[str, dict[str, object]] = {}
    learned = {}
    s_learner = advisor.counterfactual(evaluation[inputs])
    for name, label in (("churn", "churn_12m"), ("default", "default_12m")):
        y = train[label].to_numpy(dtype=float)
        mu = outcome[name]
        pseudo = mu + chosen / propensity * (y - mu[rows, applied])[:, None]
        effects[name] = {}
        dr = getattr(s_learner, name).copy()
        for index, mode in enumerate(MODES):
            if index == reference:
                continue
            difference = pseudo[:, index] - pseudo[:, reference]
            by_client = np.bincount(client_rows, weights=difference, minlength=len(clients))
            counts = np.bincount(client_rows, minlength=len(clients))
            draws = [
                float(by_client[pick].sum() / counts[pick].sum())
                for pick in (rng.integers(0, len(clients), len(clients)) for _ in range(RESAMPLES))
            ]
            effects[name][f"{mode}-{REFERENCE}"] = {
                "aipw": float(difference.mean()),
                "interval": [float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))],
                "truth": float((truth_train[name][:, index] - truth_train[name][:, reference]).mean()),
                "s_learner": float((mu[:, index] - mu[:, reference]).mean()),
            }
            ridge = Ridge(alpha=RIDGE_ALPHA).fit(matrix, difference)
            dr[:, index] = getattr(s_learner, name)[:, reference] + ridge.predict(evaluation_matrix)
        learned[name] = np.clip(dr, 1e-4, 1 - 1e-4)

    economics = advisor.economics
    logged = mode_index(evaluation["assigned_mode"])
    committee = mode_index(evaluation["oracle_policy_mode"])
    truth = true_values(evaluation, economics)
    best = choose_modes(truth, logged, economics.switching_cost)

    def worth(modes: np.ndarray) -> float:
        return float(policy_value(truth, modes, logged, economics.switching_cost).sum())

    def captured(default: np.ndarray, churn: np.ndarray) -> float:
        values = row_values(evaluation, default, churn, economics)
        policy = choose_modes(values, logged, economics.switching_cost)
        return (worth(policy) - worth(committee)) / (worth(best) - worth(committee))

    result = {
        "seed": seed,
        "training_rows": len(train),
        "evaluation_rows": len(evaluation),
        "average_effects": effects,
        "value_captured": {
            "s_learner_shipped": captured(s_learner.default, s_learner.churn),
            "dr_learner": captured(learned["default"], learned["churn"]),
            "dr_learner_pd_only": captured(learned["default"], s_learner.churn),
        },
    }
    print(f"seed {seed}: {result['value_captured']}", flush=True)
    return result


def summary(runs: list[dict[str, object]]) -> dict[str, object]:
    """Value captured by learner (mean over the seeds), and on how many seeds each average effect
    has the truth's sign: the AIPW estimate's, and its interval's exclusion of the other sign."""
    learners = runs[0]["value_captured"]
    pairs = [(outcome, pair) for outcome, effects in runs[0]["average_effects"].items() for pair in effects]
    signs = {}
    for outcome, pair in pairs:
        entries = [run["average_effects"][outcome][pair] for run in runs]
        signs[f"{outcome} {pair}"] = {
            "aipw_sign_true": int(
                sum(np.sign(entry["aipw"]) == np.sign(entry["truth"]) for entry in entries)
            ),
            "interval_covers_truth": int(
                sum(entry["interval"][0] <= entry["truth"] <= entry["interval"][1] for entry in entries)
            ),
            "seeds": len(entries),
        }
    return {
        **{
            f"value_captured_{learner}": float(np.mean([run["value_captured"][learner] for run in runs]))
            for learner in learners
        },
        "average_effects": signs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    seeds = parser.parse_args().seeds
    with tempfile.TemporaryDirectory() as folder:
        runs = [judge_seed(seed, Path(folder)) for seed in seeds]
    save(
        "effect_learners",
        {
            "config": "configs/train.yaml (400,000 rows) with each seed; configs/economics.yaml",
            "seeds": seeds,
            "summary": summary(runs),
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
