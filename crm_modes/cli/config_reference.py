"""Every configuration key, from the parsed models themselves: a JSON Schema, and a reference to read.

The configuration models (:class:`~crm_modes.shared.configuration.FrozenConfig` subclasses) carry
a docstring per key; ``crm-modes config-schema KIND`` prints the JSON Schema of one kind of
file, and ``--markdown`` the reference tables the documentation site is built with (generated at
each build, so the documentation cannot fall behind the code).
"""

from __future__ import annotations

import json
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticUndefined


def kinds() -> dict[str, tuple[type[BaseModel], str]]:
    """Each kind of configuration file: its model and an example file."""
    from crm_modes.data.book_contract import BookContract
    from crm_modes.features.config import FeatureConfig
    from crm_modes.models.alerts import AlertPolicy
    from crm_modes.models.economics import Economics
    from crm_modes.monitor.config import MonitoringConfig
    from crm_modes.serve.rest.access import AccessConfig
    from crm_modes.training.config import TrainingConfig

    return {
        "training": (TrainingConfig, "configs/train.yaml"),
        "features": (FeatureConfig, "configs/features/synthetic.yaml"),
        "monitoring": (MonitoringConfig, "configs/monitoring.yaml"),
        "alert-policy": (AlertPolicy, "configs/alert_policy.yaml"),
        "economics": (Economics, "configs/economics.yaml"),
        "credentials": (AccessConfig, "configs/credentials.example.yaml"),
        "book-contract": (BookContract, "configs/books/example_bank.yaml"),
    }


def json_schema(kind: str) -> str:
    """The JSON Schema of one kind of configuration file (see :func:`kinds`)."""
    model, _ = kinds()[kind]
    return json.dumps(model.model_json_schema(), indent=2)


def markdown() -> str:
    """Every key of every kind of file: its type, its default and what it is for."""
    parts = []
    for kind, (model, example) in kinds().items():
        if kind == "features":
            continue  # the training file's ``features.*`` keys: the same model
        header = "| key | type | default | what it is |\n| --- | --- | --- | --- |"
        parts.append(f"**{kind}** (e.g. `{example}`)\n\n{header}")
        parts.append("\n".join(_rows(model, "", set())) + "\n")
    return "\n".join(parts)


def _rows(model: type[BaseModel], prefix: str, seen: set[type]) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        if any(isinstance(item, SkipJsonSchema) for item in field.metadata) or _skipped(field.annotation):
            continue
        key = f"{prefix}{name}"
        default = _default(field)
        description = (field.description or "").replace("\n", " ").replace("|", "\\|")
        rows.append(f"| `{key}` | {_type(field.annotation)} | {default} | {description} |")
        for nested in _models(field.annotation):
            if nested not in seen:
                seen.add(nested)
                child = (
                    f"{key}.<name>."
                    if _is_mapping(field.annotation)
                    else f"{key}[]."
                    if _is_sequence(field.annotation)
                    else f"{key}."
                )
                rows += _rows(nested, child, seen)
    return rows


def _skipped(annotation: Any) -> bool:
    return "SkipJsonSchema" in repr(annotation)


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.default_factory() if field.default is PydanticUndefined else field.default
    if isinstance(value, BaseModel):
        return "(see below)"
    return f"`{json.dumps(value, default=str)}`"


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The configuration models inside an annotation (``Model``, ``Model | None``, ``dict[str, Model]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [found for item in typing.get_args(annotation) for found in _models(item)]


def _is_mapping(annotation: Any) -> bool:
    return any(typing.get_origin(item) is dict for item in (annotation, *typing.get_args(annotation)))


def _is_sequence(annotation: Any) -> bool:
    return any(
        typing.get_origin(item) in (list, tuple) for item in (annotation, *typing.get_args(annotation))
    )


def _type(annotation: Any) -> str:
    text = (
        repr(annotation) if typing.get_args(annotation) else getattr(annotation, "__name__", repr(annotation))
    )
    for noise in (
        "typing.",
        "pathlib.",
        "crm_modes.",
        "training.config.",
        "features.config.",
        "models.alerts.",
        "models.economics.",
        "monitor.config.",
        "NoneType",
    ):
        text = text.replace(noise, "None" if noise == "NoneType" else "")
    return text.replace("|", "\\|")
