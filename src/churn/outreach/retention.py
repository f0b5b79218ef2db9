"""Actual retention rates: (E − N) / S per period, from the accounts table alone.

For a period [start, end), with a customer at moment t one whose spell ``(signup_at, churned_at]``
covers t (:mod:`churn.data.population`; transactional data has a spell per return, from
:func:`customer_spells`):

* S — customers at the start: signed up before ``start`` and not churned before it;
* N — new customers: spells starting in [start, end) (a win-back is a new customer);
* E — customers at the end: signed up before ``end`` and not churned before it;
* churned — customers lost during the period (S + N − E): spells ending in [start, end).

Retention rate = (E − N) / S × 100; churn rate = 100 − retention rate.
Worked example: S=1000, E=900, N=200 → 70 % retained, 30 % churned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Collection, Sequence

import numpy as np
import pandas as pd

from churn.config import ChurnDefinition
from churn.data.dataend import accounts_end
from churn.data.population import activity_spells

if TYPE_CHECKING:  # pragma: no cover
    from churn.data.contract import ContractData

FREQUENCIES = {"week": "W-MON", "month": "MS", "quarter": "QS", "year": "YS"}


def retention_rate(start_count: float, end_count: float, new_count: float) -> float:
    """(E − N) / S × 100; NaN when there were no customers at the start."""
    if start_count == 0:
        return float("nan")
    return (end_count - new_count) / start_count * 100.0


def customer_spells(accounts: pd.DataFrame, interactions: pd.DataFrame, definition: ChurnDefinition, data_end: pd.Timestamp) -> pd.DataFrame:
    """The rows retention counts: one per spell of being a customer, with the account's columns,
    ``signup_at`` = the spell's start and ``churned_at`` = its end (NaT: not lapsed by ``data_end``).

    Subscription data: ``accounts`` as recorded (one spell each). Transactional data: the spells
    of :func:`churn.data.population.activity_spells` — the same lapse rule as "customer at T",
    the labels and the lapsed list, so an account that lapses and comes back is counted lost in
    one period and new in a later one, never "retained" through its gap."""
    if definition.resolve_kind(accounts) != "inactivity":
        return accounts
    definition = definition.resolved(accounts)
    spells = activity_spells(accounts, interactions, definition, data_end)
    columns = accounts.drop(columns=[c for c in ("signup_at", "churned_at") if c in accounts.columns])
    columns = columns.assign(account_id=columns["account_id"].astype("str"))
    out = spells.merge(columns, on="account_id", how="left", validate="many_to_one")
    return out.rename(columns={"spell_start": "signup_at", "spell_end": "churned_at"})


def observed_start(data: "ContractData") -> pd.Timestamp:
    """Where the observed history begins: the first interaction, else the first signup.

    Accounts that were customers before the history starts are counted in S, but periods
    before the first interaction would show retention the data cannot support.
    """
    if len(data.interactions):
        return data.interactions["occurred_at"].min()
    return data.accounts["signup_at"].min()


def period_bounds(start: pd.Timestamp, end: pd.Timestamp, freq: str) -> pd.DatetimeIndex:
    """Boundaries of the complete periods inside [start, end]."""
    alias = FREQUENCIES.get(freq, freq)
    first = pd.Timestamp(start).tz_convert("UTC")
    bounds = pd.date_range(first.floor("D"), end, freq=alias, tz="UTC")
    return bounds


def retention_table(
    accounts: pd.DataFrame,
    *,
    freq: str = "month",
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    by: Sequence[str] = (),
) -> pd.DataFrame:
    """Retention per complete period (and per group in ``by``) between ``start`` and ``end``.

    ``end`` defaults to the day after the latest signup/churn; ``start`` to the earliest signup.
    Group columns are read from ``accounts`` (e.g. segment, plan, or a risk band you joined on).
    """
    signup = accounts["signup_at"]
    churned = accounts["churned_at"] if "churned_at" in accounts.columns else pd.Series(pd.NaT, index=accounts.index, dtype="datetime64[ns, UTC]")
    if end is None:
        end = accounts_end(accounts)
    if start is None:
        start = signup.min()
    bounds = period_bounds(start, end, freq)
    columns = ["period_start", "period_end", *by, "S", "N", "E", "churned", "retention_rate", "churn_rate"]
    if len(bounds) < 2:
        return pd.DataFrame(columns=columns)

    signup_ns = signup.to_numpy("datetime64[ns]").astype(np.int64)
    churn_ns = churned.to_numpy("datetime64[ns]").astype(np.int64)
    churn_ns = np.where(churned.isna().to_numpy(), np.iinfo(np.int64).max, churn_ns)
    keys = accounts[list(by)].astype("str").fillna("(missing)") if by else None

    rows = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        lo_ns, hi_ns = lo.value, hi.value
        at_start = (signup_ns < lo_ns) & (churn_ns >= lo_ns)
        new = (signup_ns >= lo_ns) & (signup_ns < hi_ns)
        at_end = (signup_ns < hi_ns) & (churn_ns >= hi_ns)
        frame = pd.DataFrame({"S": at_start, "N": new, "E": at_end})
        if keys is not None:
            counts = pd.concat([keys, frame], axis=1).groupby(list(by), observed=True).sum().reset_index()
        else:
            counts = frame.sum().to_frame().T
        counts.insert(0, "period_end", hi)
        counts.insert(0, "period_start", lo)
        rows.append(counts)
    table = pd.concat(rows, ignore_index=True)
    for col in ("S", "N", "E"):
        table[col] = table[col].astype("int64")
    table["churned"] = table["S"] + table["N"] - table["E"]
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = (table["E"] - table["N"]) / table["S"].where(table["S"] > 0) * 100.0
    table["retention_rate"] = rate.round(2)
    table["churn_rate"] = (100.0 - rate).round(2)
    return table[columns]


def churn_rate_interval(churned: int, accounts: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson interval of a churn rate: a control group of 20 cannot show a 5-point effect,
    and the report should say so rather than print two bare percentages."""
    from scipy.stats import binomtest

    interval = binomtest(churned, accounts).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


