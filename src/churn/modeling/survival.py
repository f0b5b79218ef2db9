"""Time to churn: a discrete-time hazard model on the point-in-time features, and what its
curves say an account is still worth.

The churn model answers "will this account lapse within the horizon?". A customer-success
lead also asks how long it will probably stay and what it is still worth. This module answers
with a survival curve per account: S(m), the chance it is still a customer m months after the
cutoff, for m = 1 … 24.

**Outcomes** come from the one lapse rule (:mod:`churn.data.population`): subscription data
lapse at ``churned_at``; transactional data at the end of the activity spell that covers the
cutoff (last qualifying activity + horizon). An account still a customer at the end of the data
is *censored* there: it is known to have stayed at least that long. Accounts that are not
customers at a cutoff (the lapsed, the win-back list) get no curve and no remaining lifetime.

**The model**: every (account, cutoff) row becomes one row per month it was observed at risk,
up to 24 — month k, "did it lapse in month k, having stayed until then?" — and LightGBM learns
that hazard with the month as one more feature. A censored account contributes only its fully
observed months, so censoring needs no guess. S(m) = Π_{k ≤ m} (1 − h_k). Both the hazard
(:class:`HazardCalibrator`, a spline of the booster's hazard that bends with the month) and the
curve (:class:`CurveCalibrator`, S(m) against who was still a customer at m, month by month)
are calibrated on out-of-fold predictions of every training account (cross-fitting).

**Per account**: ``survival_1m`` … ``survival_12m``; ``expected_months_24`` = Σ_{m=1..24} S(m),
the months of the next 24 it is expected to be a customer at the end of; ``remaining_value`` =
Σ_{m=1..24} S(m) × monthly value × (1 + r)^(−m/12), the discounted value of those months at the
annual discount rate r.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import SplineTransformer

from churn.config import ChurnDefinition, TrainConfig
from churn.data.population import activity_spells
from churn.modeling.calibration import logit
from churn.modeling.model import lightgbm_params
from churn.modeling.survival_metrics import CoxModel, SegmentKM, calibration_by_decile, integrated_brier, kaplan_meier, uno_c_index

#: Months are calendar-average months: durations are in these units.
MONTH = pd.Timedelta(days=365.25 / 12)
#: Curves run this many months after the cutoff.
MAX_MONTHS = 24
#: The months the risk list shows.
SHOWN_MONTHS = (1, 3, 6, 12)
#: Annual discount rate of remaining value when none is given (``--discount-rate``).
DEFAULT_DISCOUNT_RATE = 0.10
SURVIVAL_COLUMNS = [*(f"survival_{m}m" for m in SHOWN_MONTHS), "expected_months_24", "remaining_value"]


@dataclass(frozen=True)
class SurvivalConfig:
    """Settings of the hazard model."""

    max_months: int = MAX_MONTHS
    #: The expanded (row × month) table is sampled by account down to about this many rows:
    #: 12 overlapping cutoffs × 24 months would otherwise be ~100 rows per account.
    max_hazard_rows: int = 400_000
    #: Account folds of the cross-fitted calibration: each fold's hazards come from a booster
    #: fitted on the others, so both calibrators see every row out of fold.
    calibration_folds: int = 3
    n_estimators: int = 1000
    early_stopping_rounds: int = 30


# --------------------------------------------------------------------------- outcomes


def time_to_lapse(
    accounts: pd.DataFrame, interactions: pd.DataFrame, rows: pd.DataFrame, definition: ChurnDefinition, data_end: pd.Timestamp
) -> pd.DataFrame:
    """For each (``account_id``, ``as_of``) of ``rows``: ``months`` until the account lapsed
    (``event`` True) or until the end of the data (``event`` False: censored, still a
    customer), under the one lapse rule; ``follow_up``, the months from ``as_of`` to the end of
    the data (what a row could have been seen for, lapsed or not: :func:`hazard_rows`). Both are
    NaN where the account is not a customer at ``as_of`` (it has no remaining lifetime). Aligned
    with ``rows``."""
    definition = definition.resolved(accounts)
    ids = rows["account_id"].astype("str").reset_index(drop=True)
    as_of = pd.Series(rows["as_of"].to_numpy(), dtype="datetime64[ns, UTC]")
    if definition.kind == "subscription":
        by_id = accounts.set_index(accounts["account_id"].astype("str"))
        churned = ids.map(by_id["churned_at"]) if "churned_at" in by_id.columns else pd.Series(pd.NaT, index=ids.index)
        signup = ids.map(by_id["signup_at"])
        churned = pd.Series(churned.to_numpy(), dtype="datetime64[ns, UTC]")
        customer = (pd.Series(signup.to_numpy(), dtype="datetime64[ns, UTC]") < as_of) & ~(churned < as_of).fillna(False)
        lapse = churned.where(churned < data_end)
    else:
        spells = activity_spells(accounts, interactions, definition, data_end).sort_values("spell_start", kind="stable")
        probe = pd.DataFrame({"account_id": ids, "as_of": as_of, "i": np.arange(len(ids))}).sort_values("as_of", kind="stable")
        found = pd.merge_asof(probe, spells, left_on="as_of", right_on="spell_start", by="account_id", allow_exact_matches=False)
        found = found.sort_values("i").reset_index(drop=True)
        has_spell = found["spell_start"].notna()
        customer = has_spell & (found["spell_end"].isna() | (found["spell_end"] >= as_of))
        lapse = found["spell_end"]
    event = lapse.notna() & customer
    end = lapse.where(event, data_end)
    months = ((end - as_of) / MONTH).astype(float).where(customer)
    follow_up = ((data_end - as_of) / MONTH).astype(float).where(customer)
    return pd.DataFrame({"months": months.to_numpy(), "event": event.to_numpy(dtype=bool), "follow_up": follow_up.to_numpy()})


def hazard_rows(
    months: np.ndarray, event: np.ndarray, max_months: int = MAX_MONTHS, follow_up: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The person-period expansion: (source row, month k ≥ 1, lapsed in month k) for every month
    a row was observed at risk. A lapse at ``months`` = d falls in month ⌊d⌋ + 1; a censored row
    contributes its ⌊d⌋ fully observed months; nothing beyond ``max_months``.

    ``follow_up`` (months from the cutoff to the end of the data, known for every row, lapsed or
    not) closes each row at its last *whole* month in the data. The month the data ends in is seen
    only in part: a lapse inside it is seen, a stay through it is not (that row is censored and
    drops the month), so keeping those lapses would give that month a hazard made of lapses only —
    every cutoff has such a month, and the pooled hazard would be biased upwards, the more so at
    long months where few cutoffs are fully observed. A lapse in that month is therefore counted
    as a row censored at the end of the month before, whatever happened after."""
    months, event = np.asarray(months, dtype=float), np.asarray(event, dtype=bool)
    if follow_up is not None:
        follow = np.asarray(follow_up, dtype=float)
        whole = np.where(np.isfinite(follow), np.floor(follow), np.inf)
        late = event & (np.floor(months) + 1 > whole)
        event, months = event & ~late, np.where(late, whole, months)
    known = np.isfinite(months)
    last = np.where(event, np.floor(months) + 1, np.floor(months))
    last = np.where(known, np.clip(last, 0, max_months), 0).astype(np.int64)
    source = np.repeat(np.arange(len(months)), last)
    start = np.repeat(np.cumsum(last) - last, last)
    period = np.arange(len(source)) - start + 1
    lapsed = event[source] & (period == last[source]) & (np.floor(months[source]) + 1 <= max_months)
    return source, period, lapsed.astype(np.int8)


