"""The bank's-book walk-through (docs/guides/bank-book.md), run command by command as written.

The guide's commands are read from the page and run exactly as written, so the page and the product
cannot drift apart (the book is the guide's 400,000 rows, the default book's size: the default
gates judge the models, and a much smaller book leaves too few evaluation rows for them). Then what
each step must show is checked: a model without the readings the bank lacks (features, signature,
readings, monitoring reference), scores under the bank's names equal to the scores of the same rows
in the schema's names, every row of a bad month accounted for with the bank's row number, the
decisions in the state store, and a monitoring report over the bank's month.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO, quiet_mlflow_env

GUIDE = REPO / "docs" / "guides" / "bank-book.md"
ABSENT = ("rm_contacts_90d", "digital_logins_90d", "digital_logins_prev_90d")


def walkthrough_commands() -> list[str]:
    """The commands between the guide's walk-through markers."""
    text = GUIDE.read_text()
    block = re.search(r"<!-- walk-through -->\s*```bash\n(.*?)```\s*<!-- /walk-through -->", text, re.S)
    assert block, f"{GUIDE} has no walk-through block"
    return [line for line in block.group(1).splitlines() if line.strip()]


@pytest.fixture(scope="module")
def walked(tmp_path_factory, cli):
    """The guide's commands run in a fresh folder, with their outputs."""
    folder = tmp_path_factory.mktemp("bank-walkthrough")
    for name in ("configs", "examples"):
        (folder / name).symlink_to(REPO / name)
    env = quiet_mlflow_env(
        MLFLOW_TRACKING_URI=f"sqlite:///{folder / 'mlflow.db'}",
        CRM_MODES_BOOK=str(folder / "book.parquet"),
        CRM_MODES_BOOK_QUARANTINE=str(folder / "book.training-quarantine.csv"),
        CRM_MODES_BOOK_PROFILE=str(folder / "book.profile.yaml"),
    )
    outputs, codes = {}, {}
    for line in walkthrough_commands():
        args = shlex.split(line)
        program = {"python": sys.executable, "crm-modes": cli}[args[0]]
        result = subprocess.run(
            [program, *args[1:]], cwd=folder, env=env, capture_output=True, text=True, timeout=900
        )
        step = args[1] if args[0] == "crm-modes" else "export"
        # monitor exits 1 where a figure is flagged act: a finding about the month, as in `make demo`
        allowed = (0, 1) if step == "monitor" else (0,)
        assert result.returncode in allowed, f"{line}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        outputs[step] = result.stdout
        codes[step] = result.returncode
    return {"folder": folder, "env": env, "outputs": outputs, "codes": codes}


def test_the_guide_lists_the_steps_from_raw_files_to_a_monitored_month():
    steps = [shlex.split(line)[1] for line in walkthrough_commands()]
    assert steps == [
        "examples/bank_export.py",
        "labels",
        "profile",
        "train",
        "promote",
        "score",
        "monitor",
        "policy-report",
    ]


@contextmanager
def walked_registry(walked):
    """This process talks to the walk-through's registry meanwhile (another test may have set another)."""
    import mlflow

    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(walked["env"]["MLFLOW_TRACKING_URI"])
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)


def champion(walked) -> Path:
    """The verified copy of the promoted bundle."""
    from crm_modes.shared.model_loading import fetch

    with walked_registry(walked):
        return fetch("models:/crm-advisor@champion").path


