"""Spark scoring against in-process scoring of the same rows with the same registered bundle.

Run: ``.venv/bin/python benchmarks/bench_spark.py --tracking-uri URI [--rows N]`` against a store
whose ``crm-advisor@champion`` exists (``make demo`` leaves one in ``mlflow.db``).

Both engines run as the command a user runs (``crm-modes score``, under ``/usr/bin/time``),
end to end: reading, the gate, scoring through the pyfunc, writing (peak memory: the driver's
process). Spark's time includes
starting its JVM and workers (``local[*]``, one thread per task). Target (issue 12): Spark at
least 80% of the in-process rows per second.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import save
from bench_score import environment, timed_score


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
    ratio = engines["spark"]["rows_per_second"] / engines["inprocess"]["rows_per_second"]
    save(
        "spark",
        {
            "rows": args.rows,
            "engines": engines,
            "spark_over_inprocess": round(ratio, 3),
            "checks": {"spark_at_least_80_percent_of_inprocess": ratio >= 0.8},
        },
    )


if __name__ == "__main__":
    main()
