"""What an evaluation produces: the folds, each with its fitted model's scores and metrics.

Kept apart from training so that the champion gate (:mod:`churn.modeling.gate`) and tracking
read evaluations without importing the trainer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from churn.modeling.evaluate import METRICS
from churn.modeling.splits import Fold

EvaluationKind = Literal["time", "cv"]


@dataclass
class FitInfo:
    """How one run of the procedure went."""

    rows: int
    best_iteration: int
    n_estimators: int
    calibration: str
    calibration_losses: dict[str, float]
    #: Every row's out-of-fold score as the deployed model would give it, calibrated, in the
    #: order of the rows fitted (``fit_churn_model(deployed_scores=True)``; else empty).
    oof: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)


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
