"""Every configuration key is documented, and the README's reference is the code's own."""

import json
import re
import subprocess

import pytest
from pydantic import BaseModel

from crm_modes.config_reference import json_schema, kinds, markdown
from tests.conftest import REPO


def _fields(model: type[BaseModel], seen: set) -> list[tuple[str, object]]:
    from crm_modes.config_reference import _models

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


def test_the_readme_reference_is_the_code_s():
    readme = (REPO / "README.md").read_text()
    found = re.search(r"<!-- config-reference:start -->\n(.*)\n<!-- config-reference:end -->", readme, re.S)
    assert found, "the README lost its configuration reference"
    assert found.group(1).strip() == markdown().strip(), (
        "run `crm-modes config-schema --markdown` into the README"
    )


def test_the_command_prints_a_schema_and_refuses_an_unknown_kind(cli, tmp_path):
    printed = subprocess.run([cli, "config-schema", "economics"], capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0
    assert "switching_cost" in json.loads(printed.stdout)["properties"]
    refused = subprocess.run([cli, "config-schema", "boom"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "unknown kind 'boom'" in refused.stderr
