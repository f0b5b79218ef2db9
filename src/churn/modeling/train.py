"""Training: evaluate the procedure honestly, then fit the deployed model on everything mature.

One *procedure* (:func:`fit_churn_model`) turns labelled rows into a :class:`ChurnModel`:

1. k account folds (stratified, an account's rows never split): each fold's model is
   early-stopped on its held-out fold, which gives the number of trees and an out-of-fold
   score for every row;
2. the calibration — isotonic or sigmoid, chosen by cross-validated log loss — is fitted on
   those out-of-fold scores, so it never sees the scores of its own fit;
3. LightGBM is refitted on all the rows, its number of trees scaled up to them.

The reported metrics come from running that same procedure where the answer is known:

* **several cutoffs** — a purged time split (:class:`churn.modeling.splits.PurgedTimeSplit`): each of
  the latest cutoffs is scored by a model fitted only on cutoffs whose labels had matured by
  it, exactly as a model deployed then would have been;
* **one cutoff** (a CRM snapshot) — stratified k-fold cross-validation by account.

Then the deployed model is fitted on *all* mature rows, the newest labels included. Class
imbalance is left as it is: reweighting would distort the probabilities that the outreach
and revenue-at-risk figures rely on. Two baselines (logistic regression, "quiet the
longest") are fitted and scored on the same rows every time.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn.config import ChurnDefinition, FeatureConfig, ProfitConfig, TrainConfig
from churn.features.labels import LABEL
from churn.features.spec import FeatureSpec
from churn.modeling import tune as tuning
from churn.modeling.baselines import LogisticBaseline, RuleBaseline
from churn.modeling.calibration import choose_calibration
from churn.modeling.evaluate import METRICS, classification_metrics, customer_value, gains_curve, metrics_table
from churn.modeling.leakage import check_leakage
from churn.modeling.model import ChurnModel, categorical_columns, lightgbm_params, model_columns
from churn.modeling.profile import reference_profile
from churn.modeling.results import Evaluation, EvaluationKind, FitInfo, FoldResult
from churn.modeling.splits import AccountFolds, Fold, PurgedTimeSplit
from churn.modeling.survival import SurvivalEvaluation, train_time_to_churn

# --------------------------------------------------------------------------- leakage sentinel


# --------------------------------------------------------------------------- the procedure


def fit_churn_model(
    rows: pd.DataFrame,
    *,
    spec: FeatureSpec,
    definition: ChurnDefinition,
    config: TrainConfig = TrainConfig(),
    feature_config: FeatureConfig = FeatureConfig(),
    deployed_scores: bool = False,
) -> tuple[ChurnModel, FitInfo]:
    """The procedure: k account folds, each early-stopped on its held-out fold, give the
    number of trees and out-of-fold scores; the calibration is fitted on those scores; the
    final LightGBM is fitted on every row with the trees scaled to the rows it now has.

    ``deployed_scores``: also score every row out of fold *as the deployed model would*
    (:func:`scores_as_deployed`, in ``info.oof``) — what monitoring compares each run with."""
    rows = rows.reset_index(drop=True)
    columns = model_columns(rows)
    categorical = categorical_columns(rows, columns)
    x, y = rows[columns], rows[LABEL].to_numpy()
    params = lightgbm_params(config, len(rows))

    oof = np.zeros(len(rows))
    best, fitted, parts = [], [], []
    folds = AccountFolds(n_splits=config.calibration_folds, seed=config.seed).folds(rows)
    for fold in folds:
        part = lgb.LGBMClassifier(n_estimators=config.n_estimators, **params)  # type: ignore[arg-type]
        part.fit(
            x.iloc[fold.train], y[fold.train], eval_X=(x.iloc[fold.test],), eval_y=(y[fold.test],), eval_metric="binary_logloss",
            callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)],
        )
        best.append(int(part.best_iteration_ or config.n_estimators))
        fitted.append(len(fold.train))
        oof[fold.test] = part.predict_proba(x.iloc[fold.test], num_iteration=best[-1])[:, 1]
        parts.append(part)
    best_iteration = max(1, round(float(np.mean(best))))
    n_trees = max(1, math.ceil(best_iteration * len(rows) / float(np.mean(fitted))))  # more rows, more trees
    calibrator, losses = choose_calibration(oof, y, config.seed)

    classifier = lgb.LGBMClassifier(n_estimators=n_trees, **params)  # type: ignore[arg-type]
    classifier.fit(x, y)
    cutoffs = sorted(rows["as_of"].unique())
    model = ChurnModel(
        feature_names=columns,
        categories={c: list(rows[c].cat.categories) for c in categorical},
        classifier=classifier,
        calibrator=calibrator,
        spec_json=spec.to_json(),
        definition=definition.as_dict(),
        metadata={
            "cutoffs": [f"{t:%Y-%m-%d}" for t in cutoffs],
            "train_rows": len(rows),
            "train_accounts": int(rows["account_id"].nunique()),
            "best_iteration": best_iteration,
            "n_estimators": n_trees,
            "calibration": calibrator.method,
            "feature_config": asdict(feature_config),
            "train_config": {k: v for k, v in asdict(config).items() if k != "allow_features"},
        },
        reference=reference_values(rows, columns, set(categorical)),
    )
    deployed_oof = calibrator.transform(scores_as_deployed(parts, folds, x, y, n_trees, params)) if deployed_scores else np.zeros(0)
    return model, FitInfo(len(rows), best_iteration, n_trees, calibrator.method, losses, deployed_oof)


def scores_as_deployed(parts: list[lgb.LGBMClassifier], folds: list[Fold], x: pd.DataFrame, y: np.ndarray, n_trees: int, params: dict[str, object]) -> np.ndarray:
    """Every row's raw score from its fold's model grown to the deployed model's tree count.

    The early-stopped fold models are not the deployed model's stand-in as they are: the
    deployed model has the trees scaled up to all rows (× k/(k − 1)), and more trees make
    sharper scores — through the same calibrator its lowest and highest probabilities lie
    further out than the fold models'. So each fold model is grown on (boosting continues
    from its trees, on its own training rows, with the same settings) to ``n_trees`` and
    scores its held-out accounts there. The cost is the added trees only."""
    raw = np.zeros(len(x))
    for part, fold in zip(parts, folds):
        have = part.booster_.current_iteration()
        grown = part
        if n_trees > have:
            grown = lgb.LGBMClassifier(n_estimators=n_trees - have, **params)  # type: ignore[arg-type]
            grown.fit(x.iloc[fold.train], y[fold.train], init_model=part.booster_)
        raw[fold.test] = grown.predict_proba(x.iloc[fold.test], num_iteration=n_trees)[:, 1]
    return raw


#: How the stored reference's score distribution was made (models trained before this have none:
#: their reference holds the evaluation fold model's scores).
SCORE_SOURCE = "out of fold by account, with the deployed settings, tree count and calibrator"


def monitoring_reference(table: pd.DataFrame, info: FitInfo, columns: list[str]) -> dict[str, object]:
    """What monitoring compares each scoring run with: the rows of the latest cutoff (one per
    account, as in a scoring run) and the *deployed* model's scores on them — summaries only.

    The scores are the deployed model's out-of-fold ones (``info.oof``,
    :func:`scores_as_deployed`): each row scored by a model with the deployed settings and tree
    count that never saw the row's account, through the deployed calibrator. Why these:

    * the evaluation fold's model is another model (fewer cutoffs, other trees), and the
      deployed model's scores on its own training rows are in-sample: against either, the
      difference between two models — or the fit to the training rows — reads as drift;
    * account folds rather than cutoff folds: a scoring run meets accounts the model never
      learned from at a date like those it trained on — leaving whole cutoffs out would put the
      changes over the training period into the reference, which is what drift should
      measure, not hide;
    * they cost little: they are the fold models fitted anyway for early stopping and
      calibration, grown to the deployed tree count.

    The fold models saw 1/k fewer rows, so the reference is a close stand-in for the deployed
    model on new accounts, not an identity. On generated data (3 trainings, each scoring 3 new
    draws of accounts at its latest cutoff) the deployed model's scores lie PSI 0.007–0.029 from
    it, against 0.015–0.044 from the evaluation model's scores (and 0.05–0.07 from the
    early-stopped fold scores, one training); the prediction-drift thresholds start near 0.11."""
    latest = np.flatnonzero((table["as_of"] == table["as_of"].max()).to_numpy())
    rows = table.iloc[latest]
    return reference_profile(rows, columns, categorical_columns(table, columns), probabilities=info.oof[latest], score_source=SCORE_SOURCE)


def reference_values(train: pd.DataFrame, columns: list[str], categorical: set[str]) -> dict[str, dict[str, object]]:
    """What is typical in the training rows, stored with the model: the yardstick every
    reason quotes ("typical: 3 min") and the scale of the cheap reason attribution.

    Numeric columns: ``median`` and ``mean`` (0 when never known), ``spread`` (interquartile
    range, else the standard deviation, else 1) and ``known`` (share of rows with a value;
    for a yes/no feature ``mean`` is the share of yes). Categorical columns: ``shares``, the
    share of rows in each category (most common first)."""
    ref: dict[str, dict[str, object]] = {}
    for c in columns:
        if c in categorical:
            shares = train[c].value_counts(normalize=True, dropna=True)
            ref[c] = {"shares": {str(k): float(v) for k, v in shares.items()}}
            continue
        v = train[c].astype(float)
        q1, med, q3 = v.quantile([0.25, 0.5, 0.75]).to_numpy()
        spread = q3 - q1 if np.isfinite(q3 - q1) and q3 > q1 else (v.std() if v.std() > 0 else 1.0)
        ref[c] = {
            "median": float(np.nan_to_num(med)),
            "spread": float(spread),
            "mean": float(np.nan_to_num(v.mean())),
            "known": float(v.notna().mean()) if len(v) else 0.0,
        }
    return ref


def tuned(rows: pd.DataFrame, definition: ChurnDefinition, config: TrainConfig, *, runs: int) -> tuple[TrainConfig, pd.DataFrame]:
    """``config`` tuned on ``rows`` when tuning is on (one of ``runs`` tuning runs sharing
    the time budget), else unchanged."""
    if config.tune_trials <= 0:
        return config, pd.DataFrame()

    return tuning.tune(rows, horizon_days=definition.horizon_days, config=config, n_trials=config.tune_trials, seconds=config.tune_seconds / runs)


# --------------------------------------------------------------------------- evaluation


def score_fold(
    table: pd.DataFrame,
    fold: Fold,
    *,
    spec: FeatureSpec,
    definition: ChurnDefinition,
    config: TrainConfig,
    capacity: int,
    profit: ProfitConfig,
    tuning_runs: int = 1,
) -> FoldResult:
    train_rows, test_rows = table.iloc[fold.train], table.iloc[fold.test]
    config, _ = tuned(train_rows, definition, config, runs=tuning_runs)
    model, info = fit_churn_model(train_rows, spec=spec, definition=definition, config=config)
    columns = model_columns(table)
    scores = {
        "model": model.predict_proba(test_rows),
        "logistic": LogisticBaseline(columns, categorical_columns(table, columns), config.seed).fit(train_rows).predict_proba(test_rows),
        "rule": RuleBaseline(columns).fit(train_rows).predict_proba(test_rows),
    }
    y = test_rows[LABEL].to_numpy()
    clv = customer_value(test_rows, profit)
    metrics = metrics_table({name: classification_metrics(y, p, capacity=capacity, clv=clv, profit=profit) for name, p in scores.items()})
    keep = [c for c in ("account_id", "as_of", LABEL, profit.value_column) if c in test_rows.columns]
    return FoldResult(fold, y, scores, metrics, info, test_rows[keep].reset_index(drop=True))


def evaluation_folds(table: pd.DataFrame, definition: ChurnDefinition, config: TrainConfig, n_folds: int | None = None) -> tuple[EvaluationKind, list[Fold]]:
    """Purged time folds when the cutoffs allow one, else account folds (cross-validation)."""
    if table["as_of"].nunique() > 1:
        folds = PurgedTimeSplit(definition.horizon_days, n_folds or config.evaluation_folds).folds(table)
        if folds:
            return "time", folds
    return "cv", AccountFolds(n_splits=config.cv_folds, seed=config.seed).folds(table)


def evaluate(
    table: pd.DataFrame,
    *,
    spec: FeatureSpec,
    definition: ChurnDefinition,
    config: TrainConfig = TrainConfig(),
    capacity: int = 200,
    profit: ProfitConfig = ProfitConfig(),
    n_folds: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Evaluation:
    """Run the procedure on each evaluation fold and score model and baselines on its test rows."""
    kind, folds = evaluation_folds(table, definition, config, n_folds)
    results = []
    for i, fold in enumerate(folds):
        if progress:
            progress(f"Evaluation fold {i + 1} of {len(folds)}: {fold.description}")
        results.append(
            score_fold(table, fold, spec=spec, definition=definition, config=config, capacity=capacity, profit=profit, tuning_runs=len(folds) + 1)
        )
    if kind == "time":
        many = table["as_of"].nunique() > 1
        description = f"purged time split over {len(folds)} fold{'s' if len(folds) > 1 else ''}: " + "; ".join(
            f.description for f in folds
        )
        if many and len(folds) < (n_folds or config.evaluation_folds):
            description += f" (only {len(folds)} cutoff(s) have matured cutoffs before them)"
        return Evaluation("time", description, results)
    pooled = _pool(results, capacity=capacity, profit=profit)
    why = "one cutoff (snapshot data)" if table["as_of"].nunique() == 1 else "the cutoffs are too close for their horizon"
    description = f"{why}: stratified {len(folds)}-fold cross-validation by account, every row scored out of fold"
    return Evaluation("cv", description, results, pooled)


def _pool(results: list[FoldResult], *, capacity: int, profit: ProfitConfig) -> FoldResult:
    """All out-of-fold scores as one result (cross-validation)."""
    y = np.concatenate([r.y for r in results])
    scores = {name: np.concatenate([r.scores[name] for r in results]) for name in results[0].scores}
    test = pd.concat([r.test for r in results], ignore_index=True)
    clv = customer_value(test, profit)
    metrics = metrics_table({name: classification_metrics(y, p, capacity=capacity, clv=clv, profit=profit) for name, p in scores.items()})
    fold = Fold(np.zeros(0, dtype=np.int64), np.concatenate([r.fold.test for r in results]), "all rows, out of fold")
    return FoldResult(fold, y, scores, metrics, results[0].info, test)


# --------------------------------------------------------------------------- orchestration


def evaluation_summary(evaluation: Evaluation) -> dict[str, object]:
    """Small, JSON-friendly evaluation kept inside the model, so reports can show lift and
    calibration without the training data."""
    from sklearn.calibration import calibration_curve

    main = evaluation.main
    observed, predicted = calibration_curve(main.y, main.scores["model"], n_bins=10, strategy="quantile")
    headline = main.metrics if evaluation.kind == "cv" else evaluation.mean_metrics()
    return {
        "kind": evaluation.kind,
        "test_cutoff": f"{main.fold.test_cutoff:%Y-%m-%d}" if main.fold.test_cutoff is not None else "out of fold",
        "split": evaluation.description,
        "metrics": {name: {k: float(v) for k, v in row.items()} for name, row in headline.iterrows()},
        "folds": evaluation.fold_metrics().assign(test_cutoff=lambda d: d["test_cutoff"].astype("str")).to_dict(orient="records"),
        "gains": {name: gains_curve(main.y, p).to_dict(orient="list") for name, p in main.scores.items()},
        "calibration": {"predicted": predicted.tolist(), "observed": observed.tolist()},
    }


@dataclass
class TrainResult:
    """The deployed model, how it was evaluated, and what it saw."""

    model: ChurnModel
    evaluation: Evaluation
    info: FitInfo
    params: dict[str, object]
    leakage: pd.DataFrame
    #: A few feature rows (MLflow's input example).
    example: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    #: Hyperparameter trials of the deployed model's tuning (empty without --tune).
    tuning: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    #: The time-to-churn model's evaluation against Cox and Kaplan–Meier (``--survival``), or None.
    survival: SurvivalEvaluation | None = None

    @property
    def metrics(self) -> pd.DataFrame:
        """Headline metrics (model, logistic, rule): the mean over time folds, or the pooled
        out-of-fold cross-validation."""
        return self.evaluation.main.metrics if self.evaluation.kind == "cv" else self.evaluation.mean_metrics()

    @property
    def test_scores(self) -> dict[str, np.ndarray]:
        return self.evaluation.main.scores

    @property
    def y_test(self) -> np.ndarray:
        return self.evaluation.main.y

    @property
    def calibration_losses(self) -> dict[str, float]:
        return self.info.calibration_losses

    def beats_baselines(self, metric: str = "precision_at_capacity") -> bool:
        m = self.metrics[metric]
        return bool(m["model"] > m["logistic"] and m["model"] > m["rule"])


def train(
    table: pd.DataFrame,
    *,
    spec: FeatureSpec,
    definition: ChurnDefinition = ChurnDefinition(),
    config: TrainConfig = TrainConfig(),
    capacity: int = 200,
    feature_config: FeatureConfig = FeatureConfig(),
    profit: ProfitConfig = ProfitConfig(),
    progress: Callable[[str], None] | None = None,
    outcomes: pd.DataFrame | None = None,
) -> TrainResult:
    """Check for leakage, evaluate the procedure on held-out folds, then fit the deployed
    model on every row of ``table`` (all mature cutoffs).

    ``outcomes`` (months to lapse and whether it was observed, aligned with ``table``:
    :func:`churn.modeling.survival.time_to_lapse`) adds the time-to-churn model, evaluated and
    saved inside the deployed model (``model.survival``).

    ``feature_config`` must be the one the table was built with: it is stored in the model
    so that scoring computes the same features."""
    if table[LABEL].nunique() < 2:
        raise ValueError("the training table has only one class: no churners (or no survivors) at these cutoffs")
    columns = model_columns(table)
    leakage = check_leakage(table, columns, config)
    evaluation = evaluate(table, spec=spec, definition=definition, config=config, capacity=capacity, profit=profit, progress=progress)
    if progress:
        progress(f"Fitting the deployed model on all {len(table):,} rows")
    final_config, trials = tuned(table, definition, config, runs=len(evaluation.folds) + 1)
    model, info = fit_churn_model(table, spec=spec, definition=definition, config=final_config, feature_config=feature_config, deployed_scores=True)
    model.metadata.update(
        {
            "monitoring_reference": monitoring_reference(table, info, columns),
            "evaluation": evaluation_summary(evaluation),
            "split": evaluation.description,
            "split_kind": evaluation.kind,
            "evaluation_test_cutoffs": [f"{r.fold.test_cutoff:%Y-%m-%d}" for r in evaluation.folds if r.fold.test_cutoff is not None],
            "capacity": capacity,
            "profit": asdict(profit),
        }
    )
    survival = None
    if outcomes is not None:
        if progress:
            progress("Time to churn: evaluating against Cox and Kaplan–Meier, then fitting on all rows")
        survival, model.survival = train_time_to_churn(table, outcomes, columns, config=config)
        model.metadata["survival"] = {**model.survival.metadata}
    params = {
        **{f"lgbm_{k}": v for k, v in lightgbm_params(config, len(table)).items() if k not in ("n_jobs", "verbose")},
        "n_estimators": info.n_estimators,
        "best_iteration": info.best_iteration,
        "calibration": info.calibration,
        "horizon_days": definition.horizon_days,
        "churn_kind": definition.kind,
        "evaluation": evaluation.kind,
        "evaluation_folds": len(evaluation.folds),
        "train_rows": len(table),
        "train_cutoffs": table["as_of"].nunique(),
        "n_features": len(columns),
    }
    return TrainResult(model, evaluation, info, params, leakage, table.head(5).reset_index(drop=True), trials, survival)


def backtest(
    table: pd.DataFrame,
    *,
    folds: int,
    spec: FeatureSpec,
    definition: ChurnDefinition = ChurnDefinition(),
    config: TrainConfig = TrainConfig(),
    capacity: int = 200,
    profit: ProfitConfig = ProfitConfig(),
) -> pd.DataFrame:
    """The evaluation over the latest ``folds`` cutoffs: one row per (test cutoff, model)."""
    evaluation = evaluate(table, spec=spec, definition=definition, config=replace(config, evaluation_folds=folds), capacity=capacity, profit=profit)
    if evaluation.kind != "time":
        raise ValueError("a backtest needs several cutoffs whose horizons have passed before the later ones")
    return evaluation.fold_metrics()


def summarise_backtest(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread of each metric per model across the backtest cutoffs."""
    grouped = results.groupby("model", sort=False)[list(METRICS)]
    return pd.concat({"mean": grouped.mean(), "std": grouped.std(ddof=0)}, axis=1)
