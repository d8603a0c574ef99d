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
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from crm_modes.features.categorical import CategoryEncoder
from crm_modes.features.columns import Columns
from crm_modes.features.domain import DomainFeatures
from crm_modes.features.entrance import EntranceCheck, warn_unused
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
    #: domain feature -> (the input columns it reads, how it is computed from the numbers)
    parts: dict[str, tuple[tuple[str, ...], Callable[[_Numbers], np.ndarray]]]
    #: the columns the entrance check needs, and every column it takes without a warning
    needed: frozenset[str]
    expected: frozenset[str]
    #: each categorical group's kept categories by column (label -> position), as ``groups``
    known: tuple[tuple[dict[str, int], ...] | None, ...]
    #: per linear model (its weights' bytes): its weights laid over the matrix (:class:`_Linear`)
    linear: dict[bytes, _Linear] = field(default_factory=dict, compare=False)


_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def transform(
    pipeline: Pipeline, frame: pd.DataFrame | Columns, *, out: np.ndarray | None = None
) -> pd.DataFrame:
    """``pipeline.transform(frame)``, faster; the same columns, values and index.

    ``frame``: a DataFrame, or rows already read (:class:`Columns`: its converted columns are
    reused, the index is its frame's). ``out``: a float64 array of the output's shape to write the
    matrix into (e.g. one slice of a larger matrix), so that stacking several transforms copies
    nothing.
    """
    rows = Columns.of(frame)
    if _plan(pipeline) is None or len(rows) == 0:
        result = pipeline.transform(rows.to_frame())
        if out is not None:
            out[...] = result
        return result
    values = matrix(pipeline, rows, out=out)
    return pd.DataFrame(values, columns=feature_names(pipeline), index=rows.frame.index, copy=False)


def matrix(pipeline: Pipeline, rows: Columns, *, out: np.ndarray | None = None) -> np.ndarray:
    """The float64 feature matrix of ``rows``, columns as :func:`feature_names`.

    Each input column is read from ``rows`` once whatever the number of calls (see
    :class:`~crm_modes.features.columns.Columns`), so transforming the same rows for several
    models, or with a few columns replaced, converts the input once.
    """
    plan = _plan(pipeline)
    if plan is not None and len(rows):
        _check_entrance(plan, rows)
    if not _on_arrays(plan, rows):  # the plain path: its steps also name text where numbers belong
        values = np.asarray(pipeline.transform(rows.to_frame()), dtype=np.float64)
        if out is None:
            return values
        out[...] = values
        return out
    numbers = _Numbers(plan, rows)
    blocks = []
    for index, (transformer, columns) in enumerate(plan.groups):
        if isinstance(transformer, NumericCleaner):
            blocks.append(transformer.transform_values(np.column_stack([numbers[name] for name in columns])))
        else:
            codes = [rows.codes(name, known) for name, known in zip(columns, plan.known[index], strict=True)]
            blocks.append(transformer.encode_codes(codes, len(rows)))
    values = np.concatenate(blocks, axis=1, out=out)
    if plan.scaler is not None:  # StandardScaler.transform's arithmetic, in the same order
        if plan.scaler.with_mean:
            values -= plan.scaler.mean_
        if plan.scaler.with_std:
            values /= plan.scaler.scale_
    return values


