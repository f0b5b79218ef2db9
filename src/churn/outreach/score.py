"""Batch scoring: the weekly risk list customer-success teams act on.

For every account active at ``as_of``: calibrated churn probability, risk band, revenue at
risk, rank; the top accounts up to the team's capacity are flagged, and a random share of
them is held out as a **no-contact control group** so the effect of outreach can be
measured (held out for its whole horizon across weekly runs: :mod:`churn.outreach.experiment`);
each account gets up to three plain-language reasons and a suggested action; and the list
is compared with the previous run.

Reasons (:mod:`churn.outreach.reasons`). Exact per-row contributions (LightGBM TreeSHAP,
``pred_contrib``) cost ~90× a prediction, so they are computed for the accounts people act
on — the outreach list and control group first, then the high band — up to
``max_exact_reasons`` rows, in chunks. The long tail gets a cheaper attribution (deviation
from the training median). Actionable drivers lead; every reason quotes what is typical.
The ``reason_method`` column says which attribution each row got. The suggested action is
the playbook's (:mod:`churn.outreach.playbook`) for the lead reason's driver family.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from churn.config import ScoreConfig
from churn.data.attributes import attributes_at
from churn.modeling.model import ChurnModel
from churn.modeling.survival import SURVIVAL_COLUMNS, survival_columns, value_if_kept
from churn.outreach.experiment import assign_controls
from churn.outreach.playbook import Playbook, default_playbook
from churn.outreach.policy import LEGACY_RANKINGS, callable_capacity, choose_ranking, policy_columns, policy_ranks
from churn.outreach.reasons import explain

RISK_LIST_COLUMNS = [
    "account_id",
    "owner",
    "segment",
    "as_of",
    "rank",
    "churn_probability",
    "risk_band",
    "annual_value",
    "revenue_at_risk",
    *SURVIVAL_COLUMNS,
    "outreach",
    "control",
    "suggested_action",
    "action_wording",
    "reason_1",
    "reason_2",
    "reason_3",
    "reason_features",
    "reason_drivers",
    "reason_contributions",
    "reason_method",
    "previous_probability",
    "probability_change",
    "change",
    "reasons_changed",
    "assigned_as_of",
    # whom to call (churn.outreach.policy): NaN without an uplift model
    "uplift",
    "churn_if_called",
    "expected_saved_value",
]

CONTROL_ACTION = "Do not contact (control group)"
CONTROL_WORDING = "Held out as the control group: no outreach until its horizon has passed, so the effect of outreach can be measured."


# --------------------------------------------------------------------------- ranking


def risk_bands(p: np.ndarray, config: ScoreConfig) -> np.ndarray:
    return np.where(p >= config.high_threshold, "high", np.where(p >= config.medium_threshold, "medium", "low"))


def annual_value(features: pd.DataFrame, accounts: pd.DataFrame | None, config: ScoreConfig) -> tuple[np.ndarray, str]:
    """12 × the monthly value column, from the features or the accounts table; 1 if absent."""
    col = config.value_column
    if col in features.columns:
        monthly = pd.to_numeric(features[col], errors="coerce")
    elif accounts is not None and col in accounts.columns:
        monthly = features["account_id"].map(accounts.set_index(accounts["account_id"].astype("str"))[col]).astype(float)
    else:
        return np.ones(len(features)), f"no '{col}' column: every account valued at 1, revenue at risk = probability"
    return (12.0 * monthly.fillna(0.0)).to_numpy(dtype=float), f"annual value = 12 × {col}"


#: Account attributes copied onto the risk list (empty where the accounts table lacks them), so
#: each account manager can filter "my accounts" and teams can slice by segment.
PASS_THROUGH_COLUMNS = ("owner", "segment")


def pass_through(account_ids: pd.Series, accounts: pd.DataFrame | None) -> dict[str, pd.Series]:
    """``owner`` and ``segment`` per account id, as text; missing where the table has no such column."""
    out = {}
    index = None if accounts is None else pd.Index(accounts["account_id"].astype("str"))
    for col in PASS_THROUGH_COLUMNS:
        if accounts is not None and col in accounts.columns:
            values = pd.Series(accounts[col].to_numpy(), index=index).astype("str")
            out[col] = account_ids.map(values).astype("str")
        else:
            out[col] = pd.Series(pd.NA, index=account_ids.index, dtype="str")
    return out


def rank_accounts(frame: pd.DataFrame, config: ScoreConfig) -> np.ndarray:
    """1 = first to call, by risk or risk × value (the risk list uses :func:`churn.outreach.policy.policy_ranks`,
    which orders the same way and adds uplift). Ties broken by probability, then account id, so ranks are stable."""
    key = "churn_probability" if config.rank_by in ("probability", "risk") else "revenue_at_risk"
    order = np.lexsort((frame["account_id"].to_numpy(), -frame["churn_probability"].to_numpy(), -frame[key].to_numpy()))
    ranks = np.empty(len(frame), dtype=np.int64)
    ranks[order] = np.arange(1, len(frame) + 1)
    return ranks


def assign_outreach(frame: pd.DataFrame, config: ScoreConfig, prior: pd.DataFrame | None = None) -> pd.DataFrame:
    """``outreach``, ``control`` and ``assigned_as_of`` for a ranked list (``account_id``,
    ``rank``, ``as_of``): the top ``capacity`` are flagged and a random ``control_share`` of
    the newly flagged is held out, one per block of consecutive ranks, so control and outreach
    have the same risk mix. ``prior`` (active assignments of earlier runs) keeps held-out
    accounts out of outreach and treated ones out of the control draw; see
    :func:`churn.outreach.experiment.assign_controls`."""
    as_of = frame["as_of"].iloc[0] if len(frame) else pd.Timestamp(0, tz="UTC")
    return assign_controls(frame, prior, as_of=as_of, capacity=config.capacity, share=config.control_share, seed=config.seed)


# --------------------------------------------------------------------------- the list


def compare_with_previous(current: pd.DataFrame, previous: pd.DataFrame | None, threshold: float = 0.02) -> pd.DataFrame:
    """previous_probability, probability_change, change and reasons_changed per account."""
    out = pd.DataFrame(index=current.index)
    if previous is None or previous.empty:
        out["previous_probability"] = np.nan
        out["probability_change"] = np.nan
        out["change"] = "first run"
        out["reasons_changed"] = pd.array([pd.NA] * len(current), dtype="boolean")
        return out
    prev = previous.set_index("account_id")
    ids = current["account_id"]
    p_prev = ids.map(prev["churn_probability"]).astype(float)
    delta = current["churn_probability"] - p_prev
    was_flagged = ids.map(prev["outreach"] | prev["control"]).astype("boolean").fillna(False).to_numpy(dtype=bool)
    flagged = (current["outreach"] | current["control"]).to_numpy()
    change = np.select(
        [p_prev.isna().to_numpy(), flagged & ~was_flagged, (delta > threshold).to_numpy(), (delta < -threshold).to_numpy()],
        ["new account", "newly flagged", "risk up", "risk down"],
        default="steady",
    )
    out["previous_probability"] = p_prev.to_numpy()
    out["probability_change"] = delta.to_numpy()
    out["change"] = change
    prev_reasons = ids.map(prev["reason_features"])
    changed = (prev_reasons != current["reason_features"]) & prev_reasons.notna()
    out["reasons_changed"] = pd.array(np.where(prev_reasons.isna(), None, changed), dtype="boolean")
    return out


def with_survival(frame: pd.DataFrame, features: pd.DataFrame, model: ChurnModel, config: ScoreConfig, value_note: str) -> tuple[pd.DataFrame, str]:
    """The time-to-churn columns (:data:`churn.modeling.survival.SURVIVAL_COLUMNS`; empty when
    the model has no time-to-churn part) and, with them, revenue at risk as the value lost if
    the account churns within the horizon: probability × the discounted value of its next 24
    months if it is still a customer when the horizon ends. Without them it stays probability ×
    annual value."""
    curves = model.survival_curves(features)
    if curves is None:
        return frame.assign(**{c: np.nan for c in SURVIVAL_COLUMNS}), value_note
    monthly = frame["annual_value"].to_numpy() / 12.0
    horizon = int(model.definition.get("horizon_days", 30))  # type: ignore[call-overload]
    frame = pd.concat([frame, survival_columns(curves, monthly, config.discount_rate).set_index(frame.index)], axis=1)
    frame["revenue_at_risk"] = frame["churn_probability"] * value_if_kept(curves, monthly, horizon, config.discount_rate)
    return frame, value_note + (
        f"; remaining value = Σ survival × monthly value, 24 months discounted at {config.discount_rate:.0%} a year; "
        "revenue at risk = probability × the value of the next 24 months if the account stays past the horizon"
    )


def in_arm(frame: pd.DataFrame, prior: pd.DataFrame | None, arm: str) -> np.ndarray:
    """Per row of ``frame``: is the account in ``arm`` ("outreach" or "control") of an earlier
    run's assignment still running (``prior``: :func:`churn.outreach.experiment.active_assignments`)?"""
    if prior is None or not len(prior):
        return np.zeros(len(frame), dtype=bool)
    return frame["account_id"].isin(prior.loc[prior["arm"] == arm, "account_id"]).to_numpy()