def test_the_inputs_the_bank_lacks_are_in_no_model_signature_reading_or_reference(walked):
    from crm_modes.models.advisor import (
        BOOK_ARTIFACT,
        BOOK_PROFILE_ARTIFACT,
        READINGS_ARTIFACT,
        REFERENCE_ARTIFACT,
        artifact_path,
    )
    from crm_modes.models.serialization import load_pipeline

    bundle = champion(walked)
    signature = yaml.safe_load((bundle / "MLmodel").read_text())["signature"]
    inputs = [spec["name"] for spec in json.loads(signature["inputs"])]
    assert "exposure" in inputs
    assert "complaints_12m" in inputs
    assert not set(ABSENT) & set(inputs)
    for name in ("mode", "churn", "default", "propensity"):
        pipeline = load_pipeline(bundle / "artifacts" / f"{name}.skops")
        read = " ".join(map(str, pipeline[:-1].get_feature_names_out()))
        for absent in (*ABSENT, "contacts_per_tenure_year", "engagement_decline"):
            assert absent not in read, (name, absent)
    readings = json.loads(artifact_path(bundle, READINGS_ARTIFACT).read_text())
    assert "complaints_12m" in json.dumps(readings)
    assert "rm_contacts_90d" not in json.dumps(readings)
    reference = artifact_path(bundle, REFERENCE_ARTIFACT).read_text()
    assert "complaints_12m" in reference
    assert not any(absent in reference for absent in ABSENT)
    assert artifact_path(bundle, BOOK_ARTIFACT).exists()
    assert artifact_path(bundle, BOOK_PROFILE_ARTIFACT).exists()  # the reviewed profile, shipped


def test_the_month_is_scored_under_the_banks_names_as_the_schemas_rows_are(walked):
    folder = walked["folder"]
    scores = pd.read_csv(folder / "scores.csv", dtype={"CUST_ID": str, "FACILITY_NO": str})
    month = pd.read_csv(folder / "bank-export" / "month.csv", dtype=str)
    assert {"CUST_ID", "FACILITY_NO", "AS_OF"} <= set(scores.columns)
    assert not {"client_id", "facility_id", "snapshot_date"} & set(scores.columns)
    quarantine = pd.read_csv(folder / "scores.quarantine.csv", dtype=str)
    assert len(scores) + len(quarantine) == len(month)  # every row of the bank's month accounted for
    assert len(quarantine) <= 0.001 * len(month)  # a month like the others: what the profile keeps out
    assert all("above the maximum" in reason for reason in quarantine["quarantine_reason"])
    counts = f"rows in = scored + quarantined: {len(month):,} = {len(scores):,} + {len(quarantine):,}"
    assert counts in walked["outputs"]["score"]

    # The same facilities in the schema's names (the book `labels` wrote), scored by the same bundle.
    from crm_modes.shared.model_loading import load_model

    book = pd.read_parquet(folder / "book.parquet")
    rows = book[book["snapshot_date"] == book["snapshot_date"].max()].reset_index(drop=True)
    from crm_modes.data.schema import input_names

    rows = rows[rows["facility_id"].isin(scores["FACILITY_NO"])].reset_index(drop=True)
    with walked_registry(walked):
        native = load_model("models:/crm-advisor@champion").predict(
            rows[[c for c in input_names() if c in rows]]
        )
    assert len(native) == len(scores)
    mine = scores.set_index("FACILITY_NO").loc[native["facility_id"].astype(str)]
    for column in ("default_probability", "churn_probability", "value_responsible"):
        assert mine[column].to_numpy() == pytest.approx(native[column].to_numpy(), rel=1e-9, abs=1e-12)
    from crm_modes.data.schema import SCHEMA
    from crm_modes.features.domain import DOMAIN_FEATURES

    reasons = " ".join(scores["alert_reasons"].fillna("")) + " ".join(scores["recommendation_reason"])
    unread = [column.description for column in SCHEMA if column.name in ABSENT]
    unread += [
        DOMAIN_FEATURES[name].description for name in ("contacts_per_tenure_year", "engagement_decline")
    ]
    for text in [*ABSENT, *unread]:
        assert text not in reasons  # a reading the bank lacks is never a reason
    assert reasons.strip()  # (and there are reasons)
    for column in ("recommended_mode", "alert_codes", "risk_grade"):
        assert mine[column].fillna("").astype(str).tolist() == native[column].fillna("").astype(str).tolist()


