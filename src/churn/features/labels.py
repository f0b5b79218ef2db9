"""Churn labels at cutoffs, and the training table over many cutoffs.

The outcome window at cutoff T is ``[T, T + horizon)`` (features see ``t < T``); the rule is
:mod:`churn.data.population`'s, shared with "customer at T", the lapsed list and retention:

* Subscription data: a customer at T churns if ``churned_at`` ∈ [T, T + horizon).
* Transactional data (no ``churned_at`` values at all): a customer at T churns if it lapses in
  the window — its first qualifying event at or after T comes more than ``horizon`` after its
  last one before T, or never.
* Only customers at T are labelled (signed up before T, not churned before it; for
  transactional data, active in [T − horizon, T)).
* A cutoff whose window has not fully elapsed in the data (T + horizon after the end of the
  data) is refused for training. The end of the data is the day after the latest accepted
  interaction date (or given explicitly), never a signup or churn date: a scheduled
  cancellation next year must not make this month's labels look mature.
"""

from __future__ import annotations

import re
from typing import Callable

import pandas as pd

from churn.config import ChurnDefinition, FeatureConfig, to_utc
from churn.data.dataend import DECLARE_DATA_END, observed_until
from churn.data.population import churns_in_window, is_customer
from churn.features.build import build_features
from churn.features.spec import FeatureSpec

LABEL = "churned"


class ImmatureCutoffError(ValueError):
    """The label horizon after a cutoff is not fully observed yet."""


def check_mature(cutoffs: list[pd.Timestamp], definition: ChurnDefinition, data_end: pd.Timestamp) -> None:
    """Refuse cutoffs whose outcome window [T, T + horizon) extends past the end of the data."""
    immature = [t for t in cutoffs if t + definition.horizon > data_end]
    if immature:
        latest_ok = (data_end - definition.horizon).strftime("%Y-%m-%d")
        raise ImmatureCutoffError(
            f"cutoff(s) {', '.join(t.strftime('%Y-%m-%d') for t in immature)} cannot be labelled: "
            f"their {definition.horizon_days}-day horizon runs past the end of the data "
            f"({data_end:%Y-%m-%d}). The latest usable cutoff is {latest_ok}; if the export was taken later than its last "
            f"event, say when with {DECLARE_DATA_END}."
        )


