"""The built-in synthetic subscription business: realistic enough to learn from, fully planted.

The generator simulates month by month (one vectorised NumPy step per month, never a
Python loop per account or per event). Each account carries a latent *dissatisfaction*
state ``s`` that rises with high-effort service and decays over time. Churn in month
m + 1 is drawn from a monthly hazard computed at the end of month m, so every cause is
visible in the data *before* the churn it drives.

Planted effects (tests and notebooks check the model finds them):

* **Support effort** raises ``s``. Per case:
  ``0.45·long_waits + 0.35·(contacts − 1) + 0.50·channel_switches + 0.30·transfers
  + 0.80·[case left unresolved]``; ``s ← 0.7·s + effort``.
  Long waits = wait > 600 s on live channels, > 24 h on email/social.
  Waits are heavy-tailed (log-normal), slower in APAC/LATAM, faster for premium plans,
  and double during a staffing crisis (months ``months//3`` to ``months//3 + 2``).
* **Usage** (logins, feature_use) falls as ``exp(−0.6·s)``; 20 % of accounts also drift
  towards disengagement on their own. Low current engagement raises the hazard.
* **Surveys** answer the effort: CES/CSAT after ~30 % of cases fall with the case's
  effort; relationship NPS (8 % of accounts a month) falls with ``s``.
* **Contract**: monthly contracts churn about twice as often as annual ones.
* **Price increases**: at month ``months//2`` half the monthly-contract basic/standard
  accounts get +12–20 % (plus 1 % of accounts each month at random); the hazard rises
  for the two months after the higher invoice.
* Enterprise accounts churn less; everyone has noise on top.

Attributes. ``plan``, ``contract``, ``segment`` and ``region`` never change after signup
(the folder's ``churn.toml`` declares them static); ``mrr`` changes with price rises, so the
accounts table holds its value at the end of the data (as a real export would) and
``attribute_history`` one row per value (at signup, then at each rise, effective from the
start of the month of the rise).

Monthly logit hazard, with the saturation and interactions real churn has (so a linear
model is a fair baseline, not the truth)::

    −5.1 + 2.6·tanh(s / 1.8)·(1 if monthly else 0.5)   # effort saturates; annual contracts blunt it
         + 0.75·[monthly]
         + [price rise in the last 2 months]·(1.6 if low engagement else 0.4)
         + 1.0·[low engagement] − 0.5·[enterprise] + N(0, 0.35)

which gives 2–4 % monthly churn.

Ground truth for the reasons. ``GeneratedData.causes`` records, for every account still a
customer at the start of a month, the terms of that month's logit: ``effort`` (the tanh
term), ``monthly_contract`` (0.75), ``price_rise`` (the rise term), ``low_engagement``
(1.0), ``enterprise`` (−0.5) and ``noise``, with ``logit`` and ``hazard``. The *dominant
planted cause* is the largest positive of the four causes, and its driver family
(:data:`CAUSE_FAMILIES`) is what a correct lead reason names: effort → ``support_effort``,
low engagement → ``usage``, price rise → ``billing``, monthly contract → ``contract``
(context: nothing an agent can change on a call). The state behind row ``month_start = T``
is the end of the month before T, so it is exactly what a model scoring at cutoff T may
know. The causes are never written to a data folder: the product must not see them.
Recording them draws no random number, so a seed gives the same business as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from churn.config import ACTIONABLE_DRIVERS, ASYNC_CHANNELS, SETTINGS_FILE, to_utc
from churn.data.io import write_table, write_text

NS_PER_DAY = 86_400 * 10**9
NEVER = np.iinfo(np.int64).max

PLANS = np.array(["basic", "standard", "premium"])
PLAN_P = [0.5, 0.35, 0.15]
PLAN_MRR = np.array([19.0, 49.0, 129.0])
SEGMENTS = np.array(["consumer", "smb", "enterprise"])
SEGMENT_P = [0.6, 0.3, 0.1]
SEGMENT_MRR = np.array([1.0, 3.0, 12.0])
SEGMENT_ANNUAL_P = np.array([0.25, 0.4, 0.7])
REGIONS = np.array(["na", "emea", "apac", "latam"])
REGION_P = [0.4, 0.35, 0.15, 0.1]
REGION_WAIT = np.array([1.0, 1.1, 1.5, 1.7])

CHANNELS = np.array(["phone", "email", "chat", "chatbot", "social", "messaging", "video", "self_service"])
# First-contact channel preferences by segment (rows: consumer, smb, enterprise).
CHANNEL_P = np.array(
    [
        [0.18, 0.14, 0.20, 0.20, 0.07, 0.08, 0.01, 0.12],
        [0.26, 0.22, 0.20, 0.10, 0.03, 0.06, 0.03, 0.10],
        [0.35, 0.30, 0.12, 0.04, 0.01, 0.04, 0.08, 0.06],
    ]
)
WAIT_MEDIAN_S = np.array([180.0, 14_400.0, 60.0, 3.0, 10_800.0, 300.0, 120.0, 0.0])
HANDLE_MEDIAN_S = np.array([420.0, 300.0, 540.0, 120.0, 240.0, 360.0, 900.0, 0.0])
RESOLVE_P = np.array([0.78, 0.62, 0.68, 0.38, 0.5, 0.6, 0.8, 0.32])
TRANSFER_P = np.array([0.14, 0.04, 0.08, 0.02, 0.02, 0.04, 0.1, 0.0])
# Where a customer goes next when the channel failed them (index into CHANNELS).
ESCALATE_TO = np.array([0, 0, 0, 2, 5, 0, 0, 3])
LONG_WAIT_S = np.where(np.isin(CHANNELS, list(ASYNC_CHANNELS)), 86_400.0, 600.0)
MAX_CONTACTS_PER_CASE = 5

EVENT_TYPES = np.array(["login", "feature_use", "support_contact", "survey", "invoice"])
(LOGIN, FEATURE_USE, SUPPORT, SURVEY, INVOICE) = range(5)


#: The planted causes of churn and the driver family (``churn.config.DRIVERS``) each one
#: belongs to: what a correct reason for it would name.
CAUSE_FAMILIES: dict[str, str] = {
    "effort": "support_effort",
    "low_engagement": "usage",
    "price_rise": "billing",
    "monthly_contract": "contract",
}
#: Hazard components recorded per account and month (the causes, then the rest of the logit).
COMPONENTS = (*CAUSE_FAMILIES, "enterprise", "noise")


@dataclass(frozen=True)
class GeneratedData:
    accounts: pd.DataFrame
    interactions: pd.DataFrame
    attribute_history: pd.DataFrame
    #: Ground truth the product never sees (not written by :func:`write`): per account and
    #: month, the hazard's components and the dominant planted cause (:func:`causes_frame`).
    causes: pd.DataFrame = field(default_factory=pd.DataFrame)

    #: Attributes that never change after signup (written to the data folder's churn.toml).
    STATIC_ATTRIBUTES = ("plan", "contract", "segment", "region")


def _month_starts(start: pd.Timestamp, months: int) -> np.ndarray:
    return np.array(
        [(start + pd.DateOffset(months=m)).value for m in range(months + 1)], dtype=np.int64
    )


class _EventLog:
    """Collects event columns as arrays per month; one concatenation at the end."""

    def __init__(self) -> None:
        self.parts: list[dict[str, np.ndarray]] = []

    def add(self, n: int, **cols: np.ndarray) -> None:
        if n:
            self.parts.append(cols)

    def frame(self, columns: dict[str, object]) -> dict[str, np.ndarray]:
        out = {}
        for name, fill in columns.items():
            chunks = []
            for part in self.parts:
                n = len(part["acc"])
                chunks.append(part[name] if name in part else np.full(n, fill))
            out[name] = np.concatenate(chunks) if chunks else np.array([])
        return out


@dataclass
class _Business:
    """The simulation's state: the accounts as drawn at the start, and what changes month by
    month (engagement, price, dissatisfaction ``s``, churn dates), plus the events logged so far.

    Every random number comes from ``rng``, drawn in one fixed order — the accounts, then each
    month's steps in turn — so a seed always gives the same business, byte for byte.
    """

    rng: np.random.Generator
    bounds: np.ndarray
    months: int
    signup: np.ndarray
    existing: np.ndarray
    plan: np.ndarray
    segment: np.ndarray
    region: np.ndarray
    annual: np.ndarray
    mrr: np.ndarray
    engagement: np.ndarray
    drift: np.ndarray
    trouble: np.ndarray  # how often things go wrong for this account
    wait_factor: np.ndarray
    billing_offset: np.ndarray
    s: np.ndarray  # dissatisfaction
    churn_at: np.ndarray
    price_rise_month: np.ndarray
    crisis: set[int]
    mrr_changes: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    hazards: list[tuple[int, dict[str, np.ndarray]]] = field(default_factory=list)
    log: _EventLog = field(default_factory=lambda: _EventLog())
    next_case: int = 0


def _new_business(n: int, bounds: np.ndarray, months: int, rng: np.random.Generator) -> _Business:
    """The accounts at the start: 30 % already customers, the rest signing up month by month
    (growing), with their plan, segment, region, contract, price and temperament."""
    existing = rng.random(n) < 0.3
    signup = np.empty(n, dtype=np.int64)
    signup[existing] = bounds[0] - rng.integers(1, 720 * NS_PER_DAY, existing.sum())
    weights = 1.03 ** np.arange(months)
    month_of_signup = rng.choice(months, size=(~existing).sum(), p=weights / weights.sum())
    span = bounds[month_of_signup + 1] - bounds[month_of_signup]
    signup[~existing] = bounds[month_of_signup] + (rng.random(len(span)) * span).astype(np.int64)

    plan = rng.choice(3, n, p=PLAN_P)
    segment = rng.choice(3, n, p=SEGMENT_P)
    region = rng.choice(4, n, p=REGION_P)
    annual = rng.random(n) < SEGMENT_ANNUAL_P[segment]
    mrr = np.round(PLAN_MRR[plan] * SEGMENT_MRR[segment] * rng.lognormal(0, 0.15, n), 2)
    engagement = rng.lognormal(0, 0.5, n)
    drift = np.where(rng.random(n) < 0.2, rng.uniform(-0.25, -0.05, n), 0.0)
    trouble = rng.gamma(2.0, 0.5, n)
    business = _Business(
        rng=rng, bounds=bounds, months=months, signup=signup, existing=existing, plan=plan, segment=segment, region=region,
        annual=annual, mrr=mrr, engagement=engagement, drift=drift, trouble=trouble,
        wait_factor=REGION_WAIT[region] * np.where(plan == 2, 0.6, 1.0),
        billing_offset=(signup - bounds[0]) % (28 * NS_PER_DAY),
        s=np.where(existing, rng.gamma(1.0, 0.3, n), 0.0),
        churn_at=np.full(n, NEVER, dtype=np.int64),
        # Known quirk: the churn draw for the month before the history runs at month −10, so every
        # pre-existing account counts a "recent price rise" there (and GeneratedData.causes says so
        # for that first month). Starting from a month further back would be right, but it changes
        # every generated business; the causes of later months are unaffected.
        price_rise_month=np.full(n, -10),
        crisis=set(range(months // 3, months // 3 + 3)) if months >= 6 else set(),
    )  # fmt: skip
    business.mrr_changes.append((np.arange(n), signup.copy(), mrr.copy()))
    # Customers from before the history starts can churn in its first month too.
    business.hazards.append((bounds[0], _draw_churn(business, np.flatnonzero(existing), -10, bounds[0], bounds[1])))
    return business


@dataclass(frozen=True)
class _Month:
    """One simulated month: its bounds, the accounts active in it and the part of it each was."""

    index: int
    start: int
    end: int
    active: np.ndarray
    a_start: np.ndarray
    a_end: np.ndarray
    frac: np.ndarray

    def times(self, rng: np.random.Generator, idx: np.ndarray) -> np.ndarray:
        """Uniform times inside each account's active part of this month."""
        lo, hi = self.a_start[idx], self.a_end[idx]
        return lo + (rng.random(len(idx)) * (hi - lo)).astype(np.int64)


