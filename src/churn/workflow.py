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

from churn.attributes import attributes_at
from churn.config import ChurnDefinition, DataSettings, FeatureConfig, ScoreConfig
from churn.contract import OPTIONAL_INTERACTION_COLUMNS, ContractData, find_table, interactions_end, load, read_table, validate
from churn.features import build_features, features_fed_by
from churn.io import write_table, write_text
from churn.labels import label_accounts, observed_until
from churn.population import lapsed
from churn.report import render, write_report
from churn.retention import list_outcomes, retention_table
from churn.score import build_risk_list, load_run, make_run_id, previous_run, read_history, summary_counts, write_run
from churn.model import ChurnModel
from churn.tracking import fingerprint

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

    from churn.gate import ChampionView
    from churn.train import Evaluation


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
            fed = [f for f in features_fed_by(col, model.feature_infos()) if f in model.feature_names]
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


def champion_view(version: str, champion: ChurnModel, evaluation: "Evaluation", data: ContractData) -> "ChampionView":
    """What the gate needs of the current champion: its training end, whether it can still
    score this data, and its probabilities on the evaluation slices later than its training
    data — computed with its *own* feature spec and settings, so a champion built by older
    feature code is judged on the features it knows."""
    from churn.gate import ChampionView, eligible_folds

    cutoffs = [pd.Timestamp(c, tz="UTC") for c in champion.metadata.get("cutoffs", [])]  # type: ignore[union-attr]
    definition = definition_from_dict(champion.definition).resolved(data.accounts)  # "auto" decided on this data
    view = ChampionView(version, definition.as_dict(), max(cutoffs) if cutoffs else None)
    try:
        check_inputs(champion, data, "the data")
    except MissingInputError as exc:
        view.schema_problem = str(exc).removeprefix("the data: ")
        return view
    for i in eligible_folds(evaluation, view):
        result = evaluation.folds[i]
        features = build_features(
            data.accounts, data.interactions, as_of=result.fold.test_cutoff, spec=champion.spec, config=champion.feature_config,
            definition=definition, history=data.attribute_history,
        )
        aligned = features.set_index("account_id").reindex(result.test["account_id"].astype("str"))
        if aligned.index.isin(features["account_id"]).all():
            view.scores[i] = champion.predict_proba(aligned.reset_index())
    return view


class StaleDataError(ValueError):
    """Scoring a date after the end of the data."""


def data_end_of(data_dir: Path, settings: DataSettings = DataSettings()) -> pd.Timestamp:
    """End of the observed history of a data folder: ``settings.data_end``, else the day after
    the latest interaction (future-dated rows ignored), else — attribute-only data — the latest
    signup or churn date."""
    if settings.data_end is not None:
        return settings.data_end
    latest = interactions_end(data_dir, date_format=settings.date_format)
    if latest is not None:
        return latest.ceil("D")
    path = find_table(data_dir, "accounts")
    accounts = validate(read_table(path), None, date_format=settings.date_format).accounts if path else None
    if accounts is None:
        raise ValueError(f"{data_dir}: no accounts table")
    return observed_until(accounts, accounts.iloc[:0].assign(occurred_at=pd.Series(dtype="datetime64[ns, UTC]")))


def check_freshness(as_of: pd.Timestamp, data_end: pd.Timestamp, *, allow_stale: bool = False) -> dict[str, object]:
    """The run's data-freshness facts; refuses an ``as_of`` after the data unless allowed."""
    lag = (as_of - data_end) / pd.Timedelta(days=1)
    if lag > 0 and not allow_stale:
        raise StaleDataError(
            f"--as-of {as_of:%Y-%m-%d} is {lag:g} day(s) after the end of the data ({data_end:%Y-%m-%d}): every account "
            f"would look quiet since {data_end:%Y-%m-%d}. Export newer data, score --as-of {data_end:%Y-%m-%d}, "
            "or pass --allow-stale-data to score anyway"
        )
    facts: dict[str, object] = {"data_end": f"{data_end:%Y-%m-%d}", "data_lag_days": round(max(lag, 0.0), 1)}
    if lag > 0:
        facts["warning"] = f"stale data: the data ends {lag:g} day(s) before the scoring date; recent activity is missing"
    return facts


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


