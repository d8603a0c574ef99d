"""What a model-ready feature matrix looks like, by flavor."""

import numpy as np
import pandas as pd


def assert_model_ready(matrix: pd.DataFrame, flavor: str) -> None:
    """Linear models get finite numbers only (missing values imputed); boosted trees get missing
    numbers as NaN, which they route natively, but never infinities, and never a missing code."""
    values = matrix.to_numpy(dtype=np.float64)
    if flavor == "linear":
        assert np.isfinite(values).all()
        return
    assert not np.isinf(values).any()
    missing = [name for name in matrix.columns if matrix[name].isna().any()]
    codes = [name for name in missing if "=" in name]  # ordinal codes never miss: missing is a category
    assert codes == []
