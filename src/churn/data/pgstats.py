"""Where the rows of a time range fall, from PostgreSQL's own statistics of the column.

``pg_stats`` describes a column's values without reading the table: the most common values with
the share of rows each holds, and an equi-depth histogram of the others — about as many rows
between each two of its bounds. :func:`row_median` reads them as a cumulative distribution to
find the instant that cuts a range's rows in half, so a window read as two halves at once
(:func:`churn.data.database.read_source`) gives each connection about as many rows. An estimate:
the halves still hold every row exactly once whatever instant is chosen; only their balance
depends on the statistics' accuracy.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd


def instants(text: str | None, like: pd.Timestamp) -> pd.DatetimeIndex:
    """A ``pg_stats`` array of timestamps or dates (its text form, ``{"2024-01-01 00:00:00+00",…}``)
    as sorted instants, zone-aware in UTC when ``like`` is (a naive column is read as UTC, as the
    data contract reads it)."""
    values = [v.strip('"') for v in text.strip("{}").split(",")] if text else []
    found = pd.DatetimeIndex(pd.to_datetime(values, utc=True, format="ISO8601")).sort_values()
    return found if like.tzinfo is not None else found.tz_localize(None)


def _ns(values: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(values.asi8, dtype=float)


def row_median(stats: Mapping[str, object], since: pd.Timestamp, until: pd.Timestamp) -> pd.Timestamp | None:
    """The value of the statistics (a common value or a histogram bound) inside (since, until)
    with about as many of the range's rows before it as from it on; None when the statistics
    say nothing usable (no histogram and no common values, or none inside the range).

    ``stats``: a ``pg_stats`` row — ``null_frac``, ``common`` (``most_common_vals`` as text),
    ``shares`` (``most_common_freqs``) and ``bounds`` (``histogram_bounds`` as text). The share
    of rows before an instant t is the shares of the common values before t, plus the rest of
    the rows (neither NULL nor common) spread evenly over the histogram's buckets, linearly
    within the bucket holding t."""
    try:
        common, bounds = instants(stats.get("common"), since), instants(stats.get("bounds"), since)  # type: ignore[arg-type]
        shares = np.asarray(stats.get("shares") or [], dtype=float)
        nulls = float(stats.get("null_frac") or 0.0)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return None
    if len(common) != len(shares) or (len(bounds) < 2 and not len(common)):
        return None
    rest = max(1.0 - nulls - float(shares.sum()), 0.0) if len(bounds) >= 2 else 0.0
    common_ns, bounds_ns = _ns(common), _ns(bounds)
    steps = np.linspace(0.0, 1.0, len(bounds_ns)) if len(bounds_ns) >= 2 else None

    def before(moments: pd.DatetimeIndex) -> np.ndarray:
        at = _ns(moments)
        share = (common_ns[None, :] < at[:, None]).astype(float) @ shares
        return share + (rest * np.interp(at, bounds_ns, steps) if steps is not None else 0.0)

    candidates = common.union(bounds)
    candidates = candidates[(candidates > since) & (candidates < until)]
    if not len(candidates):
        return None
    low, high = before(pd.DatetimeIndex([since, until]))
    return candidates[int(np.argmin(np.abs(before(candidates) - (low + high) / 2)))]