def test_the_decisions_are_remembered_and_the_month_is_monitored(walked):
    from sqlalchemy import create_engine, text

    folder = walked["folder"]
    month = pd.read_csv(folder / "bank-export" / "month.csv", dtype=str)
    scores = pd.read_csv(folder / "scores.csv", dtype={"FACILITY_NO": str})
    engine = create_engine(f"sqlite:///{folder / 'crm_state.db'}")
    with engine.connect() as connection:
        recorded = connection.execute(text("select count(*), count(distinct facility_id) from decisions"))
        assert tuple(recorded.one()) == (len(scores), len(scores))
        ids = {row[0] for row in connection.execute(text("select facility_id from decisions"))}
        propensities = connection.execute(
            text(
                "select count(assigned_propensity), min(assigned_propensity), max(assigned_propensity) "
                "from decisions"
            )
        ).one()
    assert propensities[0] == len(scores)  # each decision with the probability its mode was given
    assert 0 < propensities[1] <= propensities[2] <= 1
    assert ids == set(scores["FACILITY_NO"])
    report = json.loads((folder / "monitoring.json").read_text())
    assert report["rows_in"] == len(month)
    assert report["rows_scored"] == len(scores)
    assert report["rows_quarantined"] == len(month) - len(scores)
    assert not any(absent in json.dumps(report.get("stability", {})) for absent in ABSENT)
    # the economy joined from the bank's macro series is judged against the training years' range
    economy = {entry["name"]: entry for entry in report["stability"]["economy"]}
    assert set(economy) == {"gdp_growth", "gdp_growth_change_12m"}
    assert walked["codes"]["monitor"] == (1 if report["status"] == "act" else 0)
    assert "value policy" in walked["outputs"]["policy-report"].lower()


