"""The effect of a call, learned from the outreach experiment: shift, T- or X-learner on LightGBM.

Rows are matured cohort rows: the features an account had when a list assigned it, whether
it was called (``treated``), the recorded probability that it would be (``propensity``), and
whether it churned within the horizon (``churned``). The **uplift** is the absolute reduction
of the churn probability a call makes (positive = the call helps). The default learner
(``"shift"``, :func:`_fit_shift`) borrows strength: P(churn | not called, x) from every
not-called row, and the call's effect on the log-odds scale — one common shift plus only the
departures the called rows support out of fold — so with thin evidence a homogeneous effect
gives an uplift that orders accounts as their risk does, instead of the difference of two noisy
fits. ``learner="t"``: two LightGBM classifiers for P(churn | called, x) and P(churn | not
called, x), their difference; ``"x"``: the X-learner's own effect model (:func:`fit_uplift`).

Why learners written here rather than causalml (Apache-2.0) / econml (MIT), both fine to ship:
causalml pinned NumPy < 2 (uber/causalml#795, 2024) and imports shap for its meta-learners,
and neither was checked against pandas 3 here; the propensities are *recorded* by design
(the persistent control draw, the exploration share), so no propensity model is needed for
the T-learner — only inverse-probability weights (treated rows 1/p, the others 1/(1 − p)),
which plain LightGBM ``sample_weight`` takes — and both learners are ~60 lines on LightGBM.

Why the weights matter: outreach and control share the top of the list, but the accounts
below the cut are almost never called — an explored account below the cut stands for the
1/p accounts like it that were not. Without the weights the treated model learns only the
top of the list.

Evaluation (:func:`evaluate_uplift`) is on held-out later cohorts, never the rows fitted:
the Qini curve — cumulative customers saved when calling in score order, control churn
scaled to the treated group's size minus treated churn, IPW-weighted — its coefficient (area
above the random line, per account), AUUC (area under the curve), the uplift in the top
``capacity``, each with a bootstrap interval; and the same Qini for the *risk* ranking on the
same rows, with the bootstrap interval of the difference. :func:`uplift_gate` passes only
when that interval lies above zero.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn.features.labels import LABEL
from churn.modeling.calibration import logit
from churn.modeling.model import categorical_columns, model_columns

TREATED, PROPENSITY, WEIGHT = "treated", "propensity", "weight"
#: Cohort-table columns that are the experiment's, not the account's (never model inputs).
EXPERIMENT_COLUMNS = (
    TREATED, PROPENSITY, WEIGHT, "cohort", "arm", "run_as_of", "run_id", "horizon_days", "churn_probability", "revenue_at_risk", "annual_value",
)  # fmt: skip


Learner = Literal["x", "t", "shift"]


@dataclass(frozen=True)
class UpliftSettings:
    """LightGBM settings: small trees, many rows per leaf — the control arm is a tenth of the
    list, and an effect is a difference of two noisy fits. The second stage of the X-learner
    (regressions of imputed effects, far noisier than the outcomes) is regularised harder."""

    n_estimators: int = 120
    learning_rate: float = 0.05
    num_leaves: int = 15
    min_child_samples: int = 40
    seed: int = 7
    n_bootstrap: int = 200
    alpha: float = 0.05
    #: "shift" (the default): the effect on the log-odds scale, a common shift plus departures
    #: the evidence supports (:func:`_fit_shift`); "t": the two outcome models' difference; "x":
    #: the X-learner. In the closed loop the shift learner saved the most (README).
    learner: Learner = "shift"
    effect_estimators: int = 150
    effect_learning_rate: float = 0.05
    effect_num_leaves: int = 7
    effect_min_child_samples: int = 100
    #: "shift" learner: rows per leaf of the boosted shift (how much evidence a subgroup needs
    #: before its effect leaves the common one) and the number of boosting rounds.
    shift_min_child_samples: int = 200
    shift_estimators: int = 60


@dataclass
class UpliftModel:
    """P(churn | called, x) and P(churn | not called, x); ``predict`` gives both and the effect.

    With the X-learner (``effect_models`` set) the effect is its own model, not the outcome
    models' difference: ``uplift = g(x)·τ₀(x) + (1 − g(x))·τ₁(x)`` with ``g`` the propensity model."""

    feature_names: list[str]
    categories: dict[str, list[object]]
    treated_model: lgb.LGBMClassifier
    control_model: lgb.LGBMClassifier
    metadata: dict[str, object] = field(default_factory=dict)
    #: X-learner only: (τ₀ fitted on the not-called rows, τ₁ on the called rows).
    effect_models: tuple[lgb.LGBMRegressor, lgb.LGBMRegressor] | None = None
    #: X-learner only: P(called | x), which weighs τ₀ against τ₁.
    propensity_model: lgb.LGBMClassifier | None = None
    #: "shift" learner only: (the common log-odds shift of a call, the boosted departures from it).
    shift: tuple[float, lgb.LGBMClassifier | None] | None = None

    def prepare(self, features: pd.DataFrame) -> pd.DataFrame:
        x = features[self.feature_names].copy()
        for col, cats in self.categories.items():
            x[col] = pd.Categorical(x[col].astype("object"), categories=cats)
        return x

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """``churn_if_called``, ``churn_if_not_called`` and ``uplift`` (the reduction a call makes)."""
        x = self.prepare(features)
        p0 = self.control_model.predict_proba(x)[:, 1]
        if self.shift is not None:
            common, departures = self.shift
            delta = common + (departures.predict_proba(x, raw_score=True) if departures is not None else 0.0)
            p1 = _shifted(p0, delta)
            return pd.DataFrame({"churn_if_called": p1, "churn_if_not_called": p0, "uplift": p0 - p1}, index=features.index)
        if self.effect_models is None or self.propensity_model is None:
            p1 = self.treated_model.predict_proba(x)[:, 1]
            return pd.DataFrame({"churn_if_called": p1, "churn_if_not_called": p0, "uplift": p0 - p1}, index=features.index)
        g = self.propensity_model.predict_proba(x)[:, 1]
        tau = g * self.effect_models[0].predict(x) + (1.0 - g) * self.effect_models[1].predict(x)
        return pd.DataFrame({"churn_if_called": np.clip(p0 - tau, 0.0, 1.0), "churn_if_not_called": p0, "uplift": tau}, index=features.index)


