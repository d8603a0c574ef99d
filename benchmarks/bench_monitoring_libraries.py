"""Do evidently or nannyml earn a place in the monitoring? Their weight and speed beside ours.

Run (each library in a virtual environment of its own, so the project's stays as it is)::

    python3 -m venv /tmp/evidently && /tmp/evidently/bin/pip install evidently statsmodels
    python3 -m venv /tmp/nannyml && /tmp/nannyml/bin/pip install nannyml statsmodels
    .venv/bin/python benchmarks/bench_monitoring_libraries.py \\
        --evidently-python /tmp/evidently/bin/python --nannyml-python /tmp/nannyml/bin/python

The same work for each: the drift of 37 input columns of 1,000,000 book rows against a
100,000-row reference (evidently: its data-drift preset with PSI; nannyml: its univariate drift
calculator with Jensen-Shannon, it has no PSI; ours: the reference's bins and PSI of
``models/stability.py``, counting the current rows in chunks as ``crm-modes monitor`` does),
each in a process of its own under ``/usr/bin/time``: seconds and peak memory. Beside them:
the size of each environment, the packages each adds to ours, and what happened on the way.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import save

COLUMNS_SCRIPT = """
import pandas as pd
current = pd.read_parquet("{folder}/current.parquet")
reference = pd.read_parquet("{folder}/reference.parquet")
for name in current.columns:
    if isinstance(current[name].dtype, pd.CategoricalDtype):
        current[name] = current[name].astype(str); reference[name] = reference[name].astype(str)
"""
EVIDENTLY = """
from evidently import Report
from evidently.presets import DataDriftPreset
Report([DataDriftPreset(method="psi")]).run(current, reference)
"""
NANNYML = """
import nannyml as nml
calculator = nml.UnivariateDriftCalculator(
    column_names=list(current.columns), continuous_methods=["jensen_shannon"],
    categorical_methods=["jensen_shannon"], chunk_number=1,
)
calculator.fit(reference).calculate(current)
"""
OURS = """
from crm_modes.models.reference import _is_categorical
from crm_modes.models.stability import fit_bins, psi
for name in current.columns:
    bins = fit_bins(reference[name].to_numpy(), categorical=_is_categorical(name))
    values = current[name].to_numpy()
    counts = sum(bins.count(values[start:start + 100_000]) for start in range(0, len(values), 100_000))
    psi(bins.count(reference[name].to_numpy()), counts)
"""


def timed(python: str, body: str, folder: Path) -> dict[str, object]:
    script = COLUMNS_SCRIPT.format(folder=folder) + body
    result = subprocess.run(
        ["/usr/bin/time", "-f", "TIME %e %M", python, "-c", script],
        capture_output=True,
        text=True,
        env={"NML_DISABLE_USAGE_LOGGING": "1", "PATH": "/usr/bin:/bin"},
    )
    lines = result.stderr.strip().splitlines()
    seconds, kib = lines[-1].split()[1:]
    failure = None if result.returncode == 0 else lines[-2][-300:] if len(lines) > 1 else "failed"
    return {"seconds": float(seconds), "peak_memory_mib": round(int(kib) / 1024), "error": failure}


def environment(python: str) -> dict[str, object]:
    root = Path(python).parents[1]
    size = subprocess.run(["du", "-sm", str(root)], capture_output=True, text=True).stdout.split()[0]
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True
    ).stdout
    ours = subprocess.run(
        [sys.executable, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True
    ).stdout
    names = {line.split("==")[0].lower() for line in listed.splitlines() if "==" in line}
    ours_names = {line.split("==")[0].lower() for line in ours.splitlines() if "==" in line}
    return {
        "environment_mib": int(size),
        "packages": len(names),
        "packages_added_to_ours": sorted(names - ours_names),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--evidently-python", required=True)
    parser.add_argument("--nannyml-python", required=True)
    args = parser.parse_args()

    from crm_modes.data.generator import generate_book

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        book = generate_book(1_000_000, seed=7)
        columns = [c for c in book.columns if not c.startswith("oracle_") and not c.endswith("_12m")]
        columns = [c for c in columns if c not in ("client_id", "facility_id", "snapshot_date")][:37]
        book[columns].to_parquet(folder / "current.parquet")
        book[columns].sample(n=100_000, random_state=0).to_parquet(folder / "reference.parquet")
        del book
        results = {
            "evidently": {
                **timed(args.evidently_python, EVIDENTLY, folder),
                **environment(args.evidently_python),
            },
            "nannyml": {**timed(args.nannyml_python, NANNYML, folder), **environment(args.nannyml_python)},
            "ours": timed(sys.executable, OURS, folder),
        }
    save(
        "monitoring_libraries",
        {"columns": 37, "current_rows": 1_000_000, "reference_rows": 100_000, **results},
    )


if __name__ == "__main__":
    main()
