"""How much the value policy is worth: true values on the synthetic book, doubly robust anywhere.

On the evaluation rows (out of time, outcomes known) the advisor bundle gives each row's
value in each mode, its recommendation and the committee model's probabilities. This module
compares policies:

- with the simulation's counterfactual truth (``oracle_*_probability_<mode>`` columns,
  priced with the same economics): the committee policy (``oracle_policy_mode``), the modes
  actually assigned, all-basic, all-reactive, all-responsible, the imitation (committee)
  model, the value policy and the oracle-best policy; ``value_captured`` is
  ``(V_value - V_committee) / (V_oracle_best - V_committee)``;
- off-policy, from realised outcomes only (what a real book allows): the doubly robust
  estimate of the value policy and of the committee policy, with a cluster-bootstrap interval
  (:mod:`crm_modes.training.off_policy`) and the share of the gain's variance its largest clients
  carry (where it is large the interval cannot be trusted); on the synthetic book it is checked
  against the truth.

Values are totals over the evaluation rows, in millions, over each row's 12 months.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from crm_modes.data.schema import MODES, input_names
from crm_modes.models.advisor import PROBABILITY_COLUMNS, in_mode_order
from crm_modes.models.economics import Economics, choose_modes, policy_value, value_parts
from crm_modes.models.scored_values import VALUE_COLUMNS, mode_index, scored_gain_errors
from crm_modes.shared.errors import InputError
from crm_modes.training.clients import client_groups
from crm_modes.training.config import (
    CapacityConfig,
    EstimatorConfig,
    TrainingConfig,
    ValueGateConfig,
)
from crm_modes.training.off_policy import (
    DoublyRobust,
    calibrate_out_of_fold,
    cluster_bootstrap,
    doubly_robust,
    gain_concentration,
    mode_weights,
)
from crm_modes.training.propensity import propensity_inputs, refit_settings

if TYPE_CHECKING:
    from crm_modes.models.advisor import Advisor
    from crm_modes.models.capacity import Budget
    from crm_modes.shared.model_loading import LoadedModel

COMMITTEE = "oracle_policy_mode"
LABELS = ("default_12m", "churn_12m")


def row_values(
    rows: pd.DataFrame, default: np.ndarray, churn: np.ndarray, economics: Economics
) -> np.ndarray:
    """Each row's value in each mode for the given (n, modes) default and churn probabilities."""
    return value_parts(
        default,
        churn,
        exposure=rows["exposure"].to_numpy(dtype=float),
        margin_bps=rows["margin_bps"].to_numpy(dtype=float),
        collateral_coverage=rows["collateral_coverage"].to_numpy(dtype=float),
        economics=economics,
    ).values()


def realised_values(rows: pd.DataFrame, logged: np.ndarray, economics: Economics) -> np.ndarray:
    """The value each row realised in the mode it was served in (outcomes in place of probabilities)."""
    default, churn = (
        np.repeat(rows[label].to_numpy(dtype=float)[:, None], len(MODES), axis=1) for label in LABELS
    )
    return row_values(rows, default, churn, economics)[np.arange(len(rows)), logged]


def true_values(rows: pd.DataFrame, economics: Economics) -> np.ndarray | None:
    """Each row's true value in each mode from the counterfactual oracle columns (None without them)."""
    default, churn = (
        [f"oracle_{outcome}_probability_{mode}" for mode in MODES] for outcome in ("default", "churn")
    )
    if not all(name in rows for name in (*default, *churn)):
        return None
    return row_values(rows, rows[default].to_numpy(dtype=float), rows[churn].to_numpy(dtype=float), economics)


