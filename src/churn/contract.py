"""The input data contract (DESIGN.md "Input contract") as code.

A data folder holds ``accounts`` and ``interactions`` as Parquet or CSV. Loading it:

1. finds and reads the files (only the columns asked for, only the time range asked for);
2. refuses data that cannot be used at all with a :class:`DataContractError` whose message
   names the file and column (missing required column, no accounts, unreadable file);
3. parses timestamps to UTC, numbers and flags, then checks every row against pandera
   schemas; rows that fail go to a *rejects* table with a ``reject_reason``;
4. reports per table: rows read, accepted, rejected by reason with examples.

``accepted + rejected == read`` always holds: nothing is dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow.parquet as pq

from churn.config import SURVEY_RANGES
from churn.io import write_table

TABLES = ("accounts", "interactions")
REQUIRED = {
    "accounts": ("account_id", "signup_at"),
    "interactions": ("account_id", "occurred_at", "event_type"),
}
TIMESTAMPS = {"accounts": ("signup_at", "churned_at"), "interactions": ("occurred_at",)}
NUMBERS = {"accounts": ("mrr",), "interactions": ("wait_seconds", "handle_seconds", "ces", "csat", "nps", "amount")}
FLAGS = {"accounts": (), "interactions": ("resolved", "transferred")}
TEXT = {"accounts": ("account_id",), "interactions": ("account_id", "event_type", "channel", "case_id")}
OPTIONAL_INTERACTION_COLUMNS = ("channel", "case_id", "wait_seconds", "handle_seconds", "resolved", "transferred", "ces", "csat", "nps", "amount")

_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


class DataContractError(Exception):
    """The data cannot be used at all. The message is meant for the user, as is."""


def _non_empty(s: pd.Series) -> pd.Series:
    """True where a text value is not blank (checked once per category for categoricals)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        ok = np.append(s.cat.categories.astype("str").str.strip().str.len().to_numpy() > 0, True)
        return pd.Series(ok[s.cat.codes.to_numpy()], index=s.index)
    return s.astype("str").str.strip().str.len() > 0


ACCOUNTS_SCHEMA = pa.DataFrameSchema(
    {
        "account_id": pa.Column(nullable=False, checks=pa.Check(_non_empty, name="non_empty")),
        "signup_at": pa.Column("datetime64[ns, UTC]", nullable=False),
        "churned_at": pa.Column("datetime64[ns, UTC]", nullable=True, required=False),
        "mrr": pa.Column(float, pa.Check.ge(0), nullable=True, required=False),
    },
    strict=False,
)

INTERACTIONS_SCHEMA = pa.DataFrameSchema(
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
SCHEMAS = {"accounts": ACCOUNTS_SCHEMA, "interactions": INTERACTIONS_SCHEMA}


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
    """Validated tables plus what was rejected and why."""

    accounts: pd.DataFrame
    interactions: pd.DataFrame
    rejects: dict[str, pd.DataFrame]
    reports: list[TableReport]

    def write_rejects(self, rejects_dir: str | Path) -> list[Path]:
        """Write each non-empty rejects table to ``rejects_dir/<table>_rejects.csv``."""
        written = []
        for name, frame in self.rejects.items():
            if len(frame):
                written.append(write_table(frame, Path(rejects_dir) / f"{name}_rejects", "csv"))
        return written


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


def available_columns(path: Path) -> list[str]:
    """Column names of a table file without reading its rows."""
    try:
        if _is_parquet(path):
            return list(pq.read_schema(next(iter(sorted(path.glob("*.parquet")))) if path.is_dir() else path).names)
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
) -> pd.DataFrame:
    """Read the asked-for columns (those present); Parquet pushes the time range down.

    CSV is read as text so that parsing problems surface per row, not as a failed read.
    """
    present = available_columns(path)
    cols = [c for c in columns if c in present] if columns is not None else present
    try:
        if _is_parquet(path):
            filters = []
            if time_column and time_column in present:
                if since is not None:
                    filters.append((time_column, ">=", since))
                if until is not None:
                    filters.append((time_column, "<", until))
            try:
                df = pd.read_parquet(path, columns=cols, filters=filters or None)
            except (TypeError, ValueError, NotImplementedError):
                # e.g. timestamps stored as text: filter after parsing instead
                df = pd.read_parquet(path, columns=cols)
        else:
            df = pd.read_csv(path, usecols=cols, dtype="str", keep_default_na=False, na_values=[""])
    except DataContractError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise DataContractError(f"{path}: cannot read the file ({type(exc).__name__}: {exc})") from None
    return df.reset_index(drop=True)


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


