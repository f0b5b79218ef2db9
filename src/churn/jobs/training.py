"""``churn dataset``, ``churn train`` and ``churn backtest``: from a data folder to a training
table, then to an evaluated, tracked model and a champion decision.

The steps are the stages' own functions (:mod:`churn.features.labels`,
:mod:`churn.modeling.train`, :mod:`churn.modeling.tracking`), put in order here, with what
happened handed back for the CLI or a notebook to show. One piece of logic lives here because
it needs both a model and the feature builder: :func:`champion_view`, the champion's scores on
the challenger's evaluation slices, for the gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from churn.config import ChurnDefinition, DataSettings, FeatureConfig, TrainConfig, definition_from_dict
from churn.data.attributes import AttributeDecision
from churn.data.contract import ContractData
from churn.data.dataend import DECLARE_DATA_END
from churn.data.population import horizon_misfit
from churn.features.build import build_features, learn_spec
from churn.features.labels import build_training_table, parse_cutoffs, schedule_cutoffs
from churn.features.spec import FeatureSpec
from churn.jobs.tables import load_for_features, write_frame
from churn.modeling.gate import ChampionView, Decision, eligible_folds
from churn.modeling.leakage import LeakageError, check_static_attributes_at_export
from churn.modeling.model import ChurnModel, MissingInputError, check_inputs
from churn.modeling.results import Evaluation
from churn.modeling.survival import time_to_lapse
from churn.modeling.tracking import (
    MODEL_NAME,
    configure,
    current_champion,
    decide_champion,
    export_bundle,
    fingerprint,
    log_leakage_stop,
    log_training_run,
)
from churn.modeling.train import TrainResult, summarise_backtest
from churn.modeling.train import backtest as run_backtest
from churn.modeling.train import train as fit

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    """No progress display."""


@dataclass(frozen=True)
class TrainingTable:
    """A training table and what went into it: the loaded data, the resolved churn definition,
    the feature spec, the attribute decisions and the dates that bound the labels."""

    contract: ContractData
    definition: ChurnDefinition
    spec: FeatureSpec
    table: pd.DataFrame
    decisions: list[AttributeDecision]
    #: Labels are observed until here (``--as-of`` or the end of the data).
    data_end: pd.Timestamp
    #: When the accounts table's attribute values were taken (the export date by default).
    attributes_date: pd.Timestamp
    cutoffs: list[pd.Timestamp]
    #: Why these cutoffs: "given", or how the schedule chose them.
    cutoffs_why: str
    #: The horizon does not fit the purchase rhythm (transactional data), in words; or None.
    horizon_warning: str | None = None
    #: Where the table was written (``churn dataset``); None when it was not.
    path: Path | None = None

    def check_static_attributes(self, config: TrainConfig) -> None:
        """Stop before any training when an attribute declared static knows who churned."""
        check_static_attributes_at_export(
            self.contract.accounts, self.contract.interactions, [d.name for d in self.decisions if d.source == "static" and d.used],
            self.definition, export_date=self.attributes_date, first_cutoff=self.table["as_of"].min(), config=config,
        )  # fmt: skip


def training_table(
    data: Path,
    settings: DataSettings,
    *,
    export_date: pd.Timestamp,
    as_of: pd.Timestamp | None = None,
    cutoffs: str | None = None,
    horizon: int = 30,
    out: Path | None = None,
    progress: Progress = _quiet,
) -> TrainingTable:
    """Load the data, pick mature cutoffs, decide the attributes and build the training table
    (written to ``out`` when given: ``churn dataset``).

    ``export_date`` is the end of the data (:func:`churn.data.dataend.data_end_and_source`);
    ``as_of`` limits the labels to those mature by then, never when the export was taken.
    ``cutoffs`` is the ``--cutoffs`` text (None: the schedule picks the latest mature ones).
    """
    end = export_date
    if as_of is not None:
        end = as_of
        if end > export_date:
            raise ValueError(
                f"--as-of {end:%Y-%m-%d} is after the end of the data ({export_date:%Y-%m-%d}): labels after it are not observed. "
                f"If the export was taken later than its last event (a snapshot with labels), say when with {DECLARE_DATA_END}"
            )
    fconfig = FeatureConfig()
    contract = load_for_features(data, settings)
    accounts, interactions = contract.accounts, contract.interactions
    definition = ChurnDefinition(horizon_days=horizon).resolved(accounts)
    if cutoffs:
        points, why = parse_cutoffs(cutoffs), "given"
    else:
        start = interactions["occurred_at"].min() if len(interactions) else None
        points, why = schedule_cutoffs(start, end, definition)
    spec, decisions = learn_spec(contract, cutoffs=points, data_end=export_date, settings=settings, config=fconfig)
    progress("Building the training table…")
    table = build_training_table(
        accounts, interactions, cutoffs=points, definition=definition, config=fconfig, spec=spec, data_end=end,
        history=contract.attribute_history, progress=lambda t: progress(f"Built cutoff {t:%Y-%m-%d}"),
    )  # fmt: skip
    return TrainingTable(
        contract, definition, spec, table, decisions, end, settings.attributes_as_of or export_date, points, why,
        horizon_misfit(interactions, definition), write_frame(table, out) if out is not None else None,
    )  # fmt: skip


def champion_view(version: str, champion: ChurnModel, evaluation: Evaluation, data: ContractData) -> ChampionView:
    """What the gate needs of the current champion: its training end, whether it can still
    score this data, and its probabilities on the evaluation slices later than its training
    data — computed with its *own* feature spec and settings, so a champion built by older
    feature code is judged on the features it knows."""
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


@dataclass(frozen=True)
class TrainingRun:
    """A finished ``churn train``: the result, its MLflow run and registered version (of
    ``model_name``), the champion decision and, when promoted, the exported bundle."""

    result: TrainResult
    run_id: str
    version: str
    decision: Decision
    tracking_uri: str
    bundle: Path | None
    model_name: str = MODEL_NAME


class LeakageStop(ValueError):
    """Training stopped by a leakage sentinel; recorded as a failed MLflow run."""


def train_and_track(
    built: TrainingTable,
    config: TrainConfig,
    *,
    capacity: int,
    models_dir: Path,
    root: Path,
    progress: Progress = _quiet,
    on_trained: Callable[[TrainResult], None] | None = None,
    model_name: str = MODEL_NAME,
) -> TrainingRun:
    """Check the static attributes, evaluate and fit (:func:`churn.modeling.train.train`), log
    the run to MLflow under ``root`` as a version of ``model_name`` (the business's registered
    model), judge the challenger against that model's champion — never another business's —
    and export the bundle when it wins. A leakage stop is recorded as a failed run and raised as
    :class:`LeakageStop`. ``on_trained`` sees the result before anything is logged, so the
    evaluation is shown even if the tracking store then fails."""
    uri = configure(root)
    contract = built.contract
    try:
        built.check_static_attributes(config)
        progress("Training…")
        outcomes = time_to_lapse(contract.accounts, contract.interactions, built.table, built.definition, built.data_end) if config.survival else None
        result = fit(
            built.table, spec=built.spec, definition=built.definition, config=config, capacity=capacity, feature_config=FeatureConfig(), progress=progress,
            outcomes=outcomes,
        )  # fmt: skip
    except LeakageError as exc:
        run_id = log_leakage_stop(root, str(exc), fingerprint(contract.accounts, contract.interactions), model_name)
        raise LeakageStop(f"{exc} (recorded as failed MLflow run {run_id})") from None
    result.model.metadata["attributes"] = [d.as_dict() for d in built.decisions]
    if on_trained is not None:
        on_trained(result)
    progress("Logging to MLflow…")
    run_id, version = log_training_run(result, root=root, data_fingerprint=fingerprint(contract.accounts, contract.interactions), model_name=model_name)
    champion = current_champion(model_name)
    view = champion_view(champion[0], champion[1], result.evaluation, contract) if champion else None
    decision = decide_champion(result, version, view, capacity=capacity, model_name=model_name)
    bundle = export_bundle(result.model, models_dir, version=version, run_id=run_id, model_name=model_name) if decision.promoted else None
    return TrainingRun(result, run_id, version, decision, uri, bundle, model_name)


@dataclass(frozen=True)
class Backtest:
    """``churn backtest``: metrics per test cutoff and model, their mean and spread, and the file."""

    results: pd.DataFrame
    summary: pd.DataFrame
    path: Path


def backtest(built: TrainingTable, *, folds: int, capacity: int, out: Path) -> Backtest:
    """Retrain before each of the latest ``folds`` cutoffs and score it (metrics per cutoff),
    after the same static-attribute check as training; the per-cutoff metrics go to ``out``."""
    built.check_static_attributes(TrainConfig())
    results = run_backtest(built.table, folds=folds, spec=built.spec, definition=built.definition, capacity=capacity)
    return Backtest(results, summarise_backtest(results), write_frame(results, out))
