import numpy as np
import pandas as pd
import pytest

from crm_modes.data.file_gate import check_file
from crm_modes.data.gate import (
    REASON,
    SOURCE_ROW,
    FileReport,
    Gate,
    QuarantineLimitError,
    TableSchemaError,
    refuse_unusable,
    validate,
)
from crm_modes.data.io import TableReadError, write_table


@pytest.fixture
def rows(small_book) -> pd.DataFrame:
    """Twenty good rows as they arrive from a CSV: every value a string."""
    return small_book.head(20).astype(str).replace({"nan": "", "<NA>": ""}).reset_index(drop=True)


def reasons_of(result) -> list[str]:
    return result.quarantine[REASON].tolist()


def test_good_rows_pass_and_are_typed(rows):
    result = validate(rows)
    assert len(result.valid) == 20
    assert len(result.quarantine) == 0
    assert result.valid["internal_rating"].dtype == "int64"
    assert result.valid["leverage"].dtype == "float64"
    assert isinstance(result.valid["segment"].dtype, pd.CategoricalDtype)
    assert str(result.valid["snapshot_date"].dtype).startswith("datetime64")
    assert result.valid["default_12m"].dtype == "Int8"


def test_missing_columns_are_shown_as_a_difference(rows):
    broken = rows.drop(columns=["leverage", "segment"]).rename(columns={"product": "prodcut"})
    with pytest.raises(
        TableSchemaError, match=r"missing required columns \['segment', 'leverage', 'product'\]"
    ) as caught:
        validate(broken)
    assert "unexpected ['prodcut']" in str(caught.value)


def test_wrong_type_column_is_a_table_problem_and_all_problems_are_collected(rows):
    broken = rows.assign(leverage="high", snapshot_date="last month").drop(columns=["market"])
    with pytest.raises(TableSchemaError) as caught:
        validate(broken)
    message = str(caught.value)
    assert "missing required columns ['market']" in message
    assert "column 'leverage' cannot be read as a finite number: no value parses (first: 'high')" in message
    assert "column 'snapshot_date' cannot be read as a date" in message
    assert len(caught.value.problems) == 3


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("internal_rating", "11", "internal_rating: '11' is above the maximum 10"),
        ("leverage", "-1", "leverage: '-1' is below the minimum 0"),
        ("leverage", "abc", "leverage: 'abc' is not a finite number"),
        ("internal_rating", "2.5", "internal_rating: '2.5' is not a whole number"),
        ("assigned_mode", "vip", "assigned_mode: 'vip' is not one of basic, reactive, responsible"),
        ("utilization", "", "utilization: missing, but the column may not be null"),
        ("default_12m", "2", "default_12m: '2' is not 0 or 1"),
        ("snapshot_date", "2024-13-45", "snapshot_date: '2024-13-45' is not a date"),
    ],
)
def test_row_problems_are_quarantined_with_their_reason(rows, column, value, reason):
    rows.loc[4, column] = value
    result = validate(rows)
    assert len(result.valid) == 19
    assert result.quarantine[SOURCE_ROW].tolist() == [5]
    assert reasons_of(result)[0].startswith(reason)
    assert result.rows_in == len(rows)


def test_every_problem_of_a_row_is_listed(rows):
    rows.loc[0, ["internal_rating", "segment"]] = ["0", "bank"]
    result = Gate(unseen_inputs="quarantine").check(rows)
    assert reasons_of(result) == [
        "segment: 'bank' is not one of sme, mid_corporate, large_corporate, multinational; "
        "internal_rating: '0' is below the minimum 1"
    ]


def test_nullable_columns_accept_missing_values(rows):
    rows.loc[3, ["default_12m", "project_stage"]] = ["", ""]
    assert len(validate(rows).valid) == 20


def test_duplicate_keys_are_quarantined_within_and_across_chunks(rows):
    doubled = pd.concat([rows, rows.iloc[[2]]], ignore_index=True)
    result = validate(doubled)
    assert len(result.quarantine) == 1
    assert "duplicate key (facility_id=" in reasons_of(result)[0]
    gate = Gate()
    gate.check(rows.iloc[:10])
    later = gate.check(rows.iloc[5:15])
    assert later.quarantine[SOURCE_ROW].tolist() == [11, 12, 13, 14, 15]
    assert len(later.valid) == 5


def test_extra_columns_are_reported_and_dropped(rows):
    result = validate(rows.assign(notes="x", score_2023="1"))
    assert result.extra_columns == ("notes", "score_2023")
    assert "notes" not in result.valid.columns
    assert len(result.valid) == 20


def test_optional_columns_may_be_absent(rows):
    result = validate(rows.drop(columns=["default_12m", "churn_12m", "assigned_mode", "oracle_policy_mode"]))
    assert len(result.valid) == 20


