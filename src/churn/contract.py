"""The input data contract as code.

A data folder holds ``accounts`` and ``interactions`` (and optionally ``attribute_history``)
as Parquet or CSV. Loading it:

1. finds and reads the files (only the columns asked for, only the time range asked for);
2. refuses data that cannot be used at all with a :class:`DataContractError` whose message
   names the file and column (missing required column, no accounts, unreadable file);
3. normalises account ids to one text form (:func:`normalise_ids`), parses timestamps to UTC
   (ISO 8601, or an explicit ``date_format`` — a day/month order is never guessed), numbers and
   flags, then checks every row against pandera schemas; rows that fail go to a *rejects*
   table with a ``reject_reason``;
4. reports per table: rows read, accepted, rejected by reason with examples.

``accepted + rejected == read`` always holds: nothing is dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from churn.config import SURVEY_RANGES, DataSettings
from churn.frames import codes_for
from churn.io import write_table

if TYPE_CHECKING:  # pragma: no cover
    import pandera.pandas as pandera
    import pyarrow

TABLES = ("accounts", "interactions", "attribute_history")
REQUIRED = {
    "accounts": ("account_id", "signup_at"),
    "interactions": ("account_id", "occurred_at", "event_type"),
    "attribute_history": ("account_id", "valid_from"),
}
TIMESTAMPS = {"accounts": ("signup_at", "churned_at"), "interactions": ("occurred_at",), "attribute_history": ("valid_from",)}
NUMBERS = {
    "accounts": ("mrr",),
    "interactions": ("wait_seconds", "handle_seconds", "ces", "csat", "nps", "amount"),
    "attribute_history": ("mrr",),
}
FLAGS = {"accounts": (), "interactions": ("resolved", "transferred"), "attribute_history": ()}
TEXT = {"accounts": (), "interactions": ("event_type", "channel", "case_id"), "attribute_history": ()}
#: Interaction text columns with few distinct values: read as categoricals.
CATEGORICAL = ("account_id", "event_type", "channel")
OPTIONAL_INTERACTION_COLUMNS = ("channel", "case_id", "wait_seconds", "handle_seconds", "resolved", "transferred", "ces", "csat", "nps", "amount")
#: A timestamp this far past the wall clock is a typo or a test row, not the future.
FUTURE_SLACK = pd.Timedelta(days=1)

_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}
_INTEGRAL_TEXT = r"^([+-]?\d+)\.0*$"

class DataContractError(Exception):
    """The data cannot be used at all. The message is meant for the user, as is; ``rejects``
    holds the rows rejected so far (per table), so they can still be written with reasons."""

    def __init__(self, message: str, rejects: dict[str, pd.DataFrame] | None = None) -> None:
        super().__init__(message)
        self.rejects = rejects or {}


def _non_empty(s: pd.Series) -> pd.Series:
    """True where a text value is not blank (checked once per category for categoricals)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        ok = np.append(s.cat.categories.astype("str").str.strip().str.len().to_numpy() > 0, True)
        return pd.Series(ok[s.cat.codes.to_numpy()], index=s.index)
    return s.astype("str").str.strip().str.len() > 0


@cache
def schemas() -> dict[str, "pandera.DataFrameSchema"]:
    """The pandera schema of each table: what a parsed row must satisfy.

    Built on first use: importing pandera costs more than checking a clean 10M-row table,
    so clean, already-typed data is screened with :data:`SCREEN` and pandera runs only on the
    rows the screen flags (:func:`_schema_failures`)."""
    import pandera.pandas as pa

    accounts = pa.DataFrameSchema(
        {
            "account_id": pa.Column(nullable=False, checks=pa.Check(_non_empty, name="non_empty")),
            "signup_at": pa.Column("datetime64[ns, UTC]", nullable=False),
            "churned_at": pa.Column("datetime64[ns, UTC]", nullable=True, required=False),
            "mrr": pa.Column(float, pa.Check.ge(0), nullable=True, required=False),
        },
        strict=False,
    )
    interactions = pa.DataFrameSchema(
        {
            "account_id": pa.Column(nullable=False, checks=pa.Check(_non_empty, name="non_empty")),
            "occurred_at": pa.Column("datetime64[ns, UTC]", nullable=False),
            "event_type": pa.Column(nullable=False, checks=pa.Check(_non_empty, name="non_empty")),
            "wait_seconds": pa.Column(float, pa.Check.ge(0), nullable=True, required=False),
            "handle_seconds": pa.Column(float, pa.Check.ge(0), nullable=True, required=False),
            **{
                name: pa.Column(float, pa.Check.in_range(lo, hi), nullable=True, required=False)
                for name, (lo, hi) in SURVEY_RANGES.items()
            },
            "amount": pa.Column(float, nullable=True, required=False),
        },
        strict=False,
    )
    history = pa.DataFrameSchema(
        {
            "account_id": pa.Column(nullable=False, checks=pa.Check(_non_empty, name="non_empty")),
            "valid_from": pa.Column("datetime64[ns, UTC]", nullable=False),
            "mrr": pa.Column(float, pa.Check.ge(0), nullable=True, required=False),
        },
        strict=False,
    )
    return {"accounts": accounts, "interactions": interactions, "attribute_history": history}


