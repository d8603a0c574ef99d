"""The outcome models' mode effects counted per row against counted per client, beside the truth.

Run: ``.venv/bin/python benchmarks/bench_mode_effects.py [--seeds 42 7 11 3 2026]``.

For each seed the default configuration's churn and PD models (``configs/train.yaml``, 400,000
rows) are fitted on their training rows as training fits them, twice: without the client column
(the penalized fit's information counted per row, as before) and with the rows of a client counted
together (what ships). On the out-of-time evaluation rows it reports each
pair of modes' average effect in probability, the model's against the simulation's own (the oracle
columns in each mode), their absolute errors, and the design effect: the mode differences' variance
clustered by client over counted per row.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from itertools import combinations
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import save

REPO = Path(__file__).resolve().parents[1]
OUTCOMES = {"churn": "churn", "default": "default"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 11, 3, 2026])
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from crm_modes.data.schema import MODES
    from crm_modes.training.clients import GROUP_COLUMN
    from crm_modes.training.config import load_training_config
    from crm_modes.training.data_source import load_training_table
    from crm_modes.training.fit import fit_model
    from crm_modes.training.trainer import model_split, training_rows

    base = load_training_config(REPO / "configs" / "train.yaml")
    pairs = list(combinations(range(len(MODES)), 2))
    runs = []
    for seed in args.seeds:
        config = base.model_copy(update={"data": base.data.model_copy(update={"seed": seed})})
        table = load_training_table(config).table
        for name, outcome in OUTCOMES.items():
            model = config.models[name].model_copy(update={"baseline": False})
            split, _ = model_split(table, config, model)
            fit_rows, calibration_rows = training_rows(split, model)
            train, calibration = table[fit_rows], table[calibration_rows]
            evaluation = table[split.evaluation]
            truth = evaluation[[f"oracle_{outcome}_probability_{mode}" for mode in MODES]].to_numpy()
            for counted, rows in (("per row", train.drop(columns=GROUP_COLUMN)), ("per client", train)):
                fitted = fit_model(name, model, config.features, rows, calibration)
                predicted = np.column_stack(
                    [
                        fitted.pipeline.predict_proba(evaluation.assign(assigned_mode=mode))[:, 1]
                        for mode in MODES
                    ]
                )
                effects = {
                    f"{MODES[a]}-{MODES[b]}": {
                        "model": round(float((predicted[:, a] - predicted[:, b]).mean()), 5),
                        "truth": round(float((truth[:, a] - truth[:, b]).mean()), 5),
                    }
                    for a, b in pairs
                }
                runs.append(
                    {
                        "seed": seed,
                        "model": name,
                        "counted": counted,
                        "design_effect": None
                        if (k := fitted.mode_effects.design_effect) is None
                        else round(k, 2),
                        "constrained": fitted.mode_effects.constrained,
                        "effects": effects,
                        "mean_absolute_error": round(
                            float(np.mean([abs(e["model"] - e["truth"]) for e in effects.values()])), 5
                        ),
                    }
                )
                print(runs[-1], flush=True)
    summary = {
        name: {
            counted: {
                "mean_absolute_error": round(float(np.mean([r["mean_absolute_error"] for r in group])), 5),
                "largest_absolute_error": round(max(r["mean_absolute_error"] for r in group), 5),
            }
            | (
                {}  # counted per row: no design effect
                if (effects := [r["design_effect"] for r in group if r["design_effect"] is not None]) == []
                else {"design_effect_range": [min(effects), max(effects)]}
            )
            for counted in ("per row", "per client")
            if (group := [r for r in runs if r["model"] == name and r["counted"] == counted])
        }
        for name in OUTCOMES
    }
    save("mode_effects", {"seeds": args.seeds, "summary": summary, "runs": runs})


if __name__ == "__main__":
    main()
