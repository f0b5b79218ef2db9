"""Small array helpers shared by the pipeline stages (and the data contract's duplicate-row search)."""

from __future__ import annotations

import functools
import itertools
from typing import Any, Mapping, Sequence

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
    dtype = getattr(values, "dtype", None)
    if isinstance(dtype, pd.StringDtype) and len(values) <= SMALL_ROWS:
        return _small_codes(values, categories)
    index = pd.Index(categories)
    if isinstance(dtype, pd.CategoricalDtype):
        mapping = np.append(index.get_indexer(values.cat.categories.astype("str")), -1)
        return mapping[values.cat.codes.to_numpy()]  # code −1 (missing) picks the appended −1
    return index.get_indexer(pd.Index(values).astype("str"))


#: Up to this many values, text is coded by a dict lookup per value: building pandas indexes
#: is a fixed cost that dominates a request of a few accounts (a few of these per column).
SMALL_ROWS = 4096


def _small_codes(values: pd.Series | np.ndarray, categories: pd.Index | list[str]) -> np.ndarray:
    """:func:`codes_for` of text values (a pandas ``str`` column) by dict lookup: the same
    codes — exact text equality, missing → −1, a repeated category is an error as in pandas."""
    labels = list(categories)
    lookup = {label: i for i, label in enumerate(labels) if isinstance(label, str)}
    if len(lookup) != len(labels):  # a repeated or non-text category: pandas decides (or refuses)
        return pd.Index(categories).get_indexer(pd.Index(values).astype("str"))
    items = values.tolist()  # text, or a missing marker that no text category equals
    return np.fromiter(map(lookup.get, items, itertools.repeat(-1, len(items))), dtype=np.intp, count=len(items))


def text_counts(values: pd.Series, rows: np.ndarray | None = None) -> pd.Series:
    """How often each distinct value occurs, indexed by the value as text, most frequent first
    (ties by text); missing values are left out. ``rows``: a boolean mask of the rows to count
    (None: all). A categorical is counted from its codes, without building a string per row
    (nor a selected copy of the column with its index)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        codes = codes if rows is None else codes[rows]
        counts = pd.Series(np.bincount(codes[codes >= 0], minlength=len(values.cat.categories)), index=values.cat.categories.astype("str"))
        counts = counts[counts > 0].groupby(level=0).sum()  # two categories may read the same as text
    else:
        counts = (values if rows is None else values[rows]).dropna().astype("str").value_counts()
    order = np.lexsort((counts.index.to_numpy(dtype=str), -counts.to_numpy()))
    return counts.iloc[order].rename("count").rename_axis(None)


def text_values(values: pd.Series, rows: np.ndarray | None = None) -> list[str]:
    """The distinct non-missing values as text (a categorical: the categories that occur), at ``rows``."""
    return list(text_counts(values, rows).index)


def earliest(values: pd.Series, rows: np.ndarray | None = None) -> object:
    """The earliest non-missing value at ``rows`` (a boolean mask; None: all) — ``min()`` of the
    selected rows, read from the int64 nanoseconds of a UTC timestamp column without selecting
    a copy of the column and its index first (nor of the selected stamps: a masked minimum)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype) and values.dtype.unit == "ns" and str(values.dtype.tz) == "UTC":
        stamps = values.array.asi8
        counted = stamps != np.iinfo(np.int64).min  # NaT
        if rows is not None:
            counted &= rows
        if not counted.any():
            return pd.NaT
        return pd.Timestamp(int(np.min(stamps, where=counted, initial=np.iinfo(np.int64).max)), unit="ns", tz="UTC")
    return (values if rows is None else values[rows]).min()


def repeated(keys: np.ndarray) -> np.ndarray:
    """True where a value occurs more than once (a sort, cheaper than a hash table on 10M rows)."""
    ordered = np.sort(keys)
    twice = ordered[1:][ordered[1:] == ordered[:-1]]
    return np.isin(keys, np.unique(twice)) if len(twice) else np.zeros(len(keys), dtype=bool)