def build_risk_list(
    features: pd.DataFrame,
    model: ChurnModel,
    *,
    config: ScoreConfig = ScoreConfig(),
    accounts: pd.DataFrame | None = None,
    previous: pd.DataFrame | None = None,
    probabilities: np.ndarray | None = None,
    prior: pd.DataFrame | None = None,
    playbook: Playbook | None = None,
    uplift: pd.DataFrame | None = None,
    gate: tuple[bool, str] | None = None,
) -> tuple[pd.DataFrame, dict[str, object]]:
    """Score every account in ``features``; returns the risk list (sorted by rank) and notes.

    ``probabilities`` (aligned with ``features``) skips the prediction, e.g. when a cluster
    has already scored the rows. ``prior``: earlier runs' assignments still active at this
    date (:func:`churn.outreach.experiment.active_assignments`), so control groups persist.
    ``playbook`` maps the lead reason's driver family to the action (default: the shipped one).
    ``uplift``: an uplift model's predictions aligned with ``features`` and ``gate`` its held-out
    verdict (:mod:`churn.outreach.policy`); the notes say which ranking was used and why."""
    p = model.predict_proba(features) if probabilities is None else np.asarray(probabilities, dtype=float)
    value, value_note = annual_value(features, accounts, config)
    frame = pd.DataFrame(
        {
            "account_id": features["account_id"].astype("str").to_numpy(),
            "as_of": features["as_of"].to_numpy(),
            "churn_probability": p,
            "risk_band": risk_bands(p, config),
            "annual_value": value,
            "revenue_at_risk": p * value,
        }
    )
    frame["as_of"] = frame["as_of"].astype("datetime64[ns, UTC]")
    for col, values in pass_through(frame["account_id"], accounts).items():
        frame[col] = values
    frame, value_note = with_survival(frame, features, model, config, value_note)
    frame = frame.join(policy_columns(frame, uplift))
    ranking, ranking_reason = choose_ranking(LEGACY_RANKINGS.get(config.rank_by, config.rank_by) if config.rank_by else None, gate)  # type: ignore[arg-type]
    frame["rank"], callable_ = policy_ranks(frame, ranking, in_outreach=in_arm(frame, prior, "outreach"))
    held = in_arm(frame, prior, "control")
    frame = frame.join(assign_outreach(frame, replace(config, capacity=callable_capacity(config.capacity, callable_, held)), prior))

    # exact reasons: flagged accounts first, then the high band, best ranks first, bounded
    priority = (frame["outreach"] | frame["control"]).to_numpy() * 2 + (frame["risk_band"] == "high").to_numpy()
    candidates = np.flatnonzero(priority > 0)
    candidates = candidates[np.lexsort((frame["rank"].to_numpy()[candidates], -priority[candidates]))][: config.max_exact_reasons]
    exact = np.zeros(len(frame), dtype=bool)
    exact[candidates] = True
    reasons = explain(model, features, exact, config)
    for i in range(3):
        frame[f"reason_{i + 1}"] = reasons.texts[:, i] if i < reasons.texts.shape[1] else ""
    frame["reason_features"] = reasons.features
    frame["reason_drivers"] = reasons.drivers
    frame["reason_contributions"] = reasons.contributions
    frame["reason_method"] = reasons.method
    book = playbook or default_playbook()
    frame["suggested_action"], frame["action_wording"] = book.actions_for(reasons.lead_driver)
    frame.loc[frame["control"], ["suggested_action", "action_wording"]] = [CONTROL_ACTION, CONTROL_WORDING]

    frame = pd.concat([frame, compare_with_previous(frame, previous)], axis=1)
    frame = frame.sort_values("rank").reset_index(drop=True)[RISK_LIST_COLUMNS]
    notes = {
        "value": value_note,
        "exact_reasons": int(exact.sum()),
        "cheap_reasons": int((reasons.method == "deviation").sum()),
        "playbook": book.source,
        "control_share": config.control_share,
        "capacity": config.capacity,
        "ranking": ranking,
        "ranking_reason": ranking_reason,
    }
    return frame, notes


