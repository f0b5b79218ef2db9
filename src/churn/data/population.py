"""Who is a customer at a cutoff T: the one rule shared by features, labels, retention and scoring.

* Subscription data (``churned_at`` recorded): an account is a customer at T if it signed up
  before T and had not churned by T.
* Transactional data (no ``churned_at`` anywhere): an account is a customer at T if it signed
  up before T and its last qualifying activity (or its signup, if it never did anything)
  falls in (T − horizon, T). The others have already lapsed — they are a win-back list,
  never the outreach list, and they are not labelled for training either.

Only events strictly before T are looked at, as for features.
"""

from __future__ import annotations

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


def last_activity(
    accounts: pd.DataFrame, interactions: pd.DataFrame, as_of: pd.Timestamp, definition: ChurnDefinition, *, rows: np.ndarray | None = None
) -> pd.Series:
    """Latest qualifying event strictly before ``as_of`` per account, else its signup (aligned with ``accounts``).

    ``rows`` (a boolean mask over ``interactions``; None: all) names the rows that count."""
    ids = pd.Index(accounts["account_id"].astype("str"))
    latest = np.full(len(ids), np.iinfo(np.int64).min, dtype=np.int64)
    if len(interactions):
        t = interactions["occurred_at"].to_numpy("datetime64[ns]").astype(np.int64)
        use = t < as_of.value
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
        keep = use & (codes >= 0)
        np.maximum.at(latest, codes[keep], t[keep])
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
        return signed_up & ~(accounts["churned_at"] <= as_of).fillna(False).to_numpy()
    recent = last_activity(accounts, interactions, as_of, definition, rows=rows) > as_of - definition.horizon
    return signed_up & recent.to_numpy()


def lapsed(
    accounts: pd.DataFrame, interactions: pd.DataFrame, as_of: pd.Timestamp, definition: ChurnDefinition, *, rows: np.ndarray | None = None
) -> pd.DataFrame:
    """Transactional data: accounts that signed up before ``as_of`` but have not been active
    within the horizon — already churned, a win-back list. Empty for subscription data.

    Columns: ``account_id``, ``last_activity``, ``lapsed_on`` (last activity + horizon: the day
    it stopped counting as a customer) and ``days_lapsed`` (since then), most recent first."""
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
    gone = signed_up & (last <= as_of - definition.horizon).to_numpy()
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