def policy_report(
    rows: pd.DataFrame,
    advice: pd.DataFrame,
    economics: Economics,
    gate: ValueGateConfig,
    *,
    propensity: np.ndarray | None = None,
    outcome: np.ndarray | None = None,
    capacity: CapacityConfig | None = None,
) -> dict[str, object]:
    """Every figure of the report, as plain data (see the module docstring).

    Args:
        rows: evaluation rows with ``assigned_mode``, both labels known, exposure, margin and
            collateral; oracle columns where the book is synthetic.
        advice: the bundle's output for ``rows``, in the same order.
        economics: the economics the bundle prices with.
        gate: bootstrap and clipping settings.
        propensity: ``p(mode | x)`` of each row, shape (n, modes); default: the bundle's
            committee probabilities (right only for facilities its committee model never saw,
            see :func:`cross_fitted_propensity`).
        outcome: ``mu(x, mode)`` of each row for the doubly robust estimate, shape (n, modes);
            default: the bundle's own values (see :func:`cross_fitted_values` for why not).
        capacity: the bank's capacity; the report then also judges the value policy within it
            against the oracle-best policy within the same bounds (:func:`capacity_figures`).

    Raises:
        ValueError: naming what the rows lack.
    """
    missing = [name for name in ("assigned_mode", *LABELS) if name not in rows]
    if missing:
        raise InputError(f"the policy report needs the columns {missing} on the evaluation rows")
    if rows[list(LABELS)].isna().any().any():
        raise InputError("the policy report needs known outcomes: drop rows whose 12-month window is open")
    n = len(rows)
    logged = mode_index(rows["assigned_mode"])
    if (logged < 0).any():
        raise InputError("assigned_mode holds values that are not modes")
    switching = economics.switching_cost
    recommended = mode_index(advice["recommended_mode"])
    imitation = mode_index(advice["committee_mode"])
    committee = mode_index(rows[COMMITTEE]) if COMMITTEE in rows else imitation
    bundle_values = advice[list(VALUE_COLUMNS)].to_numpy(dtype=float)
    outcome_model = "cross-fitted on the evaluation rows" if outcome is not None else "the bundle's values"
    if outcome is None:
        outcome = bundle_values
    if propensity is None:
        propensity = advice[list(PROBABILITY_COLUMNS)].to_numpy(dtype=float)
    realised = realised_values(rows, logged, economics)

    report: dict[str, object] = {
        "rows": n,
        "committee_policy": COMMITTEE if COMMITTEE in rows else "committee model (imitation)",
        "share_switched": float((recommended != logged).mean()),
        "recommended_mix": _mix(recommended),
        "switch_matrix": _switch_matrix(committee, recommended),
    }
    truth = true_values(rows, economics)
    policies: dict[str, np.ndarray] = {
        "committee": committee,
        "assigned": logged,
        **{f"all_{mode}": np.full(n, index) for index, mode in enumerate(MODES)},
        "imitation_model": imitation,
        "value_policy": recommended,
    }
    if truth is not None:
        policies["oracle_best"] = choose_modes(truth, logged, switching)
        values = {
            name: float(policy_value(truth, chosen, logged, switching).sum())
            for name, chosen in policies.items()
        }
        report["policies"] = values
        best_gain = values["oracle_best"] - values["committee"]
        report["value_captured"] = (
            (values["value_policy"] - values["committee"]) / best_gain if best_gain else None
        )
        report["true_gain"] = values["value_policy"] - values["committee"]
    else:
        report["policies"] = {}
        report["value_captured"] = None
    if capacity is not None:
        report["capacity"] = capacity_figures(
            bundle_values,
            truth,
            logged,
            committee,
            switching,
            capacity,
            rows,
            uncertainty=scored_gain_errors(advice, economics.move_confidence),
            confidence=economics.move_confidence,
        )

    parts = {
        name: doubly_robust(
            outcome,
            logged,
            realised,
            propensity,
            chosen,
            switching_cost=switching,
            propensity_floor=gate.propensity_floor,
        )
        for name, chosen in (("value_policy", recommended), ("committee", committee))
    }
    groups = client_groups(rows)
    estimates = cluster_bootstrap(
        parts,
        groups,
        resamples=gate.bootstrap,
        confidence=gate.confidence,
        seed=gate.seed,
        differences={"gain": ("value_policy", "committee")},
    )
    report["dr_estimate"] = estimates["value_policy"].value
    report["dr_interval"] = [estimates["value_policy"].lower, estimates["value_policy"].upper]
    report["dr_committee_estimate"] = estimates["committee"].value
    report["dr_gain"] = estimates["gain"].as_dict()
    report["dr_gain_concentration"] = concentration_figure(
        parts["value_policy"], parts["committee"], groups, gate
    )
    report["dr_clipped_rows"] = {name: part.clipped for name, part in parts.items()}
    report["dr_mean_weight"] = {name: part.mean_weight for name, part in parts.items()}
    report["mean_weight_by_mode"] = mode_weights(logged, propensity, gate.propensity_floor)
    report["recorded_weight_by_mode"] = recorded_weights(advice, logged, gate.propensity_floor)
    report["dr_outcome_model"] = outcome_model
    report["dr_settings"] = gate.model_dump()
    report["dr_true_value"] = report["policies"].get("value_policy")
    if truth is not None:
        true_value = report["dr_true_value"]
        report["dr_relative_error"] = (report["dr_estimate"] - true_value) / abs(true_value)
        report["dr_interval_covers_truth"] = bool(
            estimates["value_policy"].lower <= true_value <= estimates["value_policy"].upper
        )
    return report


