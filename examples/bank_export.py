"""Turn a synthetic book into a "bank export", the files a bank's data scientist starts from.

Run: ``python examples/bank_export.py --rows 200000 --seed 42 --out bank-export`` writes

- ``panel.csv``: the monthly panel under the bank's own names (``CUST_ID``, ``FACILITY_NO``,
  ``AS_OF``, ...), dates written ``31.12.2024``, modes and segments as codes (``B/R/P``,
  ``S/M/L/X``), money in currency units rather than millions; three readings the bank does not
  record (RM contacts and digital logins) left out, and no labels;
- ``events.csv``: one row per default (``DPD90``) or relationship exit
  (``RELATIONSHIP_CLOSED``), dated the month-end after the facility's last snapshot;
- ``macro.csv``: GDP growth by month (``PERIOD``, ``GDP_GROWTH``, ``PUBLISHED``), published on the
  15th of the following month, as the panel used it, from a year before the first snapshot (the
  change over a year needs it);
- ``month.csv``: the panel's latest month alone, what the bank exports each month to score.

``configs/books/example_bank.yaml`` is the contract that maps these files back onto the schema:
``crm-modes labels --snapshots bank-export/panel.csv --events bank-export/events.csv --macro
bank-export/macro.csv --contract configs/books/example_bank.yaml --out book.parquet``. Nothing
here is committed as data: the files are generated.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from crm_modes.data.generator import generate_book
from crm_modes.data.schema import MACRO_CHANGE_MONTHS

REPO = Path(__file__).resolve().parents[1]
CONTRACT = REPO / "configs" / "books" / "example_bank.yaml"
DATE_FORMAT = "%d.%m.%Y"


def export(book: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """Write the bank's three files for ``book`` into ``folder``; return their paths."""
    contract = yaml.safe_load(CONTRACT.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    book = book[book["facility_id"] != book["facility_id"].iloc[-1]]  # the last one may be cut short
    panel = pd.DataFrame(
        {bank: book[name] for name, bank in contract["columns"].items() if bank and name in book}
    )
    for name, codes in contract["codes"].items():
        bank = contract["columns"][name]
        panel[bank] = book[name].astype(str).map({value: code for code, value in codes.items()})
    for name in ("annual_revenue", "facility_amount", "exposure"):
        panel[contract["columns"][name]] = (book[name] * 1e6).round(2)
    panel["AS_OF"] = book["snapshot_date"].dt.strftime(DATE_FORMAT)

    last = book.groupby("facility_id")["snapshot_date"].max()
    ended = {}
    for label, kind in (("default_12m", "DPD90"), ("churn_12m", "RELATIONSHIP_CLOSED")):
        hit = book.loc[book[label].fillna(0).astype(int) == 1, "facility_id"].unique()
        ended.update(dict.fromkeys(hit, kind))
    facilities = np.array(list(ended), dtype=object)
    events = pd.DataFrame(
        {
            "FACILITY_NO": facilities,
            "EVENT_DATE": (last.loc[facilities] + pd.offsets.MonthEnd(1)).dt.strftime(DATE_FORMAT).to_numpy(),
            "EVENT_TYPE": [ended[facility] for facility in facilities],
        }
    )

    snapshots = book.drop_duplicates("snapshot_date").sort_values("snapshot_date")
    period = (snapshots["snapshot_date"] - pd.offsets.MonthEnd(1)).dt.to_period("M")
    # and the year before the first snapshot, which the first year's change was taken against
    first_year = snapshots.iloc[:MACRO_CHANGE_MONTHS]
    period = pd.concat([period.iloc[:MACRO_CHANGE_MONTHS] - MACRO_CHANGE_MONTHS, period])
    growth = np.concatenate(
        [first_year["gdp_growth"] - first_year["gdp_growth_change_12m"], snapshots["gdp_growth"]]
    )
    macro = pd.DataFrame(
        {
            "PERIOD": period.astype(str).to_numpy(),
            "GDP_GROWTH": growth,
            "PUBLISHED": (period.dt.to_timestamp() + pd.offsets.MonthBegin(1) + pd.Timedelta(days=14))
            .dt.strftime(DATE_FORMAT)
            .to_numpy(),
        }
    ).sort_values("PERIOD")
    paths = {name: folder / f"{name}.csv" for name in ("panel", "events", "macro", "month")}
    panel.to_csv(paths["panel"], index=False)
    events.to_csv(paths["events"], index=False)
    macro.to_csv(paths["macro"], index=False)
    latest = book["snapshot_date"] == book["snapshot_date"].max()
    panel[latest.to_numpy()].to_csv(paths["month"], index=False)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("bank-export"))
    args = parser.parse_args()
    for name, path in export(generate_book(args.rows, seed=args.seed), args.out).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
