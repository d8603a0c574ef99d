"""Batch scoring through the real command line: quarantine, reconciliation, resume after a kill."""

import os
import re
import signal
import socket
import subprocess
import time

import numpy as np
import pandas as pd
import pytest

from crm_modes.data.generator import generate_book

pytestmark = pytest.mark.integration


def scoring_rows(rows: int, seed: int) -> pd.DataFrame:
    book = generate_book(rows, seed=seed)
    return book.drop(
        columns=[c for c in book.columns if c.startswith("oracle_") or c in ("default_12m", "churn_12m")]
    )


def score(cli, store, *args, model="models:/crm-advisor@champion", env=None, **options):
    return subprocess.run(
        [cli, "score", "--model", model, *args],
        cwd=store["folder"],
        env=env or store["env"],
        capture_output=True,
        text=True,
        timeout=600,
        **options,
    )


MODE_INDEX = {"basic": 0, "reactive": 1, "responsible": 2}


def reconciliation(stdout: str) -> tuple[int, int, int]:
    match = re.search(r"rows in = scored \+ quarantined: ([\d,]+) = ([\d,]+) \+ ([\d,]+)", stdout)
    assert match, stdout[-2000:]
    return tuple(int(group.replace(",", "")) for group in match.groups())


def test_csv_with_a_corrupted_chunk(cli, advisor_store):
    folder = advisor_store["folder"]
    book = scoring_rows(1_200, seed=41).astype(str).replace({"nan": "", "<NA>": "", "None": ""})
    book.loc[500, "leverage"] = "abc"
    book.loc[501, "segment"] = "bank"
    book.loc[502, "internal_rating"] = "42"
    book.loc[503, ["utilization"]] = ""
    book.loc[1100] = book.loc[5]  # a repeated facility and date, in a later chunk
    book.to_csv(folder / "book.csv", index=False)
    result = score(cli, advisor_store, "--input", "book.csv", "--output", "scores.csv", "--chunk-rows", "200")
    assert result.returncode == 0, result.stderr[-3000:]
    assert reconciliation(result.stdout) == (1_200, 1_196, 4)
    scores = pd.read_csv(folder / "scores.csv")
    assert len(scores) == 1_196
    # a new category of a model input is scored as the models' unknown one, and the row says so
    warned = scores["input_warnings"].fillna("")
    assert warned.iloc[500] == (
        "segment: 'bank' is not one of sme, mid_corporate, large_corporate, multinational: "
        "scored as the models' unknown category"
    )
    assert (warned.drop(index=500) == "").all()
    assert "new values of segment (scored)" in result.stdout
    from mlflow import MlflowClient

    # the champion's version: another file's tests on this worker may have promoted a second one
    champion = MlflowClient(tracking_uri=advisor_store["uri"]).get_model_version_by_alias(
        "crm-advisor", "champion"
    )
    assert (scores["model_version"] == f"crm-advisor v{champion.version}").all()
    values = scores[["value_basic", "value_reactive", "value_responsible"]]
    best = values.to_numpy().max(axis=1)
    chosen = values.to_numpy()[range(len(scores)), scores["recommended_mode"].map(MODE_INDEX)]
    assert (chosen >= best - 0.01 - 1e-9).all()  # the best mode, or today's within the switching cost
    assert scores["committee_mode"].isin(list(MODE_INDEX)).all()
    quarantine = pd.read_csv(folder / "scores.quarantine.csv")
    assert quarantine["source_row"].tolist() == [501, 503, 504, 1101]
    assert quarantine["quarantine_reason"].tolist()[:3] == [
        "leverage: 'abc' is not a finite number",
        "internal_rating: '42' is above the maximum 10",
        "utilization: missing, but the column may not be null",
    ]
    assert quarantine["quarantine_reason"].iloc[3].startswith("duplicate key (facility_id=")
    assert not list(folder.glob(".scores.csv.parts"))


