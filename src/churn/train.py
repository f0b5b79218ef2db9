"""Training: a time split, LightGBM with early stopping, calibration, and two baselines.

The split mirrors how the model is used. For a test cutoff T, a real team would have had
only labels that had matured by T, so:

* **test** = the latest cutoff;
* **validation** = the latest cutoff whose horizon ended by the test cutoff — used for
  early stopping and to fit and choose the probability calibration;
* **train** = the cutoffs whose horizon ended by the validation cutoff (later ones are
  *purged*, because their labels would peek past the validation cutoff).

With one cutoff (a CRM snapshot) no time split exists: accounts are split at random,
stratified by label, and the run says so. Class imbalance is left as it is — reweighting
would distort the probabilities the outreach and revenue-at-risk figures rely on.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from churn.config import ChurnDefinition, FeatureConfig, TrainConfig
from churn.evaluate import classification_metrics, metrics_table
from churn.features import ID_COLUMNS, FeatureInfo, FeatureSpec, catalogue, catalogue_frame
from churn.labels import LABEL

SplitKind = Literal["time", "partial-time", "snapshot"]


class MissingFeaturesError(ValueError):
    """The feature table lacks columns the model was trained on."""


# --------------------------------------------------------------------------- split


@dataclass
class Split:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    kind: SplitKind
    description: str
    purged: list[pd.Timestamp] = field(default_factory=list)


def split_by_time(table: pd.DataFrame, *, horizon_days: int, config: TrainConfig = TrainConfig()) -> Split:
    """Train/validation/test by cutoff, purging training cutoffs whose labels overlap later slices."""
    cutoffs = sorted(table["as_of"].unique())
    horizon = pd.Timedelta(days=horizon_days)
    if len(cutoffs) == 1:
        return _split_accounts(table, config, "snapshot", "one cutoff (snapshot data): accounts split at random, stratified by label — no time split possible")
    test_cut = cutoffs[-1]
    earlier = [c for c in cutoffs[:-1] if c + horizon <= test_cut]
    if len(earlier) >= 2:
        val_cut = earlier[-1]
        train_cuts = [c for c in earlier[:-1] if c + horizon <= val_cut]
        if train_cuts:
            purged = [c for c in cutoffs[:-1] if c not in train_cuts and c != val_cut]
            fmt = lambda ts: ", ".join(f"{t:%Y-%m-%d}" for t in ts)  # noqa: E731
            desc = (
                f"time split: train on {len(train_cuts)} cutoffs ({fmt([train_cuts[0]])} … {fmt([train_cuts[-1]])}), "
                f"validate on {val_cut:%Y-%m-%d}, test on {test_cut:%Y-%m-%d}"
                + (f"; purged {fmt(purged)} (labels overlap later slices)" if purged else "")
            )
            return Split(
                train=table[table["as_of"].isin(train_cuts)].reset_index(drop=True),
                validation=table[table["as_of"] == val_cut].reset_index(drop=True),
                test=table[table["as_of"] == test_cut].reset_index(drop=True),
                kind="time",
                description=desc,
                purged=purged,
            )
    # Two usable cutoffs: train on the earlier, split the latest's accounts into validation and test.
    if earlier:
        train = table[table["as_of"] == earlier[-1]].reset_index(drop=True)
        latest = table[table["as_of"] == test_cut].reset_index(drop=True)
        val, test = train_test_split(latest, test_size=0.5, stratify=latest[LABEL], random_state=config.seed)
        return Split(
            train,
            val.reset_index(drop=True),
            test.reset_index(drop=True),
            "partial-time",
            f"partial time split: train on {earlier[-1]:%Y-%m-%d}; the accounts of {test_cut:%Y-%m-%d} split into validation and test",
        )
    return _split_accounts(table, config, "snapshot", "cutoffs too close for their horizon: accounts split at random, stratified by label")


def _split_accounts(table: pd.DataFrame, config: TrainConfig, kind: SplitKind, description: str) -> Split:
    """Stratified split by account (all of an account's rows land in one slice)."""
    per_account = table.groupby("account_id")[LABEL].max()
    ids, y = per_account.index.to_numpy(), per_account.to_numpy()
    share = config.snapshot_holdout_share
    rest_ids, test_ids, rest_y, _ = train_test_split(ids, y, test_size=share, stratify=y, random_state=config.seed)
    train_ids, val_ids = train_test_split(rest_ids, test_size=share / (1 - share), stratify=rest_y, random_state=config.seed)
    pick = lambda ids: table[table["account_id"].isin(ids)].reset_index(drop=True)  # noqa: E731
    return Split(pick(train_ids), pick(val_ids), pick(test_ids), kind, description)


# --------------------------------------------------------------------------- calibration


@dataclass
class Calibrator:
    """Maps raw LightGBM probabilities to calibrated ones (isotonic or Platt sigmoid)."""

    method: Literal["isotonic", "sigmoid"]
    model: IsotonicRegression | LogisticRegression | None = None

    def fit(self, p: np.ndarray, y: np.ndarray) -> "Calibrator":
        if self.method == "isotonic":
            self.model = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, y)
        else:
            self.model = LogisticRegression(C=1e6).fit(_logit(p)[:, None], y)
        return self

    def transform(self, p: np.ndarray) -> np.ndarray:
        if self.method == "isotonic":
            return np.clip(self.model.predict(p), 1e-6, 1 - 1e-6)  # type: ignore[union-attr]
        return self.model.predict_proba(_logit(p)[:, None])[:, 1]  # type: ignore[union-attr]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def choose_calibration(p: np.ndarray, y: np.ndarray, seed: int) -> tuple[Calibrator, dict[str, float]]:
    """Pick isotonic or sigmoid by 2-fold cross-validated log loss on the validation slice,
    then refit the winner on all of it. Isotonic needs more data, and this lets it lose."""
    losses: dict[str, float] = {}
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=seed) if min(y.sum(), len(y) - y.sum()) >= 2 else None
    for method in ("sigmoid", "isotonic"):
        if folds is None:
            losses[method] = float("nan")
            continue
        fold_losses = []
        for fit_idx, eval_idx in folds.split(p, y):
            cal = Calibrator(method).fit(p[fit_idx], y[fit_idx])  # type: ignore[arg-type]
            fold_losses.append(log_loss(y[eval_idx], cal.transform(p[eval_idx]), labels=[0, 1]))
        losses[method] = float(np.mean(fold_losses))
    best = "isotonic" if losses["isotonic"] < losses["sigmoid"] else "sigmoid"
    return Calibrator(best).fit(p, y), losses  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the model