def dot(pipeline: Pipeline, rows: Columns, weights: np.ndarray) -> np.ndarray | None:
    """``matrix(pipeline, rows) @ weights``, without building the matrix; ``None`` when the
    pipeline takes the plain path (then use :func:`matrix`).

    What a linear model needs of a wide one-hot matrix is one weight per row and column: the
    scaler folds into the weights (``(x - mean) / scale . w = x . (w / scale) - mean . (w /
    scale)``), a one-hot block becomes a lookup of its category's weight, and only the numeric
    block is computed. Equal to the product of the matrix up to rounding (about 1e-15 relative).
    The blocks are added in the matrix's order, so a row's product is the same whatever the
    other rows.
    """
    plan = _plan(pipeline)
    if plan is not None and len(rows):
        _check_entrance(plan, rows)
    if not _on_arrays(plan, rows):
        return None
    linear = _linear(plan, weights)
    total = np.full(len(rows), linear.constant)
    numbers = _Numbers(plan, rows)
    original = rows.original()
    replaced = frozenset(rows.replaced_anywhere())
    for block in linear.blocks:
        if isinstance(block, _Terms):
            # The columns a replaced input reaches are computed for these rows; the sum of the
            # others is the same for every copy of the rows, computed once on the original.
            moving, steady = block.split(replaced, plan.parts)
            total += original.derived(
                ("dot", id(block), moving),
                (),
                lambda block=block, steady=steady: block.block_sum(steady, _Numbers(plan, original)),
            )
            if moving:
                total += block.sum(moving, numbers)
            continue
        for name, known, offset, ordinal in block:
            codes = rows.codes(name, known)
            total += codes * linear.weights[offset] if ordinal else linear.weights[offset + codes]
    return total


@dataclass(frozen=True)
class _Linear:
    """One linear model's weights laid over a plan's matrix, in the matrix's column order: the
    scaler folded in (``weights``, ``constant``); per group, a numeric block's :class:`_Terms`,
    or each categorical column's (name, kept categories, offset of its weights, ordinal)."""

    weights: np.ndarray
    constant: float
    blocks: tuple[_Terms | tuple[tuple[str, dict[str, int], int, bool], ...], ...]


def _linear(plan: _Plan, weights: np.ndarray) -> _Linear:
    """:class:`_Linear` of ``weights`` over ``plan``, built once per model."""
    weights = np.asarray(weights, dtype=np.float64)
    key = weights.tobytes()
    found = plan.linear.get(key)
    if found is not None:
        return found
    if len(weights) != len(plan.names):
        raise ValueError(f"{len(weights)} weights for a feature matrix of {len(plan.names)} columns")
    constant = 0.0
    if plan.scaler is not None:
        if plan.scaler.with_std:
            weights = weights / plan.scaler.scale_
        if plan.scaler.with_mean:
            constant = -float(plan.scaler.mean_ @ weights)
    blocks: list = []
    offset = 0
    for (transformer, columns), knowns in zip(plan.groups, plan.known, strict=True):
        if knowns is None:
            width = len(columns) + len(transformer.indicator_columns_)
            blocks.append(_Terms(transformer, columns, weights[offset : offset + width]))
            offset += width
            continue
        ordinal = transformer.encoding == "ordinal"
        entries = []
        for i, (name, known) in enumerate(zip(columns, knowns, strict=True)):
            entries.append((name, known, offset, ordinal))
            offset += 1 if ordinal else len(transformer.categories_[i]) + 1
        blocks.append(tuple(entries))
    if offset != len(weights):  # the groups' widths disagree with the feature names: never laid out
        raise ValueError(f"{len(weights)} weights for a feature matrix of {offset} columns")
    found = plan.linear[key] = _Linear(weights, constant, tuple(blocks))
    return found


def _check_entrance(plan: _Plan, rows: Columns) -> None:
    """The entrance check of :meth:`EntranceCheck.selected` on the plan's sets of names: missing
    columns raise (the check's own error), unused ones warn (its warning)."""
    present = set(rows.columns)
    if not plan.needed <= present:
        plan.entrance.selected(rows)
    if not present <= plan.expected:
        warn_unused(rows.columns, plan.expected, stacklevel=4)


def _on_arrays(plan: _Plan | None, rows: Columns) -> bool:
    """Whether ``rows`` can go through ``plan`` on arrays: a plan, rows, numbers where numbers
    belong (looked at once for the copies of the rows that share those columns)."""
    if plan is None or len(rows) == 0:
        return False
    return rows.derived(
        ("numbers only", id(plan)), plan.numbers_only, lambda: all(map(rows.is_numeric, plan.numbers_only))
    )


