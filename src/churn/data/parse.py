"""Parsing the cells of an export: timestamps, ids, flags and numbers written as text.

Each parser returns the parsed values and a mask of the cells it could not read, so the
contract can reject those rows with a reason instead of failing or guessing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn.config import UNIX_TIME_UNITS

_TRUE = {"true", "t", "yes", "y", "1", "1.0"}


_FALSE = {"false", "f", "no", "n", "0", "0.0"}


_INTEGRAL_TEXT = r"^([+-]?\d+)\.0*$"


def parse_timestamps(values: pd.Series, date_format: str | None = None) -> pd.Series:
    """To ``datetime64[ns, UTC]``: offsets converted, naive values taken as UTC; bad → NaT.

    Text is read as ISO 8601 (``2024-04-13``, ``2024-04-13T10:00:00+02:00``), and also in the
    layout of an explicit strftime ``date_format``. Nothing else is guessed: ``03/04/2024`` is
    3 April in one country and 4 March in another, so without a format it is a reject, not a
    coin toss.
    """
    return timestamps_in_range(values, date_format)[0]


#: The years a ``datetime64[ns]`` column can hold; a "9999-12-31" meaning "never" is outside.
TIMESTAMP_RANGE = (pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC"))


OUT_OF_RANGE = "is outside the years 1678–2261"


def timestamps_in_range(values: pd.Series, date_format: str | None = None) -> tuple[pd.Series, np.ndarray]:
    """:func:`parse_timestamps`, and where a value was read but lies outside the years pandas
    can hold (then NaT; −1 before them, +1 after, 0 inside): such a row gets a reason, not a
    crash."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        out = values.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(values.dtype):
        out = values.dt.tz_localize("UTC")
    elif date_format in UNIX_TIME_UNITS:  # only for numbers and text: a column already of dates stays as it is
        out = _unix_times(values, UNIX_TIME_UNITS[date_format])
    else:
        text = values if isinstance(values.dtype, pd.StringDtype) else values.astype("str").where(values.notna())
        text = text.str.strip()
        out = pd.to_datetime(text, utc=True, errors="coerce", format=date_format or "ISO8601")
        if date_format:  # ISO 8601 is unambiguous, so it is read too: exports often mix the two per table
            retry = (out.isna() & text.notna()).to_numpy(dtype=bool)
            if retry.any():
                out = out.copy()
                out[retry] = pd.to_datetime(text[retry], utc=True, errors="coerce", format="ISO8601")
    before = (out < TIMESTAMP_RANGE[0]).to_numpy(dtype=bool, na_value=False)
    after = (out > TIMESTAMP_RANGE[1]).to_numpy(dtype=bool, na_value=False)
    if before.any() or after.any():
        out = out.where(~(before | after))
    return out.astype("datetime64[ns, UTC]"), after.astype(np.int8) - before.astype(np.int8)


def _unix_times(values: pd.Series, unit: str) -> pd.Series:
    """Integer (or integral text) seconds / milliseconds since 1970-01-01 UTC; anything else NaT.
    Read as whole numbers: a float column of milliseconds loses nothing below 2**53."""
    numbers = pd.to_numeric(values.astype("str").str.strip().where(values.notna()) if not pd.api.types.is_numeric_dtype(values.dtype) else values, errors="coerce")
    numbers = numbers.astype("float64")
    whole = numbers.notna() & np.isfinite(numbers) & (numbers == np.floor(numbers)) & (numbers.abs() < 2**62)
    stamps = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    if whole.any():
        stamps[whole] = pd.to_datetime(numbers[whole].astype("int64"), unit=unit, utc=True, errors="coerce")
    return stamps


