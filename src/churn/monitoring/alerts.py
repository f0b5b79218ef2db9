"""Account alerts: accounts whose risk jumped since the previous run, with the reasons that changed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn.monitoring.settings import MonitorConfig

ALERT_COLUMNS = [
    "account_id", "rank", "churn_probability", "previous_probability", "probability_change", "risk_band",
    "previous_band", "alert", "outreach", "control", "reasons", "new_reasons", "dropped_reasons",
]  # fmt: skip


def _reasons_long(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (account, reason position): feature name and sentence."""
    names = frame["reason_features"].fillna("").str.split(",")
    long = names.explode().rename("feature").to_frame()
    long["position"] = long.groupby(level=0).cumcount()
    long["account_id"] = frame["account_id"].reindex(long.index).to_numpy()
    texts = frame[["reason_1", "reason_2", "reason_3"]].reindex(long.index).to_numpy()
    long["text"] = texts[np.arange(len(long)), np.minimum(long["position"].to_numpy(), 2)]
    return long[long["feature"].fillna("") != ""].reset_index(drop=True)


def _reason_diff(long_a: pd.DataFrame, long_b: pd.DataFrame) -> pd.Series:
    """Per account: the sentences of reasons in ``a`` whose feature is not among ``b``'s."""
    merged = long_a.merge(long_b[["account_id", "feature"]], on=["account_id", "feature"], how="left", indicator=True)
    only = merged[merged["_merge"] == "left_only"]
    return only.groupby("account_id", sort=False)["text"].agg("; ".join)


def risk_alerts(current: pd.DataFrame, previous: pd.DataFrame | None, *, config: MonitorConfig = MonitorConfig()) -> pd.DataFrame:
    """Accounts whose risk jumped since the previous run, with the reasons that changed.

    An account alerts when its band rose to ``high`` (from low or medium) or its probability
    rose by more than ``config.jump_points``. ``new_reasons`` are today's reasons that were
    not among last run's; ``dropped_reasons`` the other way round. Sorted by rank.
    """
    if previous is None or previous.empty:
        return pd.DataFrame(columns=ALERT_COLUMNS)
    prev = previous[["account_id", "churn_probability", "risk_band"]].rename(columns={"churn_probability": "previous_probability", "risk_band": "previous_band"})
    keep = ["account_id", "rank", "churn_probability", "risk_band", "outreach", "control", "reason_1", "reason_2", "reason_3", "reason_features"]
    merged = current[keep].merge(prev, on="account_id", how="inner")
    change = merged["churn_probability"] - merged["previous_probability"]
    band_up = (merged["risk_band"] == "high") & merged["previous_band"].isin(["low", "medium"])
    jump = change > config.jump_points
    hit = (band_up | jump).to_numpy()
    alerts = merged[hit].copy()
    alerts["probability_change"] = change[hit]
    band_text = np.where(band_up[hit], "band " + alerts["previous_band"] + " → high", "")
    points = (100 * alerts["probability_change"]).round().astype(int).astype("str")
    jump_text = np.where(jump[hit], "risk +" + points + " points", "")
    alerts["alert"] = pd.Series(band_text, index=alerts.index).str.cat(pd.Series(jump_text, index=alerts.index), sep="; ").str.strip("; ")
    now = _reasons_long(alerts)
    before = _reasons_long(previous[previous["account_id"].isin(alerts["account_id"])])
    alerts["reasons"] = alerts["account_id"].map(now.groupby("account_id", sort=False)["text"].agg("; ".join)).fillna("")
    alerts["new_reasons"] = alerts["account_id"].map(_reason_diff(now, before)).fillna("")
    alerts["dropped_reasons"] = alerts["account_id"].map(_reason_diff(before, now)).fillna("")
    return alerts.sort_values("rank")[ALERT_COLUMNS].reset_index(drop=True)
