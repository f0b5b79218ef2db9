"""The baselines every model must beat, fitted and scored on the same rows.

* :class:`LogisticBaseline` — scaled numeric + one-hot categorical logistic regression: the
  classic strong, linear baseline.
* :class:`RuleBaseline` — what a team without a model does: call whoever has been quiet the
  longest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from churn.features.labels import LABEL


class LogisticBaseline:
    """Scaled numeric + one-hot categorical logistic regression."""

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
    """Call whoever has been quiet the longest.

    Score = days since any activity (no activity in a year ranks first); on data without
    events, the newest customers first. Mapped to probabilities by isotonic regression on the
    training rows so that log loss and calibration are comparable (the rule's ranking, which
    is what the decision uses, does not depend on that fit)."""

    name = "rule"

    def __init__(self, columns: list[str]) -> None:
        self.feature = "days_since_last_event" if "days_since_last_event" in columns else "tenure_days"
        self.sign = 1.0 if self.feature == "days_since_last_event" else -1.0
        self.calibrator = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)

    def score(self, table: pd.DataFrame) -> np.ndarray:
        return self.sign * table[self.feature].astype(float).fillna(400.0).to_numpy()

    def fit(self, table: pd.DataFrame) -> "RuleBaseline":
        self.calibrator.fit(self.score(table), table[LABEL])
        return self

    def predict_proba(self, table: pd.DataFrame) -> np.ndarray:
        # tiny tie-breaker keeps the rule's own ranking inside isotonic plateaus
        s = self.score(table)
        return np.clip(self.calibrator.predict(s), 1e-6, 1 - 1e-6) + 1e-9 * (s - s.min()) / (np.ptp(s) + 1e-12)