def all_integers(values: pd.Series) -> bool:
    """Whether every present value of a column is a whole number (``1696118400`` or
    ``"1696118400000"``): a timestamp column like that holds Unix times, not dates."""
    present = values.dropna()
    if present.empty or pd.api.types.is_bool_dtype(present.dtype):
        return False
    if pd.api.types.is_integer_dtype(present.dtype):
        return True
    if pd.api.types.is_float_dtype(present.dtype):
        return bool(np.all(np.isfinite(present) & (present == np.floor(present))))
    if isinstance(present.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(present.dtype):
        return False
    return bool(present.astype("str").str.fullmatch(r"\s*[+-]?\d+\s*").all())


def timestamp_reason(column: str, date_format: str | None, *, integers: bool = False) -> str:
    if integers and date_format not in UNIX_TIME_UNITS:
        return f"unparseable timestamp in {column} (an integer: Unix time? give --date-format unix_s or unix_ms)"
    if date_format:
        return f"unparseable timestamp in {column} (neither date format {date_format} nor ISO 8601)"
    return f"unparseable timestamp in {column} (not ISO 8601; give --date-format for another layout)"


def normalise_ids(values: pd.Series) -> pd.Series:
    """Account ids in one text form, so that ``1``, ``1.0`` and ``"1"`` are one account.

    The rule: surrounding white space is dropped; a number, or text that is a whole number
    written with a decimal point (``"1.0"``, ``"42."``), becomes its digits (``"1"``, ``"42"``);
    everything else is kept as written — ``"007"`` stays ``"007"`` (a CRM's leading zeros are part
    of the id) and ``"1.5"`` stays ``"1.5"``. Missing stays missing. Categoricals are normalised
    once per category, which keeps 10M-row event tables cheap.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        original = values.cat.categories
        cats = normalise_ids(pd.Series(original, dtype=original.dtype))
        if pd.api.types.is_string_dtype(original.dtype) and cats.notna().all() and bool((cats.to_numpy() == original.to_numpy()).all()):
            return values  # already in normal form (the usual case): no new codes
        uniques, mapping = np.unique(cats.fillna("").to_numpy(dtype=object).astype(str), return_inverse=True)
        codes = values.cat.codes.to_numpy()
        new_codes = np.where(codes >= 0, np.append(mapping, -1)[codes], -1)
        return pd.Series(pd.Categorical.from_codes(new_codes, categories=pd.Index(uniques, dtype="str")), index=values.index)
    if pd.api.types.is_float_dtype(values.dtype):
        v = values.to_numpy(dtype=float)
        whole = np.isfinite(v) & (np.floor(v) == v) & (np.abs(v) < 2**53)
        text = values.astype("str").where(values.notna())
        if whole.any():
            text[whole] = pd.Series(v[whole].astype(np.int64), index=values.index[whole]).astype("str")
        return text.astype("str").where(values.notna())
    if pd.api.types.is_integer_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("str").where(values.notna())
    text = values.astype("str").where(values.notna()).str.strip()
    has_point = text.str.contains(".", regex=False).fillna(False)
    if has_point.any():
        text[has_point] = text[has_point].str.replace(_INTEGRAL_TEXT, r"\1", regex=True).str.lstrip("+")
    return text


def parse_flags(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("boolean"), np.zeros(len(values), dtype=bool)
    text = values.astype("str").str.strip().str.lower().where(values.notna())
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[text.isin(_TRUE)] = True
    out[text.isin(_FALSE)] = False
    bad = (text.notna() & out.isna()).to_numpy()
    return out, bad


def looks_numeric(value: object) -> bool:
    """Whether one value reads as a number (or is blank, which says nothing)."""
    text = str(value).strip()
    if not text:
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def numbers_if_all_numeric(values: pd.Series) -> pd.Series:
    """A text attribute column whose every value is a number (``"283.4"``, ``"12"``) becomes
    float — a CSV export has no types, and "total day minutes" is a number, not 1,800 categories.
    Anything else is left as it is."""
    if not (pd.api.types.is_string_dtype(values.dtype) or values.dtype == object) or isinstance(values.dtype, pd.CategoricalDtype):
        return values
    first = values.first_valid_index()
    if first is not None and not looks_numeric(values.at[first]):
        return values  # the usual text attribute (a plan, a region): decided by its first value
    head = values.dropna().head(64).astype("str").str.strip()
    head = head[head != ""]
    if len(head) and pd.to_numeric(head, errors="coerce").isna().any():
        return values  # text seen in the first values: no need to parse the whole column
    present = values.notna() & (values.astype("str").str.strip() != "")
    if not present.any():
        return values
    parsed = pd.to_numeric(values.where(present), errors="coerce")
    return parsed.astype(float) if parsed[present].notna().all() else values
