"""A synthetic business that responds to retention calls: the planted effect of a call.

The plain generator (:mod:`churn.data.synthetic`) keeps "calls change nothing". This module
plants what a call does, per account, from the *planted cause* of its risk at the time of
the call (``GeneratedData.causes``: the month's logit components, never shown to the product).
A call that reaches the account shifts its monthly churn logit for the outcome window by:

================  =========  ============================================================
response          shift      who
================  =========  ============================================================
``callback``      −1.8       support effort is the dominant cause: a callback fixes the case
``offer``         −1.4       a recent price rise is the dominant cause: a retention offer
``context``       −0.3       the monthly contract is the dominant cause: little to change
``little``        −0.2       low engagement is the dominant cause: a call barely helps
``sleeping_dog``  +1.2       40 % of *content* accounts (no positive cause): reminded to leave
``content``        0         the other content accounts
``lost_cause``     0         planted monthly hazard ≥ 0.35, whatever the cause: already gone
================  =========  ============================================================

``effect="homogeneous"`` gives every account the same shift (−0.6) — the case where the
risk ranking is already right; ``effect="none"`` gives 0 — the plain business.

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

Effect = Literal["planted", "homogeneous", "none"]
EFFECTS: tuple[str, ...] = get_args(Effect)

#: Planted logit shift of a reached call, per response (see the module docstring).
RESPONSE_SHIFT: dict[str, float] = {
    "callback": -1.8,
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
HOMOGENEOUS_SHIFT = -0.6
DAYS_PER_MONTH = 365.25 / 12


def responses(causes: pd.DataFrame, seed: int) -> np.ndarray:
    """The planted response name per causes row (``dominant_cause``, ``hazard``, ``account_id``).

    Sleeping dogs are drawn per account from ``seed`` (an account is a dog or not for the
    whole simulation, whichever policy calls it)."""
    kind = causes["dominant_cause"].astype("str").map(CAUSE_RESPONSE).fillna("content").to_numpy(dtype=object)
    dog_draw = _account_uniform(causes["account_id"], seed, salt=1)
    kind = np.where((kind == "content") & (dog_draw < SLEEPING_DOG_SHARE), "sleeping_dog", kind)
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
    if effect != "planted":
        raise ValueError(f"effect must be one of {', '.join(EFFECTS)}, got {effect!r}")
    return np.array([RESPONSE_SHIFT[k] for k in kind], dtype=float)


def window_churn(monthly_hazard: np.ndarray, shift: np.ndarray | float, horizon_days: int) -> np.ndarray:
    """Probability of churning within ``horizon_days`` at a monthly hazard whose logit is shifted."""
    h = np.clip(np.asarray(monthly_hazard, dtype=float), 1e-9, 1 - 1e-9)
    shifted = 1.0 / (1.0 + np.exp(-(np.log(h / (1 - h)) + shift)))
    return 1.0 - (1.0 - shifted) ** (horizon_days / DAYS_PER_MONTH)


def called_outcome(plain_churned: np.ndarray, p0: np.ndarray, p1: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Whether each called account churns in the window, coupled to the plain outcome by ``u``.

    ``plain_churned``: churned in the window without the call; ``p0``/``p1``: window churn
    probability without/with the call; ``u``: a uniform per account (common to every policy)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        keep = np.where(p0 > 0, np.minimum(p1 / p0, 1.0), 1.0)  # P(still churns | churned without the call)
        push = np.where(p0 < 1, np.maximum(p1 - p0, 0.0) / (1 - p0), 0.0)  # P(churns | stayed without it)
    return np.where(plain_churned, u < keep, u < push)


def response_shares(kind: np.ndarray) -> dict[str, float]:
    """Share of accounts per planted response (recorded with a simulation)."""
    names, counts = np.unique(np.asarray(kind, dtype=str), return_counts=True)
    return {str(n): round(float(c) / max(len(kind), 1), 4) for n, c in zip(names, counts)}
