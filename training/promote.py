"""Promotion by gates: the challenger becomes champion only when it earns it.

For each model, the challenger and the current champion are scored on the same
evaluation rows (rebuilt from the training configuration). The challenger must pass the
configured absolute gates and must not be worse than the champion beyond ``max_worse_than_champion``.
The advisor bundle follows its components, and its value policy must pass the value gate:
the doubly robust lower bound of its gain over the committee policy on the same
evaluation rows (:mod:`crm_modes.training.policy_report`). Only then does the ``champion``
alias move; the version records when, why and which version it replaced, and the
replaced version keeps the ``previous-champion`` alias so ``rollback`` can put it back
in one step.

A promotion moves exactly what was evaluated. Versions are pinned by number when they are
read, and the bundle must be built from the component versions just evaluated: a bundle
challenger built from other components (a run that trained the models without it, an
older registry) is refused. Alias moves are
compare-and-set: under the registry-wide lock (``registration.registry_lock``), each ``champion`` is
read again, and if any moved since this promote read it, nothing moves. Every promoted
version records the evaluated figures, the hash of the evaluation rows and, for the
bundle, its component versions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd
from mlflow import MlflowClient

from crm_modes.shared.errors import InputError, RefusedError
from crm_modes.training.config import GateConfig, ModelConfig, TrainingConfig
from crm_modes.training.data_source import load_training_table, table_hash
from crm_modes.training.evaluate import evaluate_pipeline
from crm_modes.training.policy_report import gate_failures, judge_bundle
from crm_modes.training.registration import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS_CHAMPION,
    load_version,
    registry_lock,
    set_alias,
    version_by_alias,
)
from crm_modes.training.trainer import model_split

#: metric -> True when higher is better.
HIGHER_IS_BETTER = {"auc": True, "accuracy": True, "macro_f1": True, "ece": False, "brier": False}
_GATES = (
    ("min_auc", "auc", True),
    ("max_ece", "ece", False),
    ("max_brier", "brier", False),
    ("min_accuracy", "accuracy", True),
    ("min_macro_f1", "macro_f1", True),
)


@dataclass
class Decision:
    model: str
    registered_name: str
    promoted: bool
    challenger: str | None
    champion_before: str | None
    failures: list[str] = field(default_factory=list)
    challenger_metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] = field(default_factory=dict)
    components: dict[str, str] = field(default_factory=dict)
    note: str = ""
    evaluation_hash: str = ""


class PromotionRefusedError(RefusedError):
    """At least one challenger failed a gate; ``decisions`` says which and why (each failure with its
    figures), and which passed but were not promoted because another failed."""

    what = "promotion refused"

    def __init__(self, decisions: list[Decision]) -> None:
        self.decisions = decisions
        lines = ["nothing was promoted"]
        for decision in decisions:
            status = "refused" if decision.failures else "passed (not promoted: another model failed)"
            lines.append(f"{decision.registered_name} v{decision.challenger}: {status}")
            lines += [f"  - {failure}" for failure in decision.failures]
        super().__init__("\n".join(lines))


class PromotionConflictError(RefusedError):
    """Another promote moved ``champion`` meanwhile; nothing was changed."""

    what = "promotion stopped"


def check_gates(metrics: dict[str, float], gates: GateConfig, champion: dict[str, float] | None) -> list[str]:
    """Every gate the challenger's ``metrics`` fail, with the figures; empty when it passes."""
    failures = []
    for gate, metric, minimum in _GATES:
        threshold = getattr(gates, gate)
        if threshold is None or metric not in metrics:
            continue
        value = metrics[metric]
        if (value < threshold) if minimum else (value > threshold):
            relation = "below the minimum" if minimum else "above the maximum"
            failures.append(f"{metric} {value:.4f} is {relation} {threshold:.4f}")
    if champion:
        for metric, higher in HIGHER_IS_BETTER.items():
            if metric not in metrics or metric not in champion:
                continue
            worse_by = (
                (champion[metric] - metrics[metric]) if higher else (metrics[metric] - champion[metric])
            )
            if worse_by > gates.max_worse_than_champion:
                failures.append(
                    f"{metric} {metrics[metric]:.4f} is worse than the champion's {champion[metric]:.4f} "
                    f"by {worse_by:.4f} (at most {gates.max_worse_than_champion:.4f} allowed)"
                )
    return failures