def summary_counts(risk: pd.DataFrame) -> dict[str, int]:
    """Counts for the run record. ``control`` counts this run's new controls only;
    ``held_controls`` the accounts still held out by an earlier run."""
    held = risk["control"] & (risk["assigned_as_of"] < risk["as_of"]) if "assigned_as_of" in risk.columns else risk["control"] & False
    return {
        "accounts": int(len(risk)),
        "high": int((risk["risk_band"] == "high").sum()),
        "medium": int((risk["risk_band"] == "medium").sum()),
        "low": int((risk["risk_band"] == "low").sum()),
        "outreach": int(risk["outreach"].sum()),
        "control": int((risk["control"] & ~held).sum()),
        "held_controls": int(held.sum()),
    }




def lapsed_list(gone: pd.DataFrame, accounts: pd.DataFrame, history: pd.DataFrame | None, as_of: pd.Timestamp, config: ScoreConfig) -> pd.DataFrame:
    """The win-back list: lapsed accounts with their annual value, the most recently lapsed
    first (they are the likeliest to come back)."""
    col = config.value_column
    valued = attributes_at(accounts, history, as_of, [col]) if col in accounts.columns or (history is not None and col in history.columns) else accounts
    monthly = gone["account_id"].map(valued.set_index(valued["account_id"].astype("str"))[col]) if col in valued.columns else None
    out = gone.copy()
    out.insert(1, "as_of", pd.Series(as_of, index=out.index).astype("datetime64[ns, UTC]"))
    out["annual_value"] = 12.0 * monthly.astype(float).fillna(0.0) if monthly is not None else 1.0
    return out
