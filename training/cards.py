"""Model cards: a short markdown page per model."""

from __future__ import annotations

from crm_modes.training.evaluate import Evaluation
from crm_modes.training.fit import FittedModel

INTENDED_USE = {
    "multiclass": (
        "Recommend the relationship mode (basic, reactive, responsible) for a client facility, as "
        "decision support for the credit committee. A recommendation above the mode applied today is "
        "a signal to review the relationship, not an automatic change."
    ),
    "binary": (
        "Estimate a calibrated 12-month probability for each client facility, to prioritize "
        "monitoring and early intervention. Not a credit decision on its own, and not a regulatory "
        "capital model."
    ),
}


def _table(rows: dict[str, object]) -> str:
    lines = ["| metric | value |", "| --- | --- |"]
    lines += [
        f"| {key} | {value:.4f} |" if isinstance(value, float) else f"| {key} | {value} |"
        for key, value in rows.items()
        if not isinstance(value, list)
    ]
    return "\n".join(lines)


def _baseline_line(model: FittedModel) -> str:
    if model.baseline is None:
        return ""
    rows = f"{model.baseline_rows:,}"
    return f"- Baseline: logistic regression on the same features, fitted on {rows} training rows"


def model_card(
    model: FittedModel,
    evaluation: Evaluation,
    *,
    data_description: str,
    split_description: str,
    counts: dict[str, int],
    importance: dict[str, float],
) -> str:
    """The card's markdown."""
    config = model.config
    top = sorted(importance.items(), key=lambda item: item[1], reverse=True)[:8]
    sections = [
        f"# Model card: {model.name} ({config.registered_name})",
        "## Purpose",
        INTENDED_USE[config.kind],
        "## Data and period",
        f"- Source: {data_description}",
        f"- Label: `{config.target}`"
        + (f" (positive: `{config.positive_label}`)" if config.positive_label else ""),
        f"- Split: {split_description}",
        "- Rows: " + ", ".join(f"{key} {value:,}" for key, value in counts.items()),
        "## Model",
        f"- Estimator: {config.estimator.type} {config.estimator.params or ''}",
        f"- Calibration: {model.calibration_method}"
        + (
            f" (log loss on held-out calibration rows: {model.calibration_scores})"
            if model.calibration_scores
            else ""
        ),
        _baseline_line(model),
        "## Evaluation (out-of-sample rows)",
        _table(evaluation.metrics),
    ]
    if evaluation.baseline_metrics:
        sections += ["### Logistic-regression baseline", _table(evaluation.baseline_metrics)]
    if evaluation.oracle_metrics:
        what = (
            "noiseless policy mode"
            if config.kind == "multiclass"
            else "true probabilities (simulation oracle)"
        )
        sections += [f"### Against the {what}", _table(evaluation.oracle_metrics)]
    book = bool(evaluation.oracle_metrics)  # the project's simulated book (it alone has the truth)
    limits = [
        "- Trained on the rows above; a change in the population or in how the outcome comes about shifts "
        "the rates. Monitor calibration (`crm-modes monitor`) and retrain when it drifts.",
        "- Identifiers and labels are never inputs.",
    ]
    if book:
        limits = [
            "- Trained on the period above; a change of economic regime or of the bank's policies shifts the "
            "rates. Monitor calibration (`crm-modes monitor`) and retrain when it drifts.",
            "- The economic cycle reaches the inputs only through published GDP growth; a downturn deeper "
            "than the training years saw is extrapolated.",
            "- Identifiers, dates, labels and the simulation's oracle columns are never inputs.",
        ]
    sections += [
        "## Strongest inputs (permutation importance)",
        "\n".join(f"- `{name}`: {value:.4f}" for name, value in top),
        "## Limits",
        *limits,
    ]
    return "\n\n".join(section for section in sections if section) + "\n"