@dataclass
class ChurnModel:
    """Everything needed to score a raw feature table: preprocessing, LightGBM, calibration,
    the feature spec and catalogue, the churn definition and training metadata.

    Saved as one joblib bundle and wrapped as an MLflow pyfunc model.
    """

    feature_names: list[str]
    categories: dict[str, list[str]]
    classifier: lgb.LGBMClassifier
    calibrator: Calibrator
    spec_json: str
    definition: dict[str, object]
    metadata: dict[str, object] = field(default_factory=dict)
    reference: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def spec(self) -> FeatureSpec:
        return FeatureSpec.from_json(self.spec_json)

    @property
    def booster(self) -> lgb.Booster:
        return self.classifier.booster_

    def prepare(self, features: pd.DataFrame) -> pd.DataFrame:
        """Select and type the model's columns; categories become the training categories."""
        missing = [c for c in self.feature_names if c not in features.columns]
        if missing:
            raise MissingFeaturesError(
                f"the feature table lacks {len(missing)} column(s) the model needs: {', '.join(missing[:10])}"
                + (" …" if len(missing) > 10 else "")
            )
        out = {}
        for name in self.feature_names:
            col = features[name]
            if name in self.categories:
                cats = self.categories[name]
                text = col.astype("str").where(col.notna())
                out[name] = pd.Categorical(text.where(text.isin(cats)), categories=cats)
            else:
                out[name] = pd.to_numeric(col, errors="coerce").astype("float64")
        return pd.DataFrame(out, index=features.index)

    def raw_proba(self, features: pd.DataFrame) -> np.ndarray:
        return self.classifier.predict_proba(self.prepare(features))[:, 1]

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated P(churn within the horizon) per row."""
        return self.calibrator.transform(self.raw_proba(features))

    def contributions(self, features: pd.DataFrame) -> np.ndarray:
        """Exact TreeSHAP contributions in log-odds (n × features, bias column dropped)."""
        contrib = self.booster.predict(self.prepare(features), pred_contrib=True)
        return np.asarray(contrib)[:, :-1]

    def importance(self) -> pd.Series:
        gain = self.booster.feature_importance(importance_type="gain")
        return pd.Series(gain, index=self.feature_names).sort_values(ascending=False)

    @property
    def feature_config(self) -> FeatureConfig:
        """The feature settings the training table was built with: scoring must reuse them."""
        raw = dict(self.metadata.get("feature_config", {}))  # type: ignore[call-overload]
        if "windows_days" in raw:
            raw["windows_days"] = tuple(raw["windows_days"])
        return FeatureConfig(**raw)

    def feature_infos(self) -> list[FeatureInfo]:
        """The catalogue entry of each model feature, in the model's column order."""
        known = {f.name: f for f in catalogue(self.spec, self.feature_config)}
        return [known.get(n, FeatureInfo(n, "other", f"{n} = {{v}}", 0)) for n in self.feature_names]

    def catalogue(self) -> pd.DataFrame:
        return catalogue_frame(self.feature_infos())


