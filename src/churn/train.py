"""Training: evaluate the procedure honestly, then fit the deployed model on everything mature.

One *procedure* (:func:`fit_churn_model`) turns labelled rows into a :class:`ChurnModel`:

1. k account folds (stratified, an account's rows never split): each fold's model is
   early-stopped on its held-out fold, which gives the number of trees and an out-of-fold
   score for every row;
2. the calibration — isotonic or sigmoid, chosen by cross-validated log loss — is fitted on
   those out-of-fold scores, so it never sees the scores of its own fit;
3. LightGBM is refitted on all the rows, its number of trees scaled up to them.

The reported metrics come from running that same procedure where the answer is known:

* **several cutoffs** — a purged time split (:class:`churn.splits.PurgedTimeSplit`): each of
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
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from churn.baselines import LogisticBaseline, RuleBaseline
from churn.calibration import choose_calibration
from churn.config import ChurnDefinition, FeatureConfig, ProfitConfig, TrainConfig
from churn.evaluate import METRICS, classification_metrics, customer_value, metrics_table
from churn.features import ID_COLUMNS, FeatureSpec
from churn.labels import LABEL
from churn.model import ChurnModel, MissingFeaturesError  # noqa: F401  (re-exported for callers)
from churn.monitor import reference_profile
from churn.splits import AccountFolds, Fold, PurgedTimeSplit

EvaluationKind = Literal["time", "cv"]


class LeakageError(ValueError):
    """A single feature separates the labels almost perfectly: probably the future leaking in."""


def model_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c not in (*ID_COLUMNS, LABEL)]


def categorical_columns(table: pd.DataFrame, columns: list[str]) -> list[str]:
    return [c for c in columns if isinstance(table[c].dtype, pd.CategoricalDtype)]


# --------------------------------------------------------------------------- leakage sentinel


def single_feature_auc(table: pd.DataFrame, columns: list[str], *, max_rows: int = 200_000, seed: int = 7) -> pd.DataFrame:
    """ROC-AUC of each feature on its own (max of AUC and 1 − AUC), highest first.

    Categories score by their churn rate; missing values are their own level."""
    rows = table if len(table) <= max_rows else table.sample(max_rows, random_state=seed)
    y = rows[LABEL].to_numpy()
    out = []
    for col in columns:
        values = rows[col]
        if isinstance(values.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(values.dtype):
            key = values.astype("str").fillna("(missing)")
            score = key.map(pd.Series(y, index=rows.index).groupby(key).mean()).to_numpy(dtype=float)
        else:
            v = values.to_numpy(dtype=float)
            score = np.where(np.isnan(v), np.nanmin(v) - 1 if np.isfinite(v).any() else 0.0, v)
        auc = roc_auc_score(y, score) if 0 < y.sum() < len(y) else 0.5
        out.append({"feature": col, "auc": float(max(auc, 1 - auc))})
    return pd.DataFrame(out, columns=["feature", "auc"]).sort_values("auc", ascending=False, kind="stable").reset_index(drop=True)


def check_leakage(table: pd.DataFrame, columns: list[str], config: TrainConfig) -> pd.DataFrame:
    """Stop (``LeakageError``) when one feature alone separates the labels almost perfectly.

    A real churn driver does not do that; a column from the future does (a ``status`` of
    "cancelled", a date of the last invoice, a count that includes the churn month)."""
    aucs = single_feature_auc(table, columns, seed=config.seed)
    named, allow = _beyond_the_limit(aucs, config, " on its own")
    if named:
        raise LeakageError(
            f"leakage suspected: {named} separates churners almost perfectly by itself. A column like that usually "
            f"knows the future (a status or date exported after the churn). Check where it comes from; {allow}"
        )
    return aucs


def _beyond_the_limit(aucs: pd.DataFrame, config: TrainConfig, note: str = "") -> tuple[str, str]:
    """The features at or above the sentinel's ROC-AUC (not allowed by the user), named with
    their ROC-AUC, and how to let them through; ("", "") when there are none."""
    leaky = aucs[(aucs["auc"] >= config.leakage_auc) & ~aucs["feature"].isin(config.allow_features)]
    if leaky.empty:
        return "", ""
    named = ", ".join(f"{r.feature} (ROC-AUC {r.auc:.3f}{note})" for r in leaky.itertuples())
    return named, "if it is legitimate, allow it with --allow-feature " + ",".join(leaky["feature"])


def check_static_attributes_at_export(
    accounts: pd.DataFrame,
    interactions: pd.DataFrame,
    names: list[str],
    definition: ChurnDefinition,
    *,
    export_date: pd.Timestamp,
    first_cutoff: pd.Timestamp,
    config: TrainConfig,
) -> pd.DataFrame:
    """:func:`check_static_attributes` on the accounts the training table can hold — customers
    at the first cutoff or later signups, up to ``export_date`` (when the attribute values were
    taken) — against who of them has churned by ``export_date``. Accounts gone long before the
    window are left out: an attribute that tracks the signup cohort must not trip it."""
    from churn.population import is_customer

    if not names:
        return pd.DataFrame(columns=["feature", "auc"])
    signup = accounts["signup_at"]
    in_window = (signup < export_date).to_numpy() & (is_customer(accounts, interactions, first_cutoff, definition) | (signup >= first_cutoff).to_numpy())
    gone = ~is_customer(accounts, interactions, export_date, definition)
    return check_static_attributes(accounts[in_window], gone[in_window], names, config)


def check_static_attributes(accounts: pd.DataFrame, gone: np.ndarray, names: list[str], config: TrainConfig) -> pd.DataFrame:
    """Stop (``LeakageError``) when an attribute declared static separates the accounts gone
    by the export date from the others almost perfectly.

    A static value never changes after signup, so it cannot know who leaves later. One that
    does was written at or after the churn — a ``status`` of "cancelled" — and, used at every
    past cutoff, tells the model the future. The training sentinel may miss it: at a cutoff
    it also marks accounts that churn after the horizon, which blurs it below the limit."""
    columns = [n for n in names if n in accounts.columns]
    if not columns or gone.all() or not gone.any():
        return pd.DataFrame(columns=["feature", "auc"])
    aucs = single_feature_auc(accounts[columns].assign(**{LABEL: gone.astype("int8")}), columns, seed=config.seed)
    named, allow = _beyond_the_limit(aucs, config)
    if named:
        raise LeakageError(
            f"leakage suspected: {named}, declared static, separates the accounts that have churned by the export date "
            "from the others almost perfectly. A value that never changes after signup cannot know that; this one was "
            f"likely written at the churn (a status). Take it out of static_attributes or give its attribute_history; {allow}"
        )
    return aucs


# --------------------------------------------------------------------------- the procedure


def lightgbm_params(config: TrainConfig, rows: int) -> dict[str, object]:
    # Not used, on purpose: linear leaves (``linear_tree``) scored better on a small public
    # snapshot (mlc_churn, 24 splits: PR-AUC +0.002), but LightGBM cannot compute SHAP
    # contributions for them and every risk list's reasons need those; ``extra_trees`` raised
    # ROC-AUC there but worsened the out-of-fold log loss the procedure judges by.
    return {
        "learning_rate": config.learning_rate,
        "num_leaves": config.num_leaves,
        "min_child_samples": config.min_child_samples(rows),
        "subsample": config.subsample,
        "subsample_freq": 1,
        "colsample_bytree": config.colsample_bytree,
        "cat_smooth": config.cat_smooth,
        "cat_l2": config.cat_l2,
        "reg_lambda": config.reg_lambda,
        "random_state": config.seed,
        "deterministic": True,
        "force_row_wise": True,
        "n_jobs": config.n_jobs or os.cpu_count() or 1,
        "verbose": -1,
    }


@dataclass
class FitInfo:
    """How one run of the procedure went."""

    rows: int
    best_iteration: int
    n_estimators: int
    calibration: str
    calibration_losses: dict[str, float]


def fit_churn_model(
    rows: pd.DataFrame,
    *,
    spec: FeatureSpec,
    definition: ChurnDefinition,
    config: TrainConfig = TrainConfig(),
    feature_config: FeatureConfig = FeatureConfig(),
) -> tuple[ChurnModel, FitInfo]:
    """The procedure: k account folds, each early-stopped on its held-out fold, give the
    number of trees and out-of-fold scores; the calibration is fitted on those scores; the
    final LightGBM is fitted on every row with the trees scaled to the rows it now has."""
    rows = rows.reset_index(drop=True)
    columns = model_columns(rows)
    categorical = categorical_columns(rows, columns)
    x, y = rows[columns], rows[LABEL].to_numpy()
    params = lightgbm_params(config, len(rows))

    oof = np.zeros(len(rows))
    best, fitted = [], []
    for fold in AccountFolds(n_splits=config.calibration_folds, seed=config.seed).folds(rows):
        part = lgb.LGBMClassifier(n_estimators=config.n_estimators, **params)  # type: ignore[arg-type]
        part.fit(
            x.iloc[fold.train], y[fold.train], eval_X=(x.iloc[fold.test],), eval_y=(y[fold.test],), eval_metric="binary_logloss",
            callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)],
        )
        best.append(int(part.best_iteration_ or config.n_estimators))
        fitted.append(len(fold.train))
        oof[fold.test] = part.predict_proba(x.iloc[fold.test], num_iteration=best[-1])[:, 1]
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
    return model, FitInfo(len(rows), best_iteration, n_trees, calibrator.method, losses)


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
    from churn.tune import tune

    return tune(rows, horizon_days=definition.horizon_days, config=config, n_trials=config.tune_trials, seconds=config.tune_seconds / runs)


# --------------------------------------------------------------------------- evaluation


@dataclass
class FoldResult:
    """One evaluation fold: the model fitted without its test rows, and the scores there."""

    fold: Fold
    y: np.ndarray
    scores: dict[str, np.ndarray]  # model, logistic, rule — aligned with fold.test
    metrics: pd.DataFrame  # rows: model, logistic, rule
    info: FitInfo
    test: pd.DataFrame = field(repr=False)  # the fold's test rows (ids, as_of, label, value)


@dataclass
class Evaluation:
    kind: EvaluationKind
    description: str
    folds: list[FoldResult]
    #: Cross-validation: every row scored out of fold, as one table; time split: the latest fold.
    pooled: FoldResult | None = None

    @property
    def main(self) -> FoldResult:
        """What the headline metrics, plots and calibration curve describe."""
        return self.pooled if self.pooled is not None else self.folds[-1]

    def fold_metrics(self) -> pd.DataFrame:
        """One row per (fold, model) with every metric."""
        frames = []
        for i, r in enumerate(self.folds):
            frame = r.metrics.rename_axis("model").reset_index()
            frame.insert(0, "fold", i + 1)
            frame.insert(1, "test_cutoff", r.fold.test_cutoff)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def mean_metrics(self) -> pd.DataFrame:
        """Mean of each metric over the folds, per model."""
        return self.fold_metrics().groupby("model", sort=False)[[*METRICS, "base_rate", "rows", "positives"]].mean()


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

    from churn.evaluate import gains_curve

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
) -> TrainResult:
    """Check for leakage, evaluate the procedure on held-out folds, then fit the deployed
    model on every row of ``table`` (all mature cutoffs).

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
    model, info = fit_churn_model(table, spec=spec, definition=definition, config=final_config, feature_config=feature_config)
    main = evaluation.main
    model.metadata.update(
        {
            # what monitoring compares each scoring run with: the latest held-out rows (one per
            # account, as in a scoring run) and their out-of-sample scores — summaries, never rows
            "monitoring_reference": reference_profile(
                table.iloc[main.fold.test], columns, categorical_columns(table, columns), probabilities=main.scores["model"]
            ),
            "evaluation": evaluation_summary(evaluation),
            "split": evaluation.description,
            "split_kind": evaluation.kind,
            "evaluation_test_cutoffs": [f"{r.fold.test_cutoff:%Y-%m-%d}" for r in evaluation.folds if r.fold.test_cutoff is not None],
            "capacity": capacity,
            "profit": asdict(profit),
        }
    )
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
    return TrainResult(model, evaluation, info, params, leakage, table.head(5).reset_index(drop=True), trials)


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