def concentration_figure(
    first: DoublyRobust, second: DoublyRobust, groups: np.ndarray, gate: ValueGateConfig
) -> dict[str, float]:
    """The report's ``dr_gain_concentration``: the share of the gain ``first - second``'s variance
    that its ``gate.concentration_clients`` largest clients carry (:func:`gain_concentration`)."""
    clients = gate.concentration_clients
    return {
        "clients": clients,
        "share_of_variance": gain_concentration(first, second, groups, clients=clients),
    }


def recorded_weights(advice: pd.DataFrame, logged: np.ndarray, floor: float) -> dict[str, float] | None:
    """Each mode's mean inverse weight by the propensity the bundle records with its decisions
    (``assigned_propensity``): what a later off-policy evaluation of those decisions would divide by,
    near one when it is right. None where the advice records none for some row."""
    if "assigned_propensity" not in advice:
        return None
    recorded = advice["assigned_propensity"].to_numpy(dtype=float)
    if not np.isfinite(recorded).all():
        return None
    propensity = np.ones((len(logged), len(MODES)))
    propensity[np.arange(len(logged)), logged] = recorded
    return mode_weights(logged, propensity, floor)


def capacity_figures(
    values: np.ndarray,
    truth: np.ndarray | None,
    logged: np.ndarray,
    committee: np.ndarray,
    switching_cost: float,
    capacity: CapacityConfig,
    rows: pd.DataFrame,
    *,
    uncertainty: np.ndarray | None = None,
    confidence: float = 0.0,
    first: int = 10,
) -> dict[str, object]:
    """The value policy within the bank's capacity (:func:`crm_modes.models.capacity.allocate`).

    The bundle's values allocate the modes within the bounds (the rows judged together, each a
    facility in a month); the bounds are priced in the bundle's values, millions per slot, hour or
    move, in each group. With the truth, the allocation is valued and compared with the oracle-best
    allocation within the same bounds: ``value_captured`` is then ``(V_capped - V_committee) /
    (V_best_capped - V_committee)``. With ``uncertainty`` a move must beat ``confidence`` standard
    errors of its gain (the oracle's best knows its values).
    """
    from crm_modes.models.capacity import allocate

    budgets = {budget.name: budget for budget in capacity.budgets(logged, rows)}
    chosen = allocate(
        values,
        logged,
        switching_cost=switching_cost,
        budgets=list(budgets.values()),
        uncertainty=uncertainty,
        confidence=confidence,
    )
    figures: dict[str, object] = {
        "responsible_slots": _total(budgets.get("responsible")),
        "moves_allowed": _total(budgets.get("moves")),
        "bounds": {name: _by_group(budget, budget.limit) for name, budget in budgets.items()},
        "prices": {name: _by_group(budget, chosen.prices[name]) for name, budget in budgets.items()},
        "responsible_price": chosen.responsible_price,
        "move_price": chosen.move_price,
        "hours_price": chosen.price("rm_hours"),
        "gap": chosen.gap,
        "share_switched": float((chosen.modes != logged).mean()) if len(logged) else 0.0,
        "mix": _mix(chosen.modes),
        "first_moves": _first_facilities(chosen.order, rows.get("facility_id"), first),
    }
    if truth is not None:
        best = allocate(truth, logged, switching_cost=switching_cost, budgets=list(budgets.values()))
        values_true = {
            name: float(policy_value(truth, modes, logged, switching_cost).sum())
            for name, modes in (
                ("committee", committee),
                ("value_policy", chosen.modes),
                ("oracle_best", best.modes),
            )
        }
        gain = values_true["oracle_best"] - values_true["committee"]
        figures["policies"] = values_true
        figures["value_captured"] = (
            (values_true["value_policy"] - values_true["committee"]) / gain if gain else None
        )
    return figures


