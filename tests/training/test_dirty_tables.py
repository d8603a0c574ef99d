"""Real public tables made dirty: every bad row quarantined with its reason and row number, the rest
trained as if the junk had never been there, and a file of mostly junk stopped with a message."""

import subprocess

import pandas as pd
import pytest
import yaml

from crm_modes.training.config import load_training_config
from crm_modes.training.data_source import load_training_table
from crm_modes.training.trainer import fit_and_evaluate
from tests.conftest import REPO, quiet_mlflow_env

pytestmark = pytest.mark.integration


def configured(folder, table_path, name="german_credit.yaml", **data):
    """The shipped configuration of ``name``, pointed at ``table_path``."""
    raw = yaml.safe_load((REPO / "configs" / name).read_text())
    raw["data"] |= {
        "path": str(table_path),
        "profile": str(REPO / "configs" / raw["data"]["profile"]),
        **data,
    }
    raw["features"] = str(REPO / "configs" / raw["features"])
    path = folder / name
    path.write_text(yaml.safe_dump(raw))
    return path


def crm(cli, *args, folder, timeout=600):
    """``crm-modes ARGS`` in ``folder`` against its own SQLite store, output captured."""
    env = quiet_mlflow_env(MLFLOW_TRACKING_URI=f"sqlite:///{folder / 'mlflow.db'}")
    return subprocess.run([cli, *args], cwd=folder, capture_output=True, text=True, timeout=timeout, env=env)


def dirty_copy(clean: pd.DataFrame, path) -> list[str]:
    """The clean table with four junk rows added (a description row right after the header, a
    target of 50000, an out-of-range age with a duration of text, and a category holding "; "),
    written as CSV; the reason each junk row must be quarantined for, by source row. The new
    category is not among them: a feature's new category is scored, with a warning."""
    junk = clean.head(3).copy()
    junk.loc[junk.index[0], "target"] = "50000"
    junk.loc[junk.index[1], "age"] = 400
    junk.loc[junk.index[1], "month_duration"] = "twelve"
    junk.loc[junk.index[2], "purpose"] = "holiday; car"
    junk.loc[junk.index[2], "_is_test"] = "True"  # an evaluation row: scored, the training rows unchanged
    description = pd.DataFrame([dict.fromkeys(clean.columns, "a description of the column")])
    rows = pd.concat([description, clean.iloc[:500], junk, clean.iloc[500:]], ignore_index=True)
    rows.to_csv(path, index=False)
    return {
        1: "month_duration: 'a description of the column' is not a whole number",
        502: "target: '50000' is not one of bad, good",
        503: "age: '400' is above the maximum 81",
    }


#: The source row whose new category (of the feature ``purpose``) is scored with a warning.
NEW_CATEGORY_ROW = 504


@pytest.fixture(scope="module")
def tables(datasets, tmp_path_factory):
    folder = tmp_path_factory.mktemp("dirty")
    clean = pd.read_csv(datasets / "german_credit.csv", dtype=str)
    clean.to_csv(folder / "clean.csv", index=False)
    expected = dirty_copy(clean, folder / "dirty.csv")
    return folder, expected


