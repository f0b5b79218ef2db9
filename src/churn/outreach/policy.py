"""Whom to call: the expected value of a call, and which ranking orders the list.

Three rankings (``--rank-by``):

* ``risk`` — churn probability, highest first;
* ``value`` — revenue at risk, probability × the account's value (the product's default);
* ``uplift`` — the expected value of a call: the estimated *reduction* of the account's churn
  probability if called (:mod:`churn.modeling.uplift`) × its value − the cost of the call −
  the cost of an offer where one is made. An account whose estimated effect is negative (a
  "sleeping dog": the call makes it likelier to leave) is never called, whatever the capacity.

The account's value is ``remaining_value`` when the score frame has it (the survival model's
expected remaining revenue), else the annual value (12 × mrr): :func:`call_value`, one line.

The default ranking is ``value`` until the uplift gate passes (:func:`churn.modeling.uplift.uplift_gate`:
the uplift ranking's Qini on held-out cohorts beats the risk ranking's, the interval of the
difference above zero); :func:`choose_ranking` says which ranking a run used and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd

Ranking = Literal["risk", "value", "uplift"]
POLICY_RANKINGS: tuple[str, ...] = get_args(Ranking)
#: Risk-list columns this module adds (NaN when no uplift model is available).
POLICY_COLUMNS = ("uplift", "churn_if_called", "expected_saved_value")
#: The older names of two rankings (ScoreConfig.rank_by before uplift).
LEGACY_RANKINGS = {"probability": "risk", "revenue_at_risk": "value"}


@dataclass(frozen=True)
class CallCosts:
    """What a call costs (an agent's time) and what an offer costs when one is made."""

    call: float = 15.0
    offer: float = 60.0


def call_value(frame: pd.DataFrame) -> np.ndarray:
    """The value a saved account keeps: the survival model's ``remaining_value`` where it has one,
    else ``annual_value``. The risk list always carries the column, NaN without a survival model
    (and for an account it could not value), so the fallback is per row, not per column."""
    annual = frame["annual_value"].to_numpy(dtype=float)
    if "remaining_value" not in frame.columns:
        return annual
    remaining = frame["remaining_value"].to_numpy(dtype=float)
    return np.where(np.isfinite(remaining), remaining, annual)


def policy_columns(frame: pd.DataFrame, predictions: pd.DataFrame | None) -> pd.DataFrame:
    """``uplift``, ``churn_if_called`` and ``expected_saved_value`` (= uplift × value) per row of
    ``frame`` (aligned); NaN without an uplift model's ``predictions``."""
    if predictions is None:
        nan = np.full(len(frame), np.nan)
        return pd.DataFrame({"uplift": nan, "churn_if_called": nan, "expected_saved_value": nan}, index=frame.index)
    uplift = predictions["uplift"].to_numpy(dtype=float)
    # the list's calibrated probability is the "not called" churn; the effect is subtracted from it
    if_called = np.clip(frame["churn_probability"].to_numpy(dtype=float) - uplift, 0.0, 1.0)
    return pd.DataFrame({"uplift": uplift, "churn_if_called": if_called, "expected_saved_value": uplift * call_value(frame)}, index=frame.index)


def net_call_value(frame: pd.DataFrame, costs: CallCosts = CallCosts()) -> np.ndarray:
    """Expected saved value − call cost − offer cost (where the frame's ``offer`` column is true)."""
    offer = frame["offer"].to_numpy(dtype=bool) if "offer" in frame.columns else np.zeros(len(frame), dtype=bool)
    return frame["expected_saved_value"].to_numpy(dtype=float) - costs.call - costs.offer * offer


def policy_ranks(
    frame: pd.DataFrame, ranking: Ranking, costs: CallCosts = CallCosts(), in_outreach: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(rank, callable) per row: 1 = first to call. ``callable`` is False where the estimated
    effect is negative (uplift ranking only): those rows rank last and must not be flagged.
    ``in_outreach`` (uplift ranking only): accounts an earlier run already flagged for a call
    whose horizon is still running; they are not callable either — the uplift model learned the
    effect of a first call, and the effect of a second one is unknown, so the capacity goes to
    accounts not yet called. Ties broken by probability (uplift ranking: by revenue at risk, then
    probability), then account id, so ranks are stable."""
    p = frame["churn_probability"].to_numpy(dtype=float)
    ok = np.ones(len(frame), dtype=bool)
    tie = p
    if ranking == "risk":
        key = p
    elif ranking == "value":
        # the list's own revenue at risk (probability × the value lost if it churns), so the
        # order a reader sees in that column is the order of the calls
        key = frame["revenue_at_risk"].to_numpy(dtype=float)
    elif ranking == "uplift":
        uplift = frame["uplift"].to_numpy(dtype=float)
        if np.isnan(uplift).all():
            raise ValueError(
                "ranking by uplift needs an uplift model: this model carries none — learn one from the scoring folder's matured runs "
                "with `churn uplift`, then score with the bundle it writes (--model)"
            )
        ok = ~(uplift < 0) & ~np.isnan(uplift)
        if in_outreach is not None:
            ok &= ~np.asarray(in_outreach, dtype=bool)
        key = np.where(ok, net_call_value(frame, costs), -np.inf)
        # equal expected values — above all "no effect found", every uplift exactly 0 — keep the
        # default ranking's order, revenue at risk: the expected value of a call for a small common
        # effect δ is about −δ·p(1 − p)·value − costs, so it tends to that order as δ → 0, and a
        # model that learned nothing gives the list the product would give without it
        tie = frame["revenue_at_risk"].to_numpy(dtype=float)
    else:
        raise ValueError(f"rank_by must be one of {', '.join(POLICY_RANKINGS)}, got {ranking!r}")
    order = np.lexsort((frame["account_id"].astype("str").to_numpy(), -p, -tie, -key))
    ranks = np.empty(len(frame), dtype=np.int64)
    ranks[order] = np.arange(1, len(frame) + 1)
    return ranks, ok


def callable_capacity(capacity: int, callable_: np.ndarray, held: np.ndarray) -> int:
    """The capacity the assignment may use: never more than the callable accounts not held out,
    so an account with a negative estimated effect is never flagged."""
    return int(min(capacity, int((callable_ & ~held).sum())))


def choose_ranking(requested: Ranking | None, gate: tuple[bool, str] | None) -> tuple[Ranking, str]:
    """The ranking a run uses and the reason, in a sentence. An explicit request wins; by
    default ``uplift`` only when the gate passed, else ``value`` (risk × value)."""
    if requested is not None:
        return requested, f"--rank-by {requested} was asked for"
    if gate is None:
        return "value", "risk × value ranking: no uplift model has been evaluated on held-out cohorts yet"
    passed, reason = gate
    return ("uplift" if passed else "value"), reason
