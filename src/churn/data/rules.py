"""The row rules of the data contract, stated once.

:data:`SCREEN` says, per table and column, what a parsed value must satisfy (type, missing
allowed or not, non-blank text, a range). The pandera schemas (:func:`schemas`) are built from
it, and the same rules run vectorised on whole columns (:func:`screen_column`), so clean data
is checked without importing pandera and the rows the screen flags get pandera's named failures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from churn.config import SURVEY_RANGES
from churn.data.sparse import dense, filled, is_sparse

if TYPE_CHECKING:  # pragma: no cover
    import pandera.pandas as pandera




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


def non_empty(s: pd.Series) -> pd.Series:
    """True where a text value is not blank (checked once per category for categoricals)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        ok = np.append(s.cat.categories.astype("str").str.strip().str.len().to_numpy() > 0, True)
        if ok.all():  # no blank category: every row passes, without looking up ten million codes
            return pd.Series(True, index=s.index)
        return pd.Series(ok[s.cat.codes.to_numpy()], index=s.index)
    return s.astype("str").str.strip().str.len() > 0


@dataclass(frozen=True)
class ColumnScreen:
    """What one column must satisfy, in a form NumPy can evaluate on a whole column and
    :func:`schemas` can turn into a pandera column (``tests/test_contract.py`` reads the
    schemas back and compares, so the two can never say different things)."""

    dtype: str | None = None
    nullable: bool = True
    non_empty: bool = False
    min_value: float | None = None
    max_value: float | None = None


_ID = ColumnScreen(nullable=False, non_empty=True)


_UTC = "datetime64[ns, UTC]"


#: The row rules, per table and column: the one place they are stated.
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


@cache
def schemas() -> dict[str, "pandera.DataFrameSchema"]:
    """The pandera schema of each table, built from :data:`SCREEN`: what a parsed row must
    satisfy, with a named check per rule (so a reject says which).

    Built on first use: importing pandera costs more than checking a clean 10M-row table,
    so clean, already-typed data is screened with :data:`SCREEN` directly and pandera runs
    only on the rows the screen flags (:func:`schema_failures`)."""
    import pandera.pandas as pa

    def column(table: str, name: str, rule: ColumnScreen) -> "pa.Column":
        checks = [pa.Check(non_empty, name="non_empty")] if rule.non_empty else []
        if rule.min_value is not None and rule.max_value is not None:
            checks.append(pa.Check.in_range(rule.min_value, rule.max_value))
        elif rule.min_value is not None:
            checks.append(pa.Check.ge(rule.min_value))
        elif rule.max_value is not None:
            checks.append(pa.Check.le(rule.max_value))
        return pa.Column(rule.dtype, checks=checks, nullable=rule.nullable, required=name in REQUIRED[table])

    return {
        table: pa.DataFrameSchema({name: column(table, name, rule) for name, rule in rules.items()}, strict=False)
        for table, rules in SCREEN.items()
    }


def screen_column(values: pd.Series, rule: ColumnScreen) -> np.ndarray:
    """Rows of one column that fail ``rule`` (missing values fail only a non-nullable rule).
    A float column is compared in place (NaN compares false), not copied."""
    bad = np.zeros(len(values), dtype=bool)
    if is_sparse(values) and rule.nullable and not rule.non_empty:  # only the filled rows can fail
        at, numbers = filled(values)
        bad[at] = _out_of_range(numbers, rule)
        return bad
    if not rule.nullable or rule.non_empty:
        missing = values.isna().to_numpy()
        if not rule.nullable:
            bad |= missing
        if rule.non_empty:
            bad |= ~non_empty(values).to_numpy(dtype=bool) & ~missing
    if rule.min_value is not None or rule.max_value is not None:
        bad |= _out_of_range(values.to_numpy() if values.dtype == np.float64 else values.to_numpy(dtype=float, na_value=np.nan), rule)
    return bad


def _out_of_range(v: np.ndarray, rule: ColumnScreen) -> np.ndarray:
    bad = np.zeros(len(v), dtype=bool)
    with np.errstate(invalid="ignore"):
        if rule.min_value is not None:
            bad |= v < rule.min_value
        if rule.max_value is not None:
            bad |= v > rule.max_value
    return bad


def describe_check(column: str, check: str) -> str:
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


def _held_as(values: pd.Series) -> str:
    """The column's type as the schema names it (a sparse float column holds float64)."""
    return str(values.dtype.subtype) if is_sparse(values) else str(values.dtype)


def schema_failures(name: str, df: pd.DataFrame) -> list[tuple[tuple[str, str], np.ndarray]]:
    """Rows failing the pandera schema of table ``name``, as ((column, check), row positions).

    Parsed columns already have the schema's types, so the vectorised :data:`SCREEN` finds
    every row that can fail; pandera then checks only those rows and names the failures.
    Clean data never imports pandera. A column of an unexpected type sends the whole table
    through pandera."""
    rules = SCREEN[name]
    checked = [c for c in rules if c in df.columns]
    typed = all(rules[c].dtype is None or _held_as(df[c]) == rules[c].dtype for c in checked)
    if typed:
        suspect = np.zeros(len(df), dtype=bool)
        for col in checked:
            suspect |= screen_column(df[col], rules[col])
        if not suspect.any():
            return []
        frame = dense(df[checked], np.flatnonzero(suspect))  # index labels stay row positions
    else:
        frame = dense(df[checked])
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
