"""A table's profile resists the junk of the table it is inferred from."""

import subprocess

import numpy as np
import pandas as pd
import pytest

from crm_modes.data.profile import infer_profile
from crm_modes.shared.errors import InputError


@pytest.fixture
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = 500
    return pd.DataFrame(
        {
            "products": rng.integers(1, 5, rows),
            "balance": rng.gamma(2.0, 50_000.0, rows).round(2),
            "country": rng.choice(["France", "Germany", "Spain"], rows),
            "exited": rng.integers(0, 2, rows),
        }
    )


USES = {"products": "feature", "balance": "feature", "country": "feature", "exited": "target"}
NUMERIC = {"products", "balance"}


def columns(profile) -> dict:
    return {column.name: column for column in profile.columns}


def test_one_junk_value_keeps_the_range_of_the_clean_rows_and_is_listed_for_review(table):
    clean = columns(infer_profile(table, USES, numeric=NUMERIC))
    table.loc[10, "products"] = 66_000
    profile = infer_profile(table, USES, numeric=NUMERIC)
    products = columns(profile)["products"]
    assert (products.minimum, products.maximum) == (clean["products"].minimum, clean["products"].maximum)
    assert products.maximum <= 5
    assert products.integer
    assert any(
        "products: 1 values far outside the bulk" in note and "66000" in note for note in profile.notes
    )


def test_a_binary_target_with_a_third_class_is_refused_naming_the_classes(table):
    table["exited"] = table["exited"].astype(object)
    table.loc[3, "exited"] = "50000"
    with pytest.raises(InputError) as refused:
        infer_profile(table, USES, numeric=NUMERIC, binary_targets={"exited"})
    message = str(refused.value)
    assert "target 'exited' of a binary model holds 3 classes" in message
    assert "'50000' (1 rows)" in message
    assert "set the model's positive_label" in message
    assert "exited" in columns(infer_profile(table, USES, numeric=NUMERIC))  # a multi-class target may


def test_a_description_row_under_the_header_is_left_out_and_named(table):
    described = pd.concat(
        [pd.DataFrame([{name: "Jenis kelamin" for name in table.columns}]), table.astype(object)],
        ignore_index=True,
    )
    described.loc[1:, "country"] = table["country"].to_numpy()
    profile = infer_profile(described, USES, numeric=NUMERIC, binary_targets={"exited"})
    found = columns(profile)
    assert "Jenis kelamin" not in found["country"].categories
    assert not found["country"].nullable
    assert not found["products"].nullable
    assert found["exited"].categories == ("0", "1")
    assert profile.rows == len(table)
    assert "data row 1: most numeric columns hold text (a description row?)" in profile.notes[0]


def test_categories_seen_once_are_listed_for_review(table):
    table.loc[7, "country"] = "Atlantis"
    profile = infer_profile(table, USES, numeric=NUMERIC)
    assert "Atlantis" in columns(profile)["country"].categories
    assert "country: categories seen once, to review: Atlantis" in profile.notes


@pytest.mark.integration
def test_the_printed_hint_gives_the_path_as_the_configuration_reads_it(cli, table, tmp_path):
    (tmp_path / "cfg").mkdir()
    table.to_csv(tmp_path / "loans.csv", index=False)
    (tmp_path / "cfg" / "loans.yaml").write_text(
        "data: {path: ../loans.csv, layout: own}\n"
        "split: {kind: random}\n"
        "features: {numeric: [products, balance], categorical: [country]}\n"
        "models: {churn: {kind: binary, target: exited, registered_name: loans-churn}}\n"
    )
    result = subprocess.run(
        [cli, "profile", "--config", "cfg/loans.yaml", "--out", "cfg/profiles/loans.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "set data.profile: profiles/loans.yaml in cfg/loans.yaml" in result.stdout
    assert (tmp_path / "cfg" / "profiles" / "loans.yaml").exists()
