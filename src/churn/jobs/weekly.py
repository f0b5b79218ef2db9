"""End-to-end scoring run: what ``churn score`` does, callable from a notebook too.

load data → check the model's columns are there → features as of the date → check the model
fits them (most of its gain not on features missing for everyone, some of its event types seen)
→ risk list with reasons, outreach and control (honouring earlier runs' assignments) → actual retention →
outcomes and uplift of past lists → report. Every file goes into the run's own folder and
the run is published at the end, all under the scoring folder's lock (:mod:`churn.outreach.runs`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from churn.config import ChurnDefinition, DataSettings, ScoreConfig, UpliftConfig
from churn.data.attributes import unknown_at
from churn.data.contract import ContractData, load
from churn.data.dataend import check_freshness, data_end_and_source
from churn.data.io import write_table, write_text
from churn.data.population import lapsed
from churn.data.rules import OPTIONAL_INTERACTION_COLUMNS
from churn.features.build import build_features
from churn.jobs.uplift import evaluation_document, stored_gate
from churn.modeling.model import ChurnModel, ModelMismatchError, check_inputs, input_mismatch, model_settings
from churn.modeling.tracking import champion_uri, configure, fingerprint, load_model
from churn.monitoring.run import Monitoring, monitor_folder, monitor_run, read_monitoring
from churn.outreach import runs
from churn.outreach.experiment import power_note
from churn.outreach.history import PastResults, past_results, prior_assignments, read_contacts, recent_retention, stale_later_runs
from churn.outreach.playbook import load_playbook
from churn.outreach.report import render, write_report
from churn.outreach.runs import make_run_id, previous_run
from churn.outreach.score import build_risk_list, lapsed_list, summary_counts
from churn.outreach.whom import UPLIFT_EVALUATION_FILE, read_uplift_evaluation
from churn.spark import spark_features, spark_score, to_pandas_features

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

    from churn.outreach.playbook import Playbook


@dataclass
class ScoreOutputs:
    risk: pd.DataFrame
    record: dict[str, object]
    paths: dict[str, Path]
    outcomes: pd.DataFrame
    uplift: pd.DataFrame = field(default_factory=pd.DataFrame)
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
    uplift: UpliftConfig = UpliftConfig(),
    settings: DataSettings = DataSettings(),
    allow_stale: bool = False,
    playbook: "Playbook | None" = None,
    data_end: tuple[pd.Timestamp, str] | None = None,
    allow_model_mismatch: bool = False,
) -> ScoreOutputs:
    """Score, write the run, retention, outcomes, uplift and report. With ``spark``, features
    and probabilities are computed on the cluster and only the scored table comes back.
    ``playbook`` picks the suggested actions (default: the one shipped with the package).
    ``data_end`` is the end of the data and where it came from
    (:func:`churn.data.dataend.data_end_and_source`), when the caller has already read it.

    Refuses an ``as_of`` after the end of the data (every account would look quiet since the
    export) unless ``allow_stale``; the run then carries a staleness warning. Refuses, before
    writing anything, a model whose inputs the data lacks (:func:`churn.modeling.model.input_mismatch`:
    another business's champion) unless ``allow_model_mismatch``; the run then records why in
    ``model_mismatch``. The whole run
    holds ``out_dir``'s lock (a second run waits up to ``config.lock_timeout_seconds``, then
    stops with a message naming the holder): earlier runs' assignments and this run's draw
    must not interleave with another run's."""
    with runs.locked(out_dir, timeout=config.lock_timeout_seconds, holder=f"churn score as of {as_of:%Y-%m-%d}"):
        runs.migrate_legacy(out_dir)
        return _score_run(
            data_dir, as_of=as_of, model=model, model_label=model_label, out_dir=out_dir, config=config, spark=spark, uplift=uplift,
            settings=settings, allow_stale=allow_stale, playbook=playbook, data_end=data_end, allow_model_mismatch=allow_model_mismatch,
        )


@dataclass
class _Scored:
    """The features (and, on Spark, the probabilities) of every customer at the run's date,
    the data they came from, and the lapsed accounts for the win-back list."""

    data: ContractData
    definition: ChurnDefinition
    features: pd.DataFrame
    probabilities: np.ndarray | None
    #: Lapsed accounts whose last activity is in the events read (None on Spark: needs the events).
    gone: pd.DataFrame | None
    #: Lapsed accounts whose last activity is older than the events read (not listed).
    older: int