def _total(budget: Budget | None) -> int | None:
    """All the units a budget allows, over its groups (None: no such bound)."""
    return None if budget is None else int(budget.limit.sum())


def _by_group(budget: Budget, figures: np.ndarray) -> dict[str, float]:
    """A budget's figures (limits or prices) by the name of its group."""
    return dict(zip(budget.labels, np.asarray(figures, dtype=float).tolist(), strict=True))


def _first_facilities(order: np.ndarray, facility: pd.Series | None, count: int) -> list[object]:
    """The first ``count`` distinct facilities of the rows ``order`` lists (a facility has a row a month)."""
    names = facility.to_numpy()[order] if facility is not None else order
    return [name.item() if isinstance(name, np.generic) else name for name in pd.unique(names)[:count]]


def gate_failures(report: dict[str, object], gate: ValueGateConfig) -> list[str]:
    """Why a bundle's value policy may not become champion; empty when it may (or the gate is off)."""
    if not gate.enabled:
        return []
    gain, failures = report["dr_gain"], []
    if gain["lower"] < gate.min_gain_lower_bound:
        failures.append(
            f"value policy: doubly robust gain over the committee policy {gain['value']:.2f}m, "
            f"{gate.confidence:.0%} interval [{gain['lower']:.2f}m, {gain['upper']:.2f}m]; its lower bound "
            f"is below the minimum {gate.min_gain_lower_bound:.2f}m (evaluation rows: {report['rows']:,})"
        )
    concentration = report["dr_gain_concentration"]
    clients, share = concentration["clients"], concentration["share_of_variance"]
    if share > gate.max_concentration:
        failures.append(
            f"value policy: {clients} clients carry {share:.0%} of the doubly robust gain's variance "
            f"(at most {gate.max_concentration:.0%}): a few outcomes "
            "decide the estimate, and its interval cannot be trusted"
        )
    return failures


def _mix(chosen: np.ndarray) -> dict[str, float]:
    return {mode: float((chosen == index).mean()) for index, mode in enumerate(MODES)}


def _switch_matrix(committee: np.ndarray, recommended: np.ndarray) -> dict[str, dict[str, int]]:
    """Rows counted by committee mode (outer key) and recommended mode (inner key)."""
    return {
        mode: {other: int(((committee == i) & (recommended == j)).sum()) for j, other in enumerate(MODES)}
        for i, mode in enumerate(MODES)
    }