def test_typed_parquet_input_is_checked_the_same(small_book, tmp_path):
    book = small_book.head(50).copy()
    book.loc[7, "leverage"] = 99.0
    book.loc[9, "internal_rating"] = 0
    path = write_table(book, tmp_path / "book.parquet")
    report, summary = check_file(path, quarantine=tmp_path / "q.parquet")
    assert (report.rows_in, report.rows_valid, report.rows_quarantined) == (50, 48, 2)
    assert summary.rows == 48
    quarantined = pd.read_parquet(tmp_path / "q.parquet")
    assert quarantined[SOURCE_ROW].tolist() == [8, 10]
    assert quarantined[REASON].tolist() == [
        "leverage: 99.0 is above the maximum 50",
        "internal_rating: 0 is below the minimum 1",
    ]


def test_file_check_reconciles_across_chunks(small_book, tmp_path):
    book = small_book.head(1000).astype(str).replace({"nan": "", "<NA>": ""})
    book.loc[[3, 400, 999], "leverage"] = "oops"
    path = tmp_path / "book.csv"
    book.to_csv(path, index=False)
    report, _ = check_file(
        path, quarantine=tmp_path / "q.csv", output=tmp_path / "valid.parquet", chunk_rows=128
    )
    assert report.reconciles
    assert (report.rows_in, report.rows_valid, report.rows_quarantined) == (1000, 997, 3)
    assert pd.read_csv(tmp_path / "q.csv")[SOURCE_ROW].tolist() == [4, 401, 1000]
    assert len(pd.read_parquet(tmp_path / "valid.parquet")) == 997
    assert report.reasons == {"leverage": 3}


def test_a_file_that_could_not_be_used_writes_its_quarantine_and_no_output(small_book, tmp_path):
    book = small_book.head(300).assign(digital_logins_90d=np.nan)
    path = write_table(book, tmp_path / "feed.parquet")
    with pytest.raises(QuarantineLimitError, match="none of the 300 rows passed the gate") as refused:
        check_file(path, quarantine=tmp_path / "q.csv", output=tmp_path / "valid.parquet")
    assert "digital_logins_90d 300 (e.g. missing)" in str(refused.value)
    assert len(pd.read_csv(tmp_path / "q.csv")) == 300
    assert not (tmp_path / "valid.parquet").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left

    book.loc[:279, "digital_logins_90d"] = 3  # 20 of 300 rows (6.7%) still broken
    write_table(book, path)
    with pytest.raises(QuarantineLimitError, match=r"20 of 300 rows \(6\.7%\) were quarantined"):
        check_file(path, output=tmp_path / "valid.parquet")
    report, _ = check_file(path, output=tmp_path / "valid.parquet", max_quarantined_share=0.1)
    assert (report.rows_valid, report.rows_quarantined) == (280, 20)
    assert len(pd.read_parquet(tmp_path / "valid.parquet")) == 280


