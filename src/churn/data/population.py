"""Who is a customer at a moment T, and when an account lapses: the one rule shared by
features, labels, the lapsed list, retention and scoring.

Time convention (one for every stage): at a cutoff T the past is ``t < T`` and the outcome
window is ``[T, T + horizon)`` — an event at exactly T (a date-only export's cutoff day) is the
first day of the outcome, never invisible to both sides.

Every account has *spells* of being a customer, each a half-open stretch ``(start, end]``:

* Subscription data (``churned_at`` recorded): one spell, ``(signup_at, churned_at]``. An
  account whose ``churned_at`` is exactly T is still a customer at T, and churns in the
  outcome window that starts at T.
* Transactional data (no ``churned_at`` anywhere): each qualifying activity at ``a`` (signup
  counts as one) keeps the account a customer until ``a + horizon``. An account **lapses** at
  ``a + horizon`` when no qualifying activity follows within the horizon; a later activity
  starts a new spell (a win-back, counted as a new customer by retention).

So, with ``L`` the end of the spell that covers T:

* customer at T  ⇔ signed up before T and ``L ≥ T`` (transactional: a qualifying activity
  in ``[T − horizon, T)``, signup included);
* churned at T   ⇔ a customer at T and ``L ∈ [T, T + horizon)`` — for transactional data, the
  first qualifying activity at or after T comes more than ``horizon`` after the last one before
  T (no activity at all in the window is the common case; a lapse and a return inside the
  window is a churn too: the account stopped being a customer);
* lapsed at T    ⇔ signed up before T and not a customer (transactional: the win-back list);
* retention counts spells: S and E are the customers at the period's bounds, N the spells
  starting in it.

Worked example (horizon 30 days, date-only purchases): purchases on 1 March and 20 April.
The account is a customer on (1 Mar, 31 Mar]; it lapses on 31 March; it is a customer again on
(20 Apr, 20 May]. At T = 15 March it is a customer and labelled churned (lapse on 31 March,
inside [15 Mar, 14 Apr)); at T = 10 April it is on the lapsed list; at T = 25 April it is a
customer again. March's retention counts it lost, April's counts it new.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from churn.config import ChurnDefinition
from churn.data.frames import codes_for

NS_PER_DAY = 86_400 * 10**9


def qualifying_rows(interactions: pd.DataFrame, definition: ChurnDefinition) -> np.ndarray:
    """Boolean mask over ``interactions``: the events that count as "still a customer" (all
    events unless the definition names types). The one rule used by labels and by
    :func:`last_activity`."""
    if not definition.activity_event_types:
        return np.ones(len(interactions), dtype=bool)
    return codes_for(interactions["event_type"], list(definition.activity_event_types)) >= 0


def _qualifying_events(
    ids: pd.Index, interactions: pd.DataFrame, definition: ChurnDefinition, when: Callable[[np.ndarray], np.ndarray], rows: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Nanosecond times of the interactions and, per row, the position of its account in
    ``ids`` — −1 for rows that do not count: not qualifying activity, outside ``rows``, at a
    time ``when`` rejects, or of an unknown account. The one lookup last/next activity and the
    spells share."""
    if not len(interactions):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    t = interactions["occurred_at"].to_numpy("datetime64[ns]").astype(np.int64)
    use = when(t)
    if rows is not None:
        use &= rows
    if definition.activity_event_types:
        use &= qualifying_rows(interactions, definition)
    account = interactions["account_id"]
    if isinstance(account.dtype, pd.CategoricalDtype) or use.all():
        codes = codes_for(account, ids)  # a categorical: one lookup per category
    else:  # text: look up only the rows that count
        codes = np.full(len(t), -1, dtype=np.int64)
        codes[use] = codes_for(account[use], ids)
    return t, np.where(use, codes, -1)


def last_activity(
    accounts: pd.DataFrame, interactions: pd.DataFrame, as_of: pd.Timestamp, definition: ChurnDefinition, *, rows: np.ndarray | None = None
) -> pd.Series:
    """Latest qualifying event strictly before ``as_of`` per account, else its signup (aligned with ``accounts``).

    ``rows`` (a boolean mask over ``interactions``; None: all) names the rows that count."""
    ids = pd.Index(accounts["account_id"].astype("str"))
    latest = np.full(len(ids), np.iinfo(np.int64).min, dtype=np.int64)
    t, codes = _qualifying_events(ids, interactions, definition, lambda t: t < as_of.value, rows)
    np.maximum.at(latest, codes[codes >= 0], t[codes >= 0])
    signup = accounts["signup_at"].to_numpy("datetime64[ns]").astype(np.int64)
    latest = np.maximum(latest, signup)
    return pd.Series(pd.to_datetime(latest, utc=True), index=accounts.index).astype("datetime64[ns, UTC]")