def model_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c not in (*ID_COLUMNS, LABEL)]


def _reference(train: pd.DataFrame, columns: list[str], categorical: set[str]) -> dict[str, dict[str, float]]:
    """Training medians and spreads: the baseline for the cheap reason attribution."""
    ref = {}
    for c in columns:
        if c in categorical:
            continue
        v = train[c].astype(float)
        q1, med, q3 = v.quantile([0.25, 0.5, 0.75]).to_numpy()
        spread = q3 - q1 if np.isfinite(q3 - q1) and q3 > q1 else (v.std() if v.std() > 0 else 1.0)
        ref[c] = {"median": float(np.nan_to_num(med)), "spread": float(spread)}
    return ref


def fit_lightgbm(split: Split, columns: list[str], config: TrainConfig) -> lgb.LGBMClassifier:
    classifier = lgb.LGBMClassifier(
        n_estimators=config.n_estimators,
        learning_rate=config.learning_rate,
        num_leaves=config.num_leaves,
        min_child_samples=config.min_child_samples,
        subsample=config.subsample,
        subsample_freq=1,
        colsample_bytree=config.colsample_bytree,
        random_state=config.seed,
        deterministic=True,
        force_row_wise=True,
        n_jobs=os.cpu_count() or 1,
        verbose=-1,
    )
    classifier.fit(
        split.train[columns],
        split.train[LABEL],
        eval_X=(split.validation[columns],),
        eval_y=(split.validation[LABEL],),
        eval_metric="binary_logloss",
        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)],
    )
    return classifier


# --------------------------------------------------------------------------- baselines


class LogisticBaseline:
    """Scaled numeric + one-hot categorical logistic regression: the classic strong baseline."""

    name = "logistic"

    def __init__(self, columns: list[str], categorical: list[str], seed: int) -> None:
        self.columns, self.categorical = columns, categorical
        numeric = [c for c in columns if c not in categorical]
        pre = ColumnTransformer(
            [
                ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True), StandardScaler()), numeric),
                ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
            ]
        )
        self.pipeline = Pipeline([("pre", pre), ("lr", LogisticRegression(C=0.1, max_iter=2000, random_state=seed))])

    def _frame(self, table: pd.DataFrame) -> pd.DataFrame:
        x = table[self.columns].copy()
        for c in self.categorical:
            x[c] = x[c].astype("str").fillna("(missing)")
        for c in x.columns.difference(self.categorical):
            x[c] = np.clip(x[c].astype(float), -1e9, 1e9)
        return x

    def fit(self, table: pd.DataFrame) -> "LogisticBaseline":
        self.pipeline.fit(self._frame(table), table[LABEL])
        return self

    def predict_proba(self, table: pd.DataFrame) -> np.ndarray:
        return self.pipeline.predict_proba(self._frame(table))[:, 1]


class RuleBaseline:
    """What a team without a model does: call whoever has been quiet the longest.

    Score = days since any activity (no activity in a year ranks first); on data without
    events, the newest customers first. Mapped to probabilities by isotonic regression on
    the validation slice so that log loss and calibration are comparable.
    """

    name = "rule"

    def __init__(self, columns: list[str]) -> None:
        self.feature = "days_since_last_event" if "days_since_last_event" in columns else "tenure_days"
        self.sign = 1.0 if self.feature == "days_since_last_event" else -1.0
        self.calibrator = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)

    def score(self, table: pd.DataFrame) -> np.ndarray:
        return self.sign * table[self.feature].astype(float).fillna(400.0).to_numpy()

    def fit(self, validation: pd.DataFrame) -> "RuleBaseline":
        self.calibrator.fit(self.score(validation), validation[LABEL])
        return self

    def predict_proba(self, table: pd.DataFrame) -> np.ndarray:
        # tiny tie-breaker keeps the rule's own ranking inside isotonic plateaus
        s = self.score(table)
        return np.clip(self.calibrator.predict(s), 1e-6, 1 - 1e-6) + 1e-9 * (s - s.min()) / (np.ptp(s) + 1e-12)


# --------------------------------------------------------------------------- orchestration


def evaluation_summary(y: np.ndarray, scores: dict[str, np.ndarray], metrics: pd.DataFrame, split: Split) -> dict[str, object]:
    """Small, JSON-friendly evaluation kept inside the model, so reports can show lift and
    calibration without the training data."""
    from sklearn.calibration import calibration_curve

    from churn.evaluate import gains_curve

    observed, predicted = calibration_curve(y, scores["model"], n_bins=10, strategy="quantile")
    return {
        "test_cutoff": f"{split.test['as_of'].iloc[0]:%Y-%m-%d}",
        "split": split.description,
        "metrics": {name: {k: float(v) for k, v in row.items()} for name, row in metrics.iterrows()},
        "gains": {name: gains_curve(y, p).to_dict(orient="list") for name, p in scores.items()},
        "calibration": {"predicted": predicted.tolist(), "observed": observed.tolist()},
    }