def test_a_bad_month_is_quarantined_row_by_row_with_the_banks_row_numbers(walked, cli, tmp_path):
    folder = walked["folder"]
    month = pd.read_csv(folder / "bank-export" / "month.csv", dtype=str)
    bad = month.copy()
    bad.loc[1, "SERVICE_MODE"] = "Z"  # a code the contract does not map
    bad.loc[2, "AS_OF"] = "31.02.2024"  # an impossible date
    bad.loc[3, "MARGIN_BPS"] = "-5"  # out of the schema's range: the gate refuses it
    bad.loc[4, "LEVERAGE"] = "30"  # within the schema's range, far outside the bank's own profile
    bad.to_csv(tmp_path / "month.csv", index=False)
    result = subprocess.run(
        [
            cli,
            "score",
            "--model",
            "models:/crm-advisor@champion",
            "--input",
            str(tmp_path / "month.csv"),
            "--macro",
            str(folder / "bank-export" / "macro.csv"),
            "--output",
            str(tmp_path / "scores.parquet"),
        ],
        env=walked["env"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    scored = pd.read_parquet(tmp_path / "scores.parquet")
    quarantine = pd.read_parquet(tmp_path / "scores.quarantine.parquet").sort_values("source_row")
    assert len(scored) + len(quarantine) == len(bad)
    quarantine = quarantine[quarantine["source_row"] <= 10]  # (the clean month's own are further on)
    assert quarantine["source_row"].tolist() == [2, 3, 4, 5]  # the bank's rows, counted from 1
    reasons = quarantine["quarantine_reason"].tolist()
    assert "SERVICE_MODE: code 'Z'" in reasons[0]
    assert "AS_OF: '31.02.2024' is not a date" in reasons[1]
    assert "margin_bps" in reasons[2]
    assert "leverage" in reasons[3]
    assert "above the maximum" in reasons[3]
    assert quarantine["SERVICE_MODE"].tolist()[0] == "Z"  # as the bank wrote it
    assert "FACILITY_NO" in quarantine.columns


def test_a_month_without_its_macro_series_is_a_clear_error(walked, cli, tmp_path):
    folder = walked["folder"]
    command = [cli, "score", "--model", "models:/crm-advisor@champion", "--output", str(tmp_path / "s.csv")]
    command += ["--input", str(folder / "bank-export" / "month.csv")]
    missing = subprocess.run(command, env=walked["env"], capture_output=True, text=True, timeout=600)
    assert missing.returncode == 2
    assert "pass --macro" in missing.stderr + missing.stdout
    assert not (tmp_path / "s.csv").exists()


def test_spark_scores_the_banks_month_as_the_in_process_engine_does(walked, cli, tmp_path):
    folder = walked["folder"]
    month = pd.read_csv(folder / "bank-export" / "month.csv", dtype=str)
    bad = month.copy()
    bad.loc[1, "SERVICE_MODE"] = "Z"
    bad.loc[3, "MARGIN_BPS"] = "-5"
    bad.to_csv(tmp_path / "month.csv", index=False)
    command = [cli, "score", "--model", "models:/crm-advisor@champion", "--engine", "spark"]
    command += ["--input", str(tmp_path / "month.csv"), "--output", str(tmp_path / "spark.parquet")]
    command += ["--macro", str(folder / "bank-export" / "macro.csv")]
    result = subprocess.run(command, env=walked["env"], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    scored = pd.read_parquet(tmp_path / "spark.parquet")
    quarantine = pd.read_parquet(tmp_path / "spark.quarantine.parquet").sort_values("_row_id")
    assert len(scored) + len(quarantine) == len(bad)
    quarantine = quarantine[quarantine["_row_id"] < 10]  # (the clean month's own are further on)
    assert quarantine["_row_id"].tolist() == [1, 3]  # the bank's rows (0-based, as the engine counts)
    assert "SERVICE_MODE: code 'Z'" in quarantine["quarantine_reason"].iloc[0]
    assert json.loads(quarantine["raw_values"].iloc[0])["SERVICE_MODE"] == "Z"  # as the bank wrote it
    assert {"CUST_ID", "FACILITY_NO", "AS_OF"} <= set(scored.columns)
    batch = pd.read_csv(folder / "scores.csv", dtype={"FACILITY_NO": str}).set_index("FACILITY_NO")
    expected = batch.loc[scored["FACILITY_NO"], "default_probability"].to_numpy()
    assert scored["default_probability"].to_numpy() == pytest.approx(expected, rel=1e-9)


def _post(url: str, body: object) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_the_service_takes_the_banks_records_and_answers_with_its_names(walked, cli):
    import urllib.request

    from tests.conftest import free_port, wait_for_http

    folder = walked["folder"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    macro = str(folder / "bank-export" / "macro.csv")
    command = [cli, "serve", "--model", "models:/crm-advisor@champion", "--port", str(port), "--macro", macro]
    server = subprocess.Popen(command, env=walked["env"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_http(f"{base}/ready", process=server)
        with urllib.request.urlopen(f"{base}/openapi.json", timeout=30) as answer:
            schemas = json.load(answer)["components"]["schemas"]
        fields = schemas["BankScoringRecord"]["properties"]
        assert {"CUST_ID", "FACILITY_NO", "AS_OF", "SERVICE_MODE", "EXPOSURE_AMT"} <= set(fields)
        assert not set(ABSENT) & set(fields)  # the inputs the bank lacks are no fields at all
        assert "gdp_growth" not in fields  # from the macro series

        def typed(row: dict) -> dict:
            out = {}
            for name, value in row.items():
                if name not in fields or pd.isna(value):
                    continue
                kind = fields[name].get("anyOf", [fields[name]])[0].get("type")
                out[name] = int(value) if kind == "integer" else float(value) if kind == "number" else value
            return out

        month = pd.read_csv(folder / "bank-export" / "month.csv", dtype=str)
        records = [typed(row) for row in month.head(20).to_dict("records")]
        status, body = _post(f"{base}/v1/score", {"records": records})
        assert status == 200, body
        answered = pd.DataFrame(body["scores"])
        assert {"CUST_ID", "FACILITY_NO", "AS_OF"} <= set(answered.columns)
        assert "facility_id" not in answered.columns
        batch = pd.read_csv(folder / "scores.csv", dtype={"FACILITY_NO": str}).set_index("FACILITY_NO")
        expected = batch.loc[answered["FACILITY_NO"], "default_probability"].to_numpy()
        assert answered["default_probability"].to_numpy() == pytest.approx(expected, rel=1e-9)

        wrong = [dict(records[0], SERVICE_MODE="Z"), dict(records[1], AS_OF="31.02.2024")]
        status, body = _post(f"{base}/v1/score", {"records": wrong})
        assert status == 422
        assert body["detail"][0]["loc"][-1] == "SERVICE_MODE"
        status, body = _post(f"{base}/v1/score", {"records": [dict(records[1], AS_OF="31.02.2024")]})
        assert status == 422
        assert "AS_OF: '31.02.2024' is not a date" in body["detail"][0]["msg"]
        status, body = _post(f"{base}/v1/score", {"records": [dict(records[2], MARGIN_BPS=-5.0)]})
        assert (status, body["detail"][0]["loc"][-1]) == (422, "MARGIN_BPS")  # the bank's name
        status, body = _post(f"{base}/v1/score", {"records": [dict(records[3], rm_contacts_90d=2)]})
        assert status == 422
        assert body["detail"][0]["type"] == "extra_forbidden"
        status, body = _post(f"{base}/v1/score", {"records": [dict(records[4], AS_OF="31.01.2099")]})
        assert status == 422
        assert "the macro series ends too early" in body["detail"][0]["msg"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_service_keeps_to_its_book_when_a_version_reads_another(walked, tmp_path):
    import shutil

    from crm_modes.models.advisor import BOOK_ARTIFACT, artifact_path
    from crm_modes.models.bundle_book import bundle_contract
    from crm_modes.serve.rest.served_model import ServedModel
    from crm_modes.shared.errors import InputError
    from crm_modes.shared.model_loading import LoadedModel

    bundle = champion(walked)
    service = ServedModel("models:/crm-advisor@champion")
    service.model = LoadedModel("models:/crm-advisor/1", "crm-advisor v1", None, bundle)
    service.contract = bundle_contract(bundle)
    same = LoadedModel("models:/crm-advisor/2", "crm-advisor v2", None, bundle)
    assert service._same_book(same) is same
    other = tmp_path / "other"
    shutil.copytree(bundle, other)
    contract = artifact_path(other, BOOK_ARTIFACT)
    contract.write_text(contract.read_text().replace("%d.%m.%Y", "%Y-%m-%d"))
    with pytest.raises(InputError, match="reads another book"):
        service._same_book(LoadedModel("models:/crm-advisor/3", "crm-advisor v3", None, other))
    contract.unlink()  # a bundle of the schema's own book
    with pytest.raises(InputError, match="reads another book"):
        service._same_book(LoadedModel("models:/crm-advisor/4", "crm-advisor v4", None, other))


def test_record_reads_the_banks_names_through_the_contract(walked, cli, tmp_path):
    from sqlalchemy import create_engine, text

    folder = walked["folder"]
    state = f"sqlite:///{tmp_path / 'state.db'}"
    contract = str(REPO / "configs" / "books" / "example_bank.yaml")
    base = [cli, "record", str(folder / "scores.csv"), "--state", state, "--queue-seconds", "0"]
    without = subprocess.run(base, env=walked["env"], capture_output=True, text=True, timeout=600)
    assert without.returncode == 2  # the bank's names are not the schema's: said, nothing recorded
    assert "missing columns" in without.stderr + without.stdout
    result = subprocess.run(
        [*base, "--contract", contract], env=walked["env"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    scores = pd.read_csv(folder / "scores.csv", dtype={"FACILITY_NO": str})
    with create_engine(state).connect() as connection:
        ids = {row[0] for row in connection.execute(text("select facility_id from decisions"))}
    assert ids == set(scores["FACILITY_NO"])


def test_a_month_that_cannot_be_read_stops_the_job_with_nothing_written(walked, cli, tmp_path):
    folder = walked["folder"]
    month = pd.read_csv(folder / "bank-export" / "month.csv", dtype=str)
    macro = str(folder / "bank-export" / "macro.csv")
    cases = {
        "codes.csv": month.assign(SERVICE_MODE="Z"),  # every row's mode unmapped: nothing to score
        "column.csv": month.drop(columns=["EXPOSURE_AMT"]),  # a column the contract names is gone
    }
    for name, frame in cases.items():
        frame.to_csv(tmp_path / name, index=False)
        output = tmp_path / f"scores-{name}"
        command = [cli, "score", "--model", "models:/crm-advisor@champion", "--macro", macro]
        command += ["--input", str(tmp_path / name), "--output", str(output)]
        result = subprocess.run(command, env=walked["env"], capture_output=True, text=True, timeout=600)
        assert result.returncode == 2, (name, result.stdout[-2000:])
        assert not output.exists()
        said = result.stderr + result.stdout
        assert ("SERVICE_MODE" in said) if name == "codes.csv" else ("EXPOSURE_AMT" in said)
    quarantine = pd.read_csv(tmp_path / "scores-codes.quarantine.csv", dtype=str)
    assert len(quarantine) == len(month)  # every row kept aside with its reason, none lost
