"""Small array helpers shared by the pipeline stages."""

from __future__ import annotations

import numpy as np
import pandas as pd


def codes_for(values: pd.Series | np.ndarray, categories: pd.Index | list[str]) -> np.ndarray:
    """Position of each value in ``categories`` (−1 where absent or missing), without
    building per-row strings when ``values`` is already categorical."""
    index = pd.Index(categories)
    if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):
        mapping = np.append(index.get_indexer(values.cat.categories.astype("str")), -1)
        return mapping[values.cat.codes.to_numpy()]  # code −1 (missing) picks the appended −1
    return index.get_indexer(pd.Index(values).astype("str"))
