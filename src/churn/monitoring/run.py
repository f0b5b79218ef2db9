"""The monitoring run: the shell around the checks, with all of monitoring's I/O.

:func:`monitor_run` judges one scoring run as ``churn score`` finishes it (drift against the
model's reference, data quality of the scoring window, realized performance of matured past
lists, risk jumps against the previous run), writes ``monitoring.json`` and ``alerts.csv``
into the run's folder and logs to MLflow when the model came from there (best effort: an
unreachable tracking server never fails a scoring run). :func:`monitor_folder` re-judges the
latest run of a scoring folder (``churn monitor``), with new outcomes when given the data.
The checks themselves are pure functions in the sibling modules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import pandas as pd

from churn.config import definition_from_dict
from churn.data.contract import load
from churn.data.dataend import observed_until
from churn.data.frames import codes_for
from churn.data.io import write_table, write_text
from churn.data.rules import OPTIONAL_INTERACTION_COLUMNS
from churn.monitoring.alerts import risk_alerts
from churn.monitoring.drift import DRIFT_COLUMNS, PREDICTION_COLUMNS, feature_drift, prediction_drift
from churn.monitoring.performance import past_performance
from churn.monitoring.quality import DQ_COLUMNS, daily_event_counts, data_quality, model_known_values, monitoring_window
from churn.monitoring.settings import MonitorConfig
from churn.monitoring.verdict import monitoring_document, monitoring_metrics
from churn.outreach import runs
from churn.outreach.reasons import gain_shares

if TYPE_CHECKING:  # pragma: no cover
    from churn.data.contract import TableReport
    from churn.modeling.model import ChurnModel

MONITORING_FILE = "monitoring.json"
ALERTS_FILE = "alerts"
MLFLOW_EXPERIMENT = "churn-monitoring"


@dataclass
class Monitoring:
    document: dict[str, Any]
    alerts: pd.DataFrame
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return str(self.document["verdict"])


def read_monitoring(folder: Path) -> dict[str, Any] | None:
    """The monitoring.json of a run folder — or of a scoring folder's latest run (the
    top-level name links to it) — or None before monitoring first ran there."""
    path = Path(folder) / MONITORING_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def read_monitoring_history(out_dir: Path) -> pd.DataFrame:
    """Feature drift of every monitored run: ``as_of``, ``run_id``, ``verdict``,
    ``feature``, ``value`` (PSI), ``threshold``, ``status`` — one row per run and feature."""

    frames = []
    for run_id in runs.list_runs(out_dir)["run_id"] if runs.latest_run(out_dir) else []:
        doc = read_monitoring(runs.run_dir(out_dir, str(run_id)))
        if doc is None:
            continue
        rows = pd.DataFrame(doc["features"] + doc["prediction"], columns=["feature", "value", "threshold", "status"])
        frames.append(rows.assign(as_of=pd.Timestamp(doc["as_of"], tz="UTC"), run_id=doc["run_id"], verdict=doc["verdict"]))
    columns = ["as_of", "run_id", "verdict", "feature", "value", "threshold", "status"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns].sort_values(["as_of", "feature"]).reset_index(drop=True)


def came_from_mlflow(model_label: str) -> bool:
    """Whether :func:`churn.modeling.tracking.load_model` loaded the model from MLflow (its label then
    names the ``models:/`` or ``runs:/`` URI; a bundle's label is its path)."""
    return model_label.startswith(("models:/", "runs:/")) or "(models:/" in model_label


def write_monitoring(folder: Path, doc: Mapping[str, Any], alerts: pd.DataFrame) -> dict[str, Path]:
    """monitoring.json and alerts.csv in a run's folder."""

    return {
        "monitoring": write_text(Path(folder) / MONITORING_FILE, json.dumps(doc, indent=1)),
        "alerts": write_table(alerts, Path(folder) / ALERTS_FILE, "csv"),
    }


def log_monitoring(doc: Mapping[str, Any]) -> dict[str, object]:
    """Log a document's metrics (and the document) to the ``churn-monitoring`` MLflow
    experiment. Best effort: any failure is returned as a note, never raised — an
    unreachable tracking server must not fail a scoring run."""
    try:
        import mlflow

        found = mlflow.get_experiment_by_name(MLFLOW_EXPERIMENT)
        if found is not None:
            experiment_id = found.experiment_id
        else:
            uri = mlflow.get_tracking_uri()
            location = (Path(uri[len("sqlite:///") :]).parent / "mlartifacts").resolve().as_uri() if uri.startswith("sqlite:///") else None
            experiment_id = mlflow.create_experiment(MLFLOW_EXPERIMENT, artifact_location=location)
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"monitor {doc['as_of']}") as run:
            mlflow.set_tags({"as_of": str(doc["as_of"]), "model": str(doc["model"])[:250], "verdict": str(doc["verdict"]), "scoring_run": str(doc["run_id"])})
            mlflow.log_metrics(monitoring_metrics(doc))
            mlflow.log_dict(dict(doc), "monitoring.json")
        return {"logged": True, "run_id": run.info.run_id}
    except Exception as exc:  # noqa: BLE001 — best effort by design (see docstring)
        return {"logged": False, "error": f"{type(exc).__name__}: {exc}"[:300]}


