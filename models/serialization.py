"""Safe model files: skops serialization with an explicit, reviewed list of trusted types.

Nothing here unpickles. :func:`load_pipeline` trusts exactly :data:`TRUSTED_TYPES` (plus
the scikit-learn and numpy types skops trusts by default), never a list read from the
file being loaded, so a crafted file cannot widen what it is allowed to construct. What it
does construct is checked too: scikit-learn walks boosting trees by the indices stored in
the file, without bounds checks, so every index must stay inside its tree.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingClassifier

from crm_modes.models.lightgbm_model import LightGBMClassifier, text_problems
from crm_modes.models.sklearn_adapter import hist_gradient_boosting_problems
from crm_modes.shared.errors import InputError

T = TypeVar("T")

#: Reviewed types beyond skops' defaults. Each entry is a class or function that our fitted
#: pipelines contain; adding one needs a review that constructing it from a file is safe.
TRUSTED_TYPES: tuple[str, ...] = (
    # our own transformers: plain estimators whose state is numpy arrays, lists and strings
    "crm_modes.features.categorical.CategoryEncoder",
    "crm_modes.features.domain.DomainFeatures",
    "crm_modes.features.entrance.EntranceCheck",
    "crm_modes.features.numeric.NumericCleaner",
    # LightGBM behind our own estimator: its state is LightGBM's text model (a string), parsed by
    # LightGBM only after text_problems has checked it against the estimator (below)
    "crm_modes.models.lightgbm_model.LightGBMClassifier",
    # a fitted classifier (itself checked as any other) with per-class isotonic steps: numpy arrays
    "crm_modes.models.class_calibration.IsotonicPerClass",
    # scikit-learn internals of calibrated classifiers and histogram gradient boosting
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    # ColumnTransformer keeps functools.partial(check_array, ...) for its input check;
    # skops checks the wrapped function separately, so trusting partial does not widen it.
    "functools.partial",
    "sklearn.utils.validation.check_array",
)


class UntrustedModelError(InputError):
    """A model file contains types outside the reviewed list; it is not loaded."""


def save_pipeline(model: object, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` with skops; refuse if it contains a type we would not load back."""
    data = sio.dumps(model)
    untrusted = sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))
    if untrusted:
        raise UntrustedModelError(f"model contains types outside the reviewed list: {untrusted}")
    path = Path(path)
    path.write_bytes(data)
    return path


def load_pipeline(path: str | os.PathLike[str]) -> object:
    """Load a skops file trusting only :data:`TRUSTED_TYPES`; raise naming anything else."""
    data = Path(path).read_bytes()
    untrusted = sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))
    if untrusted:
        raise UntrustedModelError(f"{path}: refusing to load types outside the reviewed list: {untrusted}")
    model = sio.loads(data, trusted=list(TRUSTED_TYPES))
    problem = next(_tree_problems(model), None)
    if problem is not None:
        raise UntrustedModelError(f"{path}: refusing a malformed model: {problem}")
    return model


def _tree_problems(model: object) -> Iterator[str]:
    """Problems in the boosting trees of ``model`` that prediction would not survive.

    scikit-learn walks the trees by the node indices stored in the file, without bounds
    checks. A crafted file with an index out of range could read outside the arrays; one
    with a cycle would never finish. Every split must point forward to nodes inside its
    tree and at features and category bitsets that exist.
    """
    # An unfitted template (a cross-fitted calibrator keeps one beside its fitted copies) holds no
    # trees and can never predict: there is nothing in it to check.
    for estimator in _reachable(model, LightGBMClassifier):
        if _fitted(estimator):
            problem = text_problems(estimator.model_text_, estimator.n_features_in_, len(estimator.classes_))
            if problem is not None:
                yield f"LightGBM model: {problem}"
    for estimator in _reachable(model, HistGradientBoostingClassifier):
        if _fitted(estimator):
            yield from hist_gradient_boosting_problems(estimator)


def _fitted(estimator: object) -> bool:
    """Whether ``estimator`` learnt anything (scikit-learn's mark: an attribute ending in ``_``)."""
    return any(name.endswith("_") and not name.startswith("__") for name in vars(estimator))


def _reachable(root: object, kind: type[T]) -> Iterator[T]:
    """Every object of type ``kind`` reachable from ``root`` through attributes and containers."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, str | bytes | np.ndarray | int | float):
            continue
        seen.add(id(item))
        if isinstance(item, kind):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif hasattr(item, "__dict__") and type(item).__module__.startswith(("sklearn", "crm_modes")):
            stack.extend(vars(item).values())