@dataclass
class ScoreOutputs:
    risk: pd.DataFrame
    record: dict[str, object]
    paths: dict[str, Path]
    outcomes: pd.DataFrame


def score_run(
    data_dir: Path,
    *,
    as_of: pd.Timestamp,
    model: ChurnModel,
    model_label: str,
    out_dir: Path,
    config: ScoreConfig = ScoreConfig(),
    spark: "SparkSession | None" = None,
    settings: DataSettings = DataSettings(),
    allow_stale: bool = False,
) -> ScoreOutputs:
    """Score, write the run, retention, outcomes and report. With ``spark``, features and
    probabilities are computed on the cluster and only the scored table comes back.

    Refuses an ``as_of`` after the end of the data (every account would look quiet since the
    export) unless ``allow_stale``; the run then carries a staleness warning."""
    definition, fconfig = model_settings(model)
    data_end = data_end_of(data_dir, settings)
    freshness = check_freshness(as_of, data_end, allow_stale=allow_stale)
    history = read_history(out_dir)
    pending = history[history["as_of"] < as_of]["as_of"]
    since = min([as_of - pd.Timedelta(days=max(fconfig.lookback_days, definition.horizon_days)), *pending])
    probabilities = None
    if spark is None:
        data = load(data_dir, interaction_columns=OPTIONAL_INTERACTION_COLUMNS, since=since, until=as_of, date_format=settings.date_format)
        check_inputs(model, data, str(data_dir))
        definition = definition.resolved(data.accounts)
        features = build_features(
            data.accounts, data.interactions, as_of=as_of, spec=model.spec, config=fconfig, definition=definition, history=data.attribute_history
        )
        gone = lapsed(data.accounts, data.interactions, as_of, definition)
        # only events since `since` were read: older lapses have an unknown last activity
        older = int((gone["last_activity"] < since).sum())
        gone = gone[gone["last_activity"] >= since].reset_index(drop=True)
    else:
        from churn.spark import spark_features, spark_score, to_pandas_features

        # accounts only (one row each) on the driver: for values, retention and outcomes
        data = load(data_dir, interaction_columns=OPTIONAL_INTERACTION_COLUMNS, since=as_of, until=as_of, date_format=settings.date_format)
        check_inputs(model, data, str(data_dir))
        definition = definition.resolved(data.accounts)
        scored_sdf = spark_features(spark, data_dir, as_of=as_of, spec=model.spec, config=fconfig, definition=definition).cache()
        scores = spark_score(scored_sdf, model).toPandas().set_index("account_id")["churn_probability"]
        features = to_pandas_features(scored_sdf, model.spec)
        scored_sdf.unpersist()
        probabilities = scores.reindex(features["account_id"]).to_numpy()
        gone, older = None, 0  # the win-back list needs the events: run the in-process engine for it
    accounts, interactions = data.accounts, data.interactions
    if features.empty:
        raise ValueError(f"no account is a customer at {as_of:%Y-%m-%d}: nothing to score")
    previous = previous_run(out_dir, as_of)
    risk, notes = build_risk_list(features, model, config=config, accounts=accounts, previous=previous, probabilities=probabilities)
    winback = None if gone is None else lapsed_list(gone, accounts, data.attribute_history, as_of, config)

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
        **freshness,
        "lapsed": None if winback is None or definition.kind != "inactivity" else len(winback),
        "lapsed_before": f"{since:%Y-%m-%d}" if older else None,
        "lapsed_earlier": older,
        **summary_counts(risk),
        **notes,
    }
    paths = write_run(out_dir, risk, record)
    if winback is not None and definition.kind == "inactivity":
        paths["lapsed"] = write_table(winback, out_dir / "lapsed", "csv")
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
    paths["report"] = _write_report(out_dir, context, risk, retention, outcomes)
    return ScoreOutputs(risk, record, paths, outcomes)


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