def scored_accounts(accounts: pd.DataFrame, risk: pd.DataFrame) -> pd.DataFrame:
    """The accounts a run scored: those on its risk list. Taken from the list, not worked out
    again, so monitoring judges exactly the population the run's churn definition chose."""
    return accounts[codes_for(accounts["account_id"], pd.Index(risk["account_id"])) >= 0]


def monitor_run(
    out_dir: Path,
    *,
    folder: Path,
    record: Mapping[str, Any],
    risk: pd.DataFrame,
    features: pd.DataFrame,
    model: "ChurnModel",
    accounts: pd.DataFrame,
    interactions: pd.DataFrame | None,
    reports: Iterable["TableReport"] = (),
    previous: pd.DataFrame | None = None,
    thresholds: tuple[float, float] = (0.10, 0.25),
    data_end: pd.Timestamp | None = None,
    config: MonitorConfig = MonitorConfig(),
) -> Monitoring:
    """Monitor one scoring run of ``out_dir`` whose files are being written to ``folder`` (the
    end of ``churn score``, before the run is published): drift against the model's
    reference, data quality of the scoring window, realized performance of matured past runs,
    account alerts against ``previous``. Writes monitoring.json and alerts.csv into ``folder``;
    logs to MLflow when the model came from MLflow. ``interactions=None`` (Spark engine)
    skips the event-level checks."""

    as_of = pd.Timestamp(record["as_of"], tz="UTC")
    notes: list[str] = []
    reference = model.metadata.get("monitoring_reference")
    importance = dict(zip(model.feature_names, gain_shares(model).tolist()))
    if reference:
        drift = feature_drift(reference, features, config=config, importance=importance)
        prediction = prediction_drift(reference, risk["churn_probability"].to_numpy(), risk["risk_band"].to_numpy(), thresholds=thresholds, config=config)
        if "score" not in reference:
            notes.append("the model's reference has no score distribution: prediction drift not checked")
        elif not reference["score"].get("source"):
            notes.append(
                "the model's score reference holds its evaluation model's scores (trained before the reference held the deployed model's): "
                "prediction drift partly measures the difference between the two models — retrain to compare like with like"
            )
    else:
        drift = feature_drift({"n": 0, "features": {}}, features, config=config)
        prediction = pd.DataFrame(columns=PREDICTION_COLUMNS)
        notes.append("the model carries no monitoring reference (trained before monitoring existed): feature and prediction drift not checked — retrain to enable them")
    if interactions is None:
        notes.append("events stay on the cluster (Spark engine): volume, missing values and freshness not checked")
    known = model_known_values(model)
    scored = scored_accounts(accounts, risk)
    window = monitoring_window(interactions, as_of, config) if interactions is not None else None
    volume = daily_event_counts(window, as_of=as_of, days=max(config.volume_windows_days) + config.volume_baseline_days) if window is not None and len(window) else None
    quality = data_quality(as_of=as_of, interactions=window, accounts=scored, reports=reports, known=known, drift=drift if reference else None, volume=volume, config=config)
    training = (model.metadata.get("evaluation") or {}).get("metrics", {}).get("model")
    if interactions is None and definition_from_dict(dict(record["churn"])).resolve_kind(accounts) == "inactivity":
        performance, expected = [], []
        notes.append("inactivity churn on the Spark engine: realized performance needs the events (run `churn monitor --data`)")
    else:
        performance, expected = past_performance(
            out_dir, accounts=accounts, interactions=interactions if interactions is not None else pd.DataFrame(columns=["account_id", "occurred_at", "event_type"]),
            data_end=data_end or as_of, training=training, config=config, earlier=read_monitoring(out_dir), current=(record, risk),
        )  # fmt: skip
    alerts = risk_alerts(risk, previous, config=config)
    ref_info = {"source": "model" if reference else None, "n": (reference or {}).get("n"), "known_categories": known}
    doc = monitoring_document(
        record=record, features=drift, prediction=prediction, data_quality=quality, performance=performance, expected=expected,
        alerts=alerts, notes=notes, reference=ref_info, volume=volume, config=config,
    )  # fmt: skip
    doc["mlflow"] = log_monitoring(doc) if came_from_mlflow(str(record.get("model", ""))) else None
    paths = write_monitoring(folder, doc, alerts)
    return Monitoring(doc, alerts, paths)


