"""The verdict (ok / warn / alert, retrain or not) and the monitoring document it is written in."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Mapping, Sequence

import pandas as pd

from churn.data.frames import json_records, to_json_safe
from churn.monitoring.settings import STATUS_LEVEL, MonitorConfig, worst


def verdict(
    *,
    features: pd.DataFrame,
    prediction: pd.DataFrame,
    data_quality: pd.DataFrame,
    performance: Sequence[Mapping[str, Any]],
    config: MonitorConfig = MonitorConfig(),
) -> dict[str, object]:
    """``ok`` / ``warn`` / ``alert``, ``retrain_recommended`` and the reasons for both.

    * alert: a data-quality alert, a prediction-drift alert, drift alerts on features that
      together carry ≥ ``important_gain_share`` of the model's gain, or realized performance
      of the latest matured list clearly below training;
    * warn: any other warning or alert;
    * retrain: prediction drift, drift of important features or a performance alert — but
      never while the data itself is broken (fix the feed first: the drift may be its echo).
    """
    reasons: list[str] = []
    retrain: list[str] = []
    levels: list[str] = []
    dq_alert = data_quality[data_quality["status"] == "alert"] if len(data_quality) else data_quality
    for row in dq_alert.itertuples(index=False):
        reasons.append(f"data quality ({row.check}) {row.subject}: {row.detail}")
    levels.append("alert" if len(dq_alert) else "ok")
    dq_warn = data_quality[data_quality["status"] == "warn"] if len(data_quality) else data_quality
    if len(dq_warn):
        levels.append("warn")
        reasons.append(f"data quality: {len(dq_warn)} warning(s) — " + "; ".join(f"{r.subject}: {r.detail}" for r in dq_warn.head(3).itertuples(index=False)))

    drifting = features[features["status"] == "alert"] if len(features) else features
    flagged = features[features["status"] != "ok"] if len(features) else features
    share = drifting["importance"].astype(float) if len(drifting) else pd.Series(dtype=float)
    relied_on = len(drifting) > 0 and (share.isna().any() or share.sum() >= config.important_gain_share)  # unknown importance counts
    names = ", ".join(f"{r.feature} ({r.status}, PSI {r.value:.2f})" for r in flagged.head(6).itertuples(index=False)) + (" …" if len(flagged) > 6 else "")
    if relied_on:
        levels.append("alert")
        weight = "" if share.isna().any() else f", {100 * share.sum():.0f} % of the model's gain"
        reasons.append(f"drift in {len(flagged)} feature(s){weight}: {names}")
        retrain.append(f"features the model relies on have shifted: {names}")
    elif len(flagged):
        levels.append("warn")
        why = f"features carrying {100 * share.sum():.1f} % of the model's gain" if len(drifting) else "warning level"
        reasons.append(f"drift in {len(flagged)} feature(s) ({why}): {names}")

    for row in prediction.itertuples(index=False) if len(prediction) else []:
        if row.status != "ok":
            levels.append(row.status)
            text = f"prediction drift ({row.feature}): PSI {row.value:.2f} over the threshold {row.warn_threshold if row.status == 'warn' else row.threshold:.2f}"
            reasons.append(text + (f" — {row.detail}" if row.detail else ""))
            if row.status == "alert":
                retrain.append(text)

    if performance:
        latest = performance[-1]
        if latest["status"] != "ok":
            levels.append(latest["status"])
            reasons.append(f"realized performance of the list as of {latest['as_of']}: {latest['detail']}")
            if latest["status"] == "alert":
                retrain.append(latest["detail"])
    level = worst(levels)
    if retrain and len(dq_alert):
        retrain = []
        reasons.append("retraining not recommended until the data-quality alerts are fixed: drift may be their echo")
    return {"verdict": level, "retrain_recommended": bool(retrain), "reasons": reasons or ["all checks within their thresholds"], "retrain_reasons": retrain}


def monitoring_document(
    *,
    record: Mapping[str, Any],
    features: pd.DataFrame,
    prediction: pd.DataFrame,
    data_quality: pd.DataFrame,
    performance: Sequence[Mapping[str, Any]],
    expected: Sequence[Mapping[str, Any]],
    alerts: pd.DataFrame,
    notes: Sequence[str] = (),
    reference: Mapping[str, Any] | None = None,
    volume: pd.DataFrame | None = None,
    config: MonitorConfig = MonitorConfig(),
) -> dict[str, object]:
    """The ``monitoring.json`` document of one run (JSON-safe)."""
    decision = verdict(features=features, prediction=prediction, data_quality=data_quality, performance=performance, config=config)
    doc = {
        "run_id": record.get("run_id"),
        "as_of": record.get("as_of"),
        "model": record.get("model"),
        **decision,
        "summary": {
            "features_checked": int(len(features)),
            "features_warn": int((features["status"] == "warn").sum()) if len(features) else 0,
            "features_alert": int((features["status"] == "alert").sum()) if len(features) else 0,
            "data_quality_warn": int((data_quality["status"] == "warn").sum()) if len(data_quality) else 0,
            "data_quality_alert": int((data_quality["status"] == "alert").sum()) if len(data_quality) else 0,
            "account_alerts": int(len(alerts)),
            "matured_runs": len(performance),
        },
        "notes": list(notes),
        "reference": dict(reference or {}),
        "features": json_records(features),
        "prediction": json_records(prediction),
        "data_quality": json_records(data_quality),
        "performance": list(performance),
        "expected": list(expected),
        "alerts": json_records(alerts.head(config.alerts_in_document)),
        "volume_daily": None if volume is None or volume.empty else {"days": [f"{d:%Y-%m-%d}" for d in volume.index], "counts": {str(c): volume[c].tolist() for c in volume.columns}},
        "thresholds": asdict(config),
    }
    return to_json_safe(doc)  # type: ignore[no-any-return]


def monitoring_metrics(doc: Mapping[str, Any]) -> dict[str, float]:
    """Flat numeric metrics of a monitoring document, for MLflow."""
    summary = doc["summary"]
    metrics = {
        "verdict_level": float(STATUS_LEVEL[doc["verdict"]]),
        "retrain_recommended": float(doc["retrain_recommended"]),
        **{k: float(v) for k, v in summary.items()},
    }
    for row in doc["features"]:
        if row["value"] is not None:
            metrics[f"psi.{row['feature']}"] = float(row["value"])
    for row in doc["prediction"]:
        if row["value"] is not None:
            metrics[f"prediction_psi.{row['feature']}"] = float(row["value"])
    if doc["performance"]:
        latest = doc["performance"][-1]
        for key in ("roc_auc", "pr_auc", "precision_at_capacity", "actual_rate", "expected_rate"):
            if latest.get(key) is not None:
                metrics[f"realized.{key}"] = float(latest[key])
    if doc["expected"]:
        value = doc["expected"][-1].get("expected_flagged_rate")
        if value is not None:
            metrics["expected_flagged_rate"] = float(value)
    return metrics


def drift_onset(history: pd.DataFrame) -> pd.DataFrame:
    """When drift began, per feature: the first run of the latest unbroken streak of
    warn/alert statuses that reaches the latest run (features drifting now only).

    ``history`` has ``as_of``, ``feature`` and ``status`` (one row per run and feature), as
    :func:`churn.monitoring.run.read_monitoring_history` returns.
    """
    frame = history.sort_values(["feature", "as_of"]).reset_index(drop=True)
    latest = frame["as_of"].max()
    off = frame["status"].eq("ok")
    streak = off.groupby(frame["feature"]).cumsum()  # a new streak starts after each ok
    frame["streak"] = streak
    last = frame.groupby("feature")["streak"].transform("last")
    drifting = frame[~off & frame["streak"].eq(last)]
    onset = drifting.groupby("feature").agg(since=("as_of", "min"), until=("as_of", "max"), runs=("as_of", "size"), worst_psi=("value", "max"))
    onset = onset[onset["until"] == latest]
    return onset.sort_values(["since", "worst_psi"], ascending=[True, False]).reset_index()
