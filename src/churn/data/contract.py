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

from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from churn.config import SourceTables
from churn.data.database import is_database, read_database, read_interactions
from churn.data.frames import codes_for, duplicated_rows
from churn.data.io import write_table
from churn.data.parse import OUT_OF_RANGE, all_integers, normalise_ids, numbers_if_all_numeric, parse_flags, timestamp_reason, timestamps_in_range
from churn.data.read import DataContractError, Location, Prefetch, find_table, is_folder, join, read_table
from churn.data.rules import (
    CATEGORICAL,
    FLAGS,
    FUTURE_SLACK,
    NUMBERS,
    OPTIONAL_INTERACTION_COLUMNS,
    REQUIRED,
    TEXT,
    TIMESTAMPS,
    describe_check,
    schema_failures,
)
from churn.data.sparse import SPARSE_FLOAT, dense


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

    The interactions come as every row read (``interactions_read``, its mostly empty number
    columns sparse) plus a mask of the rows to use (``interactions_accepted``: passed the
    contract and lie in the time range asked for; None: all). Dropping a handful of rejected
    rows from a 10M-row table means copying all of it, so that copy is made only when
    :attr:`interactions` is first asked for; feature building takes the mask instead
    (``rows=``) and never pays it."""

    accounts: pd.DataFrame
    interactions_read: pd.DataFrame
    rejects: dict[str, pd.DataFrame]
    reports: list[TableReport]
    attribute_history: pd.DataFrame | None = None
    interactions_accepted: np.ndarray | None = None

    @property
    def interactions(self) -> pd.DataFrame:
        """The accepted interactions as plain columns: the rejected rows are dropped here, and
        a mostly empty number column read sparse (:mod:`churn.data.sparse`) is made full
        length, once — a frame a notebook may edit in place (a sparse column refuses that)."""
        rows = None if self.interactions_accepted is None else np.flatnonzero(self.interactions_accepted)
        plain = dense(self.interactions_read, rows)
        self.interactions_read = plain if rows is None else plain.reset_index(drop=True)
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
            bad = (parsed.isna() & df[col].notna()).to_numpy() & (outside == 0)
            integers = bool(bad.any()) and all_integers(df[col])  # every value a number: Unix times, not dates
            reason = timestamp_reason(col, date_format, integers=integers)
            rej.add(bad, reason)
            reason_column[reason] = col
            if col == "churned_at" and (outside > 0).any():  # a CRM's "9999-12-31": never churned
                report.notes.append(f"churned_at: {int((outside > 0).sum()):,} value(s) after the year 2261 (e.g. 9999-12-31) read as 'not churned'")
                outside = np.minimum(outside, 0)
            rej.add(outside != 0, f"{col} {OUT_OF_RANGE}")
            reason_column[f"{col} {OUT_OF_RANGE}"] = col
            if integers:
                report.notes.append(
                    f"{col}: every value is an integer ({_shown(df[col].dropna().iloc[0])}, …): Unix time? "
                    "Give --date-format unix_s (seconds) or unix_ms (milliseconds), or date_format in churn.toml"
                )
            elif bad.any():
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
        if col in df.columns and df[col].dtype != np.float64 and df[col].dtype != SPARSE_FLOAT:
            parsed = pd.to_numeric(df[col], errors="coerce").astype(float)
            reason = f"{col} is not a number"
            rej.add(parsed.isna() & df[col].notna(), reason)
            reason_column[reason] = col
            df[col] = parsed
    for col in FLAGS[name]:
        if col in df.columns and str(df[col].dtype) != "boolean":
            df[col], bad = parse_flags(df[col])
            reason = f"{col} is not true/false"
            rej.add(bad, reason)
            reason_column[reason] = col
    for col in TEXT[name]:
        if col in df.columns and not (isinstance(df[col].dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(df[col].dtype)):
            df[col] = df[col].astype("str").where(df[col].notna())
    if name != "interactions":
        for col in _free_columns(name, df):
            df[col] = numbers_if_all_numeric(df[col])

    for (column, check), rows in schema_failures(name, df):
        reason = describe_check(column, check)
        mask = np.zeros(len(df), dtype=bool)
        mask[rows] = True
        if check == "not_nullable":  # a value that could not be read is not also "missing"
            for parse_reason in [r for r, c in reason_column.items() if c == column]:
                mask &= ~rej.reasons.get(parse_reason, np.zeros(len(df), dtype=bool))
        rej.add(mask, reason)
        reason_column[reason] = column
    return df, rej, reason_column, report


def _all_rejected(report: TableReport) -> str:
    """Why a table lost every row, with its notes (e.g. "Unix time? give --date-format unix_ms")."""
    top = "; ".join(f"{reason} ({n:,})" for reason, n in sorted(report.rejected.items(), key=lambda kv: -kv[1]))
    hints = "".join(f". {note}" for note in report.notes if "--date-format" in note)
    return f"all {report.rows_read:,} rows rejected: {top}{hints}"


def _free_columns(name: str, df: pd.DataFrame) -> list[str]:
    """Attribute columns: the ones the contract does not name."""
    known = {*REQUIRED[name], *TIMESTAMPS[name], *NUMBERS[name], *FLAGS[name], *TEXT[name], "account_id"}
    return [c for c in df.columns if c not in known]


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
    rejects = dense(raw, rows).copy()  # a file format or a database table takes plain floats
    rejects.insert(0, "source_row", rows + 2)  # header is line 1 of a CSV
    rejects["reject_reason"] = rej.reason_column(rows).to_numpy() if len(rows) else pd.Series(dtype="str")
    report.accepted = len(raw) - len(rows)
    return (~bad if len(rows) else None), rejects.reset_index(drop=True)


def _finish(raw: pd.DataFrame, df: pd.DataFrame, rej: _Rejections, reason_column: dict[str, str], report: TableReport) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`_judge`, then the accepted rows of ``df`` (a copy when any is rejected)."""
    accepted, rejects = _judge(raw, rej, reason_column, report)
    return (df if accepted is None else df.loc[accepted].reset_index(drop=True)), rejects


