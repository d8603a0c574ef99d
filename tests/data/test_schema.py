import pytest

from crm_modes.data import schema
from crm_modes.data.schema import SCHEMA, Kind, Role


def test_every_column_is_declared_once():
    names = [c.name for c in SCHEMA]
    assert len(names) == len(set(names))


def test_key_columns_are_identifiers_or_dates():
    assert {schema.column(name).role for name in schema.KEY} <= {Role.ID, Role.DATE}


def test_categories_and_ranges_fit_their_kind():
    for c in SCHEMA:
        if c.kind is Kind.CATEGORY:
            assert c.categories, c.name
        else:
            assert not c.categories, c.name
        if c.minimum is not None and c.maximum is not None:
            assert c.minimum < c.maximum, c.name
        if not c.numeric:
            assert (c.minimum, c.maximum) == (None, None), c.name


def test_labels_are_nullable_and_oracles_are_marked():
    labels = schema.names([Role.LABEL])
    assert labels == ["default_12m", "churn_12m"]
    assert all(schema.column(name).nullable for name in labels)
    assert all(name.startswith("oracle_") for name in schema.names([Role.ORACLE]))


def test_required_columns_exclude_labels_oracle_and_context():
    required = set(schema.required_names())
    assert not required & set(schema.names([Role.LABEL, Role.ORACLE, Role.CONTEXT]))
    assert "assigned_mode" in schema.input_names()
    assert "default_12m" not in schema.input_names()


def test_unknown_column_lookup_names_it():
    with pytest.raises(KeyError, match="'no_such' is not a column"):
        schema.column("no_such")


def test_the_macro_signal_is_a_required_feature_of_the_economy():
    gdp = schema.column("gdp_growth")
    assert gdp.role is Role.ECONOMY
    assert gdp.required
    assert gdp.feature
    assert "gdp_growth" in schema.input_names()
