"""Round trip of a bank's export: labels, models and value against the native book they came from.

Run: ``.venv/bin/python benchmarks/bench_bank_round_trip.py [--rows 400000 --seed 42]``.

A synthetic book is written as a bank would export it (``examples/bank_export.py``: the bank's
names, ``31.12.2024`` dates, codes, money in units, three readings absent, labels as events,
GDP growth as a monthly macro series) and built back with ``configs/books/example_bank.yaml``.
Then:

- **labels**: on every row, the label built from events equals the generator's where both are
  known, and is null exactly where its 12-month window runs past the last observed month;
- **models**: the advisor is trained on the built book (``configs/train_bank.yaml``) and on the
  native book with the same three readings dropped and the same windows censored (the
  information the bank has, under the schema's own names and units); the committee model's
  accuracy, the churn and PD AUCs (evaluation rows) and the value captured (the policy report
  with the simulation's oracle columns joined back by facility and month) are compared. Targets:
  within 0.005 (metrics) and 0.03 (value captured).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import save  # noqa: E402
from bank_export import CONTRACT, export  # noqa: E402

from crm_modes.data.bank_book import build_book  # noqa: E402
from crm_modes.data.book_contract import BookContract  # noqa: E402
from crm_modes.data.book_labels import horizon_end  # noqa: E402
from crm_modes.data.generator import generate_book  # noqa: E402
from crm_modes.data.io import read_table, write_table  # noqa: E402
from crm_modes.shared.configuration import load_yaml_model  # noqa: E402

LABELS = ("default_12m", "churn_12m")
KEY = ["facility_id", "snapshot_date"]


def label_agreement(native: pd.DataFrame, built: pd.DataFrame, contract: BookContract) -> dict[str, object]:
    """Per label: rows where both are known and agree or disagree, and whether the unknown ones are
    exactly the windows that run past the last observed month."""
    joined = built[[*KEY, *LABELS]].merge(native[[*KEY, *LABELS]], on=KEY, suffixes=("", "_native"))
    observed_until = pd.Timestamp(built["snapshot_date"].max())
    censored = (horizon_end(joined["snapshot_date"], contract.horizon_months) > observed_until).to_numpy()
    out: dict[str, object] = {"rows_compared": len(joined), "rows_censored": int(censored.sum())}
    for label in LABELS:
        mine, theirs = joined[label], joined[f"{label}_native"]
        both = mine.notna() & theirs.notna()
        out[label] = {
            "both_known": int(both.sum()),
            "disagree": int((mine[both] != theirs[both]).sum()),
            "null_exactly_where_censored": bool((mine.isna().to_numpy() == censored).all()),
        }
    return out


def train_and_judge(config, table: pd.DataFrame) -> dict[str, float]:
    """Train ``config`` (its data already written), then judge the advisor on ``table`` (with oracles)."""
    from crm_modes.training.policy_report import judge_bundle
    from crm_modes.training.trainer import train

    started = time.perf_counter()
    report = train(config)
    seconds = time.perf_counter() - started
    metrics = {outcome.name: outcome.metrics for outcome in report.outcomes}
    uri = f"models:/{config.advisor.registered_name}/{report.advisor_version}"
    policy = judge_bundle(config, uri, table)
    return {
        "mode_accuracy": float(metrics["mode"]["accuracy"]),
        "churn_auc": float(metrics["churn"]["auc"]),
        "default_auc": float(metrics["default"]["auc"]),
        "value_captured": float(policy["value_captured"]),
        "rows_trained": int(report.rows_in - report.rows_quarantined),
        "train_seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
        from crm_modes.training.config import load_training_config, without_inputs

        contract = load_yaml_model(CONTRACT, BookContract)
        native = generate_book(args.rows, args.seed)
        files = export(native, work / "export")
        started = time.perf_counter()
        built = build_book(
            read_table(files["panel"]), read_table(files["events"]), contract, read_table(files["macro"])
        )
        build_seconds = time.perf_counter() - started
        assert built.reconciles, "rows in != book + quarantined + dropped"
        labels = label_agreement(native, built.book, contract)

        # The bank's book, as `crm-modes labels` writes it, trained with configs/train_bank.yaml.
        write_table(built.book, work / "book.parquet")
        os.environ["CRM_MODES_BOOK"] = str(work / "book.parquet")
        os.environ["CRM_MODES_BOOK_QUARANTINE"] = str(work / "book.training-quarantine.csv")
        bank_config = load_training_config(REPO / "configs" / "train_bank.yaml")
        # Without the bank's profile: it would keep out rows the native book keeps (the same
        # information is compared, not the same review of it).
        bank_config = bank_config.model_copy(
            update={"data": bank_config.data.model_copy(update={"profile": None})}
        )

        # The native book: the same rows and censored windows; the models leave out the same readings.
        oracle = [name for name in native.columns if name.startswith("oracle_")]
        same = built.book[KEY].merge(native, on=KEY, how="left")
        for label in LABELS:
            same[label] = same[label].where(built.book[label].notna().to_numpy())
        write_table(same, work / "native.parquet")
        native_config = without_inputs(
            load_training_config(REPO / "configs" / "train.yaml"), contract.missing_inputs()
        )
        native_config = native_config.model_copy(
            update={
                "data": native_config.data.model_copy(
                    update={"generate_rows": None, "path": str(work / "native.parquet")}
                ),
                "advisor": native_config.advisor.model_copy(update={"registered_name": "native-advisor"}),
                "models": {
                    name: model.model_copy(update={"registered_name": f"native-{model.registered_name}"})
                    for name, model in native_config.models.items()
                },
            }
        )
        with_oracle = built.book.merge(native[[*KEY, *oracle]], on=KEY, how="left")
        bank = train_and_judge(bank_config, with_oracle)
        reference = train_and_judge(native_config, same)

    differences = {
        name: round(bank[name] - reference[name], 4)
        for name in ("mode_accuracy", "churn_auc", "default_auc", "value_captured")
    }
    targets = {"mode_accuracy": 0.005, "churn_auc": 0.005, "default_auc": 0.005, "value_captured": 0.03}
    result = {
        "rows": args.rows,
        "seed": args.seed,
        "build_seconds": round(build_seconds, 1),
        "labels": labels,
        "bank_book": bank,
        "native_book_same_information": reference,
        "bank_minus_native": differences,
        "targets_abs": targets,
        "within_targets": bool(all(abs(differences[name]) <= limit for name, limit in targets.items())),
    }
    for name, value in result.items():
        print(f"{name}: {value}")
    save("bank_round_trip", result)
    exact = all(
        not labels[label]["disagree"] and labels[label]["null_exactly_where_censored"] for label in LABELS
    )
    if not (result["within_targets"] and exact):
        raise SystemExit(1)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