def test_empty_file_is_rejected(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(TableReadError, match="the file is empty"):
        check_file(path)


def test_header_only_is_rejected(small_book, tmp_path):
    path = tmp_path / "header.csv"
    small_book.head(0).to_csv(path, index=False)
    with pytest.raises(TableSchemaError, match="has a header but no data rows"):
        check_file(path)


def test_garbage_bytes_are_rejected(tmp_path):
    path = tmp_path / "garbage.csv"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(TableReadError, match="not a UTF-8 text CSV file"):
        check_file(path)
    parquet = tmp_path / "garbage.parquet"
    parquet.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(TableReadError, match="not a readable Parquet file"):
        check_file(parquet)


def test_text_that_is_not_a_table_reports_the_missing_columns(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("hello world\nthis is not a loan book\n")
    with pytest.raises(TableSchemaError, match=r"missing required columns \['client_id'"):
        check_file(path)


def test_stored_timestamps_are_read_as_text_dates_are_and_out_of_range_ones_are_quarantined(small_book):
    book = small_book.head(6).reset_index(drop=True)
    as_text = validate(book.assign(snapshot_date=book["snapshot_date"].dt.strftime("%Y-%m-%d")))
    stored = book.assign(snapshot_date=book["snapshot_date"].astype("datetime64[us]"))
    stored["snapshot_date"] = stored["snapshot_date"].astype(object)
    stored.loc[2, "snapshot_date"] = pd.Timestamp("2999-01-31").to_datetime64()  # beyond nanoseconds
    stored.loc[4, "snapshot_date"] = np.datetime64("1600-01-31", "us")
    stored["snapshot_date"] = np.array(stored["snapshot_date"].tolist(), dtype="datetime64[us]")
    assert str(stored["snapshot_date"].dtype) == "datetime64[us]"
    result = validate(stored)  # no overflow error: the two rows are quarantined with their reason
    assert result.quarantine[SOURCE_ROW].tolist() == [3, 5]
    assert reasons_of(result)[0] == "snapshot_date: 2999-01-31 00:00:00 is not a date (YYYY-MM-DD)"
    keep = [0, 1, 3, 5]
    assert result.valid["snapshot_date"].tolist() == as_text.valid["snapshot_date"].iloc[keep].tolist()
    assert str(result.valid["snapshot_date"].dtype) == "datetime64[ns]"
    zoned = book.assign(
        snapshot_date=book["snapshot_date"].dt.tz_localize("UTC").astype("datetime64[us, UTC]")
    )
    assert validate(zoned).valid["snapshot_date"].tolist() == as_text.valid["snapshot_date"].tolist()


def test_repeated_rows_found_elsewhere_replace_the_gates_own_memory(rows):
    gate = Gate()
    first = gate.check(rows.iloc[:10])
    assert len(first.valid) == 10
    # told which rows repeat: rows 5..9 are not taken as repeats although this gate saw them
    told = gate.check(rows.iloc[5:15], repeated=np.isin(np.arange(10), [0, 7]))
    assert told.quarantine[SOURCE_ROW].tolist() == [11, 18]
    assert all(reason.startswith("duplicate key (facility_id=") for reason in reasons_of(told))
    assert len(told.valid) == 8


def test_a_new_category_of_a_model_input_is_scored_with_a_warning_on_its_row(rows):
    rows.loc[4, "segment"] = "retail_bank"
    result = validate(rows)
    assert len(result.valid) == 20
    assert len(result.quarantine) == 0
    assert result.valid.loc[4, "segment"] == "retail_bank"  # kept as it came, for the models' encoder
    assert list(result.valid["segment"].cat.categories)[-1] == "retail_bank"
    assert result.input_warnings[4] == (
        "segment: 'retail_bank' is not one of sme, mid_corporate, large_corporate, multinational: "
        "scored as the models' unknown category"
    )
    assert (result.input_warnings[[0, 1, 2, 3, *range(5, 20)]] == "").all()
    report = FileReport()
    report.add(result)
    assert report.unseen == {"segment": {"'retail_bank'": 1}}
    assert report.rows_warned == 1


def test_a_job_may_send_new_categories_of_model_inputs_to_quarantine(rows):
    rows.loc[4, "segment"] = "retail_bank"
    result = Gate(unseen_inputs="quarantine").check(rows)
    assert len(result.valid) == 19
    assert reasons_of(result) == [
        "segment: 'retail_bank' is not one of sme, mid_corporate, large_corporate, multinational"
    ]


def test_a_new_value_of_a_reporting_column_is_counted_without_a_warning(rows):
    rows.loc[[2, 7], "region"] = "atlantis"
    result = validate(rows)
    assert len(result.valid) == 20
    assert (result.input_warnings == "").all()
    assert result.valid.loc[2, "region"] == "atlantis"
    report = FileReport()
    report.add(result)
    assert report.unseen == {"region": {"'atlantis'": 2}}
    assert report.rows_warned == 0


def test_a_row_with_a_new_value_and_a_problem_is_quarantined_once_and_not_warned_about(rows):
    rows.loc[3, ["segment", "internal_rating"]] = ["bank", "0"]
    result = validate(rows)
    assert result.quarantine[SOURCE_ROW].tolist() == [4]
    assert (result.input_warnings == "").all()
    assert len(result.input_warnings) == 19


def test_a_job_that_could_use_nothing_or_too_little_stops_naming_the_worst_columns(rows):
    report = FileReport()
    report.add(validate(rows.assign(digital_logins_90d="")))
    assert (report.rows_valid, report.rows_quarantined) == (0, 20)
    with pytest.raises(QuarantineLimitError) as refused:
        refuse_unusable(report, 1.0, "feed.csv", quarantine="feed.quarantine.csv")
    message = str(refused.value)
    assert message.startswith("feed.csv: none of the 20 rows passed the gate")
    assert "digital_logins_90d 20 (e.g. missing)" in message
    assert message.endswith(
        "the rows and their reasons: feed.quarantine.csv (rows in = used + quarantined: 20 = 0 + 20)"
    )

    rows.loc[[1, 2], "exposure"] = "1e9"
    some = FileReport()
    some.add(validate(rows))
    with pytest.raises(QuarantineLimitError) as refused:
        refuse_unusable(some, 0.05, "feed.csv")
    assert "2 of 20 rows (10.0%) were quarantined, more than the 5% allowed (--max-quarantined-share)" in str(
        refused.value
    )
    assert "exposure 2 (e.g. '1e9')" in str(refused.value)
    refuse_unusable(some, 0.10, "feed.csv")  # at the limit: the job goes on


def test_identifiers_no_store_can_hold_are_quarantined_with_the_reason(small_book):
    book = small_book.head(30).copy().reset_index(drop=True)
    book["facility_id"] = book["facility_id"].astype(object)
    book.loc[4, "facility_id"] = "F\x00004"
    book.loc[9, "client_id"] = "C\ud800"  # a frame handed to the gate in memory may hold one
    result = validate(book)
    assert len(result.valid) + len(result.quarantine) == 30
    assert result.quarantine["quarantine_reason"].tolist() == [
        "facility_id: 'F\\x00004' holds a NUL or a lone surrogate: no store can",
        "client_id: 'C\\ud800' holds a NUL or a lone surrogate: no store can",
    ]
