"""Fit the synthetic-book feature pipeline on 200,000 rows; transform 1,000,000 rows.

Run: ``.venv/bin/python benchmarks/bench_features.py [--fit-rows N] [--rows N]``.
Target on the 2-core reference machine: transform of 1,000,000 rows under 5 s. Measured
twice: the pipeline's own ``transform`` and ``features.fast.transform`` (what scoring uses).
The books are generated and validated first (not timed); the timings cover the pipeline only.
"""

from __future__ import annotations

import argparse
import time
import warnings

from _report import peak_memory_mib, save

from crm_modes.data.gate import validate
from crm_modes.data.generator import generate_book
from crm_modes.features import fast
from crm_modes.features.builder import build_feature_pipeline
from crm_modes.features.config import load_feature_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fit-rows", type=int, default=200_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--config", default="configs/features/synthetic.yaml")
    args = parser.parse_args()
    warnings.simplefilter("ignore", UserWarning)

    config = load_feature_config(args.config)
    train = validate(generate_book(args.fit_rows, seed=1)).valid
    book = validate(generate_book(args.rows, seed=2)).valid
    results: dict[str, object] = {"fit_rows": len(train), "transform_rows": len(book)}
    for flavor in ("tree", "linear"):
        pipeline = build_feature_pipeline(config, target="default_12m", flavor=flavor)
        started = time.perf_counter()
        pipeline.fit(train)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        matrix = pipeline.transform(book)
        transform_seconds = time.perf_counter() - started
        del matrix
        started = time.perf_counter()
        matrix = fast.transform(pipeline, book)
        fast_seconds = time.perf_counter() - started
        results[flavor] = {
            "fit_seconds": round(fit_seconds, 2),
            "transform_seconds": round(transform_seconds, 2),
            "transform_rows_per_second": round(len(book) / transform_seconds),
            "fast_transform_seconds": round(fast_seconds, 2),  # what scoring uses: features/fast.py
            "output_columns": matrix.shape[1],
        }
        del matrix
    results["peak_memory_mib"] = round(peak_memory_mib(), 1)
    results["targets"] = {"transform_seconds": 5}
    save("features", results)


if __name__ == "__main__":
    main()