def _simulate_month(b: _Business, m: int) -> None:
    """One month: usage, price rises, invoices, support cases and surveys, then the month's
    dissatisfaction and the churn draw for the next month."""
    ms, me = b.bounds[m], b.bounds[m + 1]
    active = np.flatnonzero((b.signup < me) & (b.churn_at > ms))
    if not len(active):
        return
    a_start = np.maximum(ms, b.signup[active])
    a_end = np.minimum(me, b.churn_at[active])
    month = _Month(m, ms, me, active, a_start, a_end, (a_end - a_start) / (me - ms))
    _usage(b, month)
    _price_rises(b, month)
    _invoices(b, month)
    effort = _support_cases(b, month)
    _nps_surveys(b, month)
    b.s[active] = 0.7 * b.s[active] + effort
    if m + 1 < b.months:
        b.hazards.append((me, _draw_churn(b, active, m, me, b.bounds[m + 2])))


def _usage(b: _Business, month: _Month) -> None:
    """Logins and feature use, falling as exp(−0.6·s) and with each account's own drift."""
    active = month.active
    b.engagement[active] *= np.exp(b.drift[active])
    eng = b.engagement[active] * np.exp(-0.6 * b.s[active])
    for etype, rate in ((LOGIN, 8.0), (FEATURE_USE, 3.0)):
        counts = b.rng.poisson(rate * eng * month.frac)
        idx = np.repeat(np.arange(len(active)), counts)
        b.log.add(len(idx), acc=active[idx], t=month.times(b.rng, idx), etype=np.full(len(idx), etype))