def monitor_folder(scores: Path, *, data: Path | None = None, config: MonitorConfig = MonitorConfig()) -> Monitoring:
    """``churn monitor``: re-judge the latest run of a scoring folder.

    Drift was measured when the run was scored (the feature values are not kept) and is
    taken from its monitoring document. With ``data``, data quality is recomputed for the
    run's window and realized performance for every run matured in that data — the weekly
    check once new outcomes have arrived. Account alerts are recomputed from the history.
    """

    history = runs.list_runs(scores)
    if history.empty:
        raise ValueError(f"{scores} holds no scoring history: run `churn score --out {scores}` first")
    latest = history.sort_values(["as_of", "scored_at"]).iloc[-1]
    record = latest.to_dict()
    record["as_of"] = f"{latest['as_of']:%Y-%m-%d}"
    as_of = latest["as_of"]
    folder = runs.run_dir(scores, str(latest["run_id"]))
    stored = read_monitoring(folder) or {}
    if stored.get("run_id") != latest["run_id"]:
        stored = {}
    notes = [n for n in stored.get("notes", []) if "realized" not in n]
    features = pd.DataFrame(stored.get("features", []), columns=DRIFT_COLUMNS)
    prediction = pd.DataFrame(stored.get("prediction", []), columns=PREDICTION_COLUMNS)
    if not stored:
        notes.append("no monitoring document for this run (scored before monitoring existed): drift not available")
    quality = pd.DataFrame(stored.get("data_quality", []), columns=DQ_COLUMNS)
    performance, expected = stored.get("performance", []), stored.get("expected", [])
    known = (stored.get("reference") or {}).get("known_categories") or {}
    volume = None
    run_json = folder / "run.json"
    evaluation = json.loads(run_json.read_text(encoding="utf-8")).get("evaluation", {}) if run_json.exists() else {}
    training = (evaluation.get("metrics") or {}).get("model")
    risk = runs.load_risk_list(scores, latest["run_id"])
    if data is not None:
        horizon = max((int(h["horizon_days"]) for h in history.get("churn", []) if isinstance(h, Mapping)), default=0)
        days = max(config.volume_windows_days) + config.volume_baseline_days
        since = min(as_of - pd.Timedelta(days=config.window_days), history["as_of"].min() - pd.Timedelta(days=horizon))
        contract = load(data, interaction_columns=OPTIONAL_INTERACTION_COLUMNS, since=since)
        window = monitoring_window(contract.interactions, as_of, config)
        scored = scored_accounts(contract.accounts, risk)
        drift_missing = features if len(features) and stored.get("reference", {}).get("source") else None
        volume = daily_event_counts(window, as_of=as_of, days=days) if len(window) else None
        quality = data_quality(as_of=as_of, interactions=window, accounts=scored, reports=contract.reports, known=known, drift=drift_missing, volume=volume, config=config)
        end = observed_until(contract.accounts, contract.interactions)
        performance, expected = past_performance(scores, accounts=contract.accounts, interactions=contract.interactions, data_end=end, training=training, config=config, history=history)
    elif stored.get("volume_daily"):
        daily = stored["volume_daily"]
        volume = pd.DataFrame(daily["counts"], index=pd.to_datetime(daily["days"], utc=True))
    alerts = risk_alerts(risk, runs.previous_run(scores, as_of), config=config)
    doc = monitoring_document(
        record=record, features=features, prediction=prediction, data_quality=quality, performance=performance, expected=expected,
        alerts=alerts, notes=notes, reference=stored.get("reference"), volume=volume, config=config,
    )  # fmt: skip
    doc["mlflow"] = stored.get("mlflow")
    paths = write_monitoring(folder, doc, alerts)
    runs.refresh_links(scores)  # a run monitored for the first time gets its top-level links
    return Monitoring(doc, alerts, paths)