def _features_at(
    data_dir: Path, *, as_of: pd.Timestamp, since: pd.Timestamp, model: ChurnModel, settings: DataSettings, spark: "SparkSession | None"
) -> _Scored:
    """Load the data the run needs and compute the features at ``as_of`` — in process, or on
    the cluster (where the model scores too, and only the scored table comes back)."""
    definition, fconfig = model_settings(model)
    if spark is None:
        data = load(data_dir, interaction_columns=OPTIONAL_INTERACTION_COLUMNS, since=since, until=as_of, date_format=settings.date_format, tables=settings.source)
        check_inputs(model, data, str(data_dir))
        definition = definition.resolved(data.accounts)
        features = build_features(
            data.accounts, data.interactions, as_of=as_of, spec=model.spec, config=fconfig, definition=definition, history=data.attribute_history
        )
        gone = lapsed(data.accounts, data.interactions, as_of, definition)
        # only events since `since` were read: older lapses have an unknown last activity
        older = int((gone["last_activity"] < since).sum())
        return _Scored(data, definition, features, None, gone[gone["last_activity"] >= since].reset_index(drop=True), older)
    # accounts only (one row each) on the driver: for values, retention and outcomes
    data = load(data_dir, interaction_columns=OPTIONAL_INTERACTION_COLUMNS, since=as_of, until=as_of, date_format=settings.date_format, tables=settings.source)
    check_inputs(model, data, str(data_dir))
    definition = definition.resolved(data.accounts)
    scored_sdf = spark_features(spark, data_dir, as_of=as_of, spec=model.spec, config=fconfig, definition=definition).cache()
    scores = spark_score(scored_sdf, model).toPandas().set_index("account_id")["churn_probability"]
    features = to_pandas_features(scored_sdf, model.spec)
    scored_sdf.unpersist()
    return _Scored(data, definition, features, scores.reindex(features["account_id"]).to_numpy(), None, 0)


def _score_run(
    data_dir: Path,
    *,
    as_of: pd.Timestamp,
    model: ChurnModel,
    model_label: str,
    out_dir: Path,
    config: ScoreConfig,
    spark: "SparkSession | None",
    uplift: UpliftConfig,
    settings: DataSettings,
    allow_stale: bool,
    playbook: "Playbook | None" = None,
    data_end: tuple[pd.Timestamp, str] | None = None,
    allow_model_mismatch: bool = False,
) -> ScoreOutputs:
    definition, fconfig = model_settings(model)
    data_end, data_end_source = data_end or data_end_and_source(data_dir, settings)
    freshness = {**check_freshness(as_of, data_end, allow_stale=allow_stale), "data_end_source": data_end_source}
    history = runs.list_runs(out_dir)
    pending = history[history["as_of"] < as_of]["as_of"]
    since = min([as_of - pd.Timedelta(days=max(fconfig.lookback_days, definition.horizon_days)), *pending])
    scored = _features_at(data_dir, as_of=as_of, since=since, model=model, settings=settings, spark=spark)
    data, definition, features, probabilities, gone, older = scored.data, scored.definition, scored.features, scored.probabilities, scored.gone, scored.older
    accounts, interactions = data.accounts, data.interactions
    mismatch = _scorable(features, as_of, model, model_label, allow_mismatch=allow_model_mismatch)
    previous = previous_run(out_dir, as_of)
    prior = prior_assignments(out_dir, as_of, definition)
    effects = model.uplift.predict(features) if model.uplift is not None else None  # `churn uplift` put one in the bundle
    risk, notes = build_risk_list(
        features, model, config=config, accounts=accounts, previous=previous, probabilities=probabilities, prior=prior, playbook=playbook,
        uplift=effects, gate=stored_gate(model),
    )  # fmt: skip
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
        "attributes_unknown_at_as_of": _attributes_unknown(model, data, as_of, settings, data_end),
        **({"model_mismatch": mismatch} if mismatch else {}),
        "lapsed": None if winback is None or definition.kind != "inactivity" else len(winback),
        "lapsed_before": f"{since:%Y-%m-%d}" if older else None,
        "lapsed_earlier": older,
        **summary_counts(risk),
        **notes,
        "seed": config.seed,
        # later runs that did not know this run's controls: re-score them, in date order
        "later_runs_to_rescore": stale_later_runs(out_dir, as_of, definition.horizon, risk),
    }
    run_folder = runs.run_dir(out_dir, str(record["run_id"]))
    paths = _write_lists(run_folder, risk, winback if definition.kind == "inactivity" else None, model, notes)
    retention, past = _retention_and_outcomes(
        out_dir, run_folder, paths, data=data, definition=definition, as_of=as_of, events_on_cluster=spark is not None, uplift=uplift
    )
    context = {
        "record": record,
        "evaluation": model.metadata.get("evaluation", {}),
        "descriptions": {f.name: f.description for f in model.feature_infos()},
        "thresholds": [config.medium_threshold, config.high_threshold],
        "uplift": asdict(uplift),
    }
    paths["context"] = write_text(run_folder / "run.json", json.dumps(context, default=str, indent=1))
    monitoring = monitor_run(
        out_dir, folder=run_folder, record=record, risk=risk, features=features, model=model, accounts=accounts,
        interactions=interactions if spark is None else None, reports=data.reports, previous=previous,
        thresholds=(config.medium_threshold, config.high_threshold), data_end=min(as_of, data_end),
    )  # fmt: skip
    paths.update(monitoring.paths)
    paths["report"] = _write_report(run_folder, context, risk, retention, past.outcomes, past.uplift)
    record = runs.publish_run(out_dir, record)
    return ScoreOutputs(risk, record, paths, past.outcomes, past.uplift, monitoring)