def parse_timestamps(values: pd.Series) -> pd.Series:
    """To ``datetime64[ns, UTC]``: offsets converted, naive values taken as UTC; bad → NaT."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        out = values.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(values.dtype):
        out = values.dt.tz_localize("UTC")
    else:
        text = values.astype("str").where(values.notna())
        out = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        retry = out.isna() & text.notna()
        if retry.any():
            out[retry] = pd.to_datetime(text[retry], utc=True, errors="coerce", format="mixed")
    return out.astype("datetime64[ns, UTC]")


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


def _examples(raw: pd.DataFrame, mask: np.ndarray, column: str | None, k: int = 3) -> list[str]:
    rows = np.flatnonzero(mask)[:k]
    if column and column in raw.columns:
        return [f"row {r + 2}: {column}={raw[column].iloc[r]!r}" for r in rows]
    return [f"row {r + 2}" for r in rows]


def _check_table(name: str, raw: pd.DataFrame, file: str) -> tuple[pd.DataFrame, _Rejections, dict[str, str], TableReport]:
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

    # Columns that already have the right type (typical of Parquet) cannot fail parsing: skip them.
    for col in TIMESTAMPS[name]:
        if col in df.columns and str(df[col].dtype) != "datetime64[ns, UTC]":
            parsed = parse_timestamps(df[col])
            reason = f"unparseable timestamp in {col}"
            rej.add(parsed.isna() & df[col].notna(), reason)
            reason_column[reason] = col
            df[col] = parsed
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

    checked = [c for c in SCHEMAS[name].columns if c in df.columns]
    try:
        SCHEMAS[name].validate(df[checked], lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        cases = cases[cases["index"].notna()]
        for (column, check), group in cases.groupby(["column", "check"], sort=False):
            reason = _describe_check(str(column), str(check))
            parse_reason = next((r for r, c in reason_column.items() if c == column), None)
            mask = np.zeros(len(df), dtype=bool)
            mask[group["index"].astype(int).to_numpy()] = True
            if parse_reason and check == "not_nullable":
                mask &= ~rej.reasons.get(parse_reason, np.zeros(len(df), dtype=bool))
            rej.add(mask, reason)
            reason_column[reason] = str(column)
    return df, rej, reason_column, report


def _finish(raw: pd.DataFrame, df: pd.DataFrame, rej: _Rejections, reason_column: dict[str, str], report: TableReport) -> tuple[pd.DataFrame, pd.DataFrame]:
    bad = rej.any()
    for reason, mask in rej.reasons.items():
        report.rejected[reason] = int(mask.sum())
        report.examples[reason] = _examples(raw, mask, reason_column.get(reason))
    rows = np.flatnonzero(bad)
    rejects = raw.iloc[rows].copy()
    rejects.insert(0, "source_row", rows + 2)  # header is line 1 of a CSV
    rejects["reject_reason"] = rej.reason_column(rows).to_numpy()
    accepted = df.loc[~bad].reset_index(drop=True) if len(rows) else df
    report.accepted = len(accepted)
    return accepted, rejects.reset_index(drop=True)


def _duplicated_rows(df: pd.DataFrame) -> np.ndarray:
    """Exact duplicates after the first, found via a 64-bit row hash (cheap on 10M rows),
    then confirmed column by column so a hash collision can never reject a row."""
    if not len(df):
        return np.zeros(0, dtype=bool)
    hashes = pd.util.hash_pandas_object(df, index=False)
    candidates = hashes.duplicated(keep=False).to_numpy()
    out = np.zeros(len(df), dtype=bool)
    if candidates.any():
        out[candidates] = df.loc[candidates].duplicated(keep="first").to_numpy()
    return out


# --------------------------------------------------------------------------- validate


def validate(
    accounts_raw: pd.DataFrame,
    interactions_raw: pd.DataFrame | None,
    *,
    accounts_file: str = "accounts",
    interactions_file: str = "interactions",
) -> ContractData:
    """Check both tables against the contract; raise only when the data is unusable."""
    df, rej, why, report_a = _check_table("accounts", accounts_raw, accounts_file)
    if len(accounts_raw) == 0:
        raise DataContractError(f"{accounts_file}: the accounts table has no rows; nothing can be scored")
    dup = df["account_id"].notna().to_numpy() & df["account_id"].duplicated(keep="first").to_numpy()
    rej.add(dup, "duplicate account_id")
    why["duplicate account_id"] = "account_id"
    if "churned_at" in df.columns:
        rej.add((df["churned_at"] < df["signup_at"]).fillna(False).to_numpy(), "churned_at before signup_at")
        why["churned_at before signup_at"] = "churned_at"
    accounts, rejects_a = _finish(accounts_raw, df, rej, why, report_a)
    if len(accounts) == 0:
        top = ", ".join(f"{r} ({n})" for r, n in report_a.rejected.items())
        raise DataContractError(f"{accounts_file}: no usable accounts — all {len(accounts_raw)} rows rejected: {top}")

    if interactions_raw is None:
        report_i = TableReport("interactions", interactions_file, 0, notes=["no interactions file: attribute-only snapshot data"])
        interactions = pd.DataFrame(
            {
                "account_id": pd.Series(dtype="str"),
                "occurred_at": pd.Series(dtype="datetime64[ns, UTC]"),
                "event_type": pd.Series(dtype="str"),
            }
        )
        return ContractData(accounts, interactions, {"accounts": rejects_a}, [report_a, report_i])

    df, rej, why, report_i = _check_table("interactions", interactions_raw, interactions_file)
    known = df["account_id"].isin(accounts["account_id"]).to_numpy()
    rej.add(df["account_id"].notna().to_numpy() & ~known, "unknown account_id")
    why["unknown account_id"] = "account_id"
    rej.add(_duplicated_rows(df), "duplicate row")
    if len(interactions_raw) == 0:
        report_i.notes.append("no interaction rows: attribute-only snapshot data")
    missing_optional = [c for c in OPTIONAL_INTERACTION_COLUMNS if c not in df.columns]
    if missing_optional and len(interactions_raw):
        report_i.notes.append("optional columns absent (features needing them are skipped): " + ", ".join(missing_optional))
    interactions, rejects_i = _finish(interactions_raw, df, rej, why, report_i)
    return ContractData(accounts, interactions, {"accounts": rejects_a, "interactions": rejects_i}, [report_a, report_i])


def load(
    folder: str | Path,
    *,
    interaction_columns: Sequence[str] | None = None,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
) -> ContractData:
    """Read and validate a data folder.

    ``interaction_columns`` / ``since`` / ``until`` limit what is read of the (large)
    interactions table; accounts are always read whole (one row per account).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataContractError(f"{folder}: no such data folder")
    accounts_path = find_table(folder, "accounts")
    if accounts_path is None:
        raise DataContractError(f"{folder}: no accounts table (expected accounts.parquet or accounts.csv)")
    interactions_path = find_table(folder, "interactions")
    accounts_raw = read_table(accounts_path)
    interactions_raw = None
    if interactions_path is not None:
        if interaction_columns is not None:
            interaction_columns = list(dict.fromkeys([*REQUIRED["interactions"], *interaction_columns]))
        interactions_raw = read_table(
            interactions_path, interaction_columns, time_column="occurred_at", since=since, until=until
        )
    data = validate(
        accounts_raw,
        interactions_raw,
        accounts_file=str(accounts_path),
        interactions_file=str(interactions_path or folder / "interactions"),
    )
    if (since is not None or until is not None) and len(data.interactions):
        t = data.interactions["occurred_at"]
        keep = np.ones(len(t), dtype=bool)
        if since is not None:
            keep &= (t >= since).to_numpy()
        if until is not None:
            keep &= (t < until).to_numpy()
        data.interactions = data.interactions.loc[keep].reset_index(drop=True)
    return data