def _price_rises(b: _Business, month: _Month) -> None:
    """A campaign mid-period (half the monthly basic/standard accounts) and occasional
    individual rises; each rise goes into the attribute history."""
    active, m = month.active, month.index
    rise = b.rng.random(len(active)) < 0.01
    if m == b.months // 2 and m > 0:
        rise |= (~b.annual[active]) & (b.plan[active] < 2) & (b.rng.random(len(active)) < 0.5)
    b.mrr[active[rise]] = np.round(b.mrr[active[rise]] * b.rng.uniform(1.12, 1.2, rise.sum()), 2)
    b.price_rise_month[active[rise]] = m
    b.mrr_changes.append((active[rise], np.maximum(month.start, b.signup[active[rise]]), b.mrr[active[rise]].copy()))


def _invoices(b: _Business, month: _Month) -> None:
    """An invoice on each active account's billing day (annual contracts 15 % cheaper)."""
    active = month.active
    inv_t = month.start + b.billing_offset[active]
    billed = (inv_t >= month.a_start) & (inv_t < month.a_end)
    discount = np.where(b.annual[active], 0.85, 1.0)
    b.log.add(
        int(billed.sum()), acc=active[billed], t=inv_t[billed], etype=np.full(int(billed.sum()), INVOICE),
        amount=np.round(b.mrr[active] * discount, 2)[billed],
    )  # fmt: skip