def _write_lists(run_folder: Path, risk: pd.DataFrame, winback: pd.DataFrame | None, model: ChurnModel, notes: dict[str, object]) -> dict[str, Path]:
    """The run's lists: the risk list, the win-back list (inactivity churn) and, with an uplift
    model in the bundle, the evaluation the report's "Whom to call" section reads."""
    paths = runs.write_risk_list(run_folder, risk)
    if winback is not None:
        paths["lapsed"] = write_table(winback, run_folder / "lapsed", "csv")
    whom = evaluation_document(model, str(notes["ranking"]), str(notes["ranking_reason"]))
    if whom is not None:
        paths["uplift_evaluation"] = write_text(run_folder / UPLIFT_EVALUATION_FILE, json.dumps(whom, default=str, indent=1))
    return paths


def _attributes_unknown(model: ChurnModel, data: ContractData, as_of: pd.Timestamp, settings: DataSettings, data_end: pd.Timestamp) -> list[str] | None:
    """The model's attributes whose value at ``as_of`` the data does not hold (a past-dated run
    reading a later export), each with why — None when every one is known."""
    names = [*model.spec.numeric_attributes, *(c for c, _ in model.spec.categorical_attributes)]
    unknown = unknown_at(names, data.accounts, data.attribute_history, as_of=as_of, settings=settings, export_date=data_end)
    return [f"{d.name}: {d.reason}" for d in unknown] or None


def _scorable(features: pd.DataFrame, as_of: pd.Timestamp, model: ChurnModel, model_label: str, *, allow_mismatch: bool) -> str | None:
    """Check there is someone to score and the model fits their features; returns why it does
    not fit (None: it does). Raises :class:`churn.modeling.model.ModelMismatchError` unless
    ``allow_mismatch``: a list scored by another business's champion ranks nobody, and would go
    out looking like any other week's."""
    if features.empty:
        raise ValueError(f"no account is a customer at {as_of:%Y-%m-%d}: nothing to score")
    found = input_mismatch(model, features)
    if not found.refused:
        return None
    message = found.describe(model_label)
    if not allow_mismatch:
        raise ModelMismatchError(message)
    return f"{message} — scored anyway (--allow-model-mismatch)"


def _retention_and_outcomes(
    out_dir: Path,
    run_folder: Path,
    paths: dict[str, Path],
    *,
    data: ContractData,
    definition: ChurnDefinition,
    as_of: pd.Timestamp,
    events_on_cluster: bool,
    uplift: UpliftConfig,
) -> tuple[pd.DataFrame, PastResults]:
    """Recent actual retention, and the outcomes and uplift of the past lists matured by
    ``as_of``, written into the run's folder (their paths added to ``paths``)."""
    accounts, interactions = data.accounts, data.interactions
    retention = recent_retention(accounts, as_of, interactions=interactions, definition=definition)
    paths["retention"] = write_table(retention, run_folder / "retention", "csv")
    if events_on_cluster and definition.resolve_kind(accounts) == "inactivity":
        past = PastResults(pd.DataFrame(), pd.DataFrame(), pd.DataFrame())  # needs the events after each past list: `churn retention --scores`
    else:
        past = past_results(out_dir, accounts, interactions, definition, data_end=as_of, contacts=read_contacts(out_dir), uplift=uplift)
    if not past.outcomes.empty:
        paths["outcomes"] = write_table(past.outcomes, run_folder / "outcomes", "csv")
        paths["uplift"] = write_table(past.uplift, run_folder / "uplift", "csv")
    return retention, past


