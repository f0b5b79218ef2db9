"""A synthetic business that responds to retention calls: the planted effect of a call.

The plain generator (:mod:`churn.data.synthetic`) keeps "calls change nothing". This module
plants what a call does, per account, from the *planted cause* of its risk at the time of
the call (``GeneratedData.causes``: the month's logit components, never shown to the product).
A call that reaches the account shifts its monthly churn logit for the outcome window.

**``effect="planted"``: the premise of the issue.** Field experiments in retention (Ascarza,
"Retention Futility: Targeting High-Risk Customers Might Be Ineffective", *Journal of Marketing
Research* 55(1), 2018) found that the customers most likely to leave were often *not* the ones a
retention action kept — many of them had already decided — while some moderately risky customers
responded strongly, and targeting by the response beat targeting by risk. This world plants that,
from the generator's own causes (effort term ``2.6·tanh(s/1.8)·(1 if monthly else 0.5)``, so
``tanh(s/1.8)`` is how saturated the account's dissatisfaction ``s`` is):

================  =========  ============================================================
response          shift      who (dominant planted cause, and why)
================  =========  ============================================================
``callback``      −1.8       support effort, dissatisfaction not saturated (tanh(s/1.8) < 0.7):
                             a case going badly now — a callback fixes it (moderate risk)
``fed_up``         0         support effort, saturated (tanh(s/1.8) ≥ 0.7, s ≥ 1.56): months
                             of bad service, already decided — the top of the risk ranking
``offer``         −1.4       a price rise on an engaged account: an offer answers the price
``lost_cause``     0         a price rise on a low-engagement account (it barely uses what it
                             pays more for), or a planted monthly hazard ≥ 0.35: already gone
``little``        −0.2       low engagement: a call barely helps
``sleeping_dog``  +1.2       40 % of the accounts with nothing wrong — a monthly contract alone
                             (reminded they can cancel any month) or no positive cause at all
``context``       −0.3       the other monthly-contract accounts: little to change
``content``        0         the other accounts with no positive cause
================  =========  ============================================================

The thresholds come from the generator's formulas, not from any policy's results: 0.7 is where
``tanh`` flattens (the term has reached 70 % of its ceiling and grows little with more effort);
the shifts of the responding groups (−1.8, −1.4, −0.3, −0.2, +1.2) and the 40 % dog share are
the ``aligned`` world's, so the two worlds differ only in *who* responds, not in how much. They
were fixed before any simulation was run on this world and are not tuned to a benchmark.

**``effect="aligned"``: risk and response agree** (the first version of this world). Every
support-effort account is a ``callback`` (−1.8), whatever its saturation, so the same shift
removes the most churn exactly where the risk is highest; any price rise is an ``offer`` (−1.4);
``context`` −0.3, ``little`` −0.2; sleeping dogs (+1.2) are 40 % of the *content* accounts only
(no positive cause: low risk, never near the top of a risk list); lost causes only at a planted
monthly hazard ≥ 0.35 (under 1 % of customers). Here the risk ranking is already close to the
best, and the uplift gate should keep it.

``effect="homogeneous"`` gives every account the same shift (−0.6) — also a world where the
risk ranking is right; ``effect="none"`` gives 0 — the plain business.

Why a logit shift on the hazard: it is how the generator draws churn, so a call moves an
account exactly as the planted causes do; the same shift saves more of a 20 % hazard than of
a 2 % one, and nothing of a lost cause. Which account is a sleeping dog is drawn once per
(seed, account), so every policy meets the same dogs.

The realised outcome couples the called world to the plain one with common random numbers
(:func:`called_outcome`): an account the plain business churns inside the window is saved with
probability ``1 − p₁/p₀``; one it keeps churns with probability ``(p₁ − p₀)/(1 − p₀)`` when the
call hurts. Marginally the called account churns with probability ``p₁``, and accounts nobody
called are exactly the plain business — the counterfactual "no calls" is known.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import pandas as pd

Effect = Literal["planted", "aligned", "homogeneous", "none"]
EFFECTS: tuple[str, ...] = get_args(Effect)

#: Planted logit shift of a reached call, per response (see the module docstring); the
#: ``aligned`` world uses the same table without ``fed_up``.
RESPONSE_SHIFT: dict[str, float] = {
    "callback": -1.8,
    "fed_up": 0.0,
    "offer": -1.4,
    "context": -0.3,
    "little": -0.2,
    "sleeping_dog": 1.2,
    "content": 0.0,
    "lost_cause": 0.0,
}
CAUSE_RESPONSE = {"effort": "callback", "price_rise": "offer", "monthly_contract": "context", "low_engagement": "little", "none": "content"}
SLEEPING_DOG_SHARE = 0.4
LOST_CAUSE_HAZARD = 0.35
#: ``tanh(s / 1.8)`` at or above which a support-effort account is fed up (planted world).
FED_UP_SATURATION = 0.7
#: The price-rise term of a low-engagement account (the generator's 1.6; 0.4 when engaged).
DISENGAGED_RISE = 1.0
EFFORT_CEILING = 2.6
HOMOGENEOUS_SHIFT = -0.6
DAYS_PER_MONTH = 365.25 / 12


def responses(causes: pd.DataFrame, seed: int, effect: Effect = "planted") -> np.ndarray:
    """The planted response name per causes row (``dominant_cause``, ``hazard``, ``account_id``,
    and for the planted world ``effort``, ``monthly_contract``, ``price_rise``).

    ``effect`` "planted" is the world of the module docstring (the default); every other effect
    names responses as the ``aligned`` world does (homogeneous / none ignore the names).
    Sleeping dogs are drawn per account from ``seed`` (an account is a dog or not for the
    whole simulation, whichever policy calls it)."""
    kind = causes["dominant_cause"].astype("str").map(CAUSE_RESPONSE).fillna("content").to_numpy(dtype=object)
    dog_draw = _account_uniform(causes["account_id"], seed, salt=1)
    if effect == "planted":
        monthly = causes["monthly_contract"].fillna(0.0).to_numpy(dtype=float) > 0
        saturation = causes["effort"].fillna(0.0).to_numpy(dtype=float) / (EFFORT_CEILING * np.where(monthly, 1.0, 0.5))
        kind = np.where((kind == "callback") & (saturation >= FED_UP_SATURATION), "fed_up", kind)
        disengaged = causes["price_rise"].fillna(0.0).to_numpy(dtype=float) >= DISENGAGED_RISE
        kind = np.where((kind == "offer") & disengaged, "lost_cause", kind)
        quiet = (kind == "content") | (kind == "context")
    else:
        quiet = kind == "content"
    kind = np.where(quiet & (dog_draw < SLEEPING_DOG_SHARE), "sleeping_dog", kind)
    return np.where(causes["hazard"].to_numpy() >= LOST_CAUSE_HAZARD, "lost_cause", kind)


def _account_uniform(account_ids: pd.Series, seed: int, salt: int) -> np.ndarray:
    """One uniform per account id, fixed by (seed, salt, id): the same whatever else is drawn."""
    codes = pd.util.hash_pandas_object(account_ids.astype("str").reset_index(drop=True), index=False).to_numpy()
    mixed = np.random.default_rng([seed, salt]).integers(0, 2**63 - 1, dtype=np.int64).astype(np.uint64)
    return ((codes ^ mixed) * np.uint64(0x9E3779B97F4A7C15) >> np.uint64(11)).astype(np.float64) / float(2**53)


def logit_shift(kind: np.ndarray, effect: Effect) -> np.ndarray:
    """The logit shift a reached call makes, per account, under ``effect``."""
    if effect == "none":
        return np.zeros(len(kind))
    if effect == "homogeneous":
        return np.full(len(kind), HOMOGENEOUS_SHIFT)
    if effect not in ("planted", "aligned"):
        raise ValueError(f"effect must be one of {', '.join(EFFECTS)}, got {effect!r}")
    return np.array([RESPONSE_SHIFT[k] for k in kind], dtype=float)


def window_churn(monthly_hazard: np.ndarray, shift: np.ndarray | float, horizon_days: int) -> np.ndarray:
    """Probability of churning within ``horizon_days`` at a monthly hazard whose logit is shifted."""
    h = np.clip(np.asarray(monthly_hazard, dtype=float), 1e-9, 1 - 1e-9)
    shifted = 1.0 / (1.0 + np.exp(-(np.log(h / (1 - h)) + shift)))
    return 1.0 - (1.0 - shifted) ** (horizon_days / DAYS_PER_MONTH)


def call_cut(monthly_hazard: np.ndarray, shift: np.ndarray | float, horizon_days: int) -> np.ndarray:
    """The cut in window churn a *reached* call makes at the month's planted hazard: p₀ − p₁
    (:func:`window_churn` without and with the shift) — the planted effect, before the reach rate."""
    return window_churn(monthly_hazard, 0.0, horizon_days) - window_churn(monthly_hazard, shift, horizon_days)


def coupling(p0: np.ndarray, p1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The coupling of :func:`called_outcome`, per account: (P(still churns | churned without
    the call), P(churns | stayed without it)), from the window churn probability without / with
    the call. Marginally the called account then churns with probability ``p1``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        keep = np.where(p0 > 0, np.minimum(p1 / p0, 1.0), 1.0)
        push = np.where(p0 < 1, np.maximum(p1 - p0, 0.0) / (1 - p0), 0.0)
    return keep, push


def called_outcome(plain_churned: np.ndarray, p0: np.ndarray, p1: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Whether each called account churns in the window, coupled to the plain outcome by ``u``.

    ``plain_churned``: churned in the window without the call; ``p0``/``p1``: window churn
    probability without/with the call; ``u``: a uniform per account (common to every policy)."""
    keep, push = coupling(p0, p1)
    return np.where(plain_churned, u < keep, u < push)


def response_shares(kind: np.ndarray) -> dict[str, float]:
    """Share of accounts per planted response (recorded with a simulation)."""
    names, counts = np.unique(np.asarray(kind, dtype=str), return_counts=True)
    return {str(n): round(float(c) / max(len(kind), 1), 4) for n, c in zip(names, counts)}
