"""Account attributes at a cutoff, without leaking the export date's values into the past.

The accounts table is an export: ``plan``, ``mrr`` or ``status`` hold the values of the day
it was taken. Used at an earlier cutoff they tell the model the future — a ``status`` of
"cancelled" predicts churn perfectly, and a price rise after the cutoff shows up as a higher
``mrr`` before it. Each attribute therefore gets one of three sources:

* ``history`` — it has rows in the ``attribute_history`` table: at each cutoff the value valid
  then is used (the latest row with ``valid_from`` strictly before the cutoff; a blank cell in a
  history row means "unchanged"). Before its first row the value is unknown.
* ``static`` — declared in the settings as never changing after signup (``signup_channel``,
  ``country``): the export's value is true at every cutoff.
* ``export`` — anything else: the export's value is true only at cutoffs on or after the export
  date (``attributes_as_of``, by default the end of the data), i.e. a snapshot scored on the
  day it was taken. At earlier cutoffs the attribute is dropped, and the run says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from churn.config import DataSettings

#: Account columns that are never features: keys and dates, and ``owner`` — the account
#: manager is who calls the customer, not something about the customer (and managers are
#: often assigned *because* an account is at risk).
NON_ATTRIBUTE_COLUMNS = frozenset({"account_id", "signup_at", "churned_at", "valid_from", "owner"})
Source = Literal["history", "static", "export"]


@dataclass(frozen=True)
class AttributeDecision:
    """Whether one attribute is used as a feature, from which source, and why."""

    name: str
    source: Source
    used: bool
    reason: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def attribute_columns(accounts: pd.DataFrame, history: pd.DataFrame | None = None) -> list[str]:
    """Candidate attribute columns: every non-key, non-date column of accounts and history."""
    names = [c for c in accounts.columns if c not in NON_ATTRIBUTE_COLUMNS and not isinstance(accounts[c].dtype, pd.DatetimeTZDtype)]
    if history is not None:
        names += [c for c in history.columns if c not in NON_ATTRIBUTE_COLUMNS and c not in names]
    return names


def plan_attributes(
    accounts: pd.DataFrame,
    history: pd.DataFrame | None,
    *,
    cutoffs: Sequence[pd.Timestamp],
    settings: DataSettings,
    export_date: pd.Timestamp,
) -> list[AttributeDecision]:
    """Decide, per attribute, whether its value is known at every cutoff in ``cutoffs``.

    ``export_date`` is when the accounts table's values were taken (``settings.attributes_as_of``
    wins over it when set)."""
    export_date = settings.attributes_as_of or export_date
    in_history = set(history.columns) - NON_ATTRIBUTE_COLUMNS if history is not None else set()
    static = set(settings.static_attributes)
    earliest = min(cutoffs) if cutoffs else export_date
    decisions = []
    for name in attribute_columns(accounts, history):
        if name in in_history:
            decisions.append(AttributeDecision(name, "history", True, "value valid at each cutoff, from attribute_history"))
        elif name in static:
            decisions.append(AttributeDecision(name, "static", True, "declared static (never changes after signup)"))
        elif earliest >= export_date:
            decisions.append(AttributeDecision(name, "export", True, f"export values ({export_date:%Y-%m-%d}) at cutoffs on or after the export"))
        else:
            decisions.append(
                AttributeDecision(
                    name,
                    "export",
                    False,
                    f"value at the export date ({export_date:%Y-%m-%d}) is unknown at the cutoff {earliest:%Y-%m-%d}: "
                    "give its attribute_history, or declare it static if it never changes",
                )
            )
    unknown_static = sorted(static - {d.name for d in decisions})
    for name in unknown_static:
        decisions.append(AttributeDecision(name, "static", False, "declared static but not a column of the data"))
    return decisions


def attributes_at(
    accounts: pd.DataFrame, history: pd.DataFrame | None, as_of: pd.Timestamp, history_columns: Sequence[str]
) -> pd.DataFrame:
    """``accounts`` with each column in ``history_columns`` replaced by its value at ``as_of``.

    Row order and index are those of ``accounts``. The value at ``as_of`` is the latest
    history row with ``valid_from < as_of`` (strictly before, like events), blanks carried
    forward from the account's earlier rows; before an account's first row it is missing."""
    history_columns = [c for c in history_columns if history is not None and c in history.columns]
    if not history_columns:
        return accounts
    assert history is not None
    past = history[history["valid_from"] < as_of]
    if past.empty:
        values = pd.DataFrame(index=pd.Index([], name="account_id"), columns=history_columns)
    else:
        # the account's rows by number (one hash pass over the text ids, shared by the fill and
        # the pick of each account's last row; a drop_duplicates on text hashed them again)
        past = past[past["account_id"].notna()]  # a row without an account is nobody's
        codes, uniques = pd.factorize(past["account_id"].to_numpy())
        filled = past[history_columns].groupby(codes, sort=False).ffill()
        last = pd.Series(np.arange(len(codes))).groupby(codes, sort=False).max().to_numpy()
        values = filled.iloc[last].set_axis(pd.Index(uniques, name="account_id"))
    out = accounts.copy()
    # one lookup of every account for all the columns (mapping each column hashed the ids anew)
    aligned = values.reindex(accounts["account_id"].astype("str").to_numpy()) if len(values) else None
    for col in history_columns:
        out[col] = aligned[col].to_numpy() if aligned is not None else np.nan
    return out


def unknown_at(
    names: Sequence[str], accounts: pd.DataFrame, history: pd.DataFrame | None, *, as_of: pd.Timestamp, settings: DataSettings, export_date: pd.Timestamp
) -> list[AttributeDecision]:
    """The attributes among ``names`` whose value at ``as_of`` the data does not hold — a value
    read from an export taken after ``as_of`` that may have changed since (not static, no
    history) — with why. For a run at a past date (a backfill, a re-score): scoring with a
    plan or status from a later export is the classic leak, so the run says so."""
    wanted = set(names)
    return [d for d in plan_attributes(accounts, history, cutoffs=[as_of], settings=settings, export_date=export_date) if d.name in wanted and not d.used]
