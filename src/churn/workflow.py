"""End-to-end scoring run: what ``churn score`` does, callable from a notebook too.

load data → check the model's columns are there → features as of the date → risk list with
reasons, outreach and control (honouring earlier runs' assignments) → actual retention →
outcomes and uplift of past lists → report. Every file goes into the run's own folder and
the run is published at the end, all under the scoring folder's lock (:mod:`churn.runs`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from churn import runs
from churn.attributes import attributes_at
from churn.config import ChurnDefinition, DataSettings, FeatureConfig, ScoreConfig, UpliftConfig
from churn.contract import OPTIONAL_INTERACTION_COLUMNS, ContractData, check_freshness, data_end_and_source, load
from churn.experiment import CONTACT_COLUMNS, active_assignments, cohort, power_note, reached_in_window, uplift_table
from churn.features import build_features, features_fed_by
from churn.io import write_table, write_text
from churn.labels import label_accounts
from churn.monitor import Monitoring, monitor_run, read_monitoring
from churn.population import lapsed
from churn.report import render, write_report
from churn.retention import list_outcomes, retention_table, with_churn_dates
from churn.model import ChurnModel
from churn.score import build_risk_list, make_run_id, previous_run, read_history, summary_counts
from churn.tracking import fingerprint

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

    from churn.gate import ChampionView
    from churn.playbook import Playbook
    from churn.train import Evaluation


class MissingInputError(ValueError):
    """The data lacks a column the model was trained with."""


def definition_from_dict(raw: dict[str, object]) -> ChurnDefinition:
    return ChurnDefinition(
        horizon_days=int(raw["horizon_days"]),  # type: ignore[call-overload]
        kind=raw["kind"],  # type: ignore[arg-type]
        activity_event_types=raw.get("activity_event_types", ()),  # type: ignore[arg-type]
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


def run_definition(record: dict, fallback: ChurnDefinition) -> ChurnDefinition:
    """The churn definition a run was scored with (``fallback`` for records without one)."""
    raw = record.get("churn")
    return definition_from_dict(raw) if isinstance(raw, dict) else fallback


def prior_assignments(out_dir: Path, as_of: pd.Timestamp, definition: ChurnDefinition) -> pd.DataFrame:
    """Assignments of earlier runs still within their own horizon at ``as_of``."""
    frames = []
    for record in runs.list_runs(out_dir).to_dict("records"):
        horizon = run_definition(record, definition).horizon_days
        if not record["as_of"] < as_of < record["as_of"] + pd.Timedelta(days=horizon):
            continue
        risk = runs.load_risk_list(out_dir, record["run_id"], columns=["account_id", "outreach", "control", "assigned_as_of"])
        frames.append(cohort(risk, record["as_of"]).assign(run_as_of=record["as_of"], horizon_days=horizon))
    return active_assignments(pd.concat(frames, ignore_index=True) if frames else None, as_of)


def assignment_cohorts(out_dir: Path, definition: ChurnDefinition = ChurnDefinition()) -> pd.DataFrame:
    """Every run's newly assigned accounts (``arm``) with ``run_id``, ``run_as_of`` and
    ``horizon_days`` — what a contact log is checked against."""
    frames = [
        cohort(runs.load_risk_list(out_dir, record["run_id"], columns=["account_id", "outreach", "control", "assigned_as_of"]), record["as_of"]).assign(
            run_id=record["run_id"], run_as_of=record["as_of"], horizon_days=run_definition(record, definition).horizon_days
        )
        for record in runs.list_runs(out_dir).to_dict("records")
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["account_id", "arm", "run_id", "run_as_of", "horizon_days"])


def stale_later_runs(out_dir: Path, as_of: pd.Timestamp, horizon: pd.Timedelta, risk: pd.DataFrame) -> list[str]:
    """Later runs (within this run's horizon) that were scored without this run's draw.

    Scoring an earlier date after a later one — a backfill, or two dates run out of order —
    means the later runs could not hold this run's new controls out. Re-running a date
    that reproduces its previous draw changes nothing, so that case is not reported.
    """
    history = runs.list_runs(out_dir)
    later = history[(history["as_of"] > as_of) & (history["as_of"] < as_of + horizon)]
    if later.empty:
        return []
    same = history[history["as_of"] == as_of]
    if len(same):
        columns = ["account_id", "outreach", "control", "assigned_as_of"]
        key = lambda frame: cohort(frame[columns], as_of)[["account_id", "arm"]].sort_values("account_id").reset_index(drop=True)  # noqa: E731
        if key(runs.load_risk_list(out_dir, same["run_id"].iloc[0], columns=columns)).equals(key(risk)):
            return []
    return [f"{t:%Y-%m-%d}" for t in later["as_of"]]


CONTACTS_FILE = runs.CONTACTS_FILE
_OUTCOME_COLUMNS = ["account_id", "as_of", "churn_probability", "risk_band", "annual_value", "outreach", "control", "assigned_as_of"]


def read_contacts(out_dir: Path) -> pd.DataFrame | None:
    """The folder's contact log (``churn contacts``), or None."""
    path = Path(out_dir) / CONTACTS_FILE
    return pd.read_parquet(path)[CONTACT_COLUMNS] if path.exists() else None


@dataclass
class PastResults:
    """What happened to the matured past lists."""

    outcomes: pd.DataFrame  # churn per run × group / risk band (retention.list_outcomes)
    uplift: pd.DataFrame  # experiment.uplift_table
    cohorts: pd.DataFrame  # one row per account each run newly assigned, with its outcome


def past_results(
    out_dir: Path,
    accounts: pd.DataFrame,
    interactions: pd.DataFrame,
    definition: ChurnDefinition,
    data_end: pd.Timestamp,
    contacts: pd.DataFrame | None = None,
    uplift: UpliftConfig = UpliftConfig(),
) -> PastResults:
    """Outcomes and uplift of every earlier list whose horizon has passed by ``data_end``,
    each judged by the churn definition stored with it (``definition`` only for old records)."""
    outcomes, cohorts = [], []
    for record in runs.list_runs(out_dir).to_dict("records"):
        own = run_definition(record, definition)
        as_of = record["as_of"]
        if as_of + own.horizon > data_end:
            continue
        labels = label_accounts(accounts, interactions, as_of=as_of, definition=own)
        risk = runs.load_risk_list(out_dir, record["run_id"], columns=_OUTCOME_COLUMNS)
        outcome = list_outcomes(risk, labels)
        outcome.insert(0, "run_as_of", f"{as_of:%Y-%m-%d}")
        outcome.insert(1, "run_id", record["run_id"])
        outcomes.append(outcome)
        assigned = cohort(risk, as_of).merge(labels[["account_id", "churned"]], on="account_id", how="inner")
        cohorts.append(assigned.assign(run_id=record["run_id"], run_as_of=as_of, horizon_days=own.horizon_days))
    if not outcomes:
        return PastResults(pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
    table = pd.concat(cohorts, ignore_index=True)
    if contacts is not None:
        table["reached"] = reached_in_window(table, contacts)
    return PastResults(pd.concat(outcomes, ignore_index=True), uplift_table(table, alpha=uplift.alpha), table)


def past_outcomes(out_dir: Path, accounts: pd.DataFrame, interactions: pd.DataFrame, definition: ChurnDefinition, data_end: pd.Timestamp) -> pd.DataFrame:
    """Actual churn of every earlier list whose horizon has passed by ``data_end``."""
    return past_results(out_dir, accounts, interactions, definition, data_end).outcomes


def recent_retention(
    accounts: pd.DataFrame,
    as_of: pd.Timestamp,
    months: int = 12,
    *,
    interactions: pd.DataFrame | None = None,
    definition: ChurnDefinition | None = None,
) -> pd.DataFrame:
    """Monthly (E − N)/S for the last ``months`` complete months, overall and by segment.

    For inactivity churn (no ``churned_at``) an account churns ``horizon`` days after its last
    qualifying activity, as in ``churn retention``; a month counts only once the events given
    cover a whole horizon before it — earlier lapses cannot be dated from them."""
    start = (as_of - pd.DateOffset(months=months)).replace(day=1)
    if definition is not None and definition.resolve_kind(accounts) == "inactivity":
        if interactions is None or interactions.empty:
            return retention_table(accounts, start=as_of, end=as_of)  # nothing to date a lapse by: no months
        start = max(start, interactions["occurred_at"].min() + definition.horizon)
        accounts = with_churn_dates(accounts, interactions, definition, as_of)
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
) -> ScoreOutputs:
    """Score, write the run, retention, outcomes, uplift and report. With ``spark``, features
    and probabilities are computed on the cluster and only the scored table comes back.
    ``playbook`` picks the suggested actions (default: the one shipped with the package).

    Refuses an ``as_of`` after the end of the data (every account would look quiet since the
    export) unless ``allow_stale``; the run then carries a staleness warning. The whole run
    holds ``out_dir``'s lock (a second run waits up to ``config.lock_timeout_seconds``, then
    stops with a message naming the holder): earlier runs' assignments and this run's draw
    must not interleave with another run's."""
    with runs.locked(out_dir, timeout=config.lock_timeout_seconds, holder=f"churn score as of {as_of:%Y-%m-%d}"):
        runs.migrate_legacy(out_dir)
        return _score_run(
            data_dir, as_of=as_of, model=model, model_label=model_label, out_dir=out_dir, config=config, spark=spark, uplift=uplift,
            settings=settings, allow_stale=allow_stale, playbook=playbook,
        )


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
) -> ScoreOutputs:
    definition, fconfig = model_settings(model)
    data_end, data_end_source = data_end_and_source(data_dir, settings)
    freshness = {**check_freshness(as_of, data_end, allow_stale=allow_stale), "data_end_source": data_end_source}
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
    prior = prior_assignments(out_dir, as_of, definition)
    risk, notes = build_risk_list(
        features, model, config=config, accounts=accounts, previous=previous, probabilities=probabilities, prior=prior, playbook=playbook
    )
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
        "seed": config.seed,
        # later runs that did not know this run's controls: re-score them, in date order
        "later_runs_to_rescore": stale_later_runs(out_dir, as_of, definition.horizon, risk),
    }
    run_folder = runs.run_dir(out_dir, str(record["run_id"]))
    paths = runs.write_risk_list(run_folder, risk)
    if winback is not None and definition.kind == "inactivity":
        paths["lapsed"] = write_table(winback, run_folder / "lapsed", "csv")
    retention = recent_retention(accounts, as_of, interactions=interactions, definition=definition)
    paths["retention"] = write_table(retention, run_folder / "retention", "csv")
    if spark is not None and definition.resolve_kind(accounts) == "inactivity":
        past = PastResults(pd.DataFrame(), pd.DataFrame(), pd.DataFrame())  # needs the events after each past list: `churn retention --scores`
    else:
        past = past_results(out_dir, accounts, interactions, definition, data_end=as_of, contacts=read_contacts(out_dir), uplift=uplift)
    if not past.outcomes.empty:
        paths["outcomes"] = write_table(past.outcomes, run_folder / "outcomes", "csv")
        paths["uplift"] = write_table(past.uplift, run_folder / "uplift", "csv")
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