def test_parquet_with_out_of_range_values(cli, advisor_store):
    folder = advisor_store["folder"]
    book = scoring_rows(900, seed=42)
    book.loc[[10, 610], "leverage"] = 99.0
    book.to_parquet(folder / "book.parquet")
    result = score(
        cli, advisor_store, "--input", "book.parquet", "--output", "scores.parquet", "--chunk-rows", "300"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert reconciliation(result.stdout) == (900, 898, 2)
    assert "most severe alerts" in result.stdout
    assert len(pd.read_parquet(folder / "scores.parquet")) == 898
    assert pd.read_parquet(folder / "scores.quarantine.parquet")["source_row"].tolist() == [11, 611]


def test_a_new_category_goes_to_quarantine_when_the_job_says_so(cli, advisor_store):
    folder = advisor_store["folder"]
    book = scoring_rows(300, seed=44)
    book["industry"] = book["industry"].astype(object)
    book.loc[7, "industry"] = "space"
    book.to_parquet(folder / "new-industry.parquet")
    result = score(
        cli,
        advisor_store,
        "--input",
        "new-industry.parquet",
        "--output",
        "strict.parquet",
        "--unseen-categories",
        "quarantine",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert reconciliation(result.stdout) == (300, 299, 1)
    quarantined = pd.read_parquet(folder / "strict.quarantine.parquet")
    assert quarantined["quarantine_reason"].tolist() == [
        "industry: 'space' is not one of agriculture, construction, energy, healthcare, hospitality, "
        "manufacturing, ..."
    ]


def test_a_column_all_missing_stops_the_job_before_any_output(cli, advisor_store):
    """A broken feed (one behaviour column empty on every row) is not "scored" into nothing: exit 2,
    the quarantine written with every row and its reason, no output."""
    folder = advisor_store["folder"]
    scoring_rows(400, seed=45).assign(digital_logins_90d=float("nan")).to_parquet(folder / "feed.parquet")
    result = score(cli, advisor_store, "--input", "feed.parquet", "--output", "feed-scores.parquet")
    assert result.returncode == 2, result.stdout[-2000:]
    assert "none of the 400 rows passed the gate" in result.stderr
    assert "digital_logins_90d 400 (e.g. missing)" in result.stderr
    assert "rows in = used + quarantined: 400 = 0 + 400" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (folder / "feed-scores.parquet").exists()
    assert len(pd.read_parquet(folder / "feed-scores.quarantine.parquet")) == 400
    assert not list(folder.glob(".feed-scores.parquet.parts"))


def test_more_quarantined_rows_than_allowed_stop_the_job_unless_allowed(cli, advisor_store):
    folder = advisor_store["folder"]
    book = scoring_rows(400, seed=46)
    book.loc[book.index[:40], "exposure"] *= 1e6  # 10% of the rows above the schema's maximum
    book.to_parquet(folder / "units.parquet")
    refused = score(cli, advisor_store, "--input", "units.parquet", "--output", "units.parquet.out.parquet")
    assert refused.returncode == 2
    assert "40 of 400 rows (10.0%) were quarantined, more than the 5% allowed (--max-quarantined-share)" in (
        refused.stderr
    )
    assert "exposure 40 (e.g." in refused.stderr
    assert not (folder / "units.parquet.out.parquet").exists()
    allowed = score(
        cli,
        advisor_store,
        "--input",
        "units.parquet",
        "--output",
        "units.parquet.out.parquet",
        "--max-quarantined-share",
        "0.2",
    )
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    assert reconciliation(allowed.stdout) == (400, 360, 40)


def test_a_missing_column_stops_the_job_with_its_name(cli, advisor_store):
    folder = advisor_store["folder"]
    scoring_rows(50, seed=43).drop(columns=["exposure"]).to_parquet(folder / "cut.parquet")
    result = score(cli, advisor_store, "--input", "cut.parquet", "--output", "cut-scores.parquet")
    assert result.returncode == 2
    assert "missing required columns ['exposure']" in result.stderr
    assert not (folder / "cut-scores.parquet").exists()


def test_killed_halfway_and_rerun_gives_the_uninterrupted_output(cli, advisor_store):
    folder = advisor_store["folder"]
    scoring_rows(24_000, seed=44).to_parquet(folder / "big.parquet")
    args = ["--input", "big.parquet", "--chunk-rows", "500"]
    reference = score(cli, advisor_store, *args, "--output", "reference.parquet")
    assert reference.returncode == 0, reference.stderr[-3000:]

    process = subprocess.Popen(
        [cli, "score", "--model", "models:/crm-advisor@champion", *args, "--output", "resumed.parquet"],
        cwd=folder,
        env=advisor_store["env"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    parts = folder / ".resumed.parquet.parts"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(parts.glob("*.json"))) < 6:
        assert process.poll() is None, "the job finished before it could be killed; use more rows"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = len(list(parts.glob("0*.json")))
    assert done_before >= 5
    assert not (folder / "resumed.parquet").exists()

    rerun = score(cli, advisor_store, *args, "--output", "resumed.parquet")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert re.search(r"chunks resumed\s+│\s+(\d+) of 48", rerun.stdout)
    assert reconciliation(rerun.stdout) == reconciliation(reference.stdout)
    pd.testing.assert_frame_equal(
        pd.read_parquet(folder / "resumed.parquet"), pd.read_parquet(folder / "reference.parquet")
    )
    assert not parts.exists()


def test_batch_scores_are_what_a_stock_mlflow_consumer_gets(cli, advisor_store, tmp_path, monkeypatch):
    """One scoring path: the batch job's numbers equal the registered pyfunc's own predict."""
    import mlflow

    from crm_modes.shared.model_loading import model_input

    rows = scoring_rows(500, seed=21)
    source = advisor_store["folder"] / "one-path.parquet"
    rows.to_parquet(source)
    result = score(cli, advisor_store, "--input", str(source), "--output", "one-path-scores.parquet")
    assert result.returncode == 0, result.stderr[-2000:]
    batch = pd.read_parquet(advisor_store["folder"] / "one-path-scores.parquet")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", advisor_store["uri"])
    mlflow.set_tracking_uri(advisor_store["uri"])
    stock = mlflow.pyfunc.load_model("models:/crm-advisor@champion").predict(model_input(rows))
    assert len(batch) == len(stock) == len(rows)
    numbers = [
        "default_probability",
        "churn_probability",
        "value_basic",
        "value_reactive",
        "value_responsible",
    ]
    pd.testing.assert_frame_equal(
        batch[numbers].reset_index(drop=True), stock[numbers].reset_index(drop=True)
    )
    for column in (
        "facility_id",
        "recommended_mode",
        "committee_mode",
        "alert_codes",
        "recommendation_reason",
    ):
        assert batch[column].astype(str).tolist() == stock[column].astype(str).tolist(), column


def test_nothing_outside_mlflow_reaches_inside_the_registered_model():
    """Batch, REST and Spark score through the pyfunc's predict; no module unwraps it."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(path.relative_to(root))
        for folder in ("serve", "crm_modes", "training", "models", "features", "data")
        for path in (root / folder).rglob("*.py")
        if "unwrap_python_model" in path.read_text()
    ]
    assert offenders == []


def test_a_header_only_input_exits_2_like_validate(cli, advisor_store):
    folder = advisor_store["folder"]
    scoring_rows(10, seed=3).head(0).to_csv(folder / "header-only.csv", index=False)
    result = score(cli, advisor_store, "--input", "header-only.csv", "--output", "header-only-scores.csv")
    assert result.returncode == 2
    assert "header-only.csv: the table has a header but no data rows" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (folder / "header-only-scores.csv").exists()
    assert not (folder / ".header-only-scores.csv.parts").exists()


def said(result: subprocess.CompletedProcess) -> str:
    """stderr with the console's line wrapping undone."""
    return " ".join(result.stderr.split())


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ("a-file.txt/scores.parquet", "a-file.txt is a file, not a folder"),  # a path through a file
        ("/sys/scores.parquet", "Permission denied"),  # refused even to root
        ("a-folder.parquet", "it is a folder"),
    ],
)
def test_an_unwritable_output_exits_2_naming_the_path(cli, advisor_store, output, reason):
    folder = advisor_store["folder"]
    (folder / "a-file.txt").write_text("not a folder")
    (folder / "a-folder.parquet").mkdir(exist_ok=True)
    scoring_rows(50, seed=4).to_parquet(folder / "few.parquet")
    result = score(cli, advisor_store, "--input", "few.parquet", "--output", output)
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"{output}: cannot write: {reason}" in said(result)
    assert "Traceback" not in result.stderr


def test_a_full_disk_exits_2_naming_the_path(cli, advisor_store, tmp_path):
    """A real full file system: a 256 KiB tmpfs (the tests run as root, in CI too)."""
    disk = tmp_path / "tiny-disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], check=True)
    try:
        scoring_rows(20_000, seed=5).to_parquet(advisor_store["folder"] / "many.parquet")
        output = str(disk / "scores.parquet")
        result = score(cli, advisor_store, "--input", "many.parquet", "--output", output)
        assert result.returncode == 2, result.stderr[-2000:]
        assert str(disk) in said(result)
        assert "cannot write: " in said(result)
        assert "No space left on device" in said(result)
        assert "Traceback" not in result.stderr
        assert not (disk / "scores.parquet").exists()
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_temporary_file_left_by_a_killed_job_is_removed_by_the_next_run(cli, advisor_store):
    folder = advisor_store["folder"]
    scoring_rows(50, seed=6).to_parquet(folder / "again.parquet")
    gone = subprocess.Popen(["true"])  # a process that has exited
    gone.wait()
    stray = folder / f".again-scores.parquet.{gone.pid}.k1ll3d.tmp"
    stray.write_bytes(b"half a parquet file")
    alive = folder / f".again-scores.parquet.{os.getpid()}.writing.tmp"
    alive.write_bytes(b"a write in progress")
    result = score(cli, advisor_store, "--input", "again.parquet", "--output", "again-scores.parquet")
    assert result.returncode == 0, result.stderr[-2000:]
    assert not stray.exists()
    assert alive.exists()  # its writer (this test) is alive: not touched
    alive.unlink()
    assert len(pd.read_parquet(folder / "again-scores.parquet")) == 50


def test_a_job_writing_to_a_pipe_prints_progress_lines(cli, advisor_store):
    """No terminal, so no live bar: plain lines with what is done, the rate and the time left."""
    folder = advisor_store["folder"]
    scoring_rows(6_000, seed=44).to_parquet(folder / "piped.parquet")
    result = score(
        cli,
        advisor_store,
        "--input",
        "piped.parquet",
        "--output",
        "piped-scores.parquet",
        "--chunk-rows",
        "1000",
        env=advisor_store["env"] | {"CRM_MODES_PROGRESS_SECONDS": "0"},  # a line per chunk, not per 10 s
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = re.findall(
        r"^\d\d:\d\d:\d\d scoring: ([\d,]+) of 6,000 rows \(\d+%\), [\d,]+ rows/s(?:, about \d+ s left)?$",
        result.stdout,
        flags=re.MULTILINE,
    )
    assert [int(done.replace(",", "")) for done in lines] == list(range(1_000, 6_001, 1_000))
    assert "\x1b[" not in result.stdout  # no terminal control codes in a log


def test_a_bad_progress_interval_is_named(cli, advisor_store):
    scoring_rows(50, seed=46).to_parquet(advisor_store["folder"] / "interval.parquet")
    result = score(
        cli,
        advisor_store,
        "--input",
        "interval.parquet",
        "--output",
        "never.parquet",
        env=advisor_store["env"] | {"CRM_MODES_PROGRESS_SECONDS": "often"},
    )
    assert result.returncode == 2
    assert "CRM_MODES_PROGRESS_SECONDS='often': expected a number of seconds >= 0" in result.stderr


def test_a_single_model_of_the_book_scores_with_named_columns(cli, advisor_store):
    folder = advisor_store["folder"]
    book = scoring_rows(700, seed=45).astype(str).replace({"nan": "", "<NA>": "", "None": ""})
    book.loc[3, "leverage"] = "high"
    book.to_csv(folder / "single.csv", index=False)
    result = score(
        cli, advisor_store, "--input", "single.csv", "--output", "pd.csv", model="models:/crm-pd@champion"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert reconciliation(result.stdout) == (700, 699, 1)
    assert "alerts:" not in result.stdout
    assert "Ignoring provided params" not in result.stderr  # the version is passed only where declared
    scores = pd.read_csv(folder / "pd.csv")
    assert list(scores.columns) == [
        "facility_id",
        "snapshot_date",
        "probability_default_12m",
        "model_version",
        "input_warnings",
    ]
    assert scores["probability_default_12m"].between(0, 1).all()
    assert pd.read_csv(folder / "pd.quarantine.csv")["source_row"].tolist() == [4]


def test_a_second_job_writing_the_same_output_is_refused_up_front(cli, advisor_store):
    """The first job holds the output (a live process named in the lock): the second writes nothing."""
    folder = advisor_store["folder"]
    rows = scoring_rows(50, seed=4)
    rows.to_parquet(folder / "shared-input.parquet")
    holder = subprocess.Popen(["sleep", "120"])
    lock = folder / ".shared-output.parquet.lock"
    try:
        lock.write_text(f"{socket.gethostname()}:{holder.pid}")
        refused = score(
            cli, advisor_store, "--input", "shared-input.parquet", "--output", "shared-output.parquet"
        )
        assert refused.returncode == 1
        assert "shared-output.parquet is being written by another job" in said(refused)
        assert f":{holder.pid})" in said(refused)
        assert not (folder / "shared-output.parquet").exists()
    finally:
        holder.kill()
        holder.wait()
    # its holder gone, the lock is taken over and released
    done = score(cli, advisor_store, "--input", "shared-input.parquet", "--output", "shared-output.parquet")
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(pd.read_parquet(folder / "shared-output.parquet")) == 50
    assert not lock.exists()


def test_the_previous_pd_comes_from_the_state_store_when_the_table_has_none(cli, advisor_store, tmp_path):
    """A bank's book carries no earlier model output: the facility's PD at its previous recorded
    snapshot is read from the state store, so that a sharp rise (PD_RISE) can be seen."""
    folder = advisor_store["folder"]
    book = scoring_rows(3_000, seed=12)
    months = sorted(book["snapshot_date"].unique())[-2:]
    for index, month in enumerate(months):
        book[book["snapshot_date"] == month].to_parquet(folder / f"prev-month-{index}.parquet")
    state = ["--state", f"sqlite:///{tmp_path / 'state.db'}"]
    first = score(
        cli,
        advisor_store,
        "--input",
        "prev-month-0.parquet",
        "--output",
        "prev-0.parquet",
        "--record",
        *state,
    )
    assert first.returncode == 0, first.stderr[-2000:]
    second = score(
        cli, advisor_store, "--input", "prev-month-1.parquet", "--output", "prev-1.parquet", *state
    )
    assert second.returncode == 0, second.stderr[-2000:]
    from crm_modes.cli.scoring import _previous_pd_from

    before = pd.read_parquet(folder / "prev-0.parquet").set_index("facility_id")["default_probability"]
    rows = book[book["snapshot_date"] == months[1]].reset_index(drop=True)
    found = _previous_pd_from(state[1])(rows).set_axis(rows["facility_id"])  # what the second run used
    both = found.index.intersection(before.index)
    assert len(both) > 0.5 * len(found)
    np.testing.assert_allclose(found.loc[both], before.loc[both])
    new = found.index.difference(before.index)
    assert found.loc[new].isna().all()  # no previous snapshot recorded: unknown, never guessed
