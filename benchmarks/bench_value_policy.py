"""The value policy against the simulation's counterfactual truth: five books, three economics.

For each seed (42, 7, 11, 3, 2026) the default configuration (configs/train.yaml, 400,000 rows)
is trained with that seed in a scratch MLflow store (untimed), and its bundle is judged on the
out-of-time evaluation rows under three economics: configs/economics.yaml, the same with
responsible mode's servicing cost 50% higher, and the same with the churn loss halved (one year
of margin lost with a client instead of two) and a switching cost of 0.03m. For each it records
what the policy report computes (training/policy_report.py), plus:

- the average effect of each pair of modes on PD and on churn, the models' against the truth's;
- PD calibration-in-the-large on the evaluation year in the mode applied, the model's against
  the oracle's own (predicted mean over observed mean, less one);
- the value policy within a responsible-mode cap at the committee's own share, against the
  oracle-best allocation within the same cap;
- the value gate's verdict (as if it were on) on the value policy and on a deliberately bad policy
  (all basic), which it must refuse: the doubly robust gain's lower bound, and the share of the
  gain's variance its ten largest clients carry (``advisor.value_gate.max_concentration``);
- the value policy within each region's own committee share of responsible mode, and within the
  committee's own RM hours in each region (basic 0.5, reactive 2, responsible 6 hours a month);
- value captured and the share switched when a move must beat 0.5, 1 or 2 standard errors of its
  gain (``move_confidence``).

    .venv/bin/python benchmarks/bench_value_policy.py [--seeds 42 7] [--history-months 120] [--mode-noise 0.3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import save

REPO = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("crm-modes")
SEEDS = (42, 7, 11, 3, 2026)
CONFIDENCES = (0.5, 1.0, 2.0)
HOURS = {"basic": 0.5, "reactive": 2.0, "responsible": 6.0}
TARGETS = {
    "value_captured_mean_at_least": 0.90,
    "value_captured_each_at_least": 0.85,
    "mean_weight_within": [0.9, 1.1],
    "interval_covers_true_gain_on_seeds_at_least": 4,
    "pd_calibration_within_oracle_by": 0.15,
    "value_captured_within_cap_at_least": 0.90,
}


def economics_variants(economics):
    """The three economics the policy is judged under."""
    responsible = economics.servicing_cost["responsible"]
    dearer = {
        **economics.servicing_cost,
        "responsible": responsible.model_copy(
            update={"fixed": responsible.fixed * 1.5, "exposure_share": responsible.exposure_share * 1.5}
        ),
    }
    return {
        "configs/economics.yaml": economics,
        "responsible servicing +50%": economics.model_copy(update={"servicing_cost": dearer}),
        "churn loss halved, switching 0.03m": economics.model_copy(
            update={"churn_margin_years": economics.churn_margin_years / 2, "switching_cost": 0.03}
        ),
    }


def average_effects(predicted: np.ndarray, truth: np.ndarray) -> dict[str, dict[str, float]]:
    """Per pair of modes, the mean difference in probability, the model's and the truth's."""
    from crm_modes.data.schema import MODES

    return {
        f"{MODES[first]}-{MODES[second]}": {
            "model": float((predicted[:, first] - predicted[:, second]).mean()),
            "truth": float((truth[:, first] - truth[:, second]).mean()),
        }
        for first, second in combinations(range(len(MODES)), 2)
    }


def train_seed(seed: int, folder: Path, book: dict[str, object]) -> tuple[Path, float]:
    """Train the default configuration with ``seed`` (and the ``book``'s other ``data`` keys, e.g.
    ``history_months``) in a scratch MLflow store in ``folder`` (which this process then tracks); its
    configuration file and the seconds training took."""
    import mlflow

    config_path = folder / f"train_{seed}.yaml"
    keys = "".join(f"  {key}: {value}\n" for key, value in {"seed": seed, **book}.items())
    config_path.write_text(f"base: {REPO / 'configs' / 'train.yaml'}\ndata:\n{keys}")
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    started = time.perf_counter()
    subprocess.run(
        [CLI, "train", "--config", config_path], cwd=folder, env=env, check=True, capture_output=True
    )
    trained = time.perf_counter() - started
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    return config_path, trained


def judge_seed(seed: int, folder: Path, book: dict[str, object]) -> list[dict[str, object]]:
    from crm_modes.data.schema import MODES, input_names
    from crm_modes.models.advisor import bundle_advisor
    from crm_modes.models.economics import policy_value
    from crm_modes.shared.model_loading import load_model
    from crm_modes.training.config import CapacityConfig, load_training_config
    from crm_modes.training.data_source import load_training_table
    from crm_modes.training.off_policy import cluster_bootstrap, doubly_robust
    from crm_modes.training.policy_report import (
        capacity_figures,
        client_groups,
        concentration_figure,
        cross_fitted_propensity,
        cross_fitted_values,
        evaluation_rows,
        gate_failures,
        mode_index,
        policy_report,
        realised_values,
        true_values,
    )

    config_path, trained = train_seed(seed, folder, book)
    config = load_training_config(config_path)
    rows = evaluation_rows(config, load_training_table(config).table)
    inputs = [name for name in input_names() if name in rows]
    loaded = load_model(f"models:/{config.advisor.registered_name}@challenger")
    advisor = bundle_advisor(loaded.path, model_version=loaded.version)
    propensity = cross_fitted_propensity(config, rows)
    gate = config.advisor.value_gate
    gate_on = gate.model_copy(update={"enabled": True})  # the gate's verdict, were it on
    logged = mode_index(rows["assigned_mode"])
    committee_share = float((mode_index(rows["oracle_policy_mode"]) == MODES.index("responsible")).mean())
    capacity = CapacityConfig(responsible_share=committee_share)
    responsible = mode_index(rows["oracle_policy_mode"]) == MODES.index("responsible")
    by_region = CapacityConfig(
        per="region",
        responsible_shares={
            str(region): float(share)
            for region, share in pd.Series(responsible).groupby(rows["region"].to_numpy()).mean().items()
        },
    )
    committee_hours = float(
        np.array([HOURS[mode] for mode in MODES])[mode_index(rows["oracle_policy_mode"])].mean()
    )
    hours = CapacityConfig(per="region", rm_hours_per_facility=committee_hours, hours_by_mode=HOURS)
    predicted = advisor.counterfactual(rows[inputs])
    truth_pd = rows[[f"oracle_default_probability_{mode}" for mode in MODES]].to_numpy()
    truth_churn = rows[[f"oracle_churn_probability_{mode}" for mode in MODES]].to_numpy()
    observed_pd = rows["default_12m"].to_numpy(dtype=float).mean()
    applied = np.arange(len(rows)), logged
    results = []
    for name, economics in economics_variants(advisor.economics).items():
        priced = replace(advisor, economics=economics)
        advice = priced.advise(rows[inputs])
        outcome = cross_fitted_values(config, priced, rows, folds=gate.outcome_folds)
        report = policy_report(
            rows, advice, economics, gate, propensity=propensity, outcome=outcome, capacity=capacity
        )
        realised = realised_values(rows, logged, economics)
        all_basic, committee = (
            doubly_robust(
                outcome,
                logged,
                realised,
                propensity,
                policy,
                switching_cost=economics.switching_cost,
                propensity_floor=gate.propensity_floor,
            )
            for policy in (np.zeros(len(rows), dtype=np.int64), mode_index(rows["oracle_policy_mode"]))
        )
        bad = cluster_bootstrap(
            {"all_basic": all_basic, "committee": committee},
            client_groups(rows),
            resamples=gate.bootstrap,
            confidence=gate.confidence,
            seed=gate.seed,
            differences={"gain": ("all_basic", "committee")},
        )["gain"]
        bad_report = {
            "rows": len(rows),
            "dr_gain": bad.as_dict(),
            "dr_gain_concentration": concentration_figure(all_basic, committee, client_groups(rows), gate),
        }
        true_gain = report["true_gain"]
        gain = report["dr_gain"]
        truth = true_values(rows, economics)
        bundle_values = advice[[f"value_{mode}" for mode in MODES]].to_numpy()
        committee_modes = mode_index(rows["oracle_policy_mode"])
        teams = {
            name: capacity_figures(
                bundle_values, truth, logged, committee_modes, economics.switching_cost, bounds, rows
            )
            for name, bounds in (("responsible_by_region", by_region), ("rm_hours_by_region", hours))
        }
        careful = {}
        for confidence in CONFIDENCES:
            cautious = replace(priced, economics=economics.model_copy(update={"move_confidence": confidence}))
            chosen = mode_index(cautious.advise(rows[inputs])["recommended_mode"])
            worth = float(policy_value(truth, chosen, logged, economics.switching_cost).sum())
            best, base = report["policies"]["oracle_best"], report["policies"]["committee"]
            careful[str(confidence)] = {
                "value_captured": (worth - base) / (best - base),
                "share_switched": float((chosen != logged).mean()),
            }
        results.append(
            {
                "seed": seed,
                "economics": name,
                "value_captured": report["value_captured"],
                "true_gain": true_gain,
                "dr_gain": gain,
                "interval_covers_true_gain": gain["lower"] <= true_gain <= gain["upper"],
                "bound_passes_value_policy": gain["lower"] >= gate.min_gain_lower_bound,
                "gain_concentration": report["dr_gain_concentration"]["share_of_variance"],
                "gate_passes_value_policy": not gate_failures(report, gate_on),
                "all_basic_true_gain": report["policies"]["all_basic"] - report["policies"]["committee"],
                "all_basic_dr_gain": bad.as_dict(),
                "bound_refuses_all_basic": bad.lower < gate.min_gain_lower_bound,
                "all_basic_gain_concentration": bad_report["dr_gain_concentration"]["share_of_variance"],
                "gate_refuses_all_basic": bool(gate_failures(bad_report, gate_on)),
                "mean_weight_by_mode": report["mean_weight_by_mode"],
                "recorded_weight_by_mode": report["recorded_weight_by_mode"],
                "share_switched": report["share_switched"],
                "recommended_mix": report["recommended_mix"],
                "capacity": {
                    key: report["capacity"][key]
                    for key in ("responsible_slots", "responsible_price", "value_captured", "share_switched")
                },
                "capacity_by_region": {
                    name: {key: figures[key] for key in ("value_captured", "share_switched", "gap")}
                    for name, figures in teams.items()
                },
                "move_confidence": careful,
                "effects_pd": average_effects(predicted.default, truth_pd),
                "effects_churn": average_effects(predicted.churn, truth_churn),
                "pd_calibration_in_the_large": float(predicted.default[applied].mean() / observed_pd - 1),
                "oracle_pd_calibration_in_the_large": float(truth_pd[applied].mean() / observed_pd - 1),
                "train_seconds": round(trained, 1),
            }
        )
        print(
            f"seed {seed} {name}: value captured {report['value_captured']:.3f}, "
            f"within cap {report['capacity']['value_captured']:.3f}, true gain {true_gain:,.0f}m, "
            f"DR {gain['value']:,.0f}m [{gain['lower']:,.0f}, {gain['upper']:,.0f}]",
            flush=True,
        )
    return results


def summary(runs: list[dict[str, object]]) -> dict[str, object]:
    captured = [run["value_captured"] for run in runs]
    default_economics = [run for run in runs if run["economics"] == "configs/economics.yaml"]
    signs = all(
        np.sign(pair["model"]) == np.sign(pair["truth"])
        for run in default_economics
        for effects in (run["effects_pd"], run["effects_churn"])
        for pair in effects.values()
    )
    weights = [weight for run in default_economics for weight in run["mean_weight_by_mode"].values()]
    recorded = [weight for run in default_economics for weight in run["recorded_weight_by_mode"].values()]
    concentrations = [
        run[key] for run in runs for key in ("gain_concentration", "all_basic_gain_concentration")
    ]
    calibration = [
        abs(run["pd_calibration_in_the_large"] - run["oracle_pd_calibration_in_the_large"])
        for run in default_economics
    ]
    low, high = TARGETS["mean_weight_within"]
    return {
        "value_captured_mean": float(np.mean(captured)),
        "value_captured_min": float(np.min(captured)),
        "effect_signs_true_on_every_seed": bool(signs),
        "mean_weights_range": [float(min(weights)), float(max(weights))],
        "recorded_weights_range": [float(min(recorded)), float(max(recorded))],
        "seeds_interval_covers_true_gain": sum(run["interval_covers_true_gain"] for run in default_economics),
        "gate_passes_value_policy_where_true_gain_positive": all(
            run["gate_passes_value_policy"] for run in runs if run["true_gain"] > 0
        ),
        "gate_refuses_all_basic_everywhere": all(run["gate_refuses_all_basic"] for run in runs),
        "runs_lower_bound_passes_value_policy": sum(run["bound_passes_value_policy"] for run in runs),
        "runs_lower_bound_passes_all_basic": sum(not run["bound_refuses_all_basic"] for run in runs),
        "gain_concentration_range": [float(min(concentrations)), float(max(concentrations))],
        "pd_calibration_gap_to_oracle_max": float(max(calibration)),
        "value_captured_within_cap_default_book": next(
            run["capacity"]["value_captured"] for run in default_economics if run["seed"] == SEEDS[0]
        )
        if any(run["seed"] == SEEDS[0] for run in default_economics)
        else None,
        "value_captured_by_move_confidence": {
            confidence: float(np.mean([run["move_confidence"][confidence]["value_captured"] for run in runs]))
            for confidence in runs[0]["move_confidence"]
        },
        "value_captured_beating_one_standard_error": float(
            np.mean([run["move_confidence"]["1.0"]["value_captured"] for run in runs])
        ),
        "value_captured_within_team_capacity_min": {
            name: float(min(run["capacity_by_region"][name]["value_captured"] for run in runs))
            for name in runs[0]["capacity_by_region"]
        },
        "checks": {
            "value_captured_mean": float(np.mean(captured)) >= TARGETS["value_captured_mean_at_least"],
            "value_captured_each": float(np.min(captured)) >= TARGETS["value_captured_each_at_least"],
            "effect_signs": bool(signs),
            "mean_weights": low <= min(weights) and max(weights) <= high,
            "interval_covers_true_gain": sum(run["interval_covers_true_gain"] for run in default_economics)
            >= TARGETS["interval_covers_true_gain_on_seeds_at_least"],
            "gate_passes_positive_true_gains": all(
                run["gate_passes_value_policy"] for run in runs if run["true_gain"] > 0
            ),
            "gate_refuses_all_basic": all(run["gate_refuses_all_basic"] for run in runs),
            "pd_calibration": max(calibration) <= TARGETS["pd_calibration_within_oracle_by"],
            "value_captured_within_cap": all(
                run["capacity"]["value_captured"] >= TARGETS["value_captured_within_cap_at_least"]
                for run in default_economics
                if run["seed"] == 42
            ),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument(
        "--history-months", type=int, default=None, help="simulated history (default: the generator's)"
    )
    parser.add_argument(
        "--mode-noise",
        type=float,
        default=None,
        help="share of modes off the committee's rule, the book's exploration (default: the generator's)",
    )
    args = parser.parse_args()
    seeds, book, name, described = args.seeds, {}, "value_policy", ""
    if args.history_months is not None:
        book["history_months"] = args.history_months
        name, described = (
            f"{name}_history_{args.history_months}",
            f", {args.history_months} months of history",
        )
    if args.mode_noise is not None:
        book["mode_noise"] = args.mode_noise
        name = f"{name}_mode_noise_{round(100 * args.mode_noise)}"
        described += f", {args.mode_noise:.0%} of modes off the committee's rule"
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in seeds:
            runs.extend(judge_seed(seed, Path(folder), book))
    figures = summary(runs)
    save(
        name,
        {
            "config": f"configs/train.yaml (400,000 rows{described}) with each seed, three economics",
            "seeds": seeds,
            "targets": TARGETS,
            "checks": figures.pop("checks"),
            "summary": figures,
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
