"""End-to-end scoring run: what ``churn score`` does, callable from a notebook too.

load data → check the model's columns are there → features as of the date → risk list with
reasons, outreach and control → history → actual retention → outcomes of past lists → report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from churn.config import ChurnDefinition, FeatureConfig, ScoreConfig
from churn.contract import OPTIONAL_INTERACTION_COLUMNS, ContractData, load
from churn.features import COLUMN_FEATURES, build_features
from churn.io import write_table, write_text
from churn.labels import label_accounts
from churn.monitor import Monitoring, monitor_run, read_monitoring
from churn.report import render, write_report
from churn.retention import list_outcomes, retention_table
from churn.score import build_risk_list, load_run, make_run_id, previous_run, read_history, summary_counts, write_run
from churn.tracking import fingerprint
from churn.train import ChurnModel

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession


class MissingInputError(ValueError):
    """The data lacks a column the model was trained with."""


def definition_from_dict(raw: dict[str, object]) -> ChurnDefinition:
    return ChurnDefinition(
        horizon_days=int(raw["horizon_days"]),  # type: ignore[call-overload]
        kind=raw["kind"],  # type: ignore[arg-type]
        activity_event_types=tuple(raw.get("activity_event_types", ())),  # type: ignore[arg-type]
    )


def model_settings(model: ChurnModel) -> tuple[ChurnDefinition, FeatureConfig]:
    return definition_from_dict(model.definition), model.feature_config


def check_inputs(model: ChurnModel, data: ContractData, source: str) -> None:
    """Name every column the model needs that the data lacks, and the features it feeds."""
    spec = model.spec
    problems = []
    for col in spec.interaction_columns:
        if col not in data.interactions.columns:
            fed = [f for f in model.feature_names if f.startswith(COLUMN_FEATURES.get(col, (col,)))]
            problems.append(f"interactions column '{col}' (used by {', '.join(fed[:4]) or 'its features'}{' …' if len(fed) > 4 else ''})")
    for col in [*spec.numeric_attributes, *(c for c, _ in spec.categorical_attributes)]:
        if col not in data.accounts.columns:
            problems.append(f"accounts column '{col}'")
    if problems:
        raise MissingInputError(f"{source}: the model needs " + "; ".join(problems) + ", which the data does not have")


def past_outcomes(out_dir: Path, accounts: pd.DataFrame, interactions: pd.DataFrame, definition: ChurnDefinition, data_end: pd.Timestamp) -> pd.DataFrame:
    """Actual churn of every earlier list whose horizon has passed by ``data_end``."""
    history = read_history(out_dir)
    done = history[history["as_of"] + definition.horizon <= data_end]
    frames = []
    for run in done.sort_values("as_of").itertuples(index=False):
        labels = label_accounts(accounts, interactions, as_of=run.as_of, definition=definition)
        outcome = list_outcomes(load_run(out_dir, run.run_id), labels)
        outcome.insert(0, "run_as_of", f"{run.as_of:%Y-%m-%d}")
        outcome.insert(1, "run_id", run.run_id)
        frames.append(outcome)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def recent_retention(accounts: pd.DataFrame, as_of: pd.Timestamp, months: int = 12) -> pd.DataFrame:
    """Monthly (E − N)/S for the last ``months`` complete months, overall and by segment."""
    start = (as_of - pd.DateOffset(months=months)).replace(day=1)
    overall = retention_table(accounts, start=start, end=as_of)
    if "segment" not in accounts.columns:
        return overall
    by_segment = retention_table(accounts, start=start, end=as_of, by=["segment"])
    return pd.concat([overall.assign(segment=None), by_segment], ignore_index=True)


@dataclass
class ScoreOutputs:
    risk: pd.DataFrame
    record: dict[str, object]
    paths: dict[str, Path]
    outcomes: pd.DataFrame
    monitoring: Monitoring | None = None


def score_run(
    data_dir: Path,
    *,
    as_of: pd.Timestamp,
    model: ChurnModel,
    model_label: str,
    out_dir: Path,
    config: ScoreConfig = ScoreConfig(),
    spark: "SparkSession | None" = None,
) -> ScoreOutputs:
    """Score, write the run, retention, outcomes and report. With ``spark``, features and
    probabilities are computed on the cluster and only the scored table comes back."""
    definition, fconfig = model_settings(model)
    history = read_history(out_dir)
    pending = history[history["as_of"] < as_of]["as_of"]
    since = min([as_of - pd.Timedelta(days=fconfig.lookback_days), *pending])
    probabilities = None
    if spark is None:
        data = load(data_dir, interaction_columns=OPTIONAL_INTERACTION_COLUMNS, since=since, until=as_of)
        check_inputs(model, data, str(data_dir))
        features = build_features(data.accounts, data.interactions, as_of=as_of, spec=model.spec, config=fconfig)
    else:
        from churn.spark import spark_features, spark_score, to_pandas_features

        # accounts only (one row each) on the driver: for values, retention and outcomes
        data = load(data_dir, interaction_columns=OPTIONAL_INTERACTION_COLUMNS, since=as_of, until=as_of)
        check_inputs(model, data, str(data_dir))
        scored_sdf = spark_features(spark, data_dir, as_of=as_of, spec=model.spec, config=fconfig).cache()
        scores = spark_score(scored_sdf, model).toPandas().set_index("account_id")["churn_probability"]
        features = to_pandas_features(scored_sdf, model.spec)
        scored_sdf.unpersist()
        probabilities = scores.reindex(features["account_id"]).to_numpy()
    accounts, interactions = data.accounts, data.interactions
    if features.empty:
        raise ValueError(f"no account is active at {as_of:%Y-%m-%d}: nothing to score")
    previous = previous_run(out_dir, as_of)
    risk, notes = build_risk_list(features, model, config=config, accounts=accounts, previous=previous, probabilities=probabilities)

    scored_at = pd.Timestamp.now(tz="UTC")
    record: dict[str, object] = {
        "run_id": make_run_id(as_of, scored_at),
        "as_of": f"{as_of:%Y-%m-%d}",
        "scored_at": scored_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "model": model_label,
        "model_version": model.metadata.get("registered_version"),
        "churn_definition": f"{definition.resolve_kind(accounts)} churn within {definition.horizon_days} days",
        "churn": definition.as_dict(),
        "data_fingerprint": fingerprint(accounts, interactions),
        "previous_run": None if previous is None else str(previous["as_of"].iloc[0].date()),
        **summary_counts(risk),
        **notes,
    }
    paths = write_run(out_dir, risk, record)
    retention = recent_retention(accounts, as_of)
    paths["retention"] = write_table(retention, out_dir / "retention", "csv")
    if spark is not None and definition.resolve_kind(accounts) == "inactivity":
        outcomes = pd.DataFrame()  # needs the events after each past list: `churn retention --scores` in-process
    else:
        outcomes = past_outcomes(out_dir, accounts, interactions, definition, data_end=as_of)
    if not outcomes.empty:
        paths["outcomes"] = write_table(outcomes, out_dir / "outcomes", "csv")
    context = {
        "record": record,
        "evaluation": model.metadata.get("evaluation", {}),
        "descriptions": {f.name: f.description for f in model.feature_infos()},
        "thresholds": [config.medium_threshold, config.high_threshold],
    }
    paths["context"] = write_text(out_dir / "run.json", json.dumps(context, default=str, indent=1))
    monitoring = monitor_run(
        out_dir, record=record, risk=risk, features=features, model=model, accounts=accounts,
        interactions=interactions if spark is None else None, reports=data.reports, previous=previous,
        thresholds=(config.medium_threshold, config.high_threshold),
    )  # fmt: skip
    paths.update(monitoring.paths)
    paths["report"] = _write_report(out_dir, context, risk, retention, outcomes)
    return ScoreOutputs(risk, record, paths, outcomes, monitoring)


def _write_report(out_dir: Path, context: dict, risk: pd.DataFrame, retention: pd.DataFrame | None, outcomes: pd.DataFrame | None) -> Path:
    """Render report.html from a run's context (run.json) and its tables."""
    html = render(
        risk=risk,
        record=context["record"],
        retention=retention,
        outcomes=outcomes,
        evaluation=context["evaluation"],
        descriptions=context["descriptions"],
        thresholds=tuple(context["thresholds"]),  # type: ignore[arg-type]
        monitoring=read_monitoring(out_dir),
    )
    return write_report(out_dir / "report.html", html)


def rerender_report(out_dir: Path, outcomes: pd.DataFrame | None = None) -> Path:
    """Rebuild report.html from a scoring folder's files (e.g. after outcomes matured)."""
    context = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    risk = pd.read_parquet(out_dir / "risk_list.parquet")
    retention = pd.read_csv(out_dir / "retention.csv", parse_dates=["period_start", "period_end"]) if (out_dir / "retention.csv").exists() else None
    if outcomes is None and (out_dir / "outcomes.csv").exists():
        outcomes = pd.read_csv(out_dir / "outcomes.csv")
    return _write_report(out_dir, context, risk, retention, outcomes)