@dataclass
class _Cases:
    """The support cases opened in one month, and what each has cost its customer so far."""

    owner: np.ndarray  # index into the month's active accounts
    acc: np.ndarray  # account index
    ids: np.ndarray
    channel: np.ndarray
    t: np.ndarray
    open_: np.ndarray
    long_waits: np.ndarray
    switches: np.ndarray
    transfers: np.ndarray
    contacts: np.ndarray
    unresolved: np.ndarray
    last_t: np.ndarray

    def effort(self) -> np.ndarray:
        """Each case's effort, as the module docstring plants it."""
        return 0.45 * self.long_waits + 0.35 * (self.contacts - 1) + 0.5 * self.switches + 0.3 * self.transfers + 0.8 * self.unresolved


def _support_cases(b: _Business, month: _Month) -> np.ndarray:
    """Support cases, each a chain of contacts that may switch channel, then the post-case
    surveys; returns the effort per active account this month."""
    active, m = month.active, month.index
    case_rate = 0.35 * b.trouble[active] * month.frac * (1.6 if m in b.crisis else 1.0)
    owner = np.repeat(np.arange(len(active)), b.rng.poisson(case_rate))
    n_c = len(owner)
    effort = np.zeros(len(active))
    if not n_c:
        return effort
    acc = active[owner]
    ids = np.arange(b.next_case, b.next_case + n_c)
    b.next_case += n_c
    channel = np.empty(n_c, dtype=np.int64)
    for g in range(3):
        sel = b.segment[acc] == g
        channel[sel] = b.rng.choice(8, size=int(sel.sum()), p=CHANNEL_P[g])
    t = month.times(b.rng, owner)
    zeros = lambda: np.zeros(n_c)  # noqa: E731
    cases = _Cases(owner, acc, ids, channel, t, np.ones(n_c, dtype=bool), zeros(), zeros(), zeros(), zeros(), np.zeros(n_c, dtype=bool), t.copy())
    for k in range(MAX_CONTACTS_PER_CASE):
        if not cases.open_.any():
            break
        _contact_round(b, cases, k, crisis_mult=2.0 if m in b.crisis else 1.0)
    case_effort = cases.effort()
    np.add.at(effort, owner, case_effort)
    _case_surveys(b, cases, case_effort)
    return effort


