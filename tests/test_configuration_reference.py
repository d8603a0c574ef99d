"""Every configuration key is documented, and the documented reference is the code's own."""

import json
import subprocess

import pytest
from pydantic import BaseModel

from crm_modes.cli.config_reference import json_schema, kinds, markdown
from tests.conftest import REPO


def _fields(model: type[BaseModel], seen: set) -> list[tuple[str, object]]:
    from crm_modes.cli.config_reference import _models

    found = []
    for name, field in model.model_fields.items():
        if "SkipJsonSchema" in repr(field.annotation):
            continue
        found.append((f"{model.__name__}.{name}", field))
        for nested in _models(field.annotation):
            if nested not in seen:
                seen.add(nested)
                found += _fields(nested, seen)
    return found


@pytest.mark.parametrize("kind", list(kinds()))
def test_every_key_of_every_kind_is_described(kind):
    model, example = kinds()[kind]
    undocumented = [name for name, field in _fields(model, set()) if not field.description]
    assert undocumented == []
    assert (REPO / example).exists()
    schema = json.loads(json_schema(kind))
    assert schema["additionalProperties"] is False  # an unknown key is refused, naming it


def test_the_documented_reference_is_generated_from_the_code():
    """The configuration reference page holds no copy: the site's build writes the code's own tables
    in place of its marker (tests/test_documentation.py builds it and reads them back)."""
    page = (REPO / "docs" / "reference" / "configuration.md").read_text()
    assert "<!-- generated: configuration -->" in page
    assert "| `data.layout` |" in markdown()
    assert "| `models.<name>.gates.max_worse_than_champion` |" in markdown()


def test_the_command_prints_a_schema_and_refuses_an_unknown_kind(cli, tmp_path):
    printed = subprocess.run([cli, "config-schema", "economics"], capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0
    assert "switching_cost" in json.loads(printed.stdout)["properties"]
    refused = subprocess.run([cli, "config-schema", "boom"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "unknown kind 'boom'" in refused.stderr