@dataclass
class TrainResult:
    model: ChurnModel
    split: Split
    metrics: pd.DataFrame  # rows: model, logistic, rule
    test_scores: dict[str, np.ndarray]
    calibration_losses: dict[str, float]
    params: dict[str, object]

    @property
    def y_test(self) -> np.ndarray:
        return self.split.test[LABEL].to_numpy()

    def beats_baselines(self, metric: str = "pr_auc") -> bool:
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
) -> TrainResult:
    """Split by time, fit LightGBM + calibration and both baselines, evaluate on the test slice.

    ``feature_config`` must be the one the table was built with: it is stored in the model
    so that scoring computes the same features."""
    if table[LABEL].nunique() < 2:
        raise ValueError("the training table has only one class: no churners (or no survivors) at these cutoffs")
    split = split_by_time(table, horizon_days=definition.horizon_days, config=config)
    for name, part in (("train", split.train), ("validation", split.validation), ("test", split.test)):
        if part[LABEL].nunique() < 2:
            raise ValueError(f"the {name} slice has only one class ({len(part):,} rows); add cutoffs or accounts")
    columns = model_columns(table)
    categorical = [c for c in columns if isinstance(table[c].dtype, pd.CategoricalDtype)]

    classifier = fit_lightgbm(split, columns, config)
    val_raw = classifier.predict_proba(split.validation[columns])[:, 1]
    calibrator, losses = choose_calibration(val_raw, split.validation[LABEL].to_numpy(), config.seed)
    model = ChurnModel(
        feature_names=columns,
        categories={c: list(table[c].cat.categories) for c in categorical},
        classifier=classifier,
        calibrator=calibrator,
        spec_json=spec.to_json(),
        definition=definition.as_dict(),
        metadata={
            "split": split.description,
            "split_kind": split.kind,
            "best_iteration": int(classifier.best_iteration_ or classifier.n_estimators),
            "calibration": calibrator.method,
            "cutoffs": [f"{t:%Y-%m-%d}" for t in sorted(table["as_of"].unique())],
            "feature_config": asdict(feature_config),
            "train_rows": len(split.train),
        },
        reference=_reference(split.train, columns, set(categorical)),
    )
    logistic = LogisticBaseline(columns, categorical, config.seed).fit(split.train)
    rule = RuleBaseline(columns).fit(split.validation)
    scores = {
        "model": model.predict_proba(split.test),
        "logistic": logistic.predict_proba(split.test),
        "rule": rule.predict_proba(split.test),
    }
    y = split.test[LABEL].to_numpy()
    metrics = metrics_table({name: classification_metrics(y, p, capacity=capacity) for name, p in scores.items()})
    model.metadata["evaluation"] = evaluation_summary(y, scores, metrics, split)
    params = {
        **{f"lgbm_{k}": v for k, v in config.__dict__.items()},
        "horizon_days": definition.horizon_days,
        "churn_kind": definition.kind,
        "split_kind": split.kind,
        "best_iteration": model.metadata["best_iteration"],
        "calibration": calibrator.method,
        "n_features": len(columns),
        "rule_feature": rule.feature,
    }
    return TrainResult(model, split, metrics, scores, losses, params)


def backtest(
    table: pd.DataFrame,
    *,
    test_cutoffs: list[pd.Timestamp],
    spec: FeatureSpec,
    definition: ChurnDefinition = ChurnDefinition(),
    config: TrainConfig = TrainConfig(),
    capacity: int = 200,
) -> pd.DataFrame:
    """Retrain as of each test cutoff (only earlier cutoffs, purged as in training) and score it.

    Returns one row per (test cutoff, model) with every metric: how stable the model is
    over time, and whether it beats the baselines every time or only on average.
    """
    rows = []
    for cutoff in sorted(test_cutoffs):
        past = table[table["as_of"] <= cutoff]
        result = train(past, spec=spec, definition=definition, config=config, capacity=capacity)
        if result.split.test["as_of"].iloc[0] != cutoff:
            raise ValueError(f"backtest cutoff {cutoff:%Y-%m-%d} is not in the training table")
        frame = result.metrics.copy()
        frame.insert(0, "test_cutoff", cutoff)
        frame.insert(1, "split", result.split.kind)
        rows.append(frame.rename_axis("model").reset_index())
    return pd.concat(rows, ignore_index=True)


def summarise_backtest(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread of each metric per model across the backtest cutoffs."""
    from churn.evaluate import METRICS

    grouped = results.groupby("model", sort=False)[list(METRICS)]
    return pd.concat({"mean": grouped.mean(), "std": grouped.std(ddof=0)}, axis=1)