def _scores(name: str, version: str, model: ModelConfig, rows: pd.DataFrame) -> dict[str, float]:
    pipeline = load_version(name, version)
    metrics = evaluate_pipeline(pipeline, model, rows).metrics
    return {key: float(value) for key, value in metrics.items() if key in HIGHER_IS_BETTER}


def promote(config: TrainingConfig, models: list[str] | None = None) -> list[Decision]:
    """Check each challenger and move ``champion`` for those that pass.

    Every model is judged before any alias moves; if one fails, none is promoted.

    Raises:
        PromotionRefusedError: naming each failed gate with its figures.
        ValueError: a model has no challenger, or is not in the configuration.
    """
    names = models or list(config.models)
    unknown = [name for name in names if name not in config.models]
    if unknown:
        raise InputError(f"models {unknown} are not in the configuration; it has {list(config.models)}")
    table = load_training_table(config).table
    decisions = []
    for name in names:
        model = config.models[name]
        challenger = version_by_alias(model.registered_name, CHALLENGER)
        if challenger is None:
            raise InputError(
                f"{model.registered_name} has no {CHALLENGER!r} version; run `crm-modes train` first"
            )
        champion = version_by_alias(model.registered_name, CHAMPION)
        decision = Decision(
            name,
            model.registered_name,
            False,
            str(challenger.version),
            None if champion is None else str(champion.version),
        )
        if champion is not None and champion.version == challenger.version:
            decision.note = "already champion"
            decisions.append(decision)
            continue
        split, _ = model_split(table, config, model)
        rows = table[split.evaluation]
        decision.evaluation_hash = table_hash(rows)
        decision.challenger_metrics = _scores(model.registered_name, decision.challenger, model, rows)
        if champion is not None:
            decision.champion_metrics = _scores(model.registered_name, decision.champion_before, model, rows)
        decision.failures = check_gates(
            decision.challenger_metrics, model.gates, decision.champion_metrics or None
        )
        decisions.append(decision)
    if any(decision.failures for decision in decisions):
        raise PromotionRefusedError(decisions)
    if config.advisor is not None and models is None:
        advisor = _advisor_decision(config, decisions)
        if not advisor.failures and not advisor.note and config.advisor.value_gate.enabled:
            uri = f"models:/{advisor.registered_name}/{advisor.challenger}"
            report = judge_bundle(config, uri, table)
            advisor.failures = gate_failures(report, config.advisor.value_gate)
            gain = report["dr_gain"]
            advisor.challenger_metrics = {
                "dr_gain": gain["value"],
                "dr_gain_lower": gain["lower"],
                "dr_gain_concentration": report["dr_gain_concentration"]["share_of_variance"],
                "dr_estimate": report["dr_estimate"],
            }
        decisions.append(advisor)
        if advisor.failures:
            raise PromotionRefusedError(decisions)

    client = MlflowClient()
    with registry_lock(client):
        _check_champions_unchanged(decisions)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for decision in decisions:
            if not decision.note:
                _move_champion(client, decision, now)
    return decisions


def _check_champions_unchanged(decisions: list[Decision]) -> None:
    """Compare-and-set: every ``champion`` must still be the version this promote judged against."""
    for decision in decisions:
        if decision.note:
            continue
        now = version_by_alias(decision.registered_name, CHAMPION)
        current = None if now is None else str(now.version)
        if current != decision.champion_before:
            raise PromotionConflictError(
                f"{decision.registered_name} @champion moved from "
                f"{'v' + decision.champion_before if decision.champion_before else 'none'} to v{current} "
                "since this promote read it (another promote or a rollback ran meanwhile); nothing was "
                "changed; run promote again to judge against the new champion"
            )


def _move_champion(client: MlflowClient, decision: Decision, now: str) -> None:
    """Move ``champion`` to the evaluated version and record why, with what evidence."""
    name, version = decision.registered_name, decision.challenger
    reason = ", ".join(f"{key} {value:.4f}" for key, value in decision.challenger_metrics.items())
    if decision.components:
        reason = "components passed: " + ", ".join(f"{k} v{v}" for k, v in decision.components.items())
        if decision.challenger_metrics:
            reason += "; value policy " + ", ".join(
                f"{key} {value:.2f}m" for key, value in decision.challenger_metrics.items()
            )
    if decision.champion_before is not None:
        set_alias(client, name, PREVIOUS_CHAMPION, decision.champion_before)
        reason += f"; not worse than v{decision.champion_before} beyond max_worse_than_champion"
    set_alias(client, name, CHAMPION, version)
    tags = {
        "promoted_at": now,
        "promotion_reason": "passed all gates: " + reason,
        "replaced_version": decision.champion_before or "none",
        "promotion.metrics": json.dumps(
            {"challenger": decision.challenger_metrics, "champion": decision.champion_metrics}
        ),
    }
    if decision.evaluation_hash:
        tags["promotion.evaluation_data_hash"] = decision.evaluation_hash
    if decision.components:
        tags["promotion.components"] = json.dumps(decision.components)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    decision.promoted = True