OUTREACH, CONTROL, NOT_CONTACTED, HELD_CONTROL, CONTACTED_EARLIER = "outreach", "control", "not contacted", "held control", "contacted earlier"


def list_groups(risk: pd.DataFrame, contacted_before: Collection[str] = ()) -> pd.Categorical:
    """Each account of one risk list in the list's own cohort, or why it is not.

    * ``outreach`` — called by this run (flagged again after an earlier call included);
    * ``control`` — held out by *this* run (``assigned_as_of`` is the list's ``as_of``, or
      unrecorded in lists from before assignments persisted);
    * ``held control`` — held out by an earlier run whose horizon still covers this one: listed
      with ``control=True`` at whatever rank it now has, it is that run's control, not this
      list's — it says nothing about this list's top;
    * ``contacted earlier`` — not called by this run, but assigned to outreach by an earlier run
      whose horizon still covers this one (the list records it with an earlier
      ``assigned_as_of``; ``contacted_before`` adds those the list could not know, e.g. a
      backfilled earlier date): that call changed its outcome, so it is no untouched account;
    * ``not contacted`` — the rest: nobody has called them within a horizon that covers them.
    """
    n = len(risk)
    outreach = risk["outreach"].to_numpy(dtype=bool)
    control = risk["control"].to_numpy(dtype=bool)
    earlier = np.zeros(n, dtype=bool)
    if {"assigned_as_of", "as_of"} <= set(risk.columns):
        earlier = (_utc(risk["assigned_as_of"]) < _utc(risk["as_of"])).to_numpy(dtype=bool)
    named = risk["account_id"].astype("str").isin(pd.Index(list(contacted_before), dtype="str")).to_numpy() if len(contacted_before) else np.zeros(n, dtype=bool)
    called_before = ~outreach & ((earlier & ~control) | named)
    codes = np.select([outreach, called_before, control & earlier, control], [0, 1, 2, 3], default=4)
    return pd.Categorical.from_codes(codes, categories=[OUTREACH, CONTACTED_EARLIER, HELD_CONTROL, CONTROL, NOT_CONTACTED])


def _utc(values: pd.Series) -> pd.Series:
    return values if isinstance(values.dtype, pd.DatetimeTZDtype) else pd.to_datetime(values, utc=True)


def list_outcomes(risk: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """What happened to one past risk list: actual churn per outreach group and risk band.

    ``labels`` holds ``account_id`` and ``churned`` (0/1) over the list's horizon, e.g.
    from :func:`churn.features.labels.label_accounts` at the list's ``as_of``. Each group is a fixed
    cohort (N = 0), so retention = (E − N) / S = retained / S. The control group's churn
    rate is the list's realised precision without any outreach effect; outreach vs. control
    is the effect of the calls — read it with the 95 % intervals, which are wide for small groups.
    "held control" are accounts an earlier run holds out (with ``assigned_as_of``): still not
    contacted, but not this list's controls (:mod:`churn.outreach.experiment` measures the effect);
    "contacted earlier" were called by an earlier run whose horizon covers this one — not
    untouched, so not in "not flagged" (:func:`list_groups`, as monitoring judges a list).
    """
    merged = risk.merge(labels[["account_id", "churned"]], on="account_id", how="inner")
    groups = np.asarray(list_groups(merged), dtype=object)
    merged["group"] = np.where(groups == NOT_CONTACTED, "not flagged", groups)  # the list's own cohort, as monitoring judges it
    rows = []
    for dimension, key in (("group", "group"), ("risk band", "risk_band")):
        for value, part in merged.groupby(key, sort=False):
            start, lost = len(part), int(part["churned"].sum())
            low, high = churn_rate_interval(lost, start)
            rows.append(
                {
                    "dimension": dimension,
                    "group": value,
                    "S": start,
                    "N": 0,
                    "E": start - lost,
                    "churned": lost,
                    "retention_rate": round(retention_rate(start, start - lost, 0), 2),
                    "actual_churn_rate": round(100.0 * lost / start, 2),
                    "churn_rate_ci_low": round(100.0 * low, 2),
                    "churn_rate_ci_high": round(100.0 * high, 2),
                    "predicted_churn_rate": round(100.0 * part["churn_probability"].mean(), 2),
                }
            )
    order = {"outreach": 0, "control": 1, "held control": 2, "contacted earlier": 3, "not flagged": 4, "high": 5, "medium": 6, "low": 7}
    return pd.DataFrame(rows).sort_values("group", key=lambda g: g.map(order)).reset_index(drop=True)
