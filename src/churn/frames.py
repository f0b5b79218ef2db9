"""Small array helpers shared by the pipeline stages."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd


@functools.lru_cache(maxsize=256)
def category_dtype(categories: tuple[str, ...]) -> pd.CategoricalDtype:
    """The categorical type of a fixed category list, made once (checking the categories is a
    fixed cost that would otherwise be paid per column per request)."""
    return pd.CategoricalDtype(list(categories))


def codes_for(values: pd.Series | np.ndarray, categories: pd.Index | list[str]) -> np.ndarray:
    """Position of each value in ``categories`` (−1 where absent or missing), without
    building per-row strings when ``values`` is already categorical."""
    index = pd.Index(categories)
    if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):
        mapping = np.append(index.get_indexer(values.cat.categories.astype("str")), -1)
        return mapping[values.cat.codes.to_numpy()]  # code −1 (missing) picks the appended −1
    return index.get_indexer(pd.Index(values).astype("str"))


def text_counts(values: pd.Series) -> pd.Series:
    """How often each distinct value occurs, indexed by the value as text, most frequent first
    (ties by text); missing values are left out. A categorical is counted from its codes,
    without building a string per row."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        counts = pd.Series(np.bincount(codes[codes >= 0], minlength=len(values.cat.categories)), index=values.cat.categories.astype("str"))
        counts = counts[counts > 0].groupby(level=0).sum()  # two categories may read the same as text
    else:
        counts = values.dropna().astype("str").value_counts()
    order = np.lexsort((counts.index.to_numpy(dtype=str), -counts.to_numpy()))
    return counts.iloc[order].rename("count").rename_axis(None)


def text_values(values: pd.Series) -> list[str]:
    """The distinct non-missing values as text (a categorical: the categories that occur)."""
    return list(text_counts(values).index)