def policy_plot(report: dict[str, object], path: Path) -> Path:
    """Bar chart of each policy's true value (or, without truth, the doubly robust estimates)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5))
    axis = figure.subplots()
    values = report["policies"] or {
        "committee (DR)": report["dr_committee_estimate"],
        "value_policy (DR)": report["dr_estimate"],
    }
    names = list(values)
    axis.barh(names, [values[name] for name in names], color="#4c72b0")
    low = min(values.values())
    high = max(values.values())
    axis.set_xlim(low - 0.15 * (high - low + 1e-9), high + 0.05 * (high - low + 1e-9))
    axis.set_xlabel("12-month expected value, millions (evaluation rows)")
    captured = report.get("value_captured")
    title = "Value of each mode policy"
    if captured is not None:
        title += f": value policy captures {captured:.0%} of the oracle's gain"
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def evaluation_rows(config: TrainingConfig, table: pd.DataFrame) -> pd.DataFrame:
    """The out-of-time evaluation rows of the outcome models, both outcomes known."""
    from crm_modes.training.trainer import model_split

    split, _ = model_split(table, config, config.models["churn"])
    rows = table[split.evaluation]
    return rows[rows[list(LABELS)].notna().all(axis=1)].reset_index(drop=True)


def cross_fitted_propensity(config: TrainingConfig, rows: pd.DataFrame, *, folds: int = 5) -> np.ndarray:
    """``p(mode | x)`` of each row: a propensity model refit out of fold by client, calibrated out of fold.

    A committee model that has seen a facility recognises it: on the evaluation rows of the
    default book (all from facilities it trained on) it gives a deviating assignment a mean
    probability of about 0.9 where the truth is 0.035, which would silence the doubly robust
    correction. Refit on the other clients' rows, each row's propensity comes from a model
    that never saw its facility (cross-fitting, as in double machine learning); its estimator
    (``advisor.value_gate.propensity_type`` and ``propensity_params``) is more regularized than the
    committee model, so that a deviating assignment is not declared impossible.

    Two more things make the probabilities honest (docs/decisions/022-calibrated-propensities.md):

    - the readings the mode itself moves (``advisor.mode_readings.inputs``: RM contacts, complaints)
      are left out: they follow the assignment, so a model that reads them recognises a deviating
      facility by its contacts and gives its mode too much probability;
    - the probabilities are recalibrated per mode by isotonic regression fitted on the other folds
      (:func:`~crm_modes.training.off_policy.calibrate_out_of_fold`;
      ``advisor.value_gate.propensity_calibration``), so that the mean inverse-propensity weight of
      each mode is near one.
    """
    from sklearn.model_selection import GroupKFold

    from crm_modes.training.fit import fit_model

    gate = config.advisor.value_gate
    estimator = EstimatorConfig(type=gate.propensity_type, params=gate.propensity_params)
    model, features = propensity_inputs(config, estimator)
    groups = client_groups(rows)
    propensity = np.zeros((len(rows), len(MODES)))
    fold_of_row = np.zeros(len(rows), dtype=np.intp)
    for fold, (fit_rows, held_rows) in enumerate(GroupKFold(folds).split(rows, groups=groups)):
        fold_of_row[held_rows] = fold
        fitted = fit_model("propensity", model, features, rows.iloc[fit_rows], rows.iloc[:0])
        probabilities = fitted.pipeline.predict_proba(rows.iloc[held_rows])
        propensity[held_rows] = in_mode_order(probabilities, fitted.pipeline.classes_)
    if gate.propensity_calibration == "isotonic":
        propensity = calibrate_out_of_fold(propensity, mode_index(rows["assigned_mode"]), fold_of_row)
    return propensity


def cross_fitted_values(
    config: TrainingConfig, advisor: Advisor, rows: pd.DataFrame, *, folds: int
) -> np.ndarray:
    """Each row's value in each mode, shape (n, modes), from churn and PD models refit out of fold.

    The bundle's own values chose the value policy: scoring that policy with them too would grade
    its own homework (the mode a row was moved to is, more often than not, one whose value the
    bundle's models overstate). Here the evaluation rows are split by client into ``folds``; each
    fold's values come from churn and PD models of the configured kind fitted on the other folds'
    rows, in the bundle's advisor otherwise (its committee model, mode readings and economics). No
    row's value comes from a model that saw that row, or that chose its policy.
    """
    from sklearn.model_selection import GroupKFold

    from crm_modes.models import sklearn_adapter
    from crm_modes.training.fit import fit_model

    groups = client_groups(rows)
    inputs = [name for name in input_names() if name in rows]
    values = np.zeros((len(rows), len(MODES)))
    for fit_rows, held_rows in GroupKFold(folds).split(rows, groups=groups):
        refit = {}
        for name in ("churn", "default"):
            # a logistic fit on rows of the same months is calibrated by it
            model = refit_settings(config.models[name], calibration="none")
            fitted = fit_model(name, model, config.features, rows.iloc[fit_rows], rows.iloc[:0])
            refit[name] = sklearn_adapter.install(fitted.pipeline)
        advice = replace(advisor, **refit).advise(rows.iloc[held_rows][inputs])
        values[held_rows] = advice[list(VALUE_COLUMNS)].to_numpy(dtype=float)
    return values


def judge_bundle(config: TrainingConfig, model_uri: str, table: pd.DataFrame) -> dict[str, object]:
    """The full policy report of the bundle at ``model_uri`` on the configuration's evaluation rows."""
    from crm_modes.models.advisor import bundle_advisor
    from crm_modes.shared.model_loading import load_model

    rows = evaluation_rows(config, table)
    model = load_model(model_uri)
    advice, economics = bundle_advice(model, rows)
    propensity = cross_fitted_propensity(config, rows)
    gate = config.advisor.value_gate
    outcome = None
    if gate.outcome_folds > 1:
        advisor = bundle_advisor(model.path, model_version=model.version)
        outcome = cross_fitted_values(config, advisor, rows, folds=gate.outcome_folds)
    return policy_report(
        rows,
        advice,
        economics,
        gate,
        propensity=propensity,
        outcome=outcome,
        capacity=config.advisor.capacity,
    )


def bundle_advice(model: LoadedModel, rows: pd.DataFrame) -> tuple[pd.DataFrame, Economics]:
    """The bundle's output for ``rows`` through its own pyfunc ``predict``, and the economics it carries."""
    from crm_modes.models.advisor import ECONOMICS_ARTIFACT, artifact_path
    from crm_modes.models.economics import load_economics

    advice = model.predict(rows[[name for name in input_names() if name in rows]])
    return advice, load_economics(artifact_path(model.path, ECONOMICS_ARTIFACT))


def log_report(report: dict[str, object], experiment: str, model_uri: str) -> str:
    """Log the report to MLflow (metrics, JSON, plot); return the run id."""
    import json
    import tempfile

    import mlflow

    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name="policy-report") as run, tempfile.TemporaryDirectory() as folder:
        mlflow.set_tag("model_uri", model_uri)
        metrics = {
            "dr_estimate": report["dr_estimate"],
            "dr_gain": report["dr_gain"]["value"],
            "dr_gain_lower": report["dr_gain"]["lower"],
            "dr_gain_concentration": report["dr_gain_concentration"]["share_of_variance"],
            "share_switched": report["share_switched"],
        }
        if report["value_captured"] is not None:
            metrics["value_captured"] = report["value_captured"]
            metrics["dr_relative_error"] = report["dr_relative_error"]
            metrics.update({f"value_{name}": value for name, value in report["policies"].items()})
        metrics.update(
            {f"mean_weight_{mode}": weight for mode, weight in report["mean_weight_by_mode"].items()}
        )
        metrics.update(
            {
                f"recorded_weight_{mode}": weight
                for mode, weight in (report.get("recorded_weight_by_mode") or {}).items()
            }
        )
        capacity = report.get("capacity")
        if capacity is not None:
            metrics["capacity_responsible_price"] = capacity["responsible_price"]
            metrics["capacity_move_price"] = capacity["move_price"]
            metrics["capacity_hours_price"] = capacity["hours_price"]
            if capacity.get("value_captured") is not None:
                metrics["capacity_value_captured"] = capacity["value_captured"]
        mlflow.log_metrics(metrics)
        path = Path(folder) / "policy_report.json"
        path.write_text(json.dumps(report, indent=2))
        mlflow.log_artifact(str(path), artifact_path="policy")
        mlflow.log_artifact(
            str(policy_plot(report, Path(folder) / "policy_values.png")), artifact_path="policy"
        )
    return run.info.run_id
