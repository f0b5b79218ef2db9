"""Probability calibration: raw LightGBM scores → probabilities the outreach and revenue
figures can rely on.

Calibration is *cross-fitted*: the calibrator learns from out-of-fold predictions (each row
scored by a model that did not see it), so the final model can be fitted on every row
without calibrating on its own training fit. Isotonic or Platt (sigmoid) is chosen by
cross-validated log loss; isotonic needs more data, and this lets it lose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold

Method = Literal["isotonic", "sigmoid"]

#: Slope added to the isotonic steps so the calibrated map keeps the raw model's ranking.
TIE_BREAK = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


@dataclass
class Calibrator:
    """Maps raw probabilities to calibrated ones (isotonic or Platt sigmoid)."""

    method: Method
    model: IsotonicRegression | LogisticRegression | None = None

    def fit(self, p: np.ndarray, y: np.ndarray) -> "Calibrator":
        if self.method == "isotonic":
            self.model = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, y)
        else:
            self.model = LogisticRegression(C=1e6).fit(logit(p)[:, None], y)
        return self

    def transform(self, p: np.ndarray) -> np.ndarray:
        if self.method == "isotonic":
            # Isotonic regression is a step function: accounts on one step would tie and the
            # list would lose the model's order among them. A slope far below any visible
            # probability difference keeps that order (the map becomes strictly increasing),
            # and a squeeze, not a clip, keeps it inside (0, 1) without new ties at the ends.
            stepped = self.model.predict(p) + TIE_BREAK * np.clip(np.asarray(p, dtype=float), 0.0, 1.0)  # type: ignore[union-attr]
            return 1e-6 + (1 - 2e-6) * stepped / (1 + TIE_BREAK)
        return self.model.predict_proba(logit(p)[:, None])[:, 1]  # type: ignore[union-attr]


def choose_calibration(p: np.ndarray, y: np.ndarray, seed: int) -> tuple[Calibrator, dict[str, float]]:
    """Pick isotonic or sigmoid by 2-fold cross-validated log loss on (out-of-fold) scores
    ``p``, then fit the winner on all of them."""
    losses: dict[str, float] = {}
    enough = min(y.sum(), len(y) - y.sum()) >= 2
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=seed) if enough else None
    for method in ("sigmoid", "isotonic"):
        if folds is None:
            losses[method] = float("nan")
            continue
        fold_losses = []
        for fit_idx, eval_idx in folds.split(p, y):
            cal = Calibrator(method).fit(p[fit_idx], y[fit_idx])  # type: ignore[arg-type]
            fold_losses.append(log_loss(y[eval_idx], cal.transform(p[eval_idx]), labels=[0, 1]))
        losses[method] = float(np.mean(fold_losses))
    best: Method = "isotonic" if losses["isotonic"] < losses["sigmoid"] else "sigmoid"
    return Calibrator(best).fit(p, y), losses
