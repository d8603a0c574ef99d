"""Time and peak memory of simulating a 1,000,000-row book, and of writing it as Parquet.

Run: ``.venv/bin/python benchmarks/bench_generate.py [--rows N] [--seed S]``.
Targets on the 2-core reference machine: generation under 15 s and under 2 GiB.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _report import peak_memory_mib, save

from crm_modes.data.generator import generate_book
from crm_modes.data.io import write_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    baseline = peak_memory_mib()
    started = time.perf_counter()
    book = generate_book(args.rows, args.seed)
    generate_seconds = time.perf_counter() - started
    generate_peak = peak_memory_mib()

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        write_table(book, Path(folder) / "book.parquet")
        write_seconds = time.perf_counter() - started

    save(
        "generate",
        {
            "rows": len(book),
            "generate_seconds": round(generate_seconds, 2),
            "rows_per_second": round(len(book) / generate_seconds),
            "peak_memory_mib_after_generate": round(generate_peak, 1),
            "peak_memory_mib_before_generate": round(baseline, 1),
            "parquet_write_seconds": round(write_seconds, 2),
            "peak_memory_mib_total": round(peak_memory_mib(), 1),
            "targets": {"generate_seconds": 15, "peak_memory_mib": 2048},
        },
    )


if __name__ == "__main__":
    main()
