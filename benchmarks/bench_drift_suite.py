"""Feeds that break the way real feeds break: the verdict a risk manager expects, and the one obtained.

Run: ``.venv/bin/python benchmarks/bench_drift_suite.py [--tracking-uri URI]``. Without
``--tracking-uri`` it first trains and promotes ``configs/train.yaml`` into a temporary SQLite
store (not timed); with the ``make demo`` store, pass its absolute URI.

The book is the training configuration's own (400,000 rows, seed 42). Its month before the last is
monitored first, as last month's run; each case is then a copy of the last month changed as a feed
breaks, monitored by ``crm-modes monitor --previous`` against that run, exactly as a scheduler
runs it. The month as it is (the control) is monitored first: its flags are what the month shows
anyway (the book has aged since the training years). A case's verdict is then its own, from the
flags the change added to the control's and the exit code: ``act`` (an added act flag, or exit code
2 for a book that could not be read, with the report written), ``watch`` or ``ok``; the control's
verdict is its whole report's. Every case must get its expected level, and every run must print
``rows in = scored + quarantined`` and reconcile.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import save
from bench_score import BIN, champion_store, run

from crm_modes.data.generator import generate_book

Change = Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]


def _missing(month: pd.DataFrame, _: pd.DataFrame) -> pd.DataFrame:
    return month.assign(digital_logins_90d=np.nan)


def _zeros(month: pd.DataFrame, _: pd.DataFrame) -> pd.DataFrame:
    return month.assign(digital_logins_90d=0)


def _percent(month: pd.DataFrame, _: pd.DataFrame) -> pd.DataFrame:
    return month.assign(margin_bps=month["margin_bps"] / 100)


def _exposure(month: pd.DataFrame, _: pd.DataFrame) -> pd.DataFrame:
    return month.assign(exposure=month["exposure"] * 1000)


def _new_value(column: str, value: str) -> Change:
    def change(month: pd.DataFrame, _: pd.DataFrame) -> pd.DataFrame:
        changed = month.copy()
        changed[column] = changed[column].astype(object)
        changed.loc[changed.sample(frac=0.1, random_state=1).index, column] = value
        return changed

    return change


def _tripled_region(month: pd.DataFrame, _: pd.DataFrame) -> pd.DataFrame:
    changed = month.copy()
    changed["region"] = changed["region"].astype(object)
    share = (changed["region"] == "north").mean()
    others = changed.index[changed["region"] != "north"]
    moved = np.random.default_rng(2).choice(others, size=round(2 * share * len(changed)), replace=False)
    changed.loc[moved, "region"] = "north"
    return changed


def _ratios_worse(month: pd.DataFrame, _: pd.DataFrame) -> pd.DataFrame:
    return month.assign(
        leverage=(month["leverage"] * 1.1).clip(upper=50),
        interest_coverage=month["interest_coverage"] * 0.9,
        ebitda_margin=month["ebitda_margin"] - 0.1 * month["ebitda_margin"].abs(),
        revenue_growth=month["revenue_growth"] - 0.1 * month["revenue_growth"].abs(),
    )


def _duplicated(month: pd.DataFrame, _: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([month, month], ignore_index=True)


def _half(month: pd.DataFrame, _: pd.DataFrame) -> pd.DataFrame:
    return month.sample(frac=0.5, random_state=3).sort_index()


def _wrong_month(month: pd.DataFrame, _: pd.DataFrame) -> pd.DataFrame:
    return month.assign(snapshot_date=month["snapshot_date"] + pd.offsets.MonthEnd(2))


def _stale(_: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    return previous


def _as_is(month: pd.DataFrame, _: pd.DataFrame) -> pd.DataFrame:
    return month


#: (name, what is done to the month, the level a risk manager expects, the change)
CASES: list[tuple[str, str, str, Change]] = [
    ("column all missing", "digital_logins_90d empty on every row", "act", _missing),
    ("column all zeros", "digital_logins_90d 0 on every row", "act", _zeros),
    ("unit change", "margin_bps sent as percent", "act", _percent),
    ("exposure x 1000", "exposure in units where millions are expected", "act", _exposure),
    ("new reporting category", "region 'atlantis' on 10% of rows", "act", _new_value("region", "atlantis")),
    ("new model-input category", "industry 'space' on 10% of rows", "act", _new_value("industry", "space")),
    ("one region tripled", "region north from its share to three times it", "act", _tripled_region),
    ("ratios 10% worse", "leverage, coverage, EBITDA margin and growth 10% worse", "watch", _ratios_worse),
    ("duplicated rows", "every row twice", "act", _duplicated),
    ("half the facilities missing", "a random half of the rows", "act", _half),
    ("wrong month", "snapshot dates two month-ends late", "act", _wrong_month),
    ("stale values", "last month's file again", "act", _stale),
    ("control", "the month as it is (its flags: what every case shows anyway)", "watch", _as_is),
]
RECONCILED = re.compile(r"rows in = scored \+ quarantined: ([\d,]+) = ([\d,]+) \+ ([\d,]+)")


def monitor(env: dict, folder: Path, source: Path, report: Path, *options: str) -> tuple[int, dict, str]:
    arguments = ["monitor", "--no-mlflow", "--current", str(source), "--json", str(report), *options]
    result = run(
        [str(BIN / "crm-modes"), *arguments],
        env,
        folder,
        allowed=(0, 1, 2),
    )
    content = json.loads(report.read_text()) if report.exists() else {}
    return result.returncode, content, result.stdout + result.stderr


def verdict(code: int, flags: list[dict]) -> str:
    """``act`` for a book that could not be read or an act flag, else ``watch`` for a watch flag."""
    levels = {flag["level"] for flag in flags}
    return "act" if code == 2 or "act" in levels else "watch" if "watch" in levels else "ok"


def added(report: dict, control: dict) -> list[dict]:
    """The flags of ``report`` the control does not have (by section and figure), act first."""
    seen = {(flag["section"], flag["name"]) for flag in control.get("flags", [])}
    own = [flag for flag in report.get("flags", []) if (flag["section"], flag["name"]) not in seen]
    return sorted(own, key=lambda flag: flag["level"] != "act")


def describe(flag: dict) -> str:
    text = f"{flag['level']} {flag['section']} {flag['name']}"
    return f"{text}: {flag['note']}" if flag.get("note") else text


def reconciles(output: str) -> bool:
    found = RECONCILED.search(output)
    if not found:
        return False
    rows_in, scored, quarantined = (int(group.replace(",", "")) for group in found.groups())
    return rows_in == scored + quarantined


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", help="A store with a champion advisor (default: train one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crm-modes-drift-") as name:
        folder = Path(name)
        uri, env = champion_store(args.tracking_uri, folder)
        book = generate_book(400_000, seed=42)
        last = book["snapshot_date"].max()
        month = book[book["snapshot_date"] == last].reset_index(drop=True)
        previous = book[book["snapshot_date"] == last - pd.offsets.MonthEnd(1)].reset_index(drop=True)
        previous.to_parquet(folder / "previous.parquet")
        code, _, output = monitor(env, folder, folder / "previous.parquet", folder / "previous.json")
        if code not in (0, 1):
            raise RuntimeError(f"the previous month could not be monitored:\n{output[-3000:]}")
        ordered = sorted(CASES, key=lambda item: item[3] is not _as_is)  # the control first
        cases, control = [], {}
        for case, what, expected, change in ordered:
            source = folder / f"{case.replace(' ', '-')}.parquet"
            change(month, previous).to_parquet(source)
            started = time.perf_counter()
            code, report, output = monitor(
                env, folder, source, source.with_suffix(".json"), "--previous", str(folder / "previous.json")
            )
            if change is _as_is:
                control, own = (
                    report,
                    sorted(report.get("flags", []), key=lambda flag: flag["level"] != "act"),
                )
            else:
                own = added(report, control)
            obtained = verdict(code, own)
            cases.append(
                {
                    "case": case,
                    "what": what,
                    "expected": expected,
                    "obtained": obtained,
                    "met": obtained == expected,
                    "exit_code": code,
                    "seconds": round(time.perf_counter() - started, 1),
                    "reconciles": reconciles(output),
                    "rows_in": report.get("rows_in"),
                    "rows_quarantined": report.get("rows_quarantined"),
                    "flags": [describe(flag) for flag in own[:4]],
                    "more_flags": max(len(own) - 4, 0),
                }
            )
            print(f"{case}: expected {expected}, obtained {obtained} (exit {code})", flush=True)
    met = sum(case["met"] for case in cases)
    save(
        "drift_suite",
        {
            "tracking_uri": uri if args.tracking_uri else "(trained for the run)",
            "cases": cases,
            "met": met,
            "of": len(cases),
            "checks": {
                "every_case_its_expected_level": met == len(cases),
                "every_run_reconciles": all(case["reconciles"] for case in cases),
                "at_least_12_cases": len(cases) >= 12,
            },
        },
    )


if __name__ == "__main__":
    main()