_SCHEMA_NAMES = {"ACCOUNTS_SCHEMA": "accounts", "INTERACTIONS_SCHEMA": "interactions", "HISTORY_SCHEMA": "attribute_history"}


def __getattr__(name: str) -> object:
    """``ACCOUNTS_SCHEMA``, ``INTERACTIONS_SCHEMA``, ``HISTORY_SCHEMA`` and ``SCHEMAS``, built on first use."""
    if name in _SCHEMA_NAMES:
        return schemas()[_SCHEMA_NAMES[name]]
    if name == "SCHEMAS":
        return schemas()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class ColumnScreen:
    """What the schema checks on one column, in a form NumPy can evaluate on a whole column.

    ``tests/test_contract.py`` derives these from :func:`schemas` and compares, so the screen
    cannot drift from the pandera schemas."""

    dtype: str | None = None
    nullable: bool = True
    non_empty: bool = False
    min_value: float | None = None
    max_value: float | None = None


_ID = ColumnScreen(nullable=False, non_empty=True)
_UTC = "datetime64[ns, UTC]"
#: The checks of :func:`schemas`, per table and column, for the vectorised screen.
SCREEN: dict[str, dict[str, ColumnScreen]] = {
    "accounts": {
        "account_id": _ID,
        "signup_at": ColumnScreen(_UTC, nullable=False),
        "churned_at": ColumnScreen(_UTC),
        "mrr": ColumnScreen("float64", min_value=0),
    },
    "interactions": {
        "account_id": _ID,
        "occurred_at": ColumnScreen(_UTC, nullable=False),
        "event_type": _ID,
        "wait_seconds": ColumnScreen("float64", min_value=0),
        "handle_seconds": ColumnScreen("float64", min_value=0),
        **{name: ColumnScreen("float64", min_value=lo, max_value=hi) for name, (lo, hi) in SURVEY_RANGES.items()},
        "amount": ColumnScreen("float64"),
    },
    "attribute_history": {
        "account_id": _ID,
        "valid_from": ColumnScreen(_UTC, nullable=False),
        "mrr": ColumnScreen("float64", min_value=0),
    },
}


def _screen_column(values: pd.Series, rule: ColumnScreen) -> np.ndarray:
    """Rows of one column that fail ``rule`` (missing values fail only a non-nullable rule).
    A float column is compared in place (NaN compares false), not copied."""
    bad = np.zeros(len(values), dtype=bool)
    if not rule.nullable or rule.non_empty:
        missing = values.isna().to_numpy()
        if not rule.nullable:
            bad |= missing
        if rule.non_empty:
            bad |= ~_non_empty(values).to_numpy(dtype=bool) & ~missing
    if rule.min_value is not None or rule.max_value is not None:
        v = values.to_numpy() if values.dtype == np.float64 else values.to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            if rule.min_value is not None:
                bad |= v < rule.min_value
            if rule.max_value is not None:
                bad |= v > rule.max_value
    return bad


@dataclass
class TableReport:
    """What happened to one table: counts, reasons with examples, notes."""

    table: str
    file: str
    rows_read: int
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def rejected_total(self) -> int:
        return self.rows_read - self.accepted


@dataclass
class ContractData:
    """Validated tables plus what was rejected and why.

    ``attribute_history`` (None when the folder has none) holds one row per change of an
    account attribute: ``account_id``, ``valid_from`` and the attribute columns.

    The interactions come as every row read (``interactions_read``) plus a mask of the rows
    to use (``interactions_accepted``: passed the contract and lie in the time range asked
    for; None: all). Dropping a handful of rejected rows from a 10M-row table means copying
    all of it, so that copy is made only when :attr:`interactions` is first asked for;
    feature building takes the mask instead (``rows=``) and never pays it."""

    accounts: pd.DataFrame
    interactions_read: pd.DataFrame
    rejects: dict[str, pd.DataFrame]
    reports: list[TableReport]
    attribute_history: pd.DataFrame | None = None
    interactions_accepted: np.ndarray | None = None

    @property
    def interactions(self) -> pd.DataFrame:
        """The accepted interactions (the rejected rows are dropped here, once)."""
        if self.interactions_accepted is not None:
            self.interactions_read = self.interactions_read.loc[self.interactions_accepted].reset_index(drop=True)
            self.interactions_accepted = None
        return self.interactions_read

    @interactions.setter
    def interactions(self, frame: pd.DataFrame) -> None:
        self.interactions_read, self.interactions_accepted = frame, None

    def write_rejects(self, rejects_dir: str | Path) -> list[Path]:
        """Write each non-empty rejects table to ``rejects_dir/<table>_rejects.csv``."""
        return write_rejects(self.rejects, rejects_dir)


