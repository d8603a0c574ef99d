"""Reading a YAML file into a frozen pydantic model, with errors that name the file and the entry."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from crm_modes.data.errors import InputError

Model = TypeVar("Model", bound=BaseModel)


def load_yaml_model(path: str | os.PathLike[str], model: type[Model]) -> Model:
    """Parse the YAML file at ``path`` as ``model``; a ``ValueError`` names the file and each bad entry."""
    try:
        return model.model_validate(yaml.safe_load(Path(path).read_text()))
    except ValidationError as error:
        details = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in error.errors())
        raise InputError(f"{path}: {details}") from None