def _contact_round(b: _Business, cases: _Cases, k: int, *, crisis_mult: float) -> None:
    """The ``k``-th contact of every open case: maybe on another channel, a wait, a handle
    time, maybe a transfer, resolved or not — and the customer comes back or gives up."""
    rng = b.rng
    live = np.flatnonzero(cases.open_)
    if k > 0:
        switch = rng.random(len(live)) < 0.5
        new_ch = np.where(switch, ESCALATE_TO[cases.channel[live]], cases.channel[live])
        cases.switches[live] += new_ch != cases.channel[live]
        cases.channel[live] = new_ch
        cases.t[live] = cases.t[live] + (rng.exponential(1.5, len(live)) * NS_PER_DAY).astype(np.int64)
    ch, acc = cases.channel[live], cases.acc[live]
    wait = WAIT_MEDIAN_S[ch] * b.wait_factor[acc] * crisis_mult * rng.lognormal(0, 0.9, len(live))
    handle = HANDLE_MEDIAN_S[ch] * rng.lognormal(0, 0.5, len(live))
    transferred = rng.random(len(live)) < TRANSFER_P[ch]
    handle = handle * np.where(transferred, 1.6, 1.0)
    p_res = RESOLVE_P[ch] / (0.7 + 0.3 * b.trouble[acc])
    resolved = rng.random(len(live)) < np.clip(p_res, 0.05, 0.95)
    cases.long_waits[live] += wait > LONG_WAIT_S[ch]
    cases.transfers[live] += transferred
    cases.contacts[live] += 1
    cases.last_t[live] = cases.t[live]
    b.log.add(
        len(live), acc=acc, t=cases.t[live].copy(), etype=np.full(len(live), SUPPORT), channel=ch.copy(), case=cases.ids[live],
        wait=np.round(np.where(ch == 7, 0.0, wait), 1), handle=np.round(np.where(ch == 7, 30.0, handle), 1),
        resolved=resolved.astype(np.int8), transferred=transferred.astype(np.int8),
    )  # fmt: skip
    # Unresolved: the customer comes back (85 %) or gives up with the case open.
    comes_back = rng.random(len(live)) < 0.85
    if k == MAX_CONTACTS_PER_CASE - 1:
        comes_back[:] = False
    cases.open_[live] = ~resolved & comes_back
    cases.unresolved[live] = ~resolved & ~comes_back


def _case_surveys(b: _Business, cases: _Cases, case_effort: np.ndarray) -> None:
    """A CES/CSAT survey an hour after ~30 % of cases, falling with the case's effort."""
    surveyed = np.flatnonzero(b.rng.random(len(cases.owner)) < 0.3)
    if not len(surveyed):
        return
    e = case_effort[surveyed]
    ces = np.clip(np.round(5.8 - 1.1 * e + b.rng.normal(0, 0.9, len(e))), 1, 7)
    csat = np.clip(np.round(4.5 - 0.8 * e + b.rng.normal(0, 0.7, len(e))), 1, 5)
    b.log.add(
        len(surveyed), acc=cases.acc[surveyed], t=cases.last_t[surveyed] + 3600 * 10**9, etype=np.full(len(surveyed), SURVEY),
        case=cases.ids[surveyed], ces=ces, csat=csat,
    )  # fmt: skip


def _nps_surveys(b: _Business, month: _Month) -> None:
    """Relationship NPS from 8 % of active accounts a month, falling with ``s``."""
    active = month.active
    asked = np.flatnonzero(b.rng.random(len(active)) < 0.08)
    if len(asked):
        nps = np.clip(np.round(8.5 - 1.5 * b.s[active[asked]] + b.rng.normal(0, 1.5, len(asked))), 0, 10)
        b.log.add(len(asked), acc=active[asked], t=month.times(b.rng, asked), etype=np.full(len(asked), SURVEY), nps=nps)


def generate(
    n_accounts: int = 2_000,
    start: str | pd.Timestamp = "2023-01-01",
    months: int = 24,
    seed: int = 7,
) -> GeneratedData:
    """Simulate ``n_accounts`` accounts over ``months`` months starting at ``start``.

    Deterministic for a seed. Returns contract-shaped ``accounts`` and ``interactions``
    (timestamps in UTC, interactions sorted by time).
    """
    if n_accounts < 1 or months < 1:
        raise ValueError("n_accounts and months must be at least 1")
    bounds = _month_starts(to_utc(start).normalize(), months)
    business = _new_business(n_accounts, bounds, months, np.random.default_rng(seed))
    for m in range(months):
        _simulate_month(business, m)
    return _generated_data(business)