def write_rejects(rejects: dict[str, pd.DataFrame], rejects_dir: str | Path) -> list[Path]:
    """Write each non-empty rejects table to ``rejects_dir/<table>_rejects.csv`` — also those
    a :class:`DataContractError` carries, when the data could not be used at all."""
    return [write_table(frame, Path(rejects_dir) / f"{name}_rejects", "csv") for name, frame in rejects.items() if len(frame)]


# --------------------------------------------------------------------------- reading


def find_table(folder: str | Path, name: str) -> Path | None:
    """``name.parquet``, ``name.csv`` or a folder ``name/`` of Parquet parts, else None."""
    folder = Path(folder)
    for candidate in (folder / f"{name}.parquet", folder / f"{name}.csv", folder / f"{name}.csv.gz", folder / name):
        if candidate.exists():
            return candidate
    return None


def _is_parquet(path: Path) -> bool:
    return path.suffix == ".parquet" or path.is_dir()


def _parquet_schema(path: Path) -> "pyarrow.Schema":
    return pq.read_schema(next(iter(sorted(path.glob("*.parquet")))) if path.is_dir() else path)


def available_columns(path: Path) -> list[str]:
    """Column names of a table file without reading its rows."""
    try:
        if _is_parquet(path):
            return list(_parquet_schema(path).names)
        return list(pd.read_csv(path, nrows=0).columns)
    except Exception as exc:  # noqa: BLE001 - any read failure is reported the same way
        raise DataContractError(f"{path}: cannot read the file ({type(exc).__name__}: {exc})") from None


def read_table(
    path: Path,
    columns: Sequence[str] | None = None,
    *,
    time_column: str | None = None,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
    categorical: Sequence[str] = (),
) -> pd.DataFrame:
    """Read the asked-for columns (those present); Parquet pushes the time range down.

    Text columns named in ``categorical`` (ids, event types, channels: few distinct values,
    many rows) arrive as categoricals, so that later steps work once per distinct value.
    CSV is read as text so that parsing problems surface per row, not as a failed read.
    """
    present = available_columns(path)
    cols = [c for c in columns if c in present] if columns is not None else present
    try:
        if _is_parquet(path):
            schema = _parquet_schema(path)
            text = [c for c in categorical if c in cols and _is_text(schema.field(c).type)]
            df = _read_parquet(path, cols, text, time_column if time_column in present else None, since, until)
            for c in categorical:  # numeric ids (1, 2.0, ...): categories too, normalised once each
                if c in df.columns and pd.api.types.is_numeric_dtype(df[c].dtype) and not pd.api.types.is_bool_dtype(df[c].dtype):
                    df[c] = df[c].astype("category")
        else:
            dtypes: dict[str, str] = {c: "str" for c in cols}
            dtypes.update({c: "category" for c in categorical if c in cols})
            df = pd.read_csv(path, usecols=cols, dtype=dtypes, keep_default_na=False, na_values=[""])
    except DataContractError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise DataContractError(f"{path}: cannot read the file ({type(exc).__name__}: {exc})") from None
    return df.reset_index(drop=True)


def _read_parquet(
    path: Path, columns: list[str], dictionary: list[str], time_column: str | None, since: pd.Timestamp | None, until: pd.Timestamp | None
) -> pd.DataFrame:
    """Columns of a Parquet file or folder of parts, rows in [since, until) of ``time_column``
    (row groups outside it are skipped), ``dictionary`` columns dictionary-encoded."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from churn.io import arrow_pool

    parquet = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=dictionary))
    dataset = ds.dataset(path, format=parquet)
    terms = []
    if time_column is not None:
        terms += [ds.field(time_column) >= since] if since is not None else []
        terms += [ds.field(time_column) < until] if until is not None else []
    condition = terms[0] & terms[1] if len(terms) == 2 else terms[0] if terms else None
    pool = arrow_pool()
    try:
        table = dataset.to_table(columns=columns, filter=condition, memory_pool=pool)
    except (TypeError, ValueError, NotImplementedError):
        # e.g. timestamps stored as text: filter after parsing instead
        table = dataset.to_table(columns=columns, memory_pool=pool)
    # Nanosecond timestamps and nullable booleans (not objects when a flag has gaps) are what
    # parsing produces anyway: one conversion instead of two. Consolidated blocks: a row
    # selection later is one take per dtype.
    booleans = {pa.bool_(): pd.BooleanDtype()}
    df = table.to_pandas(memory_pool=pool, coerce_temporal_nanoseconds=True, types_mapper=booleans.get)
    del table
    pool.release_unused()  # the Arrow copy is no longer needed: give its memory back now, not at exit
    return df


def _is_text(arrow_type: "pyarrow.DataType") -> bool:
    import pyarrow.types as pat

    return bool(pat.is_string(arrow_type) or pat.is_large_string(arrow_type) or pat.is_string_view(arrow_type))


# --------------------------------------------------------------------------- parsing


class _Rejections:
    """Row-level reasons collected across checks; one row may have several."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.reasons: dict[str, np.ndarray] = {}

    def add(self, mask: np.ndarray | pd.Series, reason: str) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            prev = self.reasons.get(reason)
            self.reasons[reason] = mask if prev is None else (prev | mask)

    def any(self) -> np.ndarray:
        out = np.zeros(self.n, dtype=bool)
        for mask in self.reasons.values():
            out |= mask
        return out

    def reason_column(self, rows: np.ndarray) -> pd.Series:
        parts = pd.Series([""] * len(rows), dtype="str")
        for reason, mask in self.reasons.items():
            hit = mask[rows]
            parts[hit] = np.where(parts[hit] == "", reason, parts[hit] + "; " + reason)
        return parts


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