def _write_report(
    folder: Path, context: dict, risk: pd.DataFrame, retention: pd.DataFrame | None, outcomes: pd.DataFrame | None, uplift: pd.DataFrame | None = None
) -> Path:
    """Render a run's report.html from its context (run.json) and its tables."""
    settings = UpliftConfig(**context.get("uplift", {}))
    html = render(
        risk=risk,
        record=context["record"],
        retention=retention,
        outcomes=outcomes,
        evaluation=context["evaluation"],
        descriptions=context["descriptions"],
        thresholds=tuple(context["thresholds"]),  # type: ignore[arg-type]
        uplift=uplift,
        power=None if uplift is None or uplift.empty else power_note(uplift, alpha=settings.alpha, power=settings.power, relative_reduction=settings.relative_reduction),
        monitoring=read_monitoring(folder),
        whom_to_call=read_uplift_evaluation(folder),
    )
    return write_report(folder / "report.html", html)


def rerender_report(out_dir: Path, outcomes: pd.DataFrame | None = None, uplift: pd.DataFrame | None = None, run_id: str | None = None) -> Path:
    """Rebuild a run's report.html (default: the latest run) from the files in its folder,
    e.g. after its outcomes were refreshed; tables given here replace the stored ones."""
    runs.upgrade(out_dir)
    if run_id is None:
        latest = runs.latest_run(out_dir)
        if latest is None:
            raise runs.NoRunError(f"{out_dir} holds no scoring run")
        run_id = str(latest["run_id"])
    folder = runs.run_dir(out_dir, run_id)
    context = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    risk = pd.read_parquet(folder / "risk_list.parquet")
    retention = pd.read_csv(folder / "retention.csv", parse_dates=["period_start", "period_end"]) if (folder / "retention.csv").exists() else None
    if outcomes is None and (folder / "outcomes.csv").exists():
        outcomes = pd.read_csv(folder / "outcomes.csv")
    if uplift is None and (folder / "uplift.csv").exists():
        uplift = pd.read_csv(folder / "uplift.csv", keep_default_na=False, na_values=[""])
    return _write_report(folder, context, risk, retention, outcomes, uplift)


def score_with(
    data_dir: Path,
    *,
    as_of: pd.Timestamp | None,
    model_ref: str | None,
    out_dir: Path,
    config: ScoreConfig = ScoreConfig(),
    settings: DataSettings = DataSettings(),
    playbook_path: Path | None = None,
    allow_stale: bool = False,
    start_spark: "Callable[[], SparkSession | None] | None" = None,
    progress: Callable[[str], None] = lambda _: None,
    allow_model_mismatch: bool = False,
) -> tuple[ScoreOutputs, str]:
    """``churn score``: read the playbook (a typo fails before anything is loaded), load the
    model ``model_ref`` (:func:`load_scoring_model`; None: the champion of the business's
    ``settings.model_name``), and run :func:`score_run` at ``as_of`` (None: the end of the
    data). Returns the run's outputs and the model's label."""
    book = load_playbook(playbook_path)
    model, label = load_scoring_model(model_ref or champion_uri(settings.model_name))
    end = data_end_and_source(data_dir, settings)  # read once: the default date and the freshness check
    cutoff = as_of if as_of is not None else end[0]
    if start_spark is not None:
        progress("Starting Spark…")
    spark = start_spark() if start_spark is not None else None
    progress(f"Scoring customers at {cutoff:%Y-%m-%d} with {label}…")
    outputs = score_run(
        data_dir, as_of=cutoff, model=model, model_label=label, out_dir=out_dir, config=config, spark=spark,
        settings=settings, allow_stale=allow_stale, playbook=book, data_end=end, allow_model_mismatch=allow_model_mismatch,
    )  # fmt: skip
    return outputs, label


def load_scoring_model(ref: str) -> tuple[ChurnModel, str]:
    """The model a run scores with, and its label: a ``models:/`` or ``runs:/`` URI from the
    MLflow store (configured first), or a bundle file, which needs no store."""
    if ref.startswith(("models:/", "runs:/")):
        configure()
    return load_model(ref)


def monitor_latest(scores: Path, *, data: Path | None = None) -> tuple[Monitoring, Path]:
    """``churn monitor``: re-judge the latest run of a scoring folder (with ``data``, also its
    data quality and every list matured since) and re-render its report, under the folder's
    lock. Returns the monitoring result and the report's path."""
    runs.upgrade(scores)
    if runs.latest_run(scores) is None:
        raise runs.NoRunError(f"{scores} holds no scoring run (run `churn score --out {scores}` first)")
    with runs.locked(scores, holder="churn monitor"):
        result = monitor_folder(scores, data=data)
        report = rerender_report(scores)
    return result, report
