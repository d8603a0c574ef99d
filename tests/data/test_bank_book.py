"""A bank's own book: the contract, labels from events, derived context, the macro series point in
time, and every bad contract or file a clear error or a quarantine with the reason."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from crm_modes.data.bank_book import build_book
from crm_modes.data.book_contract import BookContract, map_panel
from crm_modes.data.book_labels import horizon_end, join_macro, labels_from_events, other_facilities_mode
from crm_modes.data.generator import generate_book
from crm_modes.shared.errors import InputError
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "examples"))
from bank_export import CONTRACT, export

EXAMPLE = yaml.safe_load(CONTRACT.read_text())


def contract(**changes) -> BookContract:
    return BookContract.model_validate(EXAMPLE | changes)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    book = generate_book(6_000, seed=11)
    paths = export(book, tmp_path_factory.mktemp("bank"))
    return book[book["facility_id"] != book["facility_id"].iloc[-1]], paths


def read(paths, name):
    return pd.read_csv(paths[name], dtype=str)


def test_labels_from_events_equal_the_generators_where_both_are_known(exported):
    book, paths = exported
    built = build_book(read(paths, "panel"), read(paths, "events"), contract(), read(paths, "macro"))
    assert built.reconciles
    assert (len(built.book), len(built.quarantine)) == (len(book), 0)
    merged = book.merge(built.book, on=["facility_id", "snapshot_date"], suffixes=("", "_bank"))
    assert len(merged) == len(book)
    for label in ("default_12m", "churn_12m"):
        both = merged[label].notna() & merged[f"{label}_bank"].notna()
        assert both.sum() > 0.7 * len(book)
        assert (merged.loc[both, label] == merged.loc[both, f"{label}_bank"]).all()
        assert not (merged[f"{label}_bank"].isna() & merged[label].notna()).any()  # never less known
    for macro in ("gdp_growth", "gdp_growth_change_12m"):  # the macro series, point in time
        assert np.allclose(merged[macro], merged[f"{macro}_bank"])
    assert np.allclose(merged["exposure"], merged["exposure_bank"])  # units back to millions
    assert (merged["segment"].astype(str) == merged["segment_bank"].astype(str)).all()  # codes mapped
    assert built.absent == [
        "rm_contacts_90d",
        "digital_logins_90d",
        "digital_logins_prev_90d",
        "previous_default_probability",
    ]
    # the export carries other_facilities_mode
    assert built.derived == ["gdp_growth", "gdp_growth_change_12m"]


def panel(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    """A panel of (client, facility, as-of date, mode code) rows with the contract's core columns."""
    frame = pd.DataFrame(rows, columns=["CUST_ID", "FACILITY_NO", "AS_OF", "SERVICE_MODE"])
    return frame.assign(EXPOSURE_AMT="1000000", MARGIN_BPS="150", COLL_COVER="1.2")


MINIMAL = {
    "columns": {
        "client_id": "CUST_ID",
        "facility_id": "FACILITY_NO",
        "snapshot_date": "AS_OF",
        "assigned_mode": "SERVICE_MODE",
        "exposure": "EXPOSURE_AMT",
        "margin_bps": "MARGIN_BPS",
        "collateral_coverage": "COLL_COVER",
    },
    "codes": {"assigned_mode": {"B": "basic", "R": "reactive", "P": "responsible"}},
    "date_format": "%d.%m.%Y",
    "units": {"money": "units"},
    "events": {
        "facility": "FACILITY_NO",
        "date": "EVENT_DATE",
        "type": "EVENT_TYPE",
        "default": ["DPD90"],
        "churn": ["CLOSED"],
        "observed_until": "2025-03-31",
    },
}


def events(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["FACILITY_NO", "EVENT_DATE", "EVENT_TYPE"])


def test_month_ends_and_an_event_exactly_at_the_horizon_by_hand():
    assert horizon_end(
        pd.Series(pd.to_datetime(["2024-02-29", "2023-02-28", "2024-01-31"])), 12
    ).tolist() == [
        pd.Timestamp("2025-02-28"),
        pd.Timestamp("2024-02-29"),
        pd.Timestamp("2025-01-31"),
    ]
    spec = BookContract.model_validate(MINIMAL)
    mapped = map_panel(
        panel(
            [
                ("C1", "F1", "29.02.2024", "B"),  # horizon 28.02.2025: the default is on it
                ("C1", "F1", "31.03.2024", "B"),
                ("C2", "F2", "31.01.2024", "R"),  # F2 defaults a day after its horizon
                ("C3", "F3", "31.03.2024", "P"),  # no event, window ends 31.03.2025: known, 0
                ("C3", "F3", "30.04.2024", "P"),  # window ends after the last date observed: null
                ("C4", "F4", "31.01.2024", "B"),
                ("C4", "F4", "29.02.2024", "B"),  # on the exit date: dropped
                ("C5", "F5", "30.04.2024", "R"),  # a default seen, but in a window not observed to its end
            ]
        ),
        spec,
    )
    labelled = labels_from_events(
        mapped.rows,
        events(
            [
                ("F1", "28.02.2025", "DPD90"),
                ("F2", "01.02.2025", "DPD90"),
                ("F4", "29.02.2024", "CLOSED"),
                ("F5", "31.01.2025", "DPD90"),
            ]
        ),
        spec,
    )
    got = {
        (row.facility_id, f"{row.snapshot_date:%Y-%m-%d}"): (row.default_12m, row.churn_12m)
        for row in labelled.rows.itertuples()
    }
    na = pd.NA
    assert got == {
        ("F1", "2024-02-29"): (1, 0),
        ("F1", "2024-03-31"): (1, 0),
        ("F2", "2024-01-31"): (0, 0),
        ("F3", "2024-03-31"): (0, 0),
        ("F3", "2024-04-30"): (na, na),
        ("F4", "2024-01-31"): (0, 1),
        ("F5", "2024-04-30"): (na, na),  # only the positives of such months would be known: null
    }
    assert labelled.dropped_after_exit == 1


