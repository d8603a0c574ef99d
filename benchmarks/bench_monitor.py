"""Monitoring a large book against the champion's training reference, and false alarms over seeds.

Run: ``.venv/bin/python benchmarks/bench_monitor.py [--tracking-uri URI] [--rows N] [--seeds 20]``.
Without ``--tracking-uri`` it first trains and promotes ``configs/train.yaml`` into a temporary
SQLite store (not timed).

Measured, in one run:
- speed: ``crm-modes monitor`` (gate, scoring through the registered model, every stability
  and slice figure, the HTML and JSON reports; not logged to MLflow) of N rows and of N/4 rows,
  each under ``/usr/bin/time`` as a separate process: seconds and peak memory (flat in N);
  then the same book scored by ``crm-modes score`` (timed as in ``bench_score.py``) and
  monitored with ``--scores``, as a scheduler runs it after the scoring job;
- false alarms: for each of ``--seeds`` seeds, the default configuration trained on that seed's
  book (in this process, no MLflow) and its ``baseline`` scenario's last month monitored against
  the reference of that training and, as the previous run, the month before
  (``configs/monitoring.yaml``): the runs with any "act" flag;
- levels month on month: the same for each of the seed's last 12 months, each against the month
  before: how far the book's levels and inputs move in ordinary months, and the months flagged.
Targets (2-core machine): 1,000,000 rows in at most 20 s, memory flat in the input
size; at most 1 run in 20 with an "act" flag on a baseline book.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import save
from bench_score import BIN, REPO, champion_store, run, timed_score

#: ordinary months per seed whose levels are compared with the month before
MONTHS_ON_MONTH = 12


def timed_monitor(env: dict, folder: Path, source: Path, scores: Path | None = None) -> dict[str, float]:
    result = run(
        [
            "/usr/bin/time",
            "-f",
            "TIME %e %M",
            str(BIN / "crm-modes"),
            "monitor",
            "--current",
            str(source),
            "--html",
            str(folder / "report.html"),
            "--json",
            str(folder / "report.json"),
            "--no-mlflow",
            *(["--scores", str(scores)] if scores is not None else []),
        ],
        env,
        folder,
        allowed=(0, 1),  # 1: an "act" threshold crossed, a finding, not a failure
    )
    seconds, kib = result.stderr.strip().splitlines()[-1].split()[1:]
    return {"seconds": float(seconds), "peak_memory_mib": round(int(kib) / 1024, 1)}


def false_alarms(seeds: list[int], rows: int, month_on_month: list[dict]) -> list[dict]:
    """Per seed: train the default configuration on that seed's book, monitor its baseline's last
    months, each against the month before; ``month_on_month`` gets each month's levels."""
    import warnings

    warnings.simplefilter("ignore")
    from crm_modes.data.gate import validate
    from crm_modes.data.generator import generate_book
    from crm_modes.data.schema import input_names
    from crm_modes.models.advisor import Advisor
    from crm_modes.models.alerts import load_policy
    from crm_modes.models.economics import load_economics
    from crm_modes.monitor.config import load_monitoring_config
    from crm_modes.monitor.figures import compute
    from crm_modes.shared.model_loading import model_input
    from crm_modes.training.bundle import monitoring_reference
    from crm_modes.training.config import load_training_config
    from crm_modes.training.data_source import load_training_table
    from crm_modes.training.trainer import advisor_readings, fit_and_evaluate

    base = load_training_config(REPO / "configs" / "train.yaml")
    settings = load_monitoring_config(REPO / "configs" / "monitoring.yaml")
    runs = []
    for seed in seeds:
        started = time.perf_counter()
        config = base.model_copy(
            update={"data": base.data.model_copy(update={"seed": seed, "generate_rows": rows})}
        )
        table = load_training_table(config).table
        pipelines, fit_rows = {}, {}
        for name in ("mode", "churn", "default"):
            fitted, _, split, _ = fit_and_evaluate(name, config, table)
            pipelines[name], fit_rows[name] = fitted.pipeline, split.train | split.calibration
        advisor = Advisor(
            **pipelines,
            policy=load_policy(config.advisor.policy),
            economics=load_economics(config.advisor.economics),
            readings=advisor_readings(config, table, fit_rows),
        )
        reference = monitoring_reference(advisor, table[fit_rows["default"]], {})
        book = generate_book(rows, seed, scenario="baseline")
        grades = [grade.grade for grade in advisor.policy.risk_grades]

        months = sorted(book["snapshot_date"].unique())[-(MONTHS_ON_MONTH + 1) :]
        previous, moves = None, []
        for snapshot in months:  # each month monitored with the month before as its previous run
            current = validate(book[book["snapshot_date"] == snapshot]).valid
            advice = advisor.advise(model_input(current[[c for c in input_names() if c in current.columns]]))
            profile = reference.profile.empty_like()
            profile.add(current, advice)
            report = compute(reference, profile, None, grades, settings, previous=previous)
            if previous is not None:
                moves.append(report["portfolio"])
            previous = report["portfolio"]["current"]
        acted = [f"{f['section']} {f['name']} {f['figure']}" for f in report["flags"] if f["level"] == "act"]
        runs.append(
            {
                "seed": seed,
                "rows_monitored": len(current),
                "act_flags": acted,
                "watch_flags": sum(f["level"] == "watch" for f in report["flags"]),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        print(runs[-1], flush=True)
        month_on_month.extend(moves)
    return runs


def levels_month_on_month(portfolios: list[dict]) -> dict:
    """How far the book's levels move from one month to the next in ordinary months: per figure the
    95th and 99th percentiles and the largest rise (relative change; an input's shift in standard
    deviations, either way), and the months with a flag."""
    changes: dict[str, list[float]] = {}
    flagged = {"watch": 0, "act": 0}
    for levels in portfolios:
        found = {"ok"}
        for name, figures in levels["against_previous"].items():
            if figures.get("interval") is not None and figures["change"] is not None:
                changes.setdefault(name, []).append(figures["change"])
            found.add(figures["flag"])
        for name, figures in levels["inputs_against_previous"].items():
            if figures["shift"] is not None:
                changes.setdefault(f"input {name}", []).append(abs(figures["shift"]))
            found.add(figures["flag"])
        mix = levels["grade_mix_against_previous"]
        if mix is not None:
            changes.setdefault("risk grade mix psi", []).append(mix["psi"])
            found.add(mix["flag"])
        worst = "act" if "act" in found else "watch" if "watch" in found else "ok"
        if worst != "ok":
            flagged[worst] += 1
    return {
        "months": len(portfolios),
        "months_with_a_level_flag": flagged,
        "figures": {
            name: {
                "q95": round(float(np.quantile(values, 0.95)), 3),
                "q99": round(float(np.quantile(values, 0.99)), 3),
                "largest": round(float(np.max(values)), 3),
            }
            for name, values in sorted(changes.items())
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--seed-rows", type=int, default=400_000, help="book size of each false-alarm run")
    args = parser.parse_args()

    from crm_modes.data.generator import generate_book

    results: dict = {}
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        _, env = champion_store(args.tracking_uri, folder)
        sizes = {"full": args.rows, "quarter": args.rows // 4}
        speed = {}
        for label, rows in sizes.items():
            book = generate_book(rows, seed=7)
            book = book.drop(columns=[c for c in book.columns if c.startswith("oracle_")])
            source = folder / f"{label}.parquet"
            book.to_parquet(source)
            del book
            scores = folder / f"{label}-scores.parquet"
            speed[label] = timed_monitor(env, folder, source)
            speed[f"{label}_score"] = timed_score(env, folder, source, str(scores))
            speed[f"{label}_from_scores"] = timed_monitor(env, folder, source, scores)
            for key in (label, f"{label}_from_scores"):
                speed[key] |= {"rows": rows, "rows_per_second": round(rows / speed[key]["seconds"])}
        results["speed"] = speed
    if args.seeds:
        portfolios: list[dict] = []
        runs = false_alarms(list(range(1, args.seeds + 1)), args.seed_rows, portfolios)
        results["false_alarms"] = {
            "runs": runs,
            "runs_with_an_act_flag": sum(bool(r["act_flags"]) for r in runs),
            "of": len(runs),
        }
        results["levels_month_on_month"] = levels_month_on_month(portfolios)
    speed = results["speed"]
    checks = {
        "at_most_20_s_for_1m_rows_scoring": speed["full"]["seconds"] <= 20,
        "at_most_20_s_for_1m_rows_from_scores": speed["full_from_scores"]["seconds"] <= 20,
        "memory_flat": all(
            speed[f"full{how}"]["peak_memory_mib"] <= 1.25 * speed[f"quarter{how}"]["peak_memory_mib"]
            for how in ("", "_from_scores")
        ),
    }
    if args.seeds:
        checks["at_most_1_in_20_false_alarms"] = results["false_alarms"]["runs_with_an_act_flag"] <= max(
            1, args.seeds // 20
        )
    save("monitor", {**results, "checks": checks})


if __name__ == "__main__":
    main()