def _generated_data(b: _Business) -> GeneratedData:
    """The contract tables (and the ground-truth causes) of a simulated business."""
    n = len(b.signup)
    signup = b.signup // 10**9 * 10**9
    churn_at = np.where(b.churn_at == NEVER, NEVER, b.churn_at // 10**9 * 10**9)
    accounts = pd.DataFrame(
        {
            "account_id": [f"A{i:07d}" for i in range(n)],
            "signup_at": pd.to_datetime(signup, utc=True),
            "churned_at": pd.to_datetime(np.where(churn_at == NEVER, np.datetime64("NaT"), churn_at.astype("datetime64[ns]")), utc=True),
            "plan": PLANS[b.plan],
            "contract": np.where(b.annual, "annual", "monthly"),
            "segment": SEGMENTS[b.segment],
            "region": REGIONS[b.region],
            "mrr": b.mrr,
        }
    )
    interactions = _interactions_frame(b.log, accounts["account_id"], churn_at, b.bounds[-1])
    who, when, value = (np.concatenate(parts) for parts in zip(*b.mrr_changes))
    history = pd.DataFrame(
        {
            "account_id": accounts["account_id"].to_numpy()[who],
            "valid_from": pd.to_datetime(when // 10**9 * 10**9, utc=True),
            "mrr": value,
        }
    )
    # a rise in the month of signup: the first price already includes it
    history = history.drop_duplicates(["account_id", "valid_from"], keep="last")
    history = history.sort_values(["account_id", "valid_from"], kind="stable").reset_index(drop=True)
    causes = causes_frame(b.hazards, accounts["account_id"])
    return GeneratedData(accounts=accounts, interactions=interactions, attribute_history=history, causes=causes)


def _draw_churn(b: _Business, active: np.ndarray, month: int, lo: int, hi: int) -> dict[str, np.ndarray]:
    """Draw who churns in [lo, hi) from the planted monthly hazard (see module docstring);
    returns the hazard's components for the accounts still at risk (``acc`` = their index)."""
    still = b.churn_at[active] == NEVER
    monthly = ~b.annual[active]
    low_engagement = b.engagement[active] * np.exp(-0.6 * b.s[active]) < 0.45
    recent_rise = (month - b.price_rise_month[active]) <= 1
    parts = {
        "effort": 2.6 * np.tanh(b.s[active] / 1.8) * np.where(monthly, 1.0, 0.5),
        "monthly_contract": 0.75 * monthly,
        "price_rise": recent_rise * np.where(low_engagement, 1.6, 0.4),
        "low_engagement": 1.0 * low_engagement,
        "enterprise": -0.5 * (b.segment[active] == 2),
        "noise": b.rng.normal(0, 0.35, len(active)),
    }
    logit = -5.1  # summed in the original order, so the draws (and the data) stay bit-identical
    for name in ("effort", "monthly_contract", "price_rise", "low_engagement", "enterprise", "noise"):
        logit = logit + parts[name]
    churns = still & (b.rng.random(len(active)) < 1 / (1 + np.exp(-logit)))
    b.churn_at[active[churns]] = lo + (b.rng.random(int(churns.sum())) * (hi - lo)).astype(np.int64)
    return {"acc": active[still], **{k: v[still] for k, v in parts.items()}, "logit": logit[still]}



def causes_frame(hazards: list[tuple[int, dict[str, np.ndarray]]], account_ids: pd.Series) -> pd.DataFrame:
    """One row per account still a customer at the start of a month: the components of its
    churn logit for that month (computed from the state at the end of the month before),
    and the planted cause contributing most.

    ``dominant_cause`` is the largest *positive* component among :data:`CAUSE_FAMILIES`
    ("none" when none is positive: the account's risk is the baseline and noise);
    ``dominant_family`` is its driver family and ``actionable`` whether a team can act on it
    (everything but the monthly contract)."""
    ids = account_ids.to_numpy()
    acc = np.concatenate([h["acc"] for _, h in hazards])
    month = np.concatenate([np.full(len(h["acc"]), lo, dtype=np.int64) for lo, h in hazards])
    parts = {name: np.concatenate([h[name] for _, h in hazards]).astype(float) for name in COMPONENTS}
    causes = np.column_stack([parts[c] for c in CAUSE_FAMILIES]).reshape(len(acc), len(CAUSE_FAMILIES))
    top = causes.argmax(axis=1) if len(acc) else np.zeros(0, dtype=np.int64)
    best = np.where(causes[np.arange(len(acc)), top] > 0, top, len(CAUSE_FAMILIES))  # last = "none"
    names = np.array([*CAUSE_FAMILIES, "none"], dtype=object)
    families = np.array([*CAUSE_FAMILIES.values(), "none"], dtype=object)
    frame = pd.DataFrame(
        {
            "account_id": pd.array(ids[acc], dtype="str"),
            "month_start": pd.to_datetime(month, utc=True),
            **parts,
            "logit": np.concatenate([h["logit"] for _, h in hazards]).astype(float),
            "dominant_cause": pd.Categorical(names[best], categories=list(names)),
            "dominant_family": pd.Categorical(families[best], categories=list(dict.fromkeys(families))),
        }
    )
    frame["hazard"] = 1.0 / (1.0 + np.exp(-frame["logit"]))
    frame["actionable"] = frame["dominant_family"].isin(list(ACTIONABLE_DRIVERS)).to_numpy()
    return frame.sort_values(["month_start", "account_id"], kind="stable").reset_index(drop=True)


def _interactions_frame(
    log: _EventLog, account_ids: pd.Series, churn_at: np.ndarray, data_end: int
) -> pd.DataFrame:
    cols = log.frame(
        {
            "acc": -1,
            "t": 0,
            "etype": -1,
            "channel": -1,
            "case": -1,
            "wait": np.nan,
            "handle": np.nan,
            "resolved": -1,
            "transferred": -1,
            "ces": np.nan,
            "csat": np.nan,
            "nps": np.nan,
            "amount": np.nan,
        }
    )
    acc = cols["acc"].astype(np.int64)
    t = cols["t"].astype(np.int64) // 10**9 * 10**9  # event logs record whole seconds
    # Follow-up contacts can spill past the account's churn or the end of the data: drop them.
    keep = (t < churn_at[acc]) & (t < data_end)
    order = np.argsort(t[keep], kind="stable")
    sel = np.flatnonzero(keep)[order]

    def cat(codes: np.ndarray, labels: np.ndarray) -> pd.Categorical:
        return pd.Categorical.from_codes(codes[sel].astype(np.int64), categories=labels)

    case = cols["case"][sel].astype(np.int64)
    case_labels = pd.array(np.char.add("C", case.astype(str)), dtype="str")
    case_labels[case < 0] = pd.NA

    def flag(values: np.ndarray) -> pd.arrays.BooleanArray:
        v = values[sel].astype(np.int64)
        return pd.arrays.BooleanArray(v == 1, mask=v < 0)

    return pd.DataFrame(
        {
            "account_id": pd.Categorical.from_codes(acc[sel], categories=account_ids.to_numpy()),
            "occurred_at": pd.to_datetime(t[sel], utc=True),
            "event_type": cat(cols["etype"], EVENT_TYPES),
            "channel": cat(cols["channel"], CHANNELS),
            "case_id": case_labels,
            "wait_seconds": cols["wait"][sel].astype(float),
            "handle_seconds": cols["handle"][sel].astype(float),
            "resolved": flag(cols["resolved"]),
            "transferred": flag(cols["transferred"]),
            "ces": cols["ces"][sel].astype(float),
            "csat": cols["csat"][sel].astype(float),
            "nps": cols["nps"][sel].astype(float),
            "amount": cols["amount"][sel].astype(float),
        }
    )


def write(data: GeneratedData, out_dir: str, fmt: str = "parquet") -> list[str]:
    """Write the contract tables and the folder's ``churn.toml`` to ``out_dir`` atomically;
    returns the paths written."""

    static = ", ".join(f'"{name}"' for name in GeneratedData.STATIC_ATTRIBUTES)
    return [
        str(write_table(data.accounts, f"{out_dir}/accounts", fmt)),
        str(write_table(data.interactions, f"{out_dir}/interactions", fmt)),
        str(write_table(data.attribute_history, f"{out_dir}/attribute_history", fmt)),
        str(
            write_text(
                f"{out_dir}/{SETTINGS_FILE}",
                "# Written by `churn generate`: what this export says about itself.\n"
                "# These attributes never change after signup; mrr changes, and its history is in attribute_history.\n"
                f"static_attributes = [{static}]\n",
            )
        ),
    ]