def is_customer(
    accounts: pd.DataFrame, interactions: pd.DataFrame, as_of: pd.Timestamp, definition: ChurnDefinition, *, rows: np.ndarray | None = None
) -> np.ndarray:
    """Boolean mask over ``accounts``: customers at ``as_of`` under ``definition`` (``rows``:
    which interactions count, as for :func:`last_activity`).

    Pass a resolved definition (:meth:`ChurnDefinition.resolved`) when computing on a part of
    the accounts; ``kind="auto"`` is resolved on the accounts given."""
    definition = definition.resolved(accounts)
    signed_up = (accounts["signup_at"] < as_of).to_numpy()
    if definition.kind == "subscription":
        if "churned_at" not in accounts.columns:
            return signed_up
        return signed_up & ~(accounts["churned_at"] < as_of).fillna(False).to_numpy()
    recent = last_activity(accounts, interactions, as_of, definition, rows=rows) >= as_of - definition.horizon
    return signed_up & recent.to_numpy()


def churns_in_window(
    accounts: pd.DataFrame, interactions: pd.DataFrame, as_of: pd.Timestamp, definition: ChurnDefinition, *, rows: np.ndarray | None = None
) -> np.ndarray:
    """Boolean mask over ``accounts``: the spell covering ``as_of`` ends in ``[as_of, as_of + horizon)``
    (meaningful for the customers at ``as_of``; the caller checks the window is observed).

    Subscription: ``churned_at`` in the window. Transactional: the first qualifying activity at
    or after ``as_of`` comes more than ``horizon`` after the last one before it (or never)."""
    definition = definition.resolved(accounts)
    end = as_of + definition.horizon
    if definition.kind == "subscription":
        if "churned_at" not in accounts.columns:
            return np.zeros(len(accounts), dtype=bool)
        churned_at = accounts["churned_at"]
        return ((churned_at >= as_of) & (churned_at < end)).fillna(False).to_numpy()
    before = last_activity(accounts, interactions, as_of, definition, rows=rows).array.asi8
    after = next_activity(accounts, interactions, as_of, definition, rows=rows)
    never = after == np.iinfo(np.int64).max
    return never | (np.where(never, 0, after) - before > definition.horizon.value)


def next_activity(
    accounts: pd.DataFrame, interactions: pd.DataFrame, as_of: pd.Timestamp, definition: ChurnDefinition, *, rows: np.ndarray | None = None
) -> np.ndarray:
    """Nanoseconds of the first qualifying event at or after ``as_of`` per account (aligned with
    ``accounts``; int64 max when there is none)."""
    ids = pd.Index(accounts["account_id"].astype("str"))
    first = np.full(len(ids), np.iinfo(np.int64).max, dtype=np.int64)
    t, codes = _qualifying_events(ids, interactions, definition, lambda t: t >= as_of.value, rows)
    np.minimum.at(first, codes[codes >= 0], t[codes >= 0])
    return first


def activity_spells(
    accounts: pd.DataFrame, interactions: pd.DataFrame, definition: ChurnDefinition, data_end: pd.Timestamp, *, rows: np.ndarray | None = None
) -> pd.DataFrame:
    """Transactional data: every spell of every account as ``account_id``, ``spell_start``,
    ``spell_end`` — a customer on ``(spell_start, spell_end]`` — from its signup and its
    qualifying events before ``data_end``. ``spell_end`` is NaT while the lapse is not yet
    observed (``last activity + horizon ≥ data_end``). Events before signup are ignored (the
    account was not a customer then)."""
    ids = accounts["account_id"].astype("str")
    signup = accounts["signup_at"].to_numpy("datetime64[ns]").astype(np.int64)
    t, codes = _qualifying_events(pd.Index(ids), interactions, definition, lambda t: t < data_end.value, rows)
    keep = codes >= 0
    keep[keep] &= t[keep] >= signup[codes[keep]]
    account, t = np.concatenate([np.arange(len(ids)), codes[keep]]), np.concatenate([signup, t[keep]])
    order = np.lexsort((t, account))
    account, t = account[order], t[order]
    horizon = definition.horizon.value
    starts = np.r_[True, (account[1:] != account[:-1]) | (t[1:] - t[:-1] > horizon)]
    spell = np.cumsum(starts) - 1
    last = np.full(int(spell[-1]) + 1 if len(spell) else 0, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last, spell, t)
    end = last + horizon
    ended = pd.Series(pd.to_datetime(end, utc=True)).where(end < data_end.value)
    return pd.DataFrame(
        {
            "account_id": ids.to_numpy()[account[starts]],
            "spell_start": pd.Series(pd.to_datetime(t[starts], utc=True)).astype("datetime64[ns, UTC]"),
            "spell_end": ended.astype("datetime64[ns, UTC]"),
        }
    )


