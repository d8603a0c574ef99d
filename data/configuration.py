"""The base of every configuration section the project parses from YAML."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FrozenConfig(BaseModel):
    """A configuration section: unknown keys are refused (naming them), values are frozen once
    parsed, and each field's docstring is its description (``crm-modes config-schema`` prints it)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
