"""The reference profile: distribution summaries of the training data, stored with the model.

Made at training time (:func:`reference_profile`) and read by monitoring, which measures the
drift of each weekly run's features and scores against it. It holds summaries only — bin
edges, shares, percentiles — never rows."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from churn.data.frames import codes_for, to_json_safe

#: Percentiles kept per numeric feature: the grid of the KS statistic.
GRID_QUANTILES = np.arange(1, 100) / 100


#: 2: the score distribution is the deployed model's (out of fold, calibrated), named in
#: ``score["source"]``; 1: the evaluation fold model's scores on its test rows.
REFERENCE_VERSION = 2


def numeric_values(values: pd.Series | np.ndarray) -> np.ndarray:
    """Floats; infinities count as missing (they have no place on a percentile grid)."""
    if isinstance(values, np.ndarray) and values.dtype == np.float64:
        v = values
    else:
        v = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return v if np.isfinite(v).all() else np.where(np.isfinite(v), v, np.nan)


def numeric_profile(values: pd.Series | np.ndarray, bins: int) -> dict[str, object]:
    v = numeric_values(values)
    finite = v[~np.isnan(v)]
    n = len(v)
    if len(finite) == 0:
        return {"kind": "numeric", "n": n, "missing": 1.0 if n else 0.0, "edges": [], "shares": [0.0], "grid": [], "cdf": [], "quantiles": {}, "mean": None, "spread": 0.0}
    grid_all = np.quantile(finite, GRID_QUANTILES, method="inverted_cdf")  # actual data values
    step = max(1, round(100 / bins))
    edges = np.unique(grid_all[step - 1 :: step][: bins - 1])  # a subset of the grid, by construction
    grid = np.unique(grid_all)
    n_missing = n - len(finite)
    below = counts_at_or_below(grid, finite)
    at_edges = below[np.searchsorted(grid, edges)]
    shares = np.diff(np.r_[0, at_edges, len(finite)]) / n
    quantiles = np.quantile(finite, [0.05, 0.25, 0.5, 0.75, 0.95])
    return {
        "kind": "numeric",
        "n": n,
        "missing": n_missing / n,
        "edges": edges.tolist(),
        "shares": shares.tolist(),
        "grid": grid.tolist(),
        "cdf": ((n_missing + below) / n).tolist(),
        "quantiles": dict(zip(("p05", "p25", "p50", "p75", "p95"), quantiles.tolist())),
        "mean": float(finite.mean()),
        # spread of the values between the 1st and 99th percentile: the unit of the shift
        "spread": float(np.clip(finite, grid[0], grid[-1]).std()),
    }


def counts_at_or_below(grid: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """#values ≤ each grid point, in one pass (searchsorted + bincount, no sort of the data)."""
    idx = np.searchsorted(grid, finite, side="left")  # grid[idx-1] < x <= grid[idx]
    return np.cumsum(np.bincount(idx, minlength=len(grid) + 1))[: len(grid)]


def category_codes(values: pd.Series, categories: Sequence[str]) -> np.ndarray:
    """Codes into ``categories``; −1 for missing or unknown values (as the features code them).
    Text is factorised first, so each distinct value is looked up once, not each row."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return codes_for(values, list(categories)).astype(np.int64)
    codes, uniques = pd.factorize(values)
    lookup = np.append(codes_for(pd.Series(uniques), list(categories)), -1)
    return lookup[codes].astype(np.int64)  # code −1 (missing) picks the appended −1


def categorical_profile(values: pd.Series) -> dict[str, object]:
    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = [str(c) for c in values.cat.categories]
    else:
        categories = sorted(values.dropna().astype("str").unique())
    codes = category_codes(values, categories)
    n = len(values)
    counts = np.bincount(codes + 1, minlength=len(categories) + 1)
    return {
        "kind": "categorical",
        "n": n,
        "categories": categories,
        "shares": (counts[1:] / max(n, 1)).tolist(),
        "missing": float(counts[0] / max(n, 1)),
    }


def reference_profile(
    table: pd.DataFrame,
    columns: list[str],
    categorical: list[str],
    probabilities: np.ndarray | None = None,
    *,
    bins: int = 10,
    thresholds: tuple[float, float] = (0.10, 0.25),
    score_source: str | None = None,
) -> dict[str, object]:
    """Distribution summaries of the training data that drift is measured against.

    Stored with the model (``model.metadata["monitoring_reference"]``), so it holds only
    summaries, never rows: per numeric feature the decile bin edges and the share of rows
    in each bin, the missing rate, the percentiles 1–99 with the cumulative share at each
    (for the KS statistic) and a few quantiles; per categorical feature the share of each
    category and of missing values; the score distribution and the share per risk band.

    Parameters
    ----------
    table : rows like those a scoring run sees (one per account, at one cutoff).
    columns : the model's feature columns; ``categorical`` names those that are categories.
    probabilities : calibrated probabilities of the same rows, for prediction drift. They must
        be the deployed model's scores as they will look on new accounts — not another model's,
        and not in-sample (:func:`churn.modeling.train.monitoring_reference`).
    bins : number of quantile bins for PSI (fewer where values repeat).
    thresholds : the (medium, high) risk-band thresholds the band shares use.
    score_source : how ``probabilities`` were made, kept as ``score["source"]``.

    Returns
    -------
    dict — JSON-serialisable: ``{"version", "n", "features": {name: {...}}, "score": {...}}``.

    Examples
    --------
    >>> frame = pd.DataFrame({"waits": [1.0, 2.0, 2.0, None], "plan": pd.Categorical(["a", "b", "a", "a"])})
    >>> ref = reference_profile(frame, ["waits", "plan"], ["plan"], bins=2)
    >>> ref["n"], ref["features"]["waits"]["missing"], ref["features"]["plan"]["shares"]
    (4, 0.25, [0.75, 0.25])
    """
    cat = set(categorical)
    features = {c: categorical_profile(table[c]) if c in cat else numeric_profile(table[c], bins) for c in columns}
    profile: dict[str, object] = {"version": REFERENCE_VERSION, "n": len(table), "bins": bins, "features": features}
    if probabilities is not None:
        p = np.asarray(probabilities, dtype=float)
        score = numeric_profile(p, bins)
        medium, high = thresholds
        score["bands"] = {
            "thresholds": [medium, high],
            "shares": {"low": float(np.mean(p < medium)), "medium": float(np.mean((p >= medium) & (p < high))), "high": float(np.mean(p >= high))},
        }
        if score_source:
            score["source"] = score_source
        profile["score"] = score
    return to_json_safe(profile)  # type: ignore[no-any-return]
