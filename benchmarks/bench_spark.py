"""Spark scoring against in-process scoring of the same rows with the same registered bundle.

Run: ``.venv/bin/python benchmarks/bench_spark.py --tracking-uri URI [--rows N]`` against a store
whose ``crm-advisor@champion`` exists (``make demo`` leaves one in ``mlflow.db``).

Both engines run as the command a user runs (``crm-modes score``, under ``/usr/bin/time``),
end to end: reading, the gate, scoring through the pyfunc, writing (peak memory: the driver's
process). Spark's time includes starting its JVM and workers (``local[*]``, one thread per
task); the command also prints the time from the session being ready to the outputs being in
place. Target: after the session has started, Spark at least 80% of the in-process
rows per second (the in-process command timed whole, start-up included).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import save
from bench_score import environment, timed_score

AFTER_SESSION = re.compile(r"\(([0-9.]+) s after the session started\)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()

    from crm_modes.data.generator import generate_book

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        env = environment(args.tracking_uri)
        book = generate_book(args.rows, seed=7)
        book = book.drop(
            columns=[c for c in book.columns if c.startswith("oracle_") or c in ("default_12m", "churn_12m")]
        )
        source = folder / "book.parquet"
        book.to_parquet(source)
        engines = {
            "inprocess": timed_score(env, folder, source, "inprocess.parquet"),
            "spark": timed_score(env, folder, source, "spark.parquet", "--engine", "spark"),
        }
    for result in engines.values():
        result["rows_per_second"] = round(args.rows / result["seconds"])
    spark = engines["spark"]
    spark["seconds_after_session"] = float(AFTER_SESSION.search(spark.pop("stdout")).group(1))
    spark["rows_per_second_after_session"] = round(args.rows / spark["seconds_after_session"])
    engines["inprocess"].pop("stdout")
    ratio = spark["rows_per_second_after_session"] / engines["inprocess"]["rows_per_second"]
    save(
        "spark",
        {
            "rows": args.rows,
            "engines": engines,
            "spark_after_session_over_inprocess": round(ratio, 3),
            "spark_whole_over_inprocess": round(
                spark["rows_per_second"] / engines["inprocess"]["rows_per_second"], 3
            ),
            "checks": {"spark_after_session_at_least_80_percent_of_inprocess": ratio >= 0.8},
        },
    )


if __name__ == "__main__":
    main()