def _shifted(p0: np.ndarray, delta: np.ndarray | float) -> np.ndarray:
    """The churn probability after a log-odds shift of ``delta`` — exactly ``p0`` where the shift
    is 0: through logit and back a probability moves by rounding (±1e-17), and an uplift of
    −1e-17 is a "sleeping dog" the policy never calls, +1e-17 an order by rounding noise, where
    "no effect found" must tie (and leave the order ties get)."""
    delta = np.broadcast_to(np.asarray(delta, dtype=float), np.shape(p0))
    return np.where(delta == 0.0, p0, sigmoid(logit(p0) + delta))


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The probability of a log-odds ``z`` (the inverse of :func:`churn.modeling.calibration.logit`)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))


def common_shift(churned: np.ndarray, offset: np.ndarray, weight: np.ndarray | None = None, iterations: int = 25) -> tuple[float, float]:
    """The one log-odds shift δ that best fits called rows' outcomes given their no-call log-odds
    ``offset`` (weighted logistic regression with an offset and only an intercept, by Newton's
    method): logit P(churn | called) = offset + δ. Returns (δ, its standard error)."""
    y, z = np.asarray(churned, dtype=float), np.asarray(offset, dtype=float)
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=float)
    delta = 0.0
    for _ in range(iterations):
        p = sigmoid(z + delta)
        grad, hess = float(np.sum(w * (y - p))), float(np.sum(w * p * (1 - p)))
        if hess <= 1e-12:
            break
        step = float(np.clip(grad / hess, -2.0, 2.0))
        delta += step
        if abs(step) < 1e-8:
            break
    p = sigmoid(z + delta)
    information = float(np.sum(w * p * (1 - p)))
    return float(np.clip(delta, -5.0, 5.0)), (1.0 / np.sqrt(information) if information > 0 else float("inf"))