def _timestamp_reason(column: str, date_format: str | None) -> str:
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


def _parse_flags(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("boolean"), np.zeros(len(values), dtype=bool)
    text = values.astype("str").str.strip().str.lower().where(values.notna())
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[text.isin(_TRUE)] = True
    out[text.isin(_FALSE)] = False
    bad = (text.notna() & out.isna()).to_numpy()
    return out, bad


def _describe_check(column: str, check: str) -> str:
    if check == "not_nullable":
        return f"missing {column}"
    if check == "non_empty":
        return f"empty {column}"
    m = re.match(r"in_range\((.+), (.+)\)", check)
    if m:
        return f"{column} out of range {m.group(1)}–{m.group(2)}"
    if check.startswith("greater_than_or_equal_to"):
        return f"{column} negative"
    return f"{column} fails {check}"


def _shown(value: object) -> str:
    """A cell as the user wrote it: text quoted, numbers plain (not ``np.float64(89.0)``)."""
    if isinstance(value, str):
        return repr(value)
    return "(empty)" if pd.isna(value) else str(value)  # type: ignore[arg-type]


def _examples(raw: pd.DataFrame, mask: np.ndarray, column: str | None, k: int = 3) -> list[str]:
    rows = np.flatnonzero(mask)[:k]
    if column and column in raw.columns:
        return [f"row {r + 2}: {column}={_shown(raw[column].iloc[r])}" for r in rows]
    return [f"row {r + 2}" for r in rows]


def _check_table(
    name: str, raw: pd.DataFrame, file: str, *, date_format: str | None = None, now: pd.Timestamp | None = None
) -> tuple[pd.DataFrame, _Rejections, dict[str, str], TableReport]:
    """Parse and schema-check one table. Returns the parsed frame and row reasons."""
    missing = [c for c in REQUIRED[name] if c not in raw.columns]
    if missing:
        raise DataContractError(
            f"{file}: missing required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(c) for c in missing)} (found: {', '.join(map(str, raw.columns)) or 'no columns'})"
        )
    report = TableReport(table=name, file=file, rows_read=len(raw))
    df = raw.copy(deep=False)  # copy-on-write: parsed columns replace, never mutate, raw's
    rej = _Rejections(len(df))
    reason_column: dict[str, str] = {}

    df["account_id"] = normalise_ids(df["account_id"])
    # Columns that already have the right type (typical of Parquet) cannot fail parsing: skip them.
    for col in TIMESTAMPS[name]:
        if col in df.columns and str(df[col].dtype) != "datetime64[ns, UTC]":
            parsed, outside = timestamps_in_range(df[col], date_format)
            reason = _timestamp_reason(col, date_format)
            bad = (parsed.isna() & df[col].notna()).to_numpy() & (outside == 0)
            rej.add(bad, reason)
            reason_column[reason] = col
            if col == "churned_at" and (outside > 0).any():  # a CRM's "9999-12-31": never churned
                report.notes.append(f"churned_at: {int((outside > 0).sum()):,} value(s) after the year 2261 (e.g. 9999-12-31) read as 'not churned'")
                outside = np.minimum(outside, 0)
            rej.add(outside != 0, f"{col} {OUT_OF_RANGE}")
            reason_column[f"{col} {OUT_OF_RANGE}"] = col
            if bad.any():
                report.notes.append(
                    f"{col}: {int(bad.sum()):,} value(s) are not "
                    + (f"in the layout {date_format} nor ISO 8601" if date_format else "ISO 8601 (e.g. 2024-04-13); if the file uses another layout, give --date-format such as %d/%m/%Y — a day/month order is never guessed")
                )
            df[col] = parsed
    # A timestamp past the wall clock is a typo or a test row; it must not become the "end of data".
    future_col = {"accounts": "signup_at", "interactions": "occurred_at", "attribute_history": "valid_from"}[name]
    if now is not None and future_col in df.columns:
        reason = f"{future_col} is in the future (after {now:%Y-%m-%d})"
        rej.add((df[future_col] > now + FUTURE_SLACK).fillna(False).to_numpy(), reason)
        reason_column[reason] = future_col
    for col in NUMBERS[name]:
        if col in df.columns and df[col].dtype != np.float64:
            parsed = pd.to_numeric(df[col], errors="coerce").astype(float)
            reason = f"{col} is not a number"
            rej.add(parsed.isna() & df[col].notna(), reason)
            reason_column[reason] = col
            df[col] = parsed
    for col in FLAGS[name]:
        if col in df.columns and str(df[col].dtype) != "boolean":
            df[col], bad = _parse_flags(df[col])
            reason = f"{col} is not true/false"
            rej.add(bad, reason)
            reason_column[reason] = col
    for col in TEXT[name]:
        if col in df.columns and not (isinstance(df[col].dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(df[col].dtype)):
            df[col] = df[col].astype("str").where(df[col].notna())
    if name != "interactions":
        for col in _free_columns(name, df):
            df[col] = numbers_if_all_numeric(df[col])

    for (column, check), rows in _schema_failures(name, df):
        reason = _describe_check(column, check)
        mask = np.zeros(len(df), dtype=bool)
        mask[rows] = True
        if check == "not_nullable":  # a value that could not be read is not also "missing"
            for parse_reason in [r for r, c in reason_column.items() if c == column]:
                mask &= ~rej.reasons.get(parse_reason, np.zeros(len(df), dtype=bool))
        rej.add(mask, reason)
        reason_column[reason] = column
    return df, rej, reason_column, report


def _schema_failures(name: str, df: pd.DataFrame) -> list[tuple[tuple[str, str], np.ndarray]]:
    """Rows failing the pandera schema of table ``name``, as ((column, check), row positions).

    Parsed columns already have the schema's types, so the vectorised :data:`SCREEN` finds
    every row that can fail; pandera then checks only those rows and names the failures.
    Clean data never imports pandera. A column of an unexpected type sends the whole table
    through pandera."""
    rules = SCREEN[name]
    checked = [c for c in rules if c in df.columns]
    typed = all(rules[c].dtype is None or str(df[c].dtype) == rules[c].dtype for c in checked)
    if typed:
        suspect = np.zeros(len(df), dtype=bool)
        for col in checked:
            suspect |= _screen_column(df[col], rules[col])
        if not suspect.any():
            return []
        frame = df[checked].iloc[np.flatnonzero(suspect)]  # index labels stay row positions
    else:
        frame = df[checked]
    from pandera.errors import SchemaErrors

    try:
        schemas()[name].validate(frame, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases
        cases = cases[cases["index"].notna()]
        return [
            ((str(column), str(check)), group["index"].astype(int).to_numpy())
            for (column, check), group in cases.groupby(["column", "check"], sort=False)
        ]
    return []


def _free_columns(name: str, df: pd.DataFrame) -> list[str]:
    """Attribute columns: the ones the contract does not name."""
    known = {*REQUIRED[name], *TIMESTAMPS[name], *NUMBERS[name], *FLAGS[name], *TEXT[name], "account_id"}
    return [c for c in df.columns if c not in known]


def _looks_numeric(value: object) -> bool:
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
    if first is not None and not _looks_numeric(values.at[first]):
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


def _duplicate_ids(ids: pd.Series, raw_ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Rows repeating an earlier account_id: (exact repeats, ids equal only after normalisation)."""
    dup = ids.notna().to_numpy() & ids.duplicated(keep="first").to_numpy()
    if not dup.any():
        return dup, np.zeros(len(ids), dtype=bool)
    raw_text = raw_ids.astype("str").str.strip()
    first_raw = raw_text.groupby(ids.to_numpy(), sort=False).transform("first")
    collides = dup & (raw_text != first_raw).to_numpy()
    return dup & ~collides, collides


#: Why a row of another table is rejected when its account's own row was rejected.
ACCOUNT_REJECTED = "its account's row was rejected (see accounts_rejects)"


def _reject_unknown_accounts(ids: pd.Series, accounts: pd.Series, account_rejects: pd.DataFrame, rej: "_Rejections", why: dict[str, str]) -> None:
    """Reject rows whose account is not among the accepted ``accounts``: as "unknown
    account_id", or — when the account's own row was rejected — saying so, so that a bad
    ``mrr`` cell does not read as hundreds of events of a stranger."""
    unknown = ids.notna().to_numpy() & ~_known_ids(ids, accounts)
    if unknown.any() and len(account_rejects):
        rejected_ids = normalise_ids(account_rejects["account_id"]).dropna()
        of_rejected = np.zeros(len(ids), dtype=bool)
        of_rejected[unknown] = _known_ids(ids[unknown], rejected_ids)
        rej.add(of_rejected, ACCOUNT_REJECTED)
        why[ACCOUNT_REJECTED] = "account_id"
        unknown &= ~of_rejected
    rej.add(unknown, "unknown account_id")
    why["unknown account_id"] = "account_id"


def _known_ids(ids: pd.Series, accounts: pd.Series) -> np.ndarray:
    """True where an id is one of ``accounts`` (a categorical is looked up once per category)."""
    known = pd.Index(accounts).unique()
    if isinstance(ids.dtype, pd.CategoricalDtype):
        per_category = np.append(codes_for(ids.cat.categories, known) >= 0, False)  # code −1: missing
        return per_category[ids.cat.codes.to_numpy()]
    return codes_for(ids, known) >= 0


def _judge(raw: pd.DataFrame, rej: _Rejections, reason_column: dict[str, str], report: TableReport) -> tuple[np.ndarray | None, pd.DataFrame]:
    """Fill ``report`` and return (mask of the accepted rows — None when all are — , the
    rejects table: the raw rows with their source row and reasons)."""
    bad = rej.any()
    for reason, mask in rej.reasons.items():
        report.rejected[reason] = int(mask.sum())
        report.examples[reason] = _examples(raw, mask, reason_column.get(reason))
    rows = np.flatnonzero(bad)
    rejects = raw.iloc[rows].copy()
    rejects.insert(0, "source_row", rows + 2)  # header is line 1 of a CSV
    rejects["reject_reason"] = rej.reason_column(rows).to_numpy() if len(rows) else pd.Series(dtype="str")
    report.accepted = len(raw) - len(rows)
    return (~bad if len(rows) else None), rejects.reset_index(drop=True)


def _finish(raw: pd.DataFrame, df: pd.DataFrame, rej: _Rejections, reason_column: dict[str, str], report: TableReport) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`_judge`, then the accepted rows of ``df`` (a copy when any is rejected)."""
    accepted, rejects = _judge(raw, rej, reason_column, report)
    return (df if accepted is None else df.loc[accepted].reset_index(drop=True)), rejects


def _column_key(values: pd.Series, rows: np.ndarray | None = None) -> np.ndarray:
    """A uint64 per row (at ``rows``, or all), equal for equal values (and for two missing values)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()  # categories are unique: codes identify values
        return (codes if rows is None else codes[rows]).astype(np.uint64)
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values.dtype):
        stamps = values.array.asi8.view(np.uint64)
        return stamps if rows is None else stamps[rows]
    return pd.util.hash_pandas_object(values if rows is None else values.iloc[rows], index=False, categorize=False).to_numpy()


def _repeated(keys: np.ndarray) -> np.ndarray:
    """True where a value occurs more than once (a sort, cheaper than a hash table on 10M rows)."""
    ordered = np.sort(keys)
    twice = ordered[1:][ordered[1:] == ordered[:-1]]
    return np.isin(keys, np.unique(twice)) if len(twice) else np.zeros(len(keys), dtype=bool)


def _duplicated_rows(df: pd.DataFrame, key: Sequence[str] = ("account_id", "occurred_at")) -> np.ndarray:
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
    if "occurred_at" in key:
        t = _column_key(df["occurred_at"]).view(np.int64)
        if bool(np.all(t[1:] >= t[:-1])):
            same = t[1:] == t[:-1]
            candidates = np.r_[same, False] | np.r_[False, same]
    rows = np.flatnonzero(candidates)
    if not len(rows):
        return out
    mixed = np.zeros(len(rows), dtype=np.uint64)
    for c in key:
        mixed = (mixed * np.uint64(0x100000001B3)) ^ _column_key(df[c], rows)  # FNV-style mix; wraps around
    rows = rows[_repeated(mixed)]
    if len(rows):
        out[rows] = df.iloc[rows].duplicated(keep="first").to_numpy()
    return out


# --------------------------------------------------------------------------- validate


def validate(
    accounts_raw: pd.DataFrame,
    interactions_raw: pd.DataFrame | None,
    history_raw: pd.DataFrame | None = None,
    *,
    accounts_file: str = "accounts",
    interactions_file: str = "interactions",
    history_file: str = "attribute_history",
    date_format: str | None = None,
    now: pd.Timestamp | None = None,
) -> ContractData:
    """Check the tables against the contract; raise only when the data is unusable.

    ``now`` (default: the wall clock) is the moment after which a timestamp cannot be real."""
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    df, rej, why, report_a = _check_table("accounts", accounts_raw, accounts_file, date_format=date_format, now=now)
    if len(accounts_raw) == 0:
        raise DataContractError(f"{accounts_file}: the accounts table has no rows; nothing can be scored")
    exact, collides = _duplicate_ids(df["account_id"], accounts_raw["account_id"])
    rej.add(exact, "duplicate account_id")
    why["duplicate account_id"] = "account_id"
    collision = "duplicate account_id after normalisation (e.g. 1 and 1.0 are one id)"
    rej.add(collides, collision)
    why[collision] = "account_id"
    if "churned_at" in df.columns:
        rej.add((df["churned_at"] < df["signup_at"]).fillna(False).to_numpy(), "churned_at before signup_at")
        why["churned_at before signup_at"] = "churned_at"
        later = int((df["churned_at"] > now).sum())
        if later:
            report_a.notes.append(f"{later:,} account(s) have churned_at after today (scheduled cancellations?): they count as customers until then")
    accounts, rejects_a = _finish(accounts_raw, df, rej, why, report_a)
    if len(accounts) == 0:
        top = ", ".join(f"{r} ({n})" for r, n in report_a.rejected.items())
        raise DataContractError(f"{accounts_file}: no usable accounts — all {len(accounts_raw)} rows rejected: {top}", {"accounts": rejects_a})
    accounts["account_id"] = accounts["account_id"].astype("str")
    rejects = {"accounts": rejects_a}
    reports = [report_a]

    accepted = None
    if interactions_raw is None:
        reports.append(TableReport("interactions", interactions_file, 0, notes=["no interactions file: attribute-only snapshot data"]))
        interactions = pd.DataFrame(
            {
                "account_id": pd.Series(dtype="str"),
                "occurred_at": pd.Series(dtype="datetime64[ns, UTC]"),
                "event_type": pd.Series(dtype="str"),
            }
        )
    else:
        df, rej, why, report_i = _check_table("interactions", interactions_raw, interactions_file, date_format=date_format, now=now)
        _reject_unknown_accounts(df["account_id"], accounts["account_id"], rejects_a, rej, why)
        rej.add(_duplicated_rows(df), "duplicate row")
        if len(interactions_raw) == 0:
            report_i.notes.append("no interaction rows: attribute-only snapshot data")
        missing_optional = [c for c in OPTIONAL_INTERACTION_COLUMNS if c not in df.columns]
        if missing_optional and len(interactions_raw):
            report_i.notes.append("optional columns absent (features needing them are skipped): " + ", ".join(missing_optional))
        accepted, rejects["interactions"] = _judge(interactions_raw, rej, why, report_i)
        interactions = df
        reports.append(report_i)

    history = None
    if history_raw is not None:
        df, rej, why, report_h = _check_table("attribute_history", history_raw, history_file, date_format=date_format, now=now)
        _reject_unknown_accounts(df["account_id"], accounts["account_id"], rejects_a, rej, why)
        key = df[["account_id", "valid_from"]]
        rej.add(key.notna().all(axis=1).to_numpy() & key.duplicated(keep="first").to_numpy(), "duplicate account_id and valid_from")
        why["duplicate account_id and valid_from"] = "valid_from"
        attributes = [c for c in df.columns if c not in REQUIRED["attribute_history"]]
        if not attributes:
            raise DataContractError(f"{history_file}: no attribute columns besides account_id and valid_from")
        history, rejects["attribute_history"] = _finish(history_raw, df, rej, why, report_h)
        history["account_id"] = history["account_id"].astype("str")
        history = history.sort_values(["account_id", "valid_from"], kind="stable").reset_index(drop=True)
        reports.append(report_h)
    return ContractData(accounts, interactions, rejects, reports, history, accepted)


def load(
    folder: str | Path,
    *,
    interaction_columns: Sequence[str] | None = None,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
    date_format: str | None = None,
    now: pd.Timestamp | None = None,
) -> ContractData:
    """Read and validate a data folder.

    ``interaction_columns`` / ``since`` / ``until`` limit what is read of the (large)
    interactions table; accounts and attribute history are always read whole.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataContractError(f"{folder}: no such data folder")
    accounts_path = find_table(folder, "accounts")
    if accounts_path is None:
        raise DataContractError(f"{folder}: no accounts table (expected accounts.parquet or accounts.csv)")
    interactions_path = find_table(folder, "interactions")
    history_path = find_table(folder, "attribute_history")
    accounts_raw = read_table(accounts_path)
    interactions_raw = None
    if interactions_path is not None:
        if interaction_columns is not None:
            interaction_columns = list(dict.fromkeys([*REQUIRED["interactions"], *interaction_columns]))
        interactions_raw = read_table(
            interactions_path, interaction_columns, time_column="occurred_at", since=since, until=until, categorical=CATEGORICAL
        )
    data = validate(
        accounts_raw,
        interactions_raw,
        read_table(history_path) if history_path is not None else None,
        accounts_file=str(accounts_path),
        interactions_file=str(interactions_path or folder / "interactions"),
        history_file=str(history_path or folder / "attribute_history"),
        date_format=date_format,
        now=now,
    )
    if (since is not None or until is not None) and len(data.interactions_read):
        t = data.interactions_read["occurred_at"]
        keep = np.ones(len(t), dtype=bool) if data.interactions_accepted is None else data.interactions_accepted.copy()
        if since is not None:
            keep &= (t >= since).to_numpy()
        if until is not None:
            keep &= (t < until).to_numpy()
        if not keep.all():  # Parquet filtered while reading; CSV and text timestamps filter here
            data.interactions_accepted = keep
    return data


def interactions_end(folder: str | Path, *, now: pd.Timestamp | None = None, date_format: str | None = None) -> pd.Timestamp | None:
    """The latest plausible interaction timestamp in a data folder (None without interactions).

    Reads one column only (Parquet row-group statistics when they suffice). Timestamps past
    the wall clock are ignored: one future-dated row must not make immature cutoffs look
    complete."""
    path = find_table(folder, "interactions")
    if path is None:
        return None
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    limit = now + FUTURE_SLACK
    stats_max = _parquet_max(path, "occurred_at") if _is_parquet(path) else None
    if stats_max is not None and stats_max <= limit:
        return stats_max
    column = read_table(path, ["occurred_at"])["occurred_at"]
    t = parse_timestamps(column, date_format)
    t = t[t <= limit]
    return None if t.empty else t.max()


class StaleDataError(ValueError):
    """A run at a date after the end of the data (every account would look quiet)."""


def check_freshness(as_of: pd.Timestamp, data_end: pd.Timestamp, *, allow_stale: bool = False) -> dict[str, object]:
    """The run's data-freshness facts; refuses an ``as_of`` after the data unless allowed."""
    lag = (as_of - data_end) / pd.Timedelta(days=1)
    if lag > 0 and not allow_stale:
        raise StaleDataError(
            f"--as-of {as_of:%Y-%m-%d} is {lag:g} day(s) after the end of the data ({data_end:%Y-%m-%d}): every account "
            f"would look quiet since {data_end:%Y-%m-%d}. Export newer data, use --as-of {data_end:%Y-%m-%d}, "
            "or pass --allow-stale-data to go on anyway"
        )
    facts: dict[str, object] = {"data_end": f"{data_end:%Y-%m-%d}", "data_lag_days": round(max(lag, 0.0), 1)}
    if lag > 0:
        facts["warning"] = f"stale data: the data ends {lag:g} day(s) before the scoring date; recent activity is missing"
    return facts


def data_end_of(data_dir: str | Path, settings: DataSettings = DataSettings()) -> pd.Timestamp:
    """End of the observed history of a data folder: ``settings.data_end``, else the day after
    the latest interaction (future-dated rows ignored), else — attribute-only data — the latest
    signup or churn date."""
    return data_end_and_source(data_dir, settings)[0]


def data_end_and_source(data_dir: str | Path, settings: DataSettings = DataSettings()) -> tuple[pd.Timestamp, str]:
    """:func:`data_end_of`, and where it came from, in words (for the run's output)."""
    if settings.data_end is not None:
        return settings.data_end, "given"
    latest = interactions_end(data_dir, date_format=settings.date_format)
    if latest is not None:
        return latest.ceil("D"), "the day after the latest interaction"
    path = find_table(data_dir, "accounts")
    accounts = validate(read_table(path), None, date_format=settings.date_format).accounts if path else None
    if accounts is None:
        raise ValueError(f"{data_dir}: no accounts table")
    from churn.labels import observed_until

    end = observed_until(accounts, accounts.iloc[:0].assign(occurred_at=pd.Series(dtype="datetime64[ns, UTC]")))
    return end, "no interaction with a usable timestamp: the day after the latest signup or churn date"


def _parquet_max(path: Path, column: str) -> pd.Timestamp | None:
    """Maximum of a timestamp column from Parquet statistics, or None if any is missing."""
    try:
        files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
        best = None
        for file in files:
            meta = pq.ParquetFile(file).metadata
            idx = meta.schema.to_arrow_schema().get_field_index(column)
            if idx < 0:
                return None
            for g in range(meta.num_row_groups):
                stats = meta.row_group(g).column(idx).statistics
                if stats is None or not stats.has_min_max:
                    return None
                value = pd.Timestamp(stats.max)
                value = value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")
                best = value if best is None or value > best else best
        return best
    except Exception:  # noqa: BLE001 - statistics are an optimisation; fall back to reading
        return None
