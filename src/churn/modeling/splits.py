"""Splits as objects: who trains on what, and what is held out.

Both splitters follow scikit-learn's cross-validator shape (``split(X, y, groups)`` yields
train/test index arrays, ``get_n_splits``), so evaluation, backtests, calibration and tuning
share one mechanism instead of bespoke code paths.

* :class:`PurgedTimeSplit` — for a table stacked over cutoffs. Each fold tests one of the
  latest cutoffs and trains on the cutoffs whose labels had *matured* by it
  (``t + horizon <= test cutoff``): a model deployed at the test cutoff could have had
  exactly those labels. Cutoffs in between are purged — their label windows run past the
  test cutoff — and nothing else is.
* :class:`AccountFolds` — stratified folds that keep all rows of an account together (a
  snapshot with one cutoff, or the inner folds of cross-fitted calibration and early
  stopping): the same customer never sits on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from churn.features.labels import LABEL


@dataclass(frozen=True)
class Fold:
    """One evaluation fold: row positions and what they mean."""

    train: np.ndarray
    test: np.ndarray
    description: str
    test_cutoff: pd.Timestamp | None = None
    purged: tuple[pd.Timestamp, ...] = ()


@dataclass(frozen=True)
class PurgedTimeSplit:
    """The latest ``n_folds`` cutoffs are tested, each with a model trained on the cutoffs
    whose horizon had elapsed by it. Cutoffs without enough matured cutoffs before them are
    not tested."""

    horizon_days: int
    n_folds: int = 1
    #: A fold needs at least this many training cutoffs.
    min_train_cutoffs: int = 1

    def folds(self, table: pd.DataFrame) -> list[Fold]:
        cutoffs = sorted(table["as_of"].unique())
        horizon = pd.Timedelta(days=self.horizon_days)
        as_of = table["as_of"]
        out = []
        for test_cut in cutoffs[::-1]:
            if len(out) == self.n_folds:
                break
            train_cuts = [c for c in cutoffs if c + horizon <= test_cut]
            if len(train_cuts) < self.min_train_cutoffs:
                continue
            purged = tuple(c for c in cutoffs if c < test_cut and c not in train_cuts)
            desc = (
                f"train on {len(train_cuts)} cutoff{'s' if len(train_cuts) > 1 else ''} "
                f"({train_cuts[0]:%Y-%m-%d} … {train_cuts[-1]:%Y-%m-%d}), test on {test_cut:%Y-%m-%d}"
                + (f"; purged {', '.join(f'{c:%Y-%m-%d}' for c in purged)} (labels run past the test cutoff)" if purged else "")
            )
            out.append(
                Fold(
                    train=np.flatnonzero(as_of.isin(train_cuts).to_numpy()),
                    test=np.flatnonzero((as_of == test_cut).to_numpy()),
                    description=desc,
                    test_cutoff=test_cut,
                    purged=purged,
                )
            )
        return out[::-1]

    def split(self, X: pd.DataFrame, y: object = None, groups: object = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for fold in self.folds(X):
            yield fold.train, fold.test

    def get_n_splits(self, X: pd.DataFrame | None = None, y: object = None, groups: object = None) -> int:
        return self.n_folds if X is None else len(self.folds(X))


@dataclass(frozen=True)
class AccountFolds:
    """Stratified k folds that never split an account's rows."""

    n_splits: int = 5
    seed: int = 7

    def folds(self, table: pd.DataFrame) -> list[Fold]:
        """Accounts are stratified by whether they ever churn in the table, then every row
        follows its account."""
        codes, accounts = pd.factorize(table["account_id"], sort=True)
        ever = np.zeros(len(accounts), dtype=np.int64)
        np.maximum.at(ever, codes, table[LABEL].to_numpy().astype(np.int64))
        n = min(self.n_splits, int(ever.sum()), int(len(ever) - ever.sum()))
        if n < 2:
            raise ValueError(f"too few churners or survivors ({int(ever.sum())} of {len(ever)} accounts) for {self.n_splits}-fold cross-validation")
        fold_of = np.empty(len(accounts), dtype=np.int64)
        for k, (_, test) in enumerate(StratifiedKFold(n_splits=n, shuffle=True, random_state=self.seed).split(ever, ever)):
            fold_of[test] = k
        row_fold = fold_of[codes]
        return [Fold(np.flatnonzero(row_fold != k), np.flatnonzero(row_fold == k), f"account fold {k + 1} of {n}") for k in range(n)]

    def split(self, X: pd.DataFrame, y: object = None, groups: object = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for fold in self.folds(X):
            yield fold.train, fold.test

    def get_n_splits(self, X: pd.DataFrame | None = None, y: object = None, groups: object = None) -> int:
        return self.n_splits
