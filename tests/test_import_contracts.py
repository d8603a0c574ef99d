"""The layers hold: the import contracts pass on the package, and fail on a copy that breaks them."""

import pytest

from tests.import_contracts import assemble, lint


@pytest.fixture
def tree(tmp_path):
    return assemble(tmp_path / "package")


def test_the_package_keeps_every_import_contract(tree):
    result = lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout


def test_an_upward_import_breaks_the_layers_naming_it(tree):
    module = tree / "crm_modes" / "data" / "schema.py"
    module.write_text(
        module.read_text() + "\n\ndef _upward():\n    from crm_modes.serve import batch  # noqa\n"
    )
    result = lint(tree)
    assert result.returncode != 0
    assert "Data flows one way: a lower layer never imports a higher one BROKEN" in result.stdout
    assert "crm_modes.data.schema -> crm_modes.serve.batch" in result.stdout


def test_siblings_of_a_layer_may_not_import_each_other(tree):
    module = tree / "crm_modes" / "state" / "queries.py"
    module.write_text(module.read_text() + "\nimport crm_modes.training.metrics  # noqa\n")
    result = lint(tree)
    assert result.returncode != 0
    assert "crm_modes.state.queries -> crm_modes.training.metrics" in result.stdout


def test_shipped_code_that_imports_a_web_framework_is_refused(tree):
    module = tree / "crm_modes" / "models" / "economics.py"
    module.write_text(module.read_text() + "\nimport fastapi  # noqa\n")
    result = lint(tree)
    assert "The code a registered model ships with imports only what the model's" in result.stdout
    assert "crm_modes.models.economics -> fastapi" in result.stdout
    assert result.returncode != 0