def ipw_weights(treated: np.ndarray, propensity: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
    """Inverse-probability weights: 1/p for called rows, 1/(1 − p) for the others (× ``base``,
    e.g. a subsampling weight). Propensities are clipped to [0.01, 0.99]: a recorded 0 or 1
    means no experiment at that row, and it must not dominate the fit."""
    p = np.clip(np.asarray(propensity, dtype=float), 0.01, 0.99)
    w = np.where(np.asarray(treated, dtype=bool), 1.0 / p, 1.0 / (1.0 - p))
    return w * (1.0 if base is None else np.asarray(base, dtype=float))


def feature_columns(rows: pd.DataFrame) -> list[str]:
    """The model columns of a cohort table: the churn model's, without the experiment's own."""
    return [c for c in model_columns(rows) if c not in EXPERIMENT_COLUMNS and not c.startswith("_")]


def _params(settings: UpliftSettings, *, effect: bool = False) -> dict[str, object]:
    return {
        "n_estimators": settings.effect_estimators if effect else settings.n_estimators,
        "learning_rate": settings.effect_learning_rate if effect else settings.learning_rate,
        "num_leaves": settings.effect_num_leaves if effect else settings.num_leaves,
        "min_child_samples": settings.effect_min_child_samples if effect else settings.min_child_samples,
        "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "reg_lambda": 1.0,
        "random_state": settings.seed, "deterministic": True, "force_row_wise": True, "n_jobs": 1, "verbose": -1,
    }  # fmt: skip


def fit_uplift(
    rows: pd.DataFrame, settings: UpliftSettings = UpliftSettings(), *, use_weights: bool = True, baseline: pd.DataFrame | None = None
) -> UpliftModel:
    """Fit the uplift model on cohort rows (features, ``treated``, ``propensity``, ``churned``,
    optional ``weight``). Raises ValueError when either arm is empty.

    ``settings.learner`` "t" (default): two outcome models, IPW-weighted (``use_weights``); their
    difference is the effect. "x": the X-learner (Künzel et al., PNAS 2019), made for
    arms of very different sizes — here both ways round: called rows dominate the top of the
    list (outreach vs a 10 % control), not-called rows everywhere below it (a few explored
    calls in a large pool). (1) outcome models μ₁ on called rows, μ₀ on the others — conditional
    means, so no IPW weights (they would only add variance: an explored row weighs 100);
    (2) imputed effects D₁ = μ₀(x) − y on called rows, D₀ = y − μ₁(x) on the others, each
    regressed on x (τ₁, τ₀; harder regularised); (3) uplift = g·τ₀ + (1 − g)·τ₁ with g(x) the
    probability of being called (a classifier on the recorded arms, weighted by ``weight``): where
    nearly everyone was called, τ₀ rests on the well-fitted μ₁, and below the cut τ₁ on μ₀.

    ``baseline`` (optional, either learner): rows with the same features and ``churned`` from
    before any call was made (no row there was called), added to μ₀'s fit only (weight 1) — the
    outcome without a call, learned where the experiment holds out only a tenth."""
    treated = rows[TREATED].to_numpy(dtype=bool)
    if treated.all() or not treated.any():
        raise ValueError("the uplift model needs called and not-called accounts in the matured cohorts")
    columns = feature_columns(rows)
    categorical = categorical_columns(rows, columns)
    categories = {c: list(rows[c].cat.categories) for c in categorical}
    base = rows[WEIGHT].to_numpy(dtype=float) if WEIGHT in rows.columns else None
    x, y = rows[columns], rows[LABEL].to_numpy(dtype=int)
    metadata: dict[str, object] = {"rows": len(rows), "treated": int(treated.sum()), "weighted": use_weights, "learner": settings.learner}
    if settings.learner == "shift":
        return _fit_shift(rows, columns, categories, settings, baseline, metadata)
    if settings.learner == "t":  # IPW-weighted outcome models (the shared settings carry reg_lambda 1.0 since the X-learner came)
        w = ipw_weights(treated, rows[PROPENSITY].to_numpy(), base) if use_weights else (np.ones(len(rows)) if base is None else base)
    else:  # conditional means: no weights
        w = np.ones(len(rows))
    x0, y0, w0 = x[~treated], y[~treated], w[~treated]
    if baseline is not None and len(baseline):
        prior = UpliftModel(columns, categories, None, None).prepare(baseline)  # type: ignore[arg-type]
        x0, y0 = pd.concat([x0, prior], ignore_index=True), np.concatenate([y0, baseline[LABEL].to_numpy(dtype=int)])
        w0 = np.concatenate([w0, np.ones(len(baseline))])
        metadata["baseline_rows"] = len(baseline)
    mu1 = lgb.LGBMClassifier(**_params(settings)).fit(x[treated], y[treated], sample_weight=w[treated])  # type: ignore[arg-type]
    mu0 = lgb.LGBMClassifier(**_params(settings)).fit(x0, y0, sample_weight=w0)  # type: ignore[arg-type]
    if settings.learner == "t":
        return UpliftModel(columns, categories, mu1, mu0, metadata)
    imputed = np.where(treated, mu0.predict_proba(x)[:, 1] - y, y - mu1.predict_proba(x)[:, 1])
    tau0, tau1 = (lgb.LGBMRegressor(**_params(settings, effect=True)).fit(x[arm], imputed[arm]) for arm in (~treated, treated))  # type: ignore[arg-type]
    g = lgb.LGBMClassifier(**_params(settings, effect=True)).fit(x, treated.astype(int), sample_weight=base)  # type: ignore[arg-type]
    return UpliftModel(columns, categories, mu1, mu0, metadata, effect_models=(tau0, tau1), propensity_model=g)


def _fit_shift(
    rows: pd.DataFrame, columns: list[str], categories: dict[str, list[object]], settings: UpliftSettings, baseline: pd.DataFrame | None, metadata: dict[str, object]
) -> UpliftModel:
    """The "shift" learner: the effect of a call on the log-odds scale, borrowing strength.

    μ₀ (churn without a call) from every not-called row and ``baseline`` — the experiment's
    controls, the sampled pool below the cut and the rows from before any call; conditional
    means, unweighted. The call's effect: logit P(churn | called, x) = logit μ₀(x) + δ + d(x),
    with δ one common shift fitted on the called rows (:func:`common_shift`) and d(x) boosted
    departures from it (LightGBM with μ₀ + δ as the initial score, few rounds, many rows per
    leaf). With little evidence d stays near 0, and the uplift μ₀ − sigmoid(logit μ₀ + δ) orders
    accounts as their risk does (below 50 %); a subgroup moves away from it only where its
    called rows show it. A common shift within two standard errors of 0 is taken as 0 (no
    evidence that calls help or hurt): the uplift is then 0 wherever no departure is found, so
    the uplift list falls back to the default order, risk × value (ties,
    :func:`churn.outreach.policy.policy_ranks`), and never stops calling on noise — a
    noisy positive δ would mark every account a sleeping dog and end the experiment."""
    treated = rows[TREATED].to_numpy(dtype=bool)
    prep = UpliftModel(columns, categories, None, None)  # type: ignore[arg-type]
    x, y = prep.prepare(rows), rows[LABEL].to_numpy(dtype=int)
    x0, y0 = x[~treated], y[~treated]
    if baseline is not None and len(baseline):
        x0, y0 = pd.concat([x0, prep.prepare(baseline)], ignore_index=True), np.concatenate([y0, baseline[LABEL].to_numpy(dtype=int)])
        metadata["baseline_rows"] = len(baseline)
    mu0 = lgb.LGBMClassifier(**_params(settings)).fit(x0, y0)
    x1, y1 = x[treated], y[treated]
    offset = logit(mu0.predict_proba(x1)[:, 1])
    delta, se = common_shift(y1, offset)
    if abs(delta) < 2.0 * se:  # no evidence yet that a call moves churn either way: no effect, not a noisy one
        metadata["common_shift_estimate"], delta = delta, 0.0
    departures = None
    params = {**_params(settings, effect=True), "n_estimators": settings.shift_estimators, "min_child_samples": settings.shift_min_child_samples}
    rounds = _departure_rounds(x1, y1, offset + delta, params, settings.seed)
    if rounds:
        departures = lgb.LGBMClassifier(**{**params, "n_estimators": rounds}).fit(x1, y1, init_score=offset + delta)  # type: ignore[arg-type]
    metadata["common_shift"], metadata["departure_rounds"] = delta, rounds
    return UpliftModel(columns, categories, departures, mu0, metadata, shift=(delta, departures))


def _departure_rounds(x: pd.DataFrame, y: np.ndarray, init: np.ndarray, params: dict[str, object], seed: int, folds: int = 3) -> int:
    """How many boosting rounds of departures from the common shift the called rows support:
    the count that minimises the out-of-fold log loss (``folds``-fold) — but 0 unless that
    minimum beats the common shift alone by two standard errors of the per-row loss difference,
    so with thin evidence the learner keeps the risk-proportional effect instead of fitting noise
    (a noisy minimum is found among many round counts; the margin guards against picking one)."""
    n_rounds = int(params["n_estimators"])  # type: ignore[call-overload]
    if len(y) < folds * 2 * int(params["min_child_samples"]) or y.sum() < 2 * folds or y.sum() > len(y) - 2 * folds:  # type: ignore[call-overload]
        return 0
    fold = np.random.default_rng([seed, 11]).permutation(len(y)) % folds
    loss = np.zeros((n_rounds + 1, len(y)))
    for k in range(folds):
        fit, out = fold != k, fold == k
        model = lgb.LGBMClassifier(**params).fit(x[fit], y[fit], init_score=init[fit])  # type: ignore[arg-type]
        yo, zo = y[out], init[out]
        raw = np.vstack([np.zeros(out.sum())] + [model.predict_proba(x[out], raw_score=True, num_iteration=i) for i in range(1, n_rounds + 1)])
        p = np.clip(sigmoid(zo + raw), 1e-9, 1 - 1e-9)
        loss[:, out] = -(yo * np.log(p) + (1 - yo) * np.log(1 - p))
    best = int(np.argmin(loss.sum(axis=1)))
    gain = loss[0] - loss[best]
    return best if gain.sum() > 2.0 * gain.std(ddof=1) * np.sqrt(len(gain)) else 0


# --------------------------------------------------------------------------- evaluation


def qini_curve(score: np.ndarray, treated: np.ndarray, churned: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Customers saved per account of the population when calling the best-scored first:
    Q(k) = churn_C(k) · N_T(k) / N_C(k) − churn_T(k), IPW-weighted, divided by the total weight.
    Zero while no control has been seen."""
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    t, y, w = np.asarray(treated, bool)[order], np.asarray(churned, float)[order], np.asarray(weight, float)[order]
    n_t, n_c = np.cumsum(w * t), np.cumsum(w * ~t)
    y_t, y_c = np.cumsum(w * t * y), np.cumsum(w * ~t * y)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(n_c > 0, y_c * n_t / n_c, 0.0) - y_t
    return q / max(float(w.sum()), 1e-12)


def qini_coefficient(curve: np.ndarray) -> float:
    """Mean height of the Qini curve above the random line (from 0 to the curve's end)."""
    if not len(curve):
        return float("nan")
    line = curve[-1] * np.arange(1, len(curve) + 1) / len(curve)
    return float(np.mean(curve - line))


def uplift_at(score: np.ndarray, treated: np.ndarray, churned: np.ndarray, weight: np.ndarray, k: int) -> float:
    """Control churn − called churn among the ``k`` best-scored rows (IPW-weighted rates)."""
    top = np.argsort(-np.asarray(score, dtype=float), kind="stable")[: max(k, 1)]
    t, y, w = np.asarray(treated, bool)[top], np.asarray(churned, float)[top], np.asarray(weight, float)[top]
    if not t.any() or t.all():
        return float("nan")
    return float(np.average(y[~t], weights=w[~t]) - np.average(y[t], weights=w[t]))


def _stats(score: np.ndarray, risk: np.ndarray, t: np.ndarray, y: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    curve = qini_curve(score, t, y, w)
    q_uplift, q_risk = qini_coefficient(curve), qini_coefficient(qini_curve(risk, t, y, w))
    return np.array([q_uplift, float(np.mean(curve)), uplift_at(score, t, y, w, k), q_risk, q_uplift - q_risk])


STAT_NAMES = ("qini", "auuc", "uplift_at_capacity", "qini_risk", "qini_difference")


def ranking_positions(uplift: np.ndarray, risk: np.ndarray) -> np.ndarray:
    """A score per row (higher first, all distinct) giving the order of calling by estimated
    effect: ties in the effect (e.g. no effect found: every uplift 0) broken by risk, then by
    row order. The risk ranking is ``ranking_positions(zeros, risk)``, so a model that found no
    effect ranks exactly as risk does and can never beat it in the gate. (The list itself breaks
    ties by revenue at risk, :func:`churn.outreach.policy.policy_ranks`: the Qini counts
    customers, and the gate asks whether the learned effect orders them better than risk.) Comparing positions rather than raw scores
    keeps two rankings that are the same identical in every bootstrap resample, duplicates and
    equal scores included (raw scores with ties were ordered differently in the two, and a
    difference of ~1e-10 in every draw passed the gate on rounding)."""
    order = np.lexsort((-np.asarray(risk, dtype=float), -np.asarray(uplift, dtype=float)))
    positions = np.empty(len(order))
    positions[order] = -np.arange(len(order), dtype=float)
    return positions


def evaluate_uplift(rows: pd.DataFrame, uplift: np.ndarray, risk: np.ndarray, *, capacity: int, settings: UpliftSettings = UpliftSettings()) -> dict[str, object]:
    """Qini, AUUC, uplift at capacity, the risk ranking's Qini and the difference on held-out
    rows, each with a percentile bootstrap interval (rows resampled; ``settings.n_bootstrap``
    draws, seeded). Also the uplift ranking's Qini curve at 20 points, for a report."""
    t = rows[TREATED].to_numpy(dtype=bool)
    y = rows[LABEL].to_numpy(dtype=float)
    w = ipw_weights(t, rows[PROPENSITY].to_numpy(), rows[WEIGHT].to_numpy(dtype=float) if WEIGHT in rows.columns else None)
    # both rankings as positions on one tie rule (:func:`ranking_positions`): with no effect found
    # they are the same ranking, so their difference is exactly 0 in every bootstrap draw
    uplift, risk = ranking_positions(uplift, risk), ranking_positions(np.zeros(len(risk)), risk)
    point = _stats(uplift, risk, t, y, w, capacity)
    rng = np.random.default_rng(settings.seed)
    draws = np.array([_stats(uplift[i], risk[i], t[i], y[i], w[i], capacity) for i in (rng.integers(0, len(t), len(t)) for _ in range(settings.n_bootstrap))])
    with warnings.catch_warnings():  # a statistic NaN in every draw (e.g. no control in the top k) stays NaN, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanpercentile(draws, [100 * settings.alpha / 2, 100 * (1 - settings.alpha / 2)], axis=0) if len(draws) else (point * np.nan, point * np.nan)
    curve = qini_curve(uplift, t, y, w)
    points = np.linspace(0, len(curve) - 1, 20).astype(int) if len(curve) else np.zeros(0, dtype=int)
    out: dict[str, object] = {"rows": int(len(t)), "treated": int(t.sum()), "capacity": int(capacity)}
    for name, p, a, b in zip(STAT_NAMES, point, lo, hi):
        out[name], out[f"{name}_low"], out[f"{name}_high"] = float(p), float(a), float(b)
    out["qini_curve"] = [[float((i + 1) / len(curve)), float(curve[i])] for i in points]
    return out


def uplift_gate(evaluation: dict[str, object] | None) -> tuple[bool, str]:
    """Does uplift ranking replace risk × value as the default? Only when the uplift ranking's
    Qini on held-out cohorts beats the risk ranking's with the whole interval of the
    difference above zero. Returns (passed, the reason in a sentence)."""
    if not evaluation:
        return False, "no uplift model yet: not enough matured cohorts with called and held-out accounts"
    low, diff, high = (float(evaluation[k]) for k in ("qini_difference_low", "qini_difference", "qini_difference_high"))  # type: ignore[arg-type]
    span = f"Qini difference uplift − risk {diff:+.4f} (95 % interval {low:+.4f} to {high:+.4f}) on {evaluation['rows']:,} held-out cohort rows"
    if np.isfinite(low) and low > 0:
        return True, f"uplift ranking: {span} — above zero"
    return False, f"risk × value ranking: {span} — the interval includes zero or less"