def label_accounts(
    accounts: pd.DataFrame,
    interactions: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    definition: ChurnDefinition = ChurnDefinition(),
) -> pd.DataFrame:
    """``account_id``, ``as_of``, ``churned`` (0/1) for every customer at ``as_of``."""
    definition = definition.resolved(accounts)
    eligible = is_customer(accounts, interactions, as_of, definition)
    ids = accounts["account_id"].astype("str")
    label = churns_in_window(accounts, interactions, as_of, definition)
    out = pd.DataFrame({"account_id": ids[eligible].to_numpy(), LABEL: label[eligible].astype("int8")})
    out.insert(1, "as_of", pd.Series(as_of, index=out.index).astype("datetime64[ns, UTC]"))
    return out.sort_values("account_id", kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- cutoffs

_STEP = re.compile(r"^(\d+)([DWMQY])$", re.IGNORECASE)


def _offset(step: str) -> pd.DateOffset:
    m = _STEP.match(step.strip())
    if not m:
        raise ValueError(f"cutoff step {step!r} not understood: use e.g. 7D, 2W, 1M, 1Q or 1Y")
    n, unit = int(m.group(1)), m.group(2).upper()
    if n <= 0:
        raise ValueError(f"cutoff step must be positive, got {step!r}")
    return {
        "D": pd.DateOffset(days=n),
        "W": pd.DateOffset(weeks=n),
        "M": pd.DateOffset(months=n),
        "Q": pd.DateOffset(months=3 * n),
        "Y": pd.DateOffset(years=n),
    }[unit]


def parse_cutoffs(text: str) -> list[pd.Timestamp]:
    """``2024-01-01``, ``2024-01-01,2024-04-01`` or ``2024-01-01:2024-12-01:1M`` → sorted UTC dates."""
    text = text.strip()
    if not text:
        raise ValueError("no cutoffs given")
    if ":" in text and "," not in text and text.count(":") == 2 and "T" not in text:
        start_s, end_s, step = text.split(":")
        start, end = _parse_date(start_s), _parse_date(end_s)
        if end < start:
            raise ValueError(f"cutoff range ends before it starts: {text!r}")
        offset, out, t, i = _offset(step), [], start, 0
        while t <= end:
            out.append(t)
            i += 1
            t = start + offset * i
        return out
    return sorted({_parse_date(part) for part in text.split(",") if part.strip()})


def _parse_date(text: str) -> pd.Timestamp:
    try:
        return to_utc(text.strip())
    except (ValueError, TypeError):
        raise ValueError(f"cutoff {text.strip()!r} is not a date (use YYYY-MM-DD)") from None


def default_cutoffs(data_end: pd.Timestamp, definition: ChurnDefinition, count: int = 12) -> list[pd.Timestamp]:
    """The ``count`` latest month starts whose horizon is fully observed by ``data_end``."""
    latest = (data_end - definition.horizon).floor("D")
    last_month_start = latest.replace(day=1)
    return [last_month_start - pd.DateOffset(months=k) for k in range(count - 1, -1, -1)]


def schedule_cutoffs(
    history_start: pd.Timestamp | None,
    data_end: pd.Timestamp,
    definition: ChurnDefinition,
    *,
    count: int = 12,
    min_history_days: int = 30,
    max_weekly: int = 52,
) -> tuple[list[pd.Timestamp], str]:
    """Cutoffs that fit the data, and a sentence saying which and why.

    Monthly (the ``count`` latest mature month starts) when the history holds that many
    after ``min_history_days`` of events; otherwise weekly, back from the latest mature day —
    a short history gives four times the cutoffs, and so the rows, that months would."""
    latest = (data_end - definition.horizon).floor("D")
    earliest = (history_start + pd.Timedelta(days=min_history_days)).ceil("D") if history_start is not None else None
    monthly = [t for t in default_cutoffs(data_end, definition, count) if earliest is None or t >= earliest]
    if len(monthly) == count:
        return monthly, f"the {count} latest mature month starts"
    if earliest is None or earliest > latest:
        raise ImmatureCutoffError(
            f"the data holds no mature cutoff: it needs {min_history_days} days of history and a {definition.horizon_days}-day "
            f"horizon, and runs {'from ' + f'{history_start:%Y-%m-%d} ' if history_start is not None else ''}to {data_end:%Y-%m-%d}"
        )
    weeks = min(max_weekly, int((latest - earliest).days // 7) + 1)
    weekly = [latest - pd.Timedelta(weeks=k) for k in range(weeks - 1, -1, -1)]
    return weekly, f"weekly: the history is too short for {count} monthly cutoffs ({len(monthly)} would fit)"


# --------------------------------------------------------------------------- training table


def build_training_table(
    accounts: pd.DataFrame,
    interactions: pd.DataFrame,
    *,
    cutoffs: list[pd.Timestamp],
    definition: ChurnDefinition = ChurnDefinition(),
    config: FeatureConfig = FeatureConfig(),
    spec: FeatureSpec | None = None,
    data_end: pd.Timestamp | None = None,
    history: pd.DataFrame | None = None,
    progress: Callable[[pd.Timestamp], None] | None = None,
) -> pd.DataFrame:
    """Features + label for every customer at every (mature) cutoff, stacked.

    One row per (account, cutoff); ``as_of`` is the cutoff. Raises
    :class:`ImmatureCutoffError` for cutoffs whose horizon is not observed.
    """
    if not cutoffs:
        raise ValueError("no cutoffs given")
    check_mature(cutoffs, definition, data_end if data_end is not None else observed_until(accounts, interactions))
    definition = definition.resolved(accounts)
    spec = spec or FeatureSpec.from_data(accounts, interactions, config, history=history, before=max(cutoffs))
    parts = []
    for cutoff in sorted(cutoffs):
        features = build_features(accounts, interactions, as_of=cutoff, spec=spec, config=config, definition=definition, history=history)
        labels = label_accounts(accounts, interactions, as_of=cutoff, definition=definition)
        parts.append(features.merge(labels[["account_id", LABEL]], on="account_id", how="inner", validate="one_to_one"))
        if progress:
            progress(cutoff)
    table = pd.concat(parts, ignore_index=True)
    table[LABEL] = table[LABEL].astype("int8")
    return table


def label_rate_by_cutoff(table: pd.DataFrame) -> pd.DataFrame:
    """Rows and churn rate per cutoff: a quick sanity check of a training table."""
    grouped = table.groupby("as_of")[LABEL]
    return pd.DataFrame({"rows": grouped.size(), "churn_rate": grouped.mean().round(4)}).reset_index()


def churn_by_decile(table: pd.DataFrame, feature: str, bins: int = 10) -> pd.DataFrame:
    """Churn rate by ``feature``: per distinct value when it has few, else per decile.

    Shows how a driver relates to churn (e.g. churn rises with the number of long waits).
    """
    values = table[feature]
    if values.nunique(dropna=True) <= bins:
        key = values
    else:
        key = pd.qcut(values.rank(method="first"), q=bins, labels=False)
    grouped = table.groupby(key, observed=True, dropna=True)
    return pd.DataFrame(
        {
            "min": grouped[feature].min(),
            "max": grouped[feature].max(),
            "rows": grouped.size(),
            "churn_rate": grouped[LABEL].mean().round(4),
        }
    ).reset_index(drop=True)