def feature_names(pipeline: Pipeline) -> pd.Index:
    """The output column names of a fitted feature pipeline (computed once per pipeline)."""
    plan = _plan(pipeline)
    return plan.names if plan is not None else pd.Index(pipeline.get_feature_names_out())


class _Terms:
    """A numeric block's part of a linear product, column by column: cleaned value (and
    missing-value indicator) times their weights."""

    def __init__(self, cleaner: NumericCleaner, columns: tuple[str, ...], weights: np.ndarray) -> None:
        self.cleaner, self.columns, self.weights = cleaner, columns, weights
        indicators = cleaner.indicator_columns_.tolist()
        self.indicator_weight = {j: weights[len(columns) + k] for k, j in enumerate(indicators)}
        self._splits: dict[frozenset[str], tuple[tuple[int, ...], list[int]]] = {}

    def split(
        self, replaced: frozenset[str], parts: dict[str, tuple[tuple[str, ...], Callable]]
    ) -> tuple[tuple[int, ...], list[int]]:
        """The positions of the columns some ``replaced`` input reaches (directly, or through the
        domain feature it feeds: ``parts``), and the others; once per set of replaced inputs."""
        found = self._splits.get(replaced)
        if found is None:
            reads = [parts[name][0] if name in parts else (name,) for name in self.columns]
            moving = tuple(j for j, inputs in enumerate(reads) if replaced.intersection(inputs))
            found = self._splits[replaced] = (
                moving,
                [j for j in range(len(self.columns)) if j not in moving],
            )
        return found

    def block_sum(self, positions: list[int], numbers: _Numbers) -> np.ndarray | float:
        """:meth:`sum` of many ``positions`` at once: the block cleaned in one pass, each row's
        terms summed along the row (the same for a row whatever the other rows)."""
        if not positions:
            return 0.0
        values = np.column_stack([numbers[name] for name in self.columns])
        width = len(self.columns)
        keep = np.zeros(len(self.weights), dtype=bool)
        keep[positions] = True
        for k, j in enumerate(self.cleaner.indicator_columns_.tolist()):
            keep[width + k] = keep[j]
        weights = np.where(keep, self.weights, 0.0)
        return (self.cleaner.transform_values(values) * weights).sum(axis=1)

    def sum(self, positions: list[int] | tuple[int, ...], numbers: _Numbers) -> np.ndarray | float:
        total: np.ndarray | float = 0.0
        for j in positions:
            cleaned, indicator = self.cleaner.transform_column(j, numbers[self.columns[j]])
            total = total + cleaned * self.weights[j]
            if indicator is not None:
                total = total + indicator * self.indicator_weight[j]
        return total


class _Numbers:
    """Columns as float64 arrays: a domain feature or ratio computed when first asked for, once
    for the copies of the rows that share its inputs; any other column as the input's."""

    def __init__(self, plan: _Plan, rows: Columns) -> None:
        self.plan, self.rows = plan, rows

    def __getitem__(self, name: str) -> np.ndarray:
        part = self.plan.parts.get(name)
        if part is None:
            return self.rows.number(name)
        inputs, compute = part
        return self.rows.derived(("domain", name, inputs), inputs, lambda: compute(self))


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
    parts = {name: (inputs, compute) for name, inputs, compute in domain.parts()}
    needed = frozenset(map(str, entrance.feature_names_in_))
    expected = needed | frozenset(entrance.ignored_at_fit_)
    known = tuple(
        None
        if isinstance(transformer, NumericCleaner)
        else tuple(map(transformer.known, range(len(columns))))
        for transformer, columns in groups
    )
    return _Plan(
        entrance,
        domain,
        tuple(groups),
        scaler,
        names,
        numeric_inputs,
        numbers_only,
        parts,
        needed,
        expected,
        known,
    )


def _names(selection: object) -> bool:
    return isinstance(selection, list | tuple) and all(isinstance(name, str) for name in selection)
