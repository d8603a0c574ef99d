"""Safe model files: skops serialization with an explicit, reviewed list of trusted types.

Nothing here unpickles. :func:`load_pipeline` trusts exactly :data:`TRUSTED_TYPES` (plus
the scikit-learn and numpy types skops trusts by default), never a list read from the
file being loaded, so a crafted file cannot widen what it is allowed to construct.
"""

from __future__ import annotations

import os
from pathlib import Path

import skops.io as sio

#: Reviewed types beyond skops' defaults. Each entry is a class or function that our fitted
#: pipelines contain; adding one needs a review that constructing it from a file is safe.
TRUSTED_TYPES: tuple[str, ...] = (
    # our own transformers: plain estimators whose state is numpy arrays, lists and strings
    "crm_modes.features.categorical.CategoryEncoder",
    "crm_modes.features.domain.DomainFeatures",
    "crm_modes.features.entrance.EntranceCheck",
    "crm_modes.features.numeric.NumericCleaner",
    # scikit-learn internals of calibrated classifiers and histogram gradient boosting
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    # ColumnTransformer keeps functools.partial(check_array, ...) for its input check;
    # skops checks the wrapped function separately, so trusting partial does not widen it.
    "functools.partial",
    "sklearn.utils.validation.check_array",
)


class UntrustedModelError(ValueError):
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
    return sio.loads(data, trusted=list(TRUSTED_TYPES))