def _advisor_decision(config: TrainingConfig, components: list[Decision]) -> Decision:
    """The bundle follows its components: it is promoted when they all passed."""
    name = config.advisor.registered_name
    challenger = version_by_alias(name, CHALLENGER)
    if challenger is None:
        raise InputError(f"{name} has no {CHALLENGER!r} version; run `crm-modes train` first")
    champion = version_by_alias(name, CHAMPION)
    decision = Decision(
        "advisor", name, False, str(challenger.version), None if champion is None else str(champion.version)
    )
    if champion is not None and champion.version == challenger.version:
        decision.note = "already champion"
    decision.components = {d.registered_name: d.challenger for d in components}
    built_from = {
        key.removeprefix("component."): value
        for key, value in challenger.tags.items()
        if key.startswith("component.")
    }
    if built_from != decision.components:
        decision.note = ""
        decision.failures.append(
            f"the bundle was built from {_versions(built_from)}, not from the versions just evaluated "
            f"({_versions(decision.components)}): a training run registered components without a "
            "bundle (did it die?); run `crm-modes train` again"
        )
    return decision


def _versions(components: dict[str, str]) -> str:
    return ", ".join(f"{name} v{version}" for name, version in sorted(components.items())) or "nothing"


class RollbackConflictError(RefusedError):
    """``champion`` or ``previous-champion`` moved between reading them and rolling back."""

    what = "rollback stopped"


def rollback(config: TrainingConfig, models: list[str] | None = None) -> list[tuple[str, str, str]]:
    """Put each model's previous champion back; return (name, from version, to version).

    Compare-and-set, as promote: the aliases read first must be unchanged under the registry lock,
    or nothing moves. The rolled-back version loses ``previous-champion``, so that a second rollback
    does not undo the first: it comes back only through promote's gates.

    Raises:
        InputError: a model has no previous champion to go back to.
        RollbackConflictError: another rollback or promote moved an alias meanwhile; nothing moved.
    """
    client = MlflowClient()
    registered_names = [config.models[name].registered_name for name in models or list(config.models)]
    if config.advisor is not None and models is None:
        registered_names.append(config.advisor.registered_name)
    read = {name: _champion_and_previous(name) for name in registered_names}  # what the user rolls back
    for registered, (current, previous) in read.items():  # every model checked before any alias moves
        if previous is None or current is None:
            raise InputError(f"{registered} has no {PREVIOUS_CHAMPION!r} version to roll back to")
    moves = []
    with registry_lock(client):
        for registered, seen in read.items():
            now = _champion_and_previous(registered)
            if now != seen:
                raise RollbackConflictError(
                    f"{registered}: @champion/@previous-champion moved from {_shown(seen)} to {_shown(now)} "
                    "since this rollback read them (another rollback or promote ran meanwhile); nothing "
                    "was changed"
                )
        at = datetime.now(UTC).isoformat(timespec="seconds")
        for registered, (current, previous) in read.items():
            set_alias(client, registered, CHAMPION, previous)
            client.delete_registered_model_alias(registered, PREVIOUS_CHAMPION)
            client.set_model_version_tag(registered, previous, "restored_at", at)
            client.set_model_version_tag(registered, current, "rolled_back_at", at)
            moves.append((registered, current, previous))
    return moves


def _champion_and_previous(registered: str) -> tuple[str | None, str | None]:
    current = version_by_alias(registered, CHAMPION)
    previous = version_by_alias(registered, PREVIOUS_CHAMPION)
    return (
        None if current is None else str(current.version),
        None if previous is None else str(previous.version),
    )


def _shown(aliases: tuple[str | None, str | None]) -> str:
    return "/".join("none" if version is None else f"v{version}" for version in aliases)