def test_bad_contracts_are_clear_errors():
    with pytest.raises(ValueError, match=r"the core columns \['exposure'\] must name the bank's column"):
        BookContract.model_validate(MINIMAL | {"columns": {**MINIMAL["columns"], "exposure": None}})
    with pytest.raises(ValueError, match=r"codes for 'assigned_mode' map to \['gold'\]"):
        BookContract.model_validate(MINIMAL | {"codes": {"assigned_mode": {"G": "gold"}}})
    with pytest.raises(ValueError, match=r"columns \['default_12m'\] are not schema columns a bank maps"):
        BookContract.model_validate(MINIMAL | {"columns": {**MINIMAL["columns"], "default_12m": "DEF"}})
    with pytest.raises(InputError, match=r"the panel has no column \['COLL_COVER'\]"):
        map_panel(
            panel([("C1", "F1", "31.01.2024", "B")]).drop(columns="COLL_COVER"),
            BookContract.model_validate(MINIMAL),
        )


def test_bad_rows_and_events_are_quarantined_with_the_reason_and_nothing_is_lost():
    spec = BookContract.model_validate(MINIMAL)
    rows = panel(
        [
            ("C1", "F1", "31.01.2024", "B"),
            ("C1", "F1", "31.02.2024", "B"),  # an impossible date
            ("C1", "F1", "2024-03-31", "B"),  # another format
            ("C2", "F2", "31.01.2024", "Q"),  # a code the contract does not map
            ("C2", "F2", "29.02.2024", "R"),
        ]
    )
    mapped = map_panel(rows, spec)
    assert mapped.rows_in == 5
    assert mapped.quarantine[["source_row", "quarantine_reason"]].values.tolist() == [
        [2, "AS_OF: '31.02.2024' is not a date written %d.%m.%Y"],
        [3, "AS_OF: '2024-03-31' is not a date written %d.%m.%Y"],
        [4, "SERVICE_MODE: code 'Q' is not in the contract's codes for assigned_mode"],
    ]
    labelled = labels_from_events(
        mapped.rows,
        events(
            [
                ("F1", "31.12.2023", "DPD90"),  # before the facility's first snapshot
                ("F2", "30.06.2024", "DPD90"),
                ("F2", "31.07.2024", "DPD90"),  # a second default
                ("F9", "30.06.2024", "CLOSED"),  # not in the panel
                ("F1", "31.13.2024", "CLOSED"),  # not a date
                ("F1", "30.06.2024", "MOVED_BRANCH"),  # neither a default nor an exit: ignored
            ]
        ),
        spec,
    )
    assert labelled.events_used == 1
    assert labelled.events_quarantine[["source_row", "quarantine_reason"]].values.tolist() == [
        [1, "before the facility's first snapshot"],
        [3, "a second default or exit of F2: its first is on 2024-06-30"],
        [4, "the facility is not in the panel"],
        [5, "the date is not a date in the contract's format"],
    ]
    assert labelled.counts["other event types"] == 1


def test_the_macro_value_published_after_a_snapshot_is_never_used_and_a_gap_is_an_error():
    spec = BookContract.model_validate(EXAMPLE).macro
    rows = pd.DataFrame({"snapshot_date": pd.to_datetime(["2024-01-31", "2024-02-29", "2024-02-14"])})
    macro = pd.DataFrame(
        {
            "PERIOD": ["2023-11", "2023-12", "2024-01"],
            "GDP_GROWTH": ["1.0", "2.0", "3.0"],
            "PUBLISHED": ["15.12.2023", "15.01.2024", "15.02.2024"],
        }
    )
    spec = spec.model_copy(update={"change_column": None})  # the level alone here; its change below

    def level(rows: pd.DataFrame, macro: pd.DataFrame) -> list[float]:
        return join_macro(rows, macro, spec, "%d.%m.%Y")["gdp_growth"].tolist()

    # 14 February: January's value is published the next day, so December's is the one known
    assert level(rows, macro) == [2.0, 3.0, 2.0]
    with pytest.raises(InputError, match=r"the macro series misses \['2023-12'\]"):
        level(rows, macro.drop(index=1))
    # a series that ends long before a snapshot is an error, never a stale value carried forward
    later = pd.DataFrame({"snapshot_date": pd.to_datetime(["2024-01-31", "2024-04-30"])})
    assert level(later, macro) == [2.0, 3.0]  # 3 months old: allowed
    late = pd.DataFrame({"snapshot_date": pd.to_datetime(["2024-05-31"])})
    with pytest.raises(InputError, match="the macro series ends too early: the snapshot 2024-05-31"):
        level(late, macro)
    with pytest.raises(InputError, match="no gdp_growth was published on or before the snapshot 2023-12-10"):
        level(pd.DataFrame({"snapshot_date": pd.to_datetime(["2023-12-10"])}), macro)


