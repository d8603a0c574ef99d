"""The base of every configuration file the project parses from YAML, and how it is read.

Every section is a frozen pydantic model: unknown keys are refused (naming them), values are
frozen once parsed, and each field's docstring is its description (``crm-modes config-schema``
prints it, the documentation's configuration reference is generated from it). A key that was
renamed is refused with its new name (:attr:`FrozenConfig.renamed_keys`), so an old file fails
with a message that says what to write instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from crm_modes.shared.errors import InputError


class FrozenConfig(BaseModel):
    """A configuration section: unknown keys are refused (naming them), values are frozen once
    parsed, and each field's docstring is its description (``crm-modes config-schema`` prints it)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    #: Old key -> what to write instead, for keys this section no longer takes.
    renamed_keys: ClassVar[Mapping[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _refuse_renamed_keys(cls, values: Any) -> Any:
        if isinstance(values, Mapping):
            old = [key for key in cls.renamed_keys if key in values]
            if old:
                raise ValueError(
                    "; ".join(f"`{key}` was renamed: write {cls.renamed_keys[key]}" for key in old)
                )
        return values


Model = TypeVar("Model", bound=BaseModel)


def invalid_file(path: str | os.PathLike[str], error: ValidationError) -> InputError:
    """The problems of a configuration file, each named by its key, as one user-facing error."""
    details = "; ".join(
        f"{'.'.join(map(str, problem['loc'])) or 'file'}: {problem['msg'].removeprefix('Value error, ')}"
        for problem in error.errors()
    )
    return InputError(f"{os.fspath(path)}: {details}")


def load_yaml_model(path: str | os.PathLike[str], model: type[Model]) -> Model:
    """Parse the YAML file at ``path`` as ``model``.

    Raises:
        InputError: the file is missing, or names the file and each bad entry.
    """
    if not Path(path).is_file():
        raise InputError(f"{os.fspath(path)}: no such configuration file")
    try:
        return model.model_validate(yaml.safe_load(Path(path).read_text()))
    except ValidationError as error:
        raise invalid_file(path, error) from None
