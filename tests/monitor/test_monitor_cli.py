"""crm-modes monitor as a scheduler runs it: exit codes, HTML and JSON, MLflow, and the page in Chromium."""

import json
import shutil
import subprocess

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from crm_modes.data.generator import generate_book
from crm_modes.monitor.mlflow_reports import EXPERIMENT, VERSION_TAG
from tests.conftest import REPO

pytestmark = pytest.mark.integration
SECTIONS = ("flags", "stability", "backtest", "slices")


def run(cli, store, *args):
    return subprocess.run(
        [cli, "monitor", *args],
        cwd=store["folder"],
        env=store["env"],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def books(advisor_store):
    """Books of the training configuration's seed and size: the last three months of a downturn,
    and (with outcomes) the month a year before the end of the seed's own book."""
    folder = advisor_store["folder"]
    downturn = generate_book(30_000, seed=5, scenario="downturn")
    recent = downturn[downturn["snapshot_date"] > downturn["snapshot_date"].max() - pd.DateOffset(months=3)]
    recent.to_parquet(folder / "downturn-recent.parquet")
    book = generate_book(30_000, seed=5)
    cohort = book[book["snapshot_date"] == book["snapshot_date"].max() - pd.DateOffset(years=1)]
    cohort.to_parquet(folder / "cohort.parquet")
    return {"downturn": folder / "downturn-recent.parquet", "cohort": folder / "cohort.parquet"}


@pytest.fixture(scope="module")
def downturn_run(cli, advisor_store, books):
    folder = advisor_store["folder"]
    result = run(
        cli,
        advisor_store,
        "--current",
        str(books["downturn"]),
        "--html",
        "downturn.html",
        "--json",
        "downturn.json",
    )
    return result, folder / "downturn.html", json.loads((folder / "downturn.json").read_text())


def test_a_downturn_exits_1_with_every_figure_in_html_json_and_mlflow(downturn_run, advisor_store):
    result, page, report = downturn_run
    assert result.returncode == 1, result.stderr[-2000:]
    assert report["status"] == "act"
    assert report["rows_in"] == report["rows_scored"] + report["rows_quarantined"]
    assert f"rows in = scored + quarantined: {report['rows_in']:,}" in result.stdout
    economy = {entry["name"]: entry for entry in report["stability"]["economy"]}
    assert economy["gdp_growth"]["flag"] == "act"
    assert "act" in result.stdout
    assert "gdp_growth" in result.stdout
    text = page.read_text()
    assert all(f'id="{section}"' in text for section in SECTIONS)
    client = MlflowClient(tracking_uri=advisor_store["uri"])
    experiment = client.get_experiment_by_name(EXPERIMENT)
    (monitoring,) = client.search_runs(
        [experiment.experiment_id], f"tags.`{VERSION_TAG}` = '{report['model_version']}'"
    )
    (stamp,) = [entry.path for entry in client.list_artifacts(monitoring.info.run_id, "reports")]
    assert {
        entry.path.rsplit("/", 1)[1] for entry in client.list_artifacts(monitoring.info.run_id, stamp)
    } == {
        "report.html",
        "report.json",
    }
    assert monitoring.data.metrics["flags.act"] >= 1


def test_the_backtest_of_a_closed_year_and_lenient_thresholds_exit_0(cli, advisor_store, books, tmp_path):
    lenient = yaml.safe_load(REPO.joinpath("configs", "monitoring.yaml").read_text())
    for section in ("stability", "slices"):
        lenient[section]["psi"] = {"watch": 9.0, "act": 10.0}
    lenient["stability"]["economy_outside"] = {"watch": 2.0, "act": 2.0}  # never: a share is at most 1
    lenient["stability"]["min_rows"] = 100  # the cohort's few hundred rows are enough to judge here
    lenient["portfolio"]["against_reference"] = {"watch": 9.0, "act": 10.0}
    lenient["backtest"] |= {"act_p": 1e-12, "auc_drop": {"watch": 0.5, "act": 1.0}}
    lenient["backtest"]["calibration_in_the_large"] = {"watch": 5.0, "act": 10.0}
    lenient["slices"] |= {"act_p": 1e-12, "auc_margin": {"watch": 0.5, "act": 1.0}}
    config = tmp_path / "lenient.yaml"
    config.write_text(yaml.safe_dump(lenient))
    cohort = str(books["cohort"])
    result = run(
        cli,
        advisor_store,
        "--current",
        cohort,
        "--outcomes",
        cohort,
        "--config",
        str(config),
        "--json",
        str(tmp_path / "r.json"),
        "--no-mlflow",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["status"] != "act"
    tested = report["backtest"]
    assert tested["rows"] == report["rows_scored"] > 0
    assert [g["group"] for g in tested["grades"]] == sorted((g["group"] for g in tested["grades"]), key=int)
    assert sum(g["count"] for g in tested["grades"]) == tested["rows"]
    assert 0.5 < tested["overall"]["default"]["auc"] <= 1.0
    assert "backtest default" in result.stdout


def test_a_book_already_scored_is_monitored_from_its_scores_with_the_same_figures(
    cli, advisor_store, books, tmp_path
):
    cohort = str(books["cohort"])
    scored = tmp_path / "scored.csv"  # CSV: every number comes back as text and must be read as one
    result = subprocess.run(
        [cli, "score", "--model", "models:/crm-advisor@champion", "--input", cohort, "--output", str(scored)],
        cwd=advisor_store["folder"],
        env=advisor_store["env"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    reports = {}
    for name, extra in (("scored_again", []), ("from_scores", ["--scores", str(scored)])):
        path = tmp_path / f"{name}.json"
        args = ["--current", cohort, "--outcomes", cohort, "--json", str(path), "--no-mlflow", *extra]
        done = run(cli, advisor_store, *args)
        assert done.returncode in (0, 1), done.stderr[-2000:]
        reports[name] = json.loads(path.read_text())
    again, read = reports["scored_again"], reports["from_scores"]
    assert read["scored_file"] == str(scored)
    assert read["rows_scored"] == again["rows_scored"] == len(pd.read_csv(scored))
    for section in ("stability", "backtest", "slices", "flags", "status"):  # to the last digits of a sum
        assert rounded(read[section]) == rounded(again[section]), section


def rounded(value: object) -> object:
    """``value`` with every float rounded to 12 significant digits, in nested dicts and lists."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item) for item in value]
    return value


def test_bad_input_exits_2_naming_it(cli, advisor_store, tmp_path):
    missing = run(cli, advisor_store, "--current", str(tmp_path / "nowhere.parquet"), "--no-mlflow")
    assert missing.returncode == 2
    assert "nowhere.parquet: no such file" in missing.stderr
    book = generate_book(500, seed=3).drop(columns=["leverage"])
    book.to_parquet(tmp_path / "cut.parquet")
    cut = run(cli, advisor_store, "--current", str(tmp_path / "cut.parquet"), "--no-mlflow")
    assert cut.returncode == 2
    assert "leverage" in cut.stderr
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("stability: {psi: {watch: 0.3, act: 0.1}}\n")
    refused = run(cli, advisor_store, "--current", str(tmp_path / "cut.parquet"), "--config", str(wrong))
    assert refused.returncode == 2
    assert "act (0.1) must be at least watch (0.3)" in refused.stderr


def test_the_report_renders_in_headless_chromium_without_console_errors(downturn_run, tmp_path):
    assert shutil.which("chromium"), "Debian's chromium is missing: `make test` installs it"
    _, page, _ = downturn_run
    result = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    assert 'data-plots="ok"' in result.stdout  # every plot decoded (the page's own check)
    assert all(f'id="{section}"' in result.stdout for section in SECTIONS)
    assert result.stdout.count("<img") >= 2


@pytest.fixture(scope="module")
def months(advisor_store):
    """Three consecutive month-ends of a book large enough to judge (about 1,200 rows a month)."""
    book = generate_book(100_000, seed=8)
    last = book["snapshot_date"].max()
    found = {}
    for back in (0, 1, 2):
        when = last - pd.DateOffset(months=back) - pd.offsets.MonthEnd(0)
        found[back] = book[book["snapshot_date"] == when].reset_index(drop=True)
    return found


def test_a_broken_feed_is_reported_with_its_reasons_and_exits_2(cli, advisor_store, months, tmp_path):
    """One behaviour column empty on every row: nothing can be judged, the report says why (never a
    green OK), the quarantine is written, and the job exits 2."""
    months[0].assign(digital_logins_90d=float("nan")).to_parquet(tmp_path / "broken.parquet")
    result = run(
        cli,
        advisor_store,
        "--current",
        str(tmp_path / "broken.parquet"),
        "--json",
        str(tmp_path / "r.json"),
        "--html",
        str(tmp_path / "r.html"),
        "--no-mlflow",
    )
    assert result.returncode == 2, result.stdout[-2000:]
    rows = len(months[0])
    assert f"none of the {rows:,} rows passed the gate" in result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["status"] == "act"
    assert report["judged"]["note"] == "cannot judge: 0 rows, at least 1,000 needed"
    assert report["quarantine"]["share"] == 1.0
    assert report["quarantine"]["reasons"] == [
        {"column": "digital_logins_90d", "rows": rows, "example": "missing"}
    ]
    assert report["stability"]["rates"]["alert_rate"]["current"] is None  # no rate over zero rows
    levels = {flag["section"]: flag["level"] for flag in report["flags"]}
    assert levels["book"] == levels["quarantine"] == "act"
    assert len(pd.read_csv(tmp_path / "broken.quarantine.csv")) == rows
    page = (tmp_path / "r.html").read_text()
    assert "cannot judge: 0 rows" in page
    assert 'class="status act"' in page


def test_a_new_region_is_counted_and_its_mix_flagged(cli, advisor_store, months, tmp_path):
    month = months[0].copy()
    month["region"] = month["region"].astype(object)
    month.loc[month.index[::10], "region"] = "atlantis"  # one row in ten
    month.to_parquet(tmp_path / "region.parquet")
    result = run(
        cli,
        advisor_store,
        "--current",
        str(tmp_path / "region.parquet"),
        "--json",
        str(tmp_path / "r.json"),
        "--no-mlflow",
    )
    assert result.returncode == 1, result.stderr[-2000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["rows_quarantined"] == 0
    assert report["quarantine"]["new_values"] == {"region": {"'atlantis'": len(month.index[::10])}}
    (mix,) = [entry for entry in report["stability"]["mixes"] if entry["name"] == "region mix"]
    assert mix["flag"] == "act"
    (atlantis,) = [s for s in report["slices"] if s["dimension"] == "region" and s["slice"] == "atlantis"]
    assert atlantis["share"] == pytest.approx(0.1, abs=0.002)
    assert atlantis["reference_share"] == 0.0


def test_levels_are_compared_with_the_previous_run_and_a_stale_or_wrong_month_is_seen(
    cli, advisor_store, months, tmp_path
):
    state = f"sqlite:///{tmp_path / 'state.db'}"
    for back in (1, 0):
        months[back].to_parquet(tmp_path / f"month-{back}.parquet")
    first = run(
        cli, advisor_store, "--current", str(tmp_path / "month-1.parquet"), "--state", state, "--no-mlflow"
    )
    assert first.returncode in (0, 1), first.stderr[-2000:]

    worse = months[0].copy()
    worse["internal_rating"] = 10  # every client rated worst, its debt doubled
    worse["leverage"] = (worse["leverage"] * 2).clip(upper=50)
    worse.to_parquet(tmp_path / "worse.parquet")
    second = run(
        cli,
        advisor_store,
        "--current",
        str(tmp_path / "worse.parquet"),
        "--state",
        state,
        "--json",
        str(tmp_path / "worse.json"),
        "--no-mlflow",
    )
    report = json.loads((tmp_path / "worse.json").read_text())
    against = report["portfolio"]["against_previous"]
    assert against["mean_default_probability"]["change"] > 0.30
    assert against["mean_default_probability"]["flag"] == "act"
    assert against["rows"]["flag"] == "ok"
    assert report["portfolio"]["grade_mix_against_previous"]["flag"] == "act"  # every client rated worst
    moved = report["portfolio"]["inputs_against_previous"]
    assert moved["leverage"]["shift"] > 0.30
    assert moved["leverage"]["flag"] == moved["internal_rating"]["flag"] == "act"
    assert moved["exposure"]["flag"] == "ok"  # untouched
    flagged = {(flag["section"], flag["name"]) for flag in report["flags"]}
    assert ("portfolio.inputs_against_previous", "leverage") in flagged
    assert report["portfolio"]["continuity"]["flag"] == "ok"  # the month after the previous run
    assert second.returncode == 1
    assert "on the previous run" in second.stdout
    assert "largest input mean shift" in second.stdout

    stale = run(
        cli,
        advisor_store,
        "--current",
        str(tmp_path / "worse.parquet"),
        "--state",
        state,
        "--json",
        str(tmp_path / "stale.json"),
        "--no-mlflow",
    )
    assert stale.returncode == 1
    kept = json.loads((tmp_path / "stale.json").read_text())["portfolio"]["continuity"]
    assert kept["note"].endswith("last month's file again?")
    half = months[0].iloc[::2]
    half.to_parquet(tmp_path / "half.parquet")
    previous = tmp_path / "worse.json"  # the run before, given as a file instead of the state store
    missing = run(
        cli,
        advisor_store,
        "--current",
        str(tmp_path / "half.parquet"),
        "--previous",
        str(previous),
        "--json",
        str(tmp_path / "half.json"),
        "--no-mlflow",
    )
    assert missing.returncode == 1
    rows = json.loads((tmp_path / "half.json").read_text())["portfolio"]["against_previous"]["rows"]
    assert rows["change"] == pytest.approx(-0.5, abs=0.01)
    assert rows["flag"] == "act"