def repeated_in_runs(stamps: np.ndarray, keys: np.ndarray, longest: int = 16) -> np.ndarray:
    """:func:`repeated` of the (stamp, key) pairs of rows sorted by stamp. Equal pairs lie in
    one run of equal stamps, so when the runs are short (stamps to the second: a handful of
    rows) each row is compared with the next rows of its run, lag by lag — no sort of a
    million keys; longer runs (dates without a time) are sorted."""
    starts = np.flatnonzero(np.r_[True, stamps[1:] != stamps[:-1]])
    run = int(np.diff(np.r_[starts, len(stamps)]).max())
    if run > longest:
        return repeated((keys * np.uint64(0x100000001B3)) ^ stamps.view(np.uint64))  # the mix of the key and the stamp
    out = np.zeros(len(keys), dtype=bool)
    for lag in range(1, run):
        pair = (stamps[lag:] == stamps[:-lag]) & (keys[lag:] == keys[:-lag])
        out[lag:] |= pair
        out[:-lag] |= pair
    return out


def _column_key(values: pd.Series, rows: np.ndarray | None = None) -> np.ndarray:
    """A uint64 per row (at ``rows``, or all), equal for equal values (and for two missing values)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()  # categories are unique: codes identify values
        return (codes if rows is None else codes[rows]).astype(np.uint64)
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values.dtype):
        stamps = values.array.asi8.view(np.uint64)
        return stamps if rows is None else stamps[rows]
    return pd.util.hash_pandas_object(values if rows is None else values.iloc[rows], index=False, categorize=False).to_numpy()


def duplicated_rows(df: pd.DataFrame, key: Sequence[str] = ("account_id", "occurred_at")) -> np.ndarray:
    """Exact duplicates after the first, without comparing every row with every other.

    Two equal rows share their ``key`` values. In a time-ordered event log, rows sharing a
    timestamp are neighbours; otherwise every row is a candidate. Candidates whose key
    hash (account and time) repeats are then compared on every column, so a hash collision
    can never reject a row."""
    n = len(df)
    out = np.zeros(n, dtype=bool)
    if n < 2:
        return out
    candidates = np.ones(n, dtype=bool)
    t = None  # the stamps, when the log is in time order (then they are compared run by run)
    if "occurred_at" in key:
        stamps = _column_key(df["occurred_at"]).view(np.int64)
        if bool(np.all(stamps[1:] >= stamps[:-1])):
            t = stamps
            same = t[1:] == t[:-1]
            candidates = np.r_[same, False] | np.r_[False, same]
    rows = np.flatnonzero(candidates)
    if not len(rows):
        return out
    mixed = np.zeros(len(rows), dtype=np.uint64)
    for c in key if t is None else [c for c in key if c != "occurred_at"]:
        mixed = (mixed * np.uint64(0x100000001B3)) ^ _column_key(df[c], rows)  # FNV-style mix; wraps around
    rows = rows[repeated(mixed) if t is None else repeated_in_runs(t[rows], mixed)]
    if len(rows):
        out[rows] = df.iloc[rows].duplicated(keep="first").to_numpy()
    return out


def json_float(x: object) -> float | None:
    """A JSON-safe float: NaN and infinities become None."""
    value = float(x)  # type: ignore[arg-type]
    return value if np.isfinite(value) else None


def to_json_safe(obj: Any) -> Any:
    """Plain Python containers and scalars; NaN → None, timestamps → ISO text."""
    if isinstance(obj, Mapping):
        return {str(k): to_json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [to_json_safe(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return json_float(obj)
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    if obj is None or obj is pd.NA or obj is pd.NaT:
        return None
    return obj


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return to_json_safe(frame.to_dict(orient="records"))  # type: ignore[no-any-return]


def assemble_frame(columns: Mapping[str, object], index: pd.Index) -> pd.DataFrame:
    """One DataFrame of ``columns`` in their order: every column's slot in one 2-D float block
    (the layout pandas would consolidate the float columns into), the float columns written
    straight in and the few others set in their slots. A DataFrame built from a dict of a
    hundred columns checks and copies each one, and inserting columns rebuilds the column
    index each time: fixed costs that dominated scoring one account (a feature table, a
    model's prepared rows)."""
    names = list(columns)
    block = np.full((len(names), len(index)), np.nan)  # column-major, as pandas keeps a block
    others = []
    for j, name in enumerate(names):
        value = columns[name]
        if isinstance(value, np.ndarray) and value.dtype == np.float64:
            block[j] = value
        else:
            others.append(j)
    frame = pd.DataFrame(block.T, columns=names, index=index, copy=False)
    for j in others:
        frame.isetitem(j, columns[names[j]])
    return frame