def lapsed(
    accounts: pd.DataFrame, interactions: pd.DataFrame, as_of: pd.Timestamp, definition: ChurnDefinition, *, rows: np.ndarray | None = None
) -> pd.DataFrame:
    """Transactional data: accounts that signed up before ``as_of`` but have not been active
    within the horizon — already churned, a win-back list. Empty for subscription data.

    Columns: ``account_id``, ``last_activity``, ``lapsed_on`` (last activity + horizon: the
    last moment it counted as a customer, the end of its spell) and ``days_lapsed`` (since
    then), most recent first."""
    definition = definition.resolved(accounts)
    if definition.kind == "subscription":
        return pd.DataFrame(
            {
                "account_id": pd.Series(dtype="str"),
                "last_activity": pd.Series(dtype="datetime64[ns, UTC]"),
                "lapsed_on": pd.Series(dtype="datetime64[ns, UTC]"),
                "days_lapsed": pd.Series(dtype="float64"),
            }
        )
    signed_up = (accounts["signup_at"] < as_of).to_numpy()
    last = last_activity(accounts, interactions, as_of, definition, rows=rows)
    gone = signed_up & (last < as_of - definition.horizon).to_numpy()
    out = pd.DataFrame({"account_id": accounts["account_id"].astype("str").to_numpy()[gone], "last_activity": last[gone].to_numpy()})
    out["last_activity"] = out["last_activity"].astype("datetime64[ns, UTC]")
    out["lapsed_on"] = out["last_activity"] + definition.horizon
    out["days_lapsed"] = ((as_of - out["lapsed_on"]).dt.total_seconds() / 86_400).round(1)
    return out.sort_values(["days_lapsed", "account_id"], kind="stable").reset_index(drop=True)


def horizon_misfit(interactions: pd.DataFrame, definition: ChurnDefinition, *, min_gaps: int = 50, max_share: float = 0.10) -> str | None:
    """For inactivity churn: a warning when accounts routinely come back after a longer pause
    than the horizon — e.g. monthly purchases (31-day gaps) against a 30-day horizon. Then an
    account merely between two purchases is labelled churned (and counted as lapsed), and the
    model learns "bought yesterday = about to churn". None when the horizon fits."""
    if definition.kind != "inactivity" or len(interactions) == 0:
        return None
    use = qualifying_rows(interactions, definition)
    t = interactions["occurred_at"].to_numpy("datetime64[ns]").astype(np.int64)[use]
    ids = interactions["account_id"]
    codes = ids.cat.codes.to_numpy() if isinstance(ids.dtype, pd.CategoricalDtype) else pd.factorize(ids.to_numpy())[0]
    account = codes[use]
    order = np.lexsort((t, account))
    t, account = t[order], account[order]
    same = account[1:] == account[:-1]
    gaps = (t[1:] - t[:-1])[same & (t[1:] > t[:-1])] / NS_PER_DAY  # repeats on one instant are not a return
    if len(gaps) < min_gaps:
        return None
    longer = float((gaps > definition.horizon_days).mean())
    if longer < max_share:
        return None
    median, high = np.percentile(gaps, [50, 95])
    suggest = int(np.ceil(high / 5.0) * 5)
    return (
        f"{longer:.0%} of the returns of an account come after a pause longer than the {definition.horizon_days}-day horizon "
        f"(median gap {median:.0f} days, 95th percentile {high:.0f}): an account between two purchases is labelled churned "
        f"and counted as lapsed. A horizon of about {suggest} days (--horizon {suggest}) fits this rhythm."
    )