# --------------------------------------------------------------------------- validate


def _check_interactions(
    interactions_raw: pd.DataFrame | None,
    interactions_file: str,
    accounts: pd.DataFrame,
    rejects: dict[str, pd.DataFrame],
    reports: list[TableReport],
    *,
    date_format: str | None,
    now: pd.Timestamp,
    whole: bool,
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The interactions part of :func:`validate`: parsed rows and the mask of accepted ones
    (rejects and report added to ``rejects`` / ``reports``); empty for attribute-only data."""
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
        with ThreadPoolExecutor(1, thread_name_prefix="churn-duplicates") if len(df) >= PARALLEL_CHECK_ROWS else nullcontext() as pool:
            # the duplicate search (NumPy, mostly without the GIL) on the other core meanwhile
            duplicates = pool.submit(duplicated_rows, df) if pool is not None else None
            _reject_unknown_accounts(df["account_id"], accounts["account_id"], rejects["accounts"], rej, why)
            repeated = duplicates.result() if duplicates is not None else duplicated_rows(df)
        # Only rows with a readable time can repeat one another: 40,000 unreadable stamps are not "duplicates".
        rej.add(repeated & df["occurred_at"].notna().to_numpy(), "duplicate row")
        if len(interactions_raw) == 0:
            report_i.notes.append("no interaction rows: attribute-only snapshot data")
        missing_optional = [c for c in OPTIONAL_INTERACTION_COLUMNS if c not in df.columns]
        if missing_optional and len(interactions_raw):
            report_i.notes.append("optional columns absent (features needing them are skipped): " + ", ".join(missing_optional))
        accepted, rejects["interactions"] = _judge(interactions_raw, rej, why, report_i)
        if whole and len(interactions_raw) and report_i.accepted == 0:
            raise DataContractError(f"{interactions_file}: no usable interactions — {_all_rejected(report_i)}", {**rejects})
        interactions = df
        reports.append(report_i)
    return interactions, accepted


#: From this many interactions the duplicate-row search runs in a thread beside the account
#: check: on 6.9M rows the check took 0.10 s instead of 0.11–0.22 s, a step the rest of
#: `churn features` waits for.
PARALLEL_CHECK_ROWS = 1_000_000


def _in_history_order(history: pd.DataFrame) -> bool:
    """Whether the history is in the order :func:`validate` sorts it to already (by account, then
    time; an export usually is): checking costs a tenth of sorting 100,000 text ids."""
    ids, since = history["account_id"], history["valid_from"]
    if len(history) < 2 or ids.isna().any() or since.isna().any() or not ids.is_monotonic_increasing:
        return len(history) < 2
    same = ids.to_numpy()[1:] == ids.to_numpy()[:-1]
    stamps = since.array.asi8
    return bool(np.all(~same | (stamps[1:] >= stamps[:-1])))


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
    whole_tables: bool = True,
) -> ContractData:
    """Check the tables against the contract; raise only when the data is unusable — also when
    a table has rows and every one is rejected (a wrong date format, an export of another
    business): a run on none of its rows would pass for a run on the data.

    ``now`` (default: the wall clock) is the moment after which a timestamp cannot be real.
    ``whole_tables=False`` says the interactions are a time window of the table (then losing
    every row of the window is not yet losing the table)."""
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
        raise DataContractError(f"{accounts_file}: no usable accounts — {_all_rejected(report_a)}", {"accounts": rejects_a})
    accounts["account_id"] = accounts["account_id"].astype("str")
    rejects = {"accounts": rejects_a}
    reports = [report_a]

    interactions, accepted = _check_interactions(interactions_raw, interactions_file, accounts, rejects, reports, date_format=date_format, now=now, whole=whole_tables)
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
        if len(history_raw) and len(history) == 0:
            raise DataContractError(f"{history_file}: no usable attribute history — {_all_rejected(report_h)}", {**rejects})
        history["account_id"] = history["account_id"].astype("str")
        history = (history if _in_history_order(history) else history.sort_values(["account_id", "valid_from"], kind="stable")).reset_index(drop=True)
        reports.append(report_h)
    return ContractData(accounts, interactions, rejects, reports, history, accepted)


def validate_interactions(
    checked: ContractData, interactions_raw: pd.DataFrame | None, *, interactions_file: str, date_format: str | None, now: pd.Timestamp | None, whole_tables: bool
) -> ContractData:
    """:func:`validate` for a source whose accounts and attribute history ``checked`` holds,
    validated a moment ago (the end of the data's last-day load): only the interactions are
    checked — against those accounts —, the accounts' and history's rejects and reports kept."""
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    rejects, reports = {"accounts": checked.rejects["accounts"]}, [checked.reports[0]]
    interactions, accepted = _check_interactions(
        interactions_raw, interactions_file, checked.accounts, rejects, reports, date_format=date_format, now=now, whole=whole_tables
    )
    if "attribute_history" in checked.rejects:
        rejects["attribute_history"] = checked.rejects["attribute_history"]
    reports += [r for r in checked.reports if r.table == "attribute_history"]
    return ContractData(checked.accounts, interactions, rejects, reports, checked.attribute_history, accepted)


def load(
    folder: str | Path,
    *,
    interaction_columns: Sequence[str] | None = None,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
    date_format: str | None = None,
    now: pd.Timestamp | None = None,
    tables: SourceTables = SourceTables(),
    checked: ContractData | None = None,
    prefetched: "Prefetch[RawInteractions] | None" = None,
) -> ContractData:
    """Read and validate a data folder — or a database (``tables``: where its tables are).

    ``interaction_columns`` / ``since`` / ``until`` limit what is read of the (large)
    interactions table; accounts and attribute history are always read whole — unless
    ``checked``, an earlier load of the same source, holds them validated already
    (:func:`validate_interactions`; the end of the data's last-day load, reused by ``churn features``).
    ``prefetched``: the interactions being read already (:func:`read_window_early`), taken
    when it reads these columns of this time range (of these tables, from a database).
    """
    interaction_columns = _interaction_columns(interaction_columns)
    if is_database(folder):
        early = prefetched.take(_window_key(folder, interaction_columns, since, until, tables)) if prefetched is not None else None
        tables_read = read_database(str(folder), tables, interaction_columns, since, until, accounts_too=checked is None, early=early)
    else:
        tables_read = _read_folder(folder, tables, interaction_columns, since, until, accounts_too=checked is None, prefetched=prefetched)
    (accounts_raw, accounts_file), (interactions_raw, interactions_file), (history_raw, history_file) = tables_read
    whole = since is None and until is None
    if checked is not None:
        data = validate_interactions(checked, interactions_raw, interactions_file=interactions_file, date_format=date_format, now=now, whole_tables=whole)
    else:
        data = validate(
            accounts_raw,  # type: ignore[arg-type]
            interactions_raw,
            history_raw,
            accounts_file=accounts_file,
            interactions_file=interactions_file,
            history_file=history_file,
            date_format=date_format,
            now=now,
            whole_tables=whole,
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


Raw = tuple[pd.DataFrame | None, str]
#: The interactions table of a folder as read, and where it is (None: the folder has none).
RawInteractions = tuple[pd.DataFrame | None, "Location | None"]


def _interaction_columns(columns: Sequence[str] | None) -> list[str] | None:
    """The interaction columns to read: the required ones, then ``columns`` (None: all)."""
    return None if columns is None else list(dict.fromkeys([*REQUIRED["interactions"], *columns]))


def _window_key(
    folder: str | Path, columns: Sequence[str] | None, since: pd.Timestamp | None, until: pd.Timestamp | None, tables: SourceTables | None = None
) -> tuple[object, ...]:
    """What a read early is of (a database's: of which tables too)."""
    return (str(folder), None if columns is None else tuple(columns), since, until) + ((tables,) if is_database(folder) else ())


def _read_interactions(folder: str | Path, columns: Sequence[str] | None, since: pd.Timestamp | None, until: pd.Timestamp | None) -> RawInteractions:
    path = find_table(folder, "interactions")
    if path is None:
        return None, None
    return read_table(path, columns, time_column="occurred_at", since=since, until=until, categorical=CATEGORICAL, sparse=NUMBERS["interactions"]), path


def read_window_early(
    folder: str | Path,
    *,
    interaction_columns: Sequence[str] | None,
    since: pd.Timestamp | None,
    until: pd.Timestamp | None,
    tables: SourceTables = SourceTables(),
) -> "Prefetch[RawInteractions]":
    """Start reading the interactions a later ``load(folder, interaction_columns=…, since=…,
    until=…, tables=…, prefetched=…)`` of a data folder or database needs, in a background
    thread (:class:`Prefetch`; the database driver, too, decodes without holding the GIL)."""
    columns = _interaction_columns(interaction_columns)
    key = _window_key(folder, columns, since, until, tables)
    if is_database(folder):
        return Prefetch(key, lambda: read_interactions(str(folder), tables, columns, since, until))
    return Prefetch(key, lambda: _read_interactions(folder, columns, since, until))


def _read_folder(
    folder: str | Path,
    tables: SourceTables,
    interaction_columns: Sequence[str] | None,
    since: pd.Timestamp | None,
    until: pd.Timestamp | None,
    *,
    accounts_too: bool = True,
    prefetched: "Prefetch[RawInteractions] | None" = None,
) -> tuple[Raw, Raw, Raw]:
    """The three tables of a data folder as read (each with its file, for messages);
    ``accounts_too=False``: the interactions only (None for the others, checked already);
    ``prefetched``: its interactions, when they are what this asks for."""
    if not is_folder(folder):  # a local path or a URL (read.py): never Path(folder), which collapses "//"
        raise DataContractError(f"{folder}: no such data folder")
    accounts_path = find_table(folder, "accounts")
    if accounts_path is None:
        raise DataContractError(f"{folder}: no accounts table (expected accounts.parquet or accounts.csv)")
    history_path = find_table(folder, "attribute_history")
    early = prefetched.take(_window_key(folder, interaction_columns, since, until)) if prefetched is not None else None
    interactions_raw, interactions_path = early if early is not None else _read_interactions(folder, interaction_columns, since, until)
    return (
        (read_table(accounts_path) if accounts_too else None, str(accounts_path)),
        (interactions_raw, str(interactions_path or join(folder, "interactions"))),
        (read_table(history_path) if history_path is not None and accounts_too else None, str(history_path or join(folder, "attribute_history"))),
    )