def test_every_bad_row_is_quarantined_with_its_reason_and_row_number(cli, tables):
    folder, expected = tables
    config = configured(folder, folder / "dirty.csv")
    result = subprocess.run(
        [cli, "validate", str(folder / "dirty.csv"), "--config", str(config), "--quarantine", "q.csv"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env=quiet_mlflow_env(),
    )
    assert result.returncode == 0, result.stderr
    assert "rows in = valid + quarantined: 1,004 = 1,001 + 3" in result.stdout
    quarantine = pd.read_csv(folder / "q.csv")
    reasons = dict(zip(quarantine["source_row"], quarantine["quarantine_reason"], strict=True))
    assert sorted(reasons) == sorted(expected)
    for row, wanted in expected.items():
        assert wanted in reasons[row], (row, reasons[row])
    assert "month_duration: 'twelve' is not a whole number" in reasons[503]  # one reason per problem
    assert NEW_CATEGORY_ROW not in reasons
    # "; " inside a value: counted once, as a new value of its own column
    assert "new values of purpose (scored)" in result.stdout
    assert "'holiday; car' 1" in result.stdout
    assert "car (scored)" not in result.stdout


def test_the_rest_trains_as_the_clean_table_does(tables):
    folder, _ = tables
    figures = {}
    for name in ("clean", "dirty"):
        config = load_training_config(configured(folder, folder / f"{name}.csv"))
        data = load_training_table(config)
        _, evaluation, _, counts = fit_and_evaluate("default", config, data.table)
        figures[name] = (data.rows_quarantined, counts["rows_evaluation"], evaluation.metrics["auc"])
    assert figures["clean"][0] == 0
    assert figures["dirty"][0] == 3
    assert figures["dirty"][1] == figures["clean"][1] + 1  # the row of a new category is evaluated
    assert abs(figures["dirty"][2] - figures["clean"][2]) <= 0.002
    assert figures["clean"][2] > 0.7


def test_training_goes_on_and_writes_the_quarantine(cli, tables, tmp_path):
    folder, _ = tables
    config = configured(folder, folder / "dirty.csv", quarantine=str(tmp_path / "rejected.csv"))
    result = crm(cli, "evaluate", "--config", str(config), "--cv", "3", folder=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"rows in = used + quarantined: 1,004 = 1,001 + 3 -> {tmp_path / 'rejected.csv'}" in result.stdout
    (tally,) = [line for line in result.stdout.splitlines() if line.startswith("quarantined for: ")]
    counts = dict(part.rsplit(" ", 1) for part in tally.removeprefix("quarantined for: ").split(", "))
    # the description row breaks every numeric column and the target (its text in a category column
    # would be a new category, scored); each junk row adds one problem to its own column
    assert {name: counts[name] for name in ("age", "month_duration", "target")} == dict.fromkeys(
        ("age", "month_duration", "target"), "2"
    )
    assert "purpose" not in counts
    assert "housing" not in counts
    assert len(pd.read_csv(tmp_path / "rejected.csv")) == 3


def test_a_file_of_mostly_junk_stops_with_a_message(cli, datasets, tmp_path):
    table = pd.read_csv(datasets / "german_credit.csv", dtype=str).head(100)
    table.loc[:59, "age"] = "unknown"  # 60% of the rows
    table.to_csv(tmp_path / "junk.csv", index=False)
    config = configured(tmp_path, tmp_path / "junk.csv")
    result = crm(cli, "train", "--config", str(config), folder=tmp_path, timeout=300)
    assert result.returncode == 2
    assert "60 of 100 rows (60.0%) were quarantined, more than the 5% allowed" in result.stderr
    assert "(data.max_quarantined_share)" in result.stderr
    assert "age 60 (e.g. 'unknown')" in result.stderr
    assert (tmp_path / "junk.quarantine.csv").exists()  # kept for whoever fixes the file
    assert "Traceback" not in result.stderr


def test_scoring_a_dirty_table_gates_it_with_the_profile_the_model_ships(cli, tables, tmp_path):
    """`score` with a single model of a table of one's own: the profile it was trained against is
    in its bundle, so the same junk is quarantined (the target is not needed to score: a row whose
    target is junk is scored) and the output says which class it gives the probability of."""
    folder, expected = tables
    config = configured(folder, folder / "dirty.csv", quarantine=str(tmp_path / "rejected.csv"))
    for command in ("train", "promote"):
        result = crm(cli, command, "--config", str(config), folder=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
    model = ("--model", "models:/german-credit-pd@champion", "--input", str(folder / "dirty.csv"))
    result = crm(cli, "score", *model, "--output", "scores.csv", folder=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rows in = scored + quarantined: 1,004 = 1,002 + 2" in result.stdout
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert list(scores.columns) == ["probability_bad", "model_version", "input_warnings"]
    assert scores["input_warnings"].notna().sum() == 1  # the new category's row (a CSV reads "" as empty)
    assert scores["probability_bad"].between(0, 1).all()
    quarantine = pd.read_csv(tmp_path / "scores.quarantine.csv")
    assert quarantine["source_row"].tolist() == [
        1,
        503,
    ]  # 502, the junk target, is scored; 504 with a warning
    for row, reason in zip(quarantine["source_row"], quarantine["quarantine_reason"], strict=True):
        assert expected[row] in reason
    spark = crm(cli, "score", *model, "--output", "scores.parquet", "--engine", "spark", folder=tmp_path)
    assert spark.returncode == 2
    recorded = crm(cli, "score", *model, "--output", "recorded.csv", "--record", folder=tmp_path)
    assert recorded.returncode == 2
    assert "is a single model: only the advisor's decisions and alerts are recorded" in recorded.stderr
    assert not (tmp_path / "recorded.csv").exists()
    assert "is a single model, not the advisor bundle" in spark.stderr