def test_the_macro_change_is_against_the_value_known_a_year_before_and_needs_that_year():
    spec = BookContract.model_validate(EXAMPLE).macro
    assert spec.change_column == "gdp_growth_change_12m"
    periods = pd.period_range("2022-11", "2024-01", freq="M")
    macro = pd.DataFrame(
        {
            "PERIOD": periods.astype(str),
            "GDP_GROWTH": np.arange(len(periods), dtype=float) ** 2 / 10,
            "PUBLISHED": (periods.to_timestamp() + pd.offsets.MonthBegin(1) + pd.Timedelta(days=14)).strftime(
                "%d.%m.%Y"
            ),
        }
    )
    value = dict(zip(periods.astype(str), macro["GDP_GROWTH"], strict=True))
    # 14 February 2024 knows December 2023's value; 14 February 2023 knew December 2022's
    rows = pd.DataFrame({"snapshot_date": pd.to_datetime(["2024-01-31", "2024-02-14"])})
    joined = join_macro(rows, macro, spec, "%d.%m.%Y")
    assert joined["gdp_growth"].tolist() == [value["2023-12"], value["2023-12"]]
    assert joined["gdp_growth_change_12m"].tolist() == pytest.approx(
        [value["2023-12"] - value["2022-12"], value["2023-12"] - value["2022-12"]]
    )
    # a series that does not reach a year before a snapshot is named, with the way out
    november = pd.DataFrame({"snapshot_date": pd.to_datetime(["2023-11-30"])})
    with pytest.raises(InputError, match="too late for gdp_growth_change_12m: the snapshot 2023-11-30"):
        join_macro(november, macro, spec, "%d.%m.%Y")
    alone = join_macro(november, macro, spec.model_copy(update={"change_column": None}), "%d.%m.%Y")
    assert list(alone.columns) == ["gdp_growth"]


def test_the_other_facilities_mode_at_the_same_snapshot():
    rows = pd.DataFrame(
        {
            "client_id": ["C1", "C1", "C1", "C2", "C1"],
            "snapshot_date": pd.to_datetime(["2024-01-31"] * 4 + ["2024-02-29"]),
            "assigned_mode": ["responsible", "basic", "reactive", "basic", "basic"],
        }
    )
    assert other_facilities_mode(rows).tolist() == ["reactive", "responsible", "responsible", "none", "none"]


def test_the_command_builds_the_book_and_refuses_a_broken_feed(cli, exported, tmp_path):
    _, paths = exported
    command = [
        cli,
        "labels",
        "--snapshots",
        str(paths["panel"]),
        "--events",
        str(paths["events"]),
        "--macro",
        str(paths["macro"]),
        "--contract",
        str(CONTRACT),
        "--out",
        str(tmp_path / "book.parquet"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "rows in = in the book + quarantined + after a default or exit" in done.stdout
    assert (tmp_path / "book.parquet").exists()
    broken = read(paths, "panel")
    broken["AS_OF"] = broken["AS_OF"].str.replace(".", "/")  # every date in another format
    broken.to_csv(tmp_path / "broken.csv", index=False)
    command[command.index("--snapshots") + 1] = str(tmp_path / "broken.csv")
    command[command.index("--out") + 1] = str(tmp_path / "broken-book.parquet")
    refused = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2
    assert "none of the" in " ".join(refused.stderr.split())
    assert not (tmp_path / "broken-book.parquet").exists()


def test_the_command_refuses_a_macro_series_that_starts_after_the_year_before_the_first_snapshot(
    cli, exported, tmp_path
):
    _, paths = exported
    read(paths, "macro").iloc[12:].to_csv(tmp_path / "short.csv", index=False)
    out = tmp_path / "book.parquet"
    command = [cli, "labels", "--snapshots", str(paths["panel"]), "--events", str(paths["events"])]
    command += ["--macro", str(tmp_path / "short.csv"), "--contract", str(CONTRACT), "--out", str(out)]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2
    assert "starts too late for gdp_growth_change_12m" in " ".join(refused.stderr.split())
    assert not out.exists()
