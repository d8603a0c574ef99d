"""A fitted feature pipeline's transform, without the per-call overhead of its containers.

``Pipeline.transform`` of a pipeline from :func:`crm_modes.features.builder.build_feature_pipeline`
spends most of its time on one record in scikit-learn's and pandas' bookkeeping (output
wrapping, column routing, input validation at every step), not in the arithmetic. This
module runs the same fitted steps on plain arrays: the entrance check (the same check and
warning), the domain features, each column group's own transformer, the scaler, and wraps
the result once. The output equals ``pipeline.transform`` exactly (tested); a pipeline of
any other shape is left to ``pipeline.transform``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from crm_modes.features.categorical import CategoryEncoder
from crm_modes.features.domain import DomainFeatures
from crm_modes.features.entrance import EntranceCheck
from crm_modes.features.numeric import NumericCleaner


@dataclass(frozen=True)
class _Plan:
    entrance: EntranceCheck
    domain: DomainFeatures
    groups: tuple[tuple[NumericCleaner | CategoryEncoder, tuple[str, ...]], ...]
    scaler: StandardScaler | None
    names: pd.Index
    #: input columns the numeric cleaner reads directly (not domain features)
    numeric_inputs: tuple[str, ...]
    #: input columns that must hold numbers: the numeric inputs and what the ratios read
    numbers_only: tuple[str, ...]


_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def transform(pipeline: Pipeline, frame: pd.DataFrame, *, out: np.ndarray | None = None) -> pd.DataFrame:
    """``pipeline.transform(frame)``, faster; the same columns, values and index.

    ``out``: a float64 array of the output's shape to write the matrix into (e.g. one slice of
    a larger matrix), so that stacking several transforms copies nothing.
    """
    plan = _plan(pipeline)
    if plan is None or len(frame) == 0:
        matrix = pipeline.transform(frame)
        if out is not None:
            out[...] = matrix
        return matrix
    plan.entrance.selected(frame)  # the entrance check: missing columns raise, unused ones warn
    kinds = {name: dtype.kind for name, dtype in frame.dtypes.items()}
    if any(kinds[name] not in "biuf" for name in plan.numbers_only):
        return pipeline.transform(frame)  # text where numbers belong: the steps name it
    block = frame[list(plan.numeric_inputs)].to_numpy(dtype=np.float64, na_value=np.nan)
    numbers = dict(zip(plan.numeric_inputs, block.T, strict=True))
    numbers |= plan.domain.compute(_Columns(numbers, frame))
    blocks = []
    for transformer, columns in plan.groups:
        if isinstance(transformer, NumericCleaner):
            values = np.column_stack([_number(numbers, frame, name) for name in columns])
            blocks.append(transformer.transform_values(values))
        else:
            blocks.append(transformer.encode([frame[name] for name in columns]))
    matrix = np.concatenate(blocks, axis=1, out=out)
    if plan.scaler is not None:  # StandardScaler.transform's arithmetic, in the same order
        if plan.scaler.with_mean:
            matrix -= plan.scaler.mean_
        if plan.scaler.with_std:
            matrix /= plan.scaler.scale_
    return pd.DataFrame(
        matrix, columns=plan.names, index=frame.index, copy=False
    )  # pandas 3 copies by default


class _Columns:
    """Columns as float64 arrays for the domain features and ratios, read from the frame on first use."""

    def __init__(self, numbers: dict[str, np.ndarray], frame: pd.DataFrame) -> None:
        self.numbers, self.frame = numbers, frame

    def __getitem__(self, name: str) -> np.ndarray:
        return _number(self.numbers, self.frame, name)


def _number(numbers: dict[str, np.ndarray], frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in numbers:
        numbers[name] = pd.to_numeric(frame[name], errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
    return numbers[name]


def _plan(pipeline: Pipeline) -> _Plan | None:
    try:
        return _PLANS[pipeline]
    except KeyError:
        plan = _PLANS[pipeline] = _make_plan(pipeline)
        return plan


def _make_plan(pipeline: Pipeline) -> _Plan | None:
    """The steps to run, when the pipeline has exactly the shape the builder makes."""
    steps = dict(pipeline.steps)
    names = [name for name, _ in pipeline.steps]
    if names not in (["entrance", "domain", "columns"], ["entrance", "domain", "columns", "scale"]):
        return None
    entrance, domain, columns = steps["entrance"], steps["domain"], steps["columns"]
    scaler = steps.get("scale")
    if not (
        isinstance(entrance, EntranceCheck)
        and getattr(entrance, "feature_names_in_", None) is not None
        and isinstance(domain, DomainFeatures)
        and isinstance(columns, ColumnTransformer)
        and (scaler is None or isinstance(scaler, StandardScaler))
    ):
        return None
    groups = []
    for _, transformer, selection in columns.transformers_:
        if transformer == "drop":
            continue
        if not isinstance(transformer, NumericCleaner | CategoryEncoder) or not _names(selection):
            return None
        groups.append((transformer, tuple(selection)))
    added = set(domain.added_names())
    numeric_inputs = tuple(
        name
        for transformer, selection in groups
        if isinstance(transformer, NumericCleaner)
        for name in selection
        if name not in added
    )
    names = pd.Index(pipeline.get_feature_names_out())
    numbers_only = tuple(dict.fromkeys([*numeric_inputs, *domain.ratio_inputs()]))
    return _Plan(entrance, domain, tuple(groups), scaler, names, numeric_inputs, numbers_only)


def _names(selection: object) -> bool:
    return isinstance(selection, list | tuple) and all(isinstance(name, str) for name in selection)