# --------------------------------------------------------------------------- the model


def feature_matrix(table: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, list[int]]:
    """``columns`` of a feature table as floats (categories as their codes, missing → NaN) and the
    positions of the categorical ones: the matrix the churn model makes of the table it was
    fitted on (:meth:`churn.modeling.model.ChurnModel.matrix`)."""
    out = np.empty((len(table), len(columns)))
    categorical = []
    for j, c in enumerate(columns):
        col = table[c]
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = col.cat.codes.to_numpy()
            out[:, j] = np.where(codes >= 0, codes, np.nan)
            categorical.append(j)
        else:
            out[:, j] = pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return out, categorical


@dataclass
class MonthCalibrator:
    """Platt scaling of the hazard with a log-month term: the calibrator of models saved before
    :class:`HazardCalibrator` (kept so their bundles still load and score)."""

    model: LogisticRegression | None = None

    @staticmethod
    def _design(p: np.ndarray, month: np.ndarray) -> np.ndarray:
        lp, lm = logit(np.asarray(p, dtype=float)), np.log(np.asarray(month, dtype=float))
        return np.column_stack([lp, lm, lp * lm])

    def transform(self, p: np.ndarray, month: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(self._design(p, month))[:, 1]  # type: ignore[union-attr]


@dataclass
class HazardCalibrator:
    """The hazard's calibration: logistic regression of the outcome on a cubic spline of
    logit(h) (knots at its quantiles), each basis column also times log m and log² m.

    Why a spline that bends with the month: features are frozen at the cutoff and what they say
    fades — a risky account is riskiest in the next month, and its risk regresses to the mean
    after. The trees, early-stopped on a weak signal, keep the top accounts' hazard nearly as
    high at month 8 as at month 1 (out-of-fold on generated data: 8.7 % predicted against 6.1 %
    observed in the riskiest twentieth at months 7–12, right in months 1–2); one Platt slope per
    month, linear in logit(h), cannot bend only the tail, and 12 such small excesses compound
    into the riskiest decile's 12-month survival predicted 4–7 points too low."""

    knots: int = 5
    spline: SplineTransformer | None = None
    model: LogisticRegression | None = None

    def _design(self, p: np.ndarray, month: np.ndarray) -> np.ndarray:
        basis = self.spline.transform(logit(np.asarray(p, dtype=float))[:, None])  # type: ignore[union-attr]
        lm = np.log(np.asarray(month, dtype=float))[:, None]
        return np.hstack([basis, basis * lm, basis * lm**2, lm, lm**2])

    def fit(self, p: np.ndarray, month: np.ndarray, y: np.ndarray) -> "HazardCalibrator":
        lp = logit(np.asarray(p, dtype=float))[:, None]
        self.spline = SplineTransformer(n_knots=self.knots, degree=3, knots="quantile", extrapolation="constant").fit(lp)
        self.model = LogisticRegression(C=1.0, max_iter=5000).fit(self._design(p, month), y)
        return self

    def transform(self, p: np.ndarray, month: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(self._design(p, month))[:, 1]  # type: ignore[union-attr]


def status_at(months: np.ndarray, event: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row and month of ``grid`` (n × len(grid)): whether its status is known (lapsed
    by then, or still a customer after it; a row censored before it is not), whether it was
    still a customer, and its IPCW weight: 1 / the chance of still being observed (Kaplan–Meier
    of the censoring) at its lapse, or at the month for a survivor — so the rows seen longest
    do not decide alone."""
    months, event, grid = np.asarray(months, dtype=float), np.asarray(event, dtype=bool), np.asarray(grid, dtype=float)
    lapsed, alive = event[:, None] & (months[:, None] <= grid), months[:, None] > grid
    seen_own = np.maximum(kaplan_meier(months, ~event, months - 1e-9), 1e-3)[:, None]
    seen_then = np.maximum(kaplan_meier(months, ~event, grid), 1e-3)
    return lapsed | alive, alive, np.where(lapsed, 1.0 / seen_own, np.where(alive, 1.0 / seen_then, 0.0))


@dataclass
class CurveCalibrator:
    """Platt scaling of the survival curve itself, month by month: S(m) is a product of m
    hazards, so the hazards' small errors compound; this fits "still a customer at m" on
    logit S(m) for each month (IPCW-weighted, :func:`status_at`), a month without 20 known
    lapses and 20 known stays keeping the month before's. The result is made non-increasing."""

    coef: np.ndarray

    @classmethod
    def fit(cls, curves: np.ndarray, months: np.ndarray, event: np.ndarray, min_each: int = 20) -> "CurveCalibrator":
        coef, last = [], (0.0, 1.0)
        known_all, alive_all, weight_all = status_at(months, event, np.arange(1, curves.shape[1] + 1))
        for m in range(1, curves.shape[1] + 1):
            known, alive, weight = known_all[:, m - 1], alive_all[:, m - 1], weight_all[:, m - 1]
            if alive[known].sum() >= min_each and (~alive[known]).sum() >= min_each:
                z = logit(curves[known, m - 1])[:, None]
                fitted = LogisticRegression(C=1e4, max_iter=1000).fit(z, alive[known].astype(int), sample_weight=weight[known])
                last = (float(fitted.intercept_[0]), float(fitted.coef_[0, 0]))
            coef.append(last)
        return cls(np.array(coef))

    def transform(self, curves: np.ndarray) -> np.ndarray:
        z = self.coef[:, 0] + self.coef[:, 1] * logit(curves)
        return np.minimum.accumulate(1.0 / (1.0 + np.exp(-z)), axis=1)


def _by_month(x: np.ndarray, months: int) -> np.ndarray:
    """Each row of ``x`` once per month 1 … ``months``, the month as the last column."""
    return np.column_stack([np.repeat(x, months, axis=0), np.tile(np.arange(1, months + 1, dtype=float), len(x))])


@dataclass
class SurvivalModel:
    """LightGBM on the monthly hazard (features + the month), its calibration and the curve's.
    Works on the churn model's float matrix (:meth:`churn.modeling.model.ChurnModel.matrix`),
    so the same columns, categories and missing values reach both models."""

    booster: lgb.Booster
    calibrator: HazardCalibrator | MonthCalibrator
    max_months: int = MAX_MONTHS
    metadata: dict[str, object] = field(default_factory=dict)
    #: None in models saved before it.
    curve_calibrator: CurveCalibrator | None = None

    def hazards(self, x: np.ndarray) -> np.ndarray:
        """Calibrated monthly hazards, n × ``max_months`` (before the curve's calibration)."""
        stacked = _by_month(x, self.max_months)
        raw = np.asarray(self.booster.predict(stacked))
        return np.clip(self.calibrator.transform(raw, stacked[:, -1]), 0.0, 1.0).reshape(len(x), self.max_months)

    def curves(self, x: np.ndarray) -> np.ndarray:
        """S(m) for m = 1 … ``max_months`` (n × ``max_months``): the product of (1 − hazard),
        calibrated as a curve."""
        curves = np.cumprod(1.0 - self.hazards(x), axis=1)
        return curves if self.curve_calibrator is None else self.curve_calibrator.transform(curves)


def _booster_params(config: TrainConfig, rows: int, categorical: list[int]) -> dict[str, object]:
    params = {k: v for k, v in lightgbm_params(config, rows).items() if k not in ("random_state",)}
    params.update({"objective": "binary", "seed": config.seed})
    params["bagging_fraction"], params["bagging_freq"] = params.pop("subsample"), params.pop("subsample_freq")
    params["feature_fraction"] = params.pop("colsample_bytree")
    params["min_data_in_leaf"] = params.pop("min_child_samples")
    params["lambda_l2"] = params.pop("reg_lambda")
    params["num_threads"] = params.pop("n_jobs")
    return params


def _sample(groups: np.ndarray, per_row: np.ndarray, budget: int, seed: int) -> np.ndarray:
    """Rows of a random subset of accounts (``groups``) whose expanded rows fit ``budget``."""
    if per_row.sum() <= budget:
        return np.ones(len(groups), dtype=bool)
    codes, uniques = pd.factorize(groups)
    share = budget / per_row.sum()
    keep = np.random.default_rng(seed).random(len(uniques)) < share
    return keep[codes]


def _cross_fit(
    x: np.ndarray, xs: np.ndarray, y: np.ndarray, source: np.ndarray, fold: np.ndarray, *, categorical: list[int], config: TrainConfig, survival: SurvivalConfig
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Out-of-fold raw hazards of every hazard row and raw hazards at months 1 … max of every
    row, from boosters that never saw the row's account (each early-stopped on its own fold),
    and their numbers of trees."""
    oof, oof_rows, bests = np.full(len(y), np.nan), np.full((len(x), survival.max_months), np.nan), []
    for j in range(survival.calibration_folds):
        test = fold[source] == j
        if not test.any() or test.all():
            continue
        fit_set = lgb.Dataset(xs[~test], y[~test], categorical_feature=categorical, free_raw_data=False)
        booster = lgb.train(
            _booster_params(config, int((~test).sum()), categorical), fit_set, num_boost_round=survival.n_estimators,
            valid_sets=[lgb.Dataset(xs[test], y[test], reference=fit_set)], callbacks=[lgb.early_stopping(survival.early_stopping_rounds, verbose=False)],
        )  # fmt: skip
        best = max(1, booster.best_iteration or survival.n_estimators)
        bests.append(best)
        oof[test] = booster.predict(xs[test], num_iteration=best)
        rows = fold == j
        oof_rows[rows] = np.asarray(booster.predict(_by_month(x[rows], survival.max_months), num_iteration=best)).reshape(-1, survival.max_months)
    return oof, oof_rows, bests


def fit_survival(
    x: np.ndarray,
    months: np.ndarray,
    event: np.ndarray,
    groups: np.ndarray,
    *,
    categorical: list[int],
    config: TrainConfig = TrainConfig(),
    survival: SurvivalConfig = SurvivalConfig(),
    follow_up: np.ndarray | None = None,
) -> SurvivalModel:
    """Fit the hazard model on feature matrix ``x`` (one row per account and cutoff; ``groups``:
    the account ids, so one account's rows are never split between fit and held-out;
    ``follow_up``: the months each row could be seen for, :func:`hazard_rows`).

    Cross-fitted calibration: ``calibration_folds`` account folds each get a booster fitted on
    the others (early-stopped on its fold), so every row has hazards from a model that never
    saw its account; the hazard calibrator is fitted on all of them, then the curve calibrator
    on the curves they make against what was observed. The deployed booster is refitted on
    every row, its trees scaled to the folds' mean, as the churn model is."""
    known = np.isfinite(np.asarray(months, dtype=float))
    follow = np.full(len(known), np.nan) if follow_up is None else np.asarray(follow_up, dtype=float)
    x, months, event, groups, follow = x[known], np.asarray(months)[known], np.asarray(event)[known], np.asarray(groups)[known], follow[known]
    per_row = np.where(event, np.floor(months) + 1, np.floor(months)).clip(0, survival.max_months)
    keep = _sample(groups, per_row, survival.max_hazard_rows, config.seed)
    x, months, event, groups, follow = x[keep], months[keep], event[keep], groups[keep], follow[keep]
    source, period, y = hazard_rows(months, event, survival.max_months, follow)
    if y.sum() == 0 or y.sum() == len(y):
        raise ValueError("the survival model needs both lapses and months survived; these rows have " + ("no lapse" if y.sum() == 0 else "no survivor"))
    xs = np.column_stack([x[source], period.astype(float)])
    codes, uniques = pd.factorize(groups)
    fold = np.random.default_rng(config.seed + 1).integers(0, survival.calibration_folds, len(uniques))[codes]
    oof, oof_rows, bests = _cross_fit(x, xs, y, source, fold, categorical=categorical, config=config, survival=survival)
    if not bests:
        raise ValueError(f"the survival model needs accounts in at least two of its {survival.calibration_folds} calibration folds; these rows have {len(uniques)} account(s)")
    seen = np.isfinite(oof)
    calibrator = HazardCalibrator().fit(oof[seen], period[seen], y[seen])
    rows_seen = np.isfinite(oof_rows).all(axis=1)
    month_grid = np.tile(np.arange(1, survival.max_months + 1, dtype=float), int(rows_seen.sum()))
    oof_curves = np.cumprod(1.0 - calibrator.transform(oof_rows[rows_seen].ravel(), month_grid).reshape(-1, survival.max_months), axis=1)
    curve_calibrator = CurveCalibrator.fit(oof_curves, months[rows_seen], event[rows_seen])
    n_folds = max(2, len(bests))
    n_trees = max(1, math.ceil(float(np.mean(bests)) * n_folds / (n_folds - 1)))
    final = lgb.train(_booster_params(config, len(y), categorical), lgb.Dataset(xs, y, categorical_feature=categorical), num_boost_round=n_trees)
    meta = {"hazard_rows": int(len(y)), "rows": int(len(x)), "accounts": int(len(uniques)), "lapses": int(y.sum()), "n_trees": n_trees}
    return SurvivalModel(final, calibrator, survival.max_months, meta, curve_calibrator)


# --------------------------------------------------------------------------- evaluation

#: The months the evaluation judges curves on (integrated Brier score: months 1 to 12).
EVALUATION_GRID = np.arange(1.0, 13.0)


@dataclass
class SurvivalEvaluation:
    """Out-of-fold curves of the hazard model, Cox and Kaplan–Meier per segment, judged on the
    same rows: ``metrics`` has one row per model (``c_index``: Uno's, τ = 12 months, risk =
    1 − S(12); ``ibs``: integrated Brier score over months 1–12; ``calibration_3m`` /
    ``calibration_12m``: mean gap per decile between predicted and Kaplan–Meier S, in
    probability points, and ``calibration_*_noise`` the gap that noise alone gives); ``deciles`` the hazard model's per-decile tables at 3 and 12 months;
    ``curves`` its S(1 … 12) per row given (NaN where not tested), for diagnostics (not saved)."""

    metrics: pd.DataFrame
    deciles: dict[str, pd.DataFrame]
    description: str
    curves: np.ndarray | None = None

    def summary(self) -> dict[str, object]:
        """JSON-friendly, kept in the model's metadata."""
        return {
            "description": self.description,
            "metrics": {name: {k: float(v) for k, v in row.items()} for name, row in self.metrics.iterrows()},
            "deciles": {k: v.to_dict(orient="list") for k, v in self.deciles.items()},
        }


def judge_curves(
    months: np.ndarray, event: np.ndarray, curves: dict[str, np.ndarray], groups: np.ndarray | None = None
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """C-index, IBS and calibration of each model's curves (n × 12, S at months 1…12) on the
    same outcomes; the per-decile tables of the first model. ``calibration_*_noise``: the mean
    gap a perfectly calibrated model would still show, from the noise of the deciles' observed
    survival (account bootstrap over ``groups``, the account of each row)."""
    rows, deciles = {}, {}
    for name, c in curves.items():
        cal3 = calibration_by_decile(months, event, c[:, 2], 3.0, groups=groups)
        cal12 = calibration_by_decile(months, event, c[:, 11], 12.0, groups=groups)
        rows[name] = {
            "c_index": uno_c_index(months, event, 1.0 - c[:, 11], tau=12.0),
            "ibs": integrated_brier(months, event, c, EVALUATION_GRID),
            "calibration_3m": float(cal3["gap"].mean()),
            "calibration_3m_noise": float(cal3["noise"].mean()),
            "calibration_12m": float(cal12["gap"].mean()),
            "calibration_12m_noise": float(cal12["noise"].mean()),
        }
        if not deciles:
            deciles = {"3m": cal3, "12m": cal12}
    return pd.DataFrame.from_dict(rows, orient="index"), deciles


#: Lapses the later time slice needs on each side — in its training rows as known at the test
#: cutoff, and among the tested customers — before it is used; with fewer, the model cannot be
#: fitted or its C-index is noise, so the evaluation falls back to account folds.
MIN_SLICE_LAPSES = 10


def time_slice(as_of: np.ndarray, follow_up: np.ndarray, horizon: float = 12.0) -> pd.Timestamp | None:
    """The test cutoff of the time-sliced evaluation: the latest cutoff whose rows are followed
    for ``horizon`` months (so survival that far out is observed) and that has an earlier
    cutoff to train on; None when there is none (fewer than ``horizon`` months of follow-up
    beyond the second cutoff)."""
    longest = pd.Series(np.asarray(follow_up, dtype=float)).groupby(pd.Series(pd.to_datetime(as_of, utc=True))).max()
    fits = [c for c in longest.index[longest.to_numpy() >= horizon] if c > longest.index.min()]
    return max(fits) if fits else None


def censor_at(months: np.ndarray, event: np.ndarray, as_of: np.ndarray, cutoff: pd.Timestamp) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outcomes as they were known at ``cutoff`` (for rows of earlier cutoffs): a lapse at or
    after it is not yet seen — as at the end of the data, only what happened strictly before
    counts — so the row is censored there. Returns months, event and follow-up."""
    to_cutoff = ((cutoff - pd.Series(pd.to_datetime(as_of, utc=True))) / MONTH).to_numpy(dtype=float)
    months, event = np.asarray(months, dtype=float), np.asarray(event, dtype=bool)
    return np.minimum(months, to_cutoff), event & (months < to_cutoff), to_cutoff


def _splits(
    groups: np.ndarray, months: np.ndarray, event: np.ndarray, follow: np.ndarray, as_of: np.ndarray | None, folds: int, seed: int
) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]], str]:
    """(train mask, test mask, and the training rows' months, event, follow-up) per fold, and
    what they are: one later time slice when ``as_of`` allows it, else account folds."""
    cutoff = None if as_of is None else time_slice(as_of, follow)
    why = "" if as_of is None else " (no cutoff has 12 months of follow-up and an earlier cutoff, so no later time slice can be judged)"
    if cutoff is not None:
        stamps = pd.to_datetime(as_of, utc=True)
        train, test = np.asarray(stamps < cutoff), np.asarray(stamps == cutoff)
        m, e, f = censor_at(months[train], event[train], np.asarray(as_of)[train], cutoff)
        seen_in_training, seen_in_test = int(e.sum()), int(event[test].sum())
        if min(seen_in_training, seen_in_test) >= MIN_SLICE_LAPSES:
            n_cuts = len(pd.unique(stamps[train]))
            text = (
                f"trained on {n_cuts} earlier cutoffs ({int(train.sum()):,} customer rows, outcomes censored at the test cutoff: nothing after it is used), "
                f"tested on the {int(test.sum()):,} customers at {cutoff:%Y-%m-%d} ({seen_in_test:,} lapses observed, the rest censored at the end of the data)"
            )
            return [(train, test, m, e, f)], text
        why = (
            f" (the later time slice at {cutoff:%Y-%m-%d} would train on {seen_in_training:,} lapses seen before it and be judged on {seen_in_test:,}; "
            f"it needs at least {MIN_SLICE_LAPSES} on each side)"
        )
    codes, uniques = pd.factorize(groups)
    fold = np.random.default_rng(seed).integers(0, folds, len(uniques))[codes]
    out = [(fold != k, fold == k, months[fold != k], event[fold != k], follow[fold != k]) for k in range(folds)]
    return out, f"{folds} account folds over {len(months):,} customer rows ({int(event.sum()):,} lapses observed, the rest censored at the end of the data){why}"


def evaluate_survival(
    x: np.ndarray,
    months: np.ndarray,
    event: np.ndarray,
    groups: np.ndarray,
    segments: np.ndarray | None,
    *,
    categorical: list[int],
    config: TrainConfig = TrainConfig(),
    survival: SurvivalConfig = SurvivalConfig(),
    folds: int = 3,
    follow_up: np.ndarray | None = None,
    as_of: np.ndarray | None = None,
) -> SurvivalEvaluation:
    """The hazard model, Cox on the numeric features and Kaplan–Meier per segment, fitted on the
    same training rows and judged on the same test rows. With ``as_of`` (each row's cutoff) and
    a cutoff followed for 12 months that has earlier ones: trained on the earlier cutoffs with
    their outcomes as known at it, tested on its customers — what a model deployed then would
    have scored. Otherwise (or without ``as_of``) account folds: each row's curve comes from
    models that never saw its account."""
    known = np.isfinite(np.asarray(months, dtype=float))
    follow = (np.full(len(known), np.nan) if follow_up is None else np.asarray(follow_up, dtype=float))[known]
    x, months, event, groups = x[known], np.asarray(months, dtype=float)[known], np.asarray(event, dtype=bool)[known], np.asarray(groups)[known]
    segments = None if segments is None else np.asarray(segments)[known]
    splits, text = _splits(groups, months, event, follow, None if as_of is None else np.asarray(as_of)[known], folds, config.seed + 2)
    numeric = [j for j in range(x.shape[1]) if j not in set(categorical)]
    out = {name: np.full((len(x), len(EVALUATION_GRID)), np.nan) for name in ("model", "cox", "kaplan_meier")}
    for train, test, m, e, f in splits:
        hazard = fit_survival(x[train], m, e, groups[train], categorical=categorical, config=config, survival=survival, follow_up=f)
        out["model"][test] = hazard.curves(x[test])[:, : len(EVALUATION_GRID)]
        out["cox"][test] = CoxModel().fit(x[train][:, numeric], m, e).survival(x[test][:, numeric], EVALUATION_GRID)
        km = SegmentKM.fit(m, e, None if segments is None else segments[train], EVALUATION_GRID)
        out["kaplan_meier"][test] = km.predict(None if segments is None else segments[test], int(test.sum()))
    tested = np.isfinite(out["model"][:, 0])
    metrics, deciles = judge_curves(months[tested], event[tested], {k: v[tested] for k, v in out.items()}, groups[tested])
    by = "per segment" if segments is not None else "overall"
    given = np.full((len(known), len(EVALUATION_GRID)), np.nan)
    given[known] = out["model"]
    return SurvivalEvaluation(metrics, deciles, f"{text}; Cox on the {len(numeric)} numeric features, Kaplan–Meier {by}", given)


def train_time_to_churn(
    table: pd.DataFrame, outcomes: pd.DataFrame, columns: list[str], *, config: TrainConfig = TrainConfig(), survival: SurvivalConfig = SurvivalConfig()
) -> tuple[SurvivalEvaluation, SurvivalModel]:
    """Evaluate the hazard model against Cox and Kaplan–Meier (on a later time slice when the
    cutoffs allow one, else account folds: :func:`evaluate_survival`), then fit the deployed one
    on every mature row, as the churn model is. ``outcomes`` (:func:`time_to_lapse`)
    is aligned with ``table``; ``columns`` are the churn model's, so both read one matrix."""
    x, categorical = feature_matrix(table, columns)
    months, event, groups = outcomes["months"].to_numpy(dtype=float), outcomes["event"].to_numpy(dtype=bool), table["account_id"].astype("str").to_numpy()
    segments = table["segment"].astype("str").to_numpy() if "segment" in table.columns else None
    follow = outcomes["follow_up"].to_numpy(dtype=float) if "follow_up" in outcomes.columns else None
    as_of = table["as_of"].to_numpy()
    evaluation = evaluate_survival(x, months, event, groups, segments, categorical=categorical, config=config, survival=survival, follow_up=follow, as_of=as_of)
    model = fit_survival(x, months, event, groups, categorical=categorical, config=config, survival=survival, follow_up=follow)
    model.metadata["evaluation"] = evaluation.summary()
    return evaluation, model


# --------------------------------------------------------------------------- per account


def discount_factors(discount_rate: float, months: int = MAX_MONTHS) -> np.ndarray:
    """(1 + r)^(−m/12) for m = 1 … ``months``: an annual rate, compounded monthly."""
    if not 0 <= discount_rate < 1:
        raise ValueError(f"the discount rate is an annual share in [0, 1), e.g. 0.10 for 10 %; got {discount_rate}")
    return (1.0 + discount_rate) ** (-np.arange(1, months + 1) / 12.0)


def remaining_value(curves: np.ndarray, monthly_value: np.ndarray, discount_rate: float = DEFAULT_DISCOUNT_RATE) -> np.ndarray:
    """Σ_m S(m) × monthly value × (1 + r)^(−m/12): each month's value, counted with the chance
    the account is still a customer at its end, in today's money."""
    return (curves * discount_factors(discount_rate, curves.shape[1])).sum(axis=1) * np.asarray(monthly_value, dtype=float)


def value_if_kept(curves: np.ndarray, monthly_value: np.ndarray, horizon_days: int, discount_rate: float = DEFAULT_DISCOUNT_RATE) -> np.ndarray:
    """The discounted value of the next 24 months *given the account is still a customer when
    the horizon ends*: S(m) / S(horizon), capped at 1. What is lost if it churns within the
    horizon; revenue at risk = P(churn within the horizon) × this."""
    h = int(np.clip(round(horizon_days / (MONTH / pd.Timedelta(days=1))), 1, curves.shape[1]))
    at_h = np.maximum(curves[:, h - 1 : h], 1e-9)
    kept = np.minimum(curves / at_h, 1.0)
    return remaining_value(kept, monthly_value, discount_rate)


def survival_columns(curves: np.ndarray, monthly_value: np.ndarray, discount_rate: float = DEFAULT_DISCOUNT_RATE) -> pd.DataFrame:
    """The risk list's survival columns (:data:`SURVIVAL_COLUMNS`) from curves n × 24."""
    out = {f"survival_{m}m": curves[:, m - 1] for m in SHOWN_MONTHS if m <= curves.shape[1]}
    out["expected_months_24"] = curves.sum(axis=1)
    out["remaining_value"] = remaining_value(curves, monthly_value, discount_rate)
    return pd.DataFrame(out)
