"""Monitoring: after every scoring run, say whether this week's list can be trusted.

Five families of checks, each a pure function on DataFrames and JSON-friendly summaries:

* **Feature drift** of every model feature against the *reference profile* stored with the
  model at training time (:func:`reference_profile`: bin edges, shares and percentiles —
  never raw rows): the population stability index (PSI) on the reference's decile bins plus
  a bin for missing values; for numbers the two-sample Kolmogorov–Smirnov test and the
  *shift* (how far values moved, in reference spreads); chi-square on the bins for all.
* **Prediction drift**: the score distribution and the share per risk band, the same way.
* **Data quality** of the scoring window: events per day and type in the last days against
  the preceding weeks (a broken feed is a sudden drop), missing values, categories the model
  has never seen, rejected rows, freshness.
* **Realized performance** of every past list whose horizon has passed — ROC-AUC, PR-AUC,
  precision at capacity, calibration per band, with 95 % intervals — next to the training
  evaluation; and before that, the label-free expected churn among the flagged accounts.
* **Account alerts**: accounts whose risk jumped since the previous run.

They end in a verdict — ``ok``, ``warn`` or ``alert`` — and ``retrain_recommended``.

Thresholds that do not cry wolf. Under no change, PSI between samples of n and m rows is
approximately (1/n + 1/m)·χ²(bins − 1): two samples of 500 accounts show PSI ≈ 0.04 from
chance alone (99.9 % quantile ≈ 0.12). A feature is flagged only when its change is

1. statistically clear: its p-value, Holm-corrected across all features, is below ``alpha``
   (numbers: the smaller of KS and chi-square, doubled — KS misses changes where most
   accounts share one value, such as "no long waits", chi-square misses moves inside bins);
2. large enough to matter: PSI above a floor (0.10 warn, 0.25 alert) *plus* the 99.9 %
   quantile of that noise for its own sample sizes and bins — or, for numbers, values moved
   by more than 0.2 (warn) / 0.4 (alert) reference spreads. PSI measures how much of the
   population changed bin; the shift catches the few accounts that moved far (waits tripled
   for the 30 % of accounts with a support contact: PSI ≈ 0.1, shift ≈ 0.5).

With a million accounts (2) keeps tiny but "significant" shifts quiet; with a few hundred
(1) and the noise term keep sampling noise quiet.

The I/O shell at the end (:func:`monitor_run`, :func:`monitor_folder`) reads the run
history, writes ``monitoring.json`` and ``alerts.csv`` and logs to MLflow (best effort).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from churn.features import codes_for

if TYPE_CHECKING:  # pragma: no cover
    from churn.contract import TableReport
    from churn.train import ChurnModel

STATUS_LEVEL = {"ok": 0, "warn": 1, "alert": 2}
#: Percentiles kept per numeric feature: the grid of the KS statistic.
GRID_QUANTILES = np.arange(1, 100) / 100
REFERENCE_VERSION = 1
MONITORING_FILE = "monitoring.json"
ALERTS_FILE = "alerts"
MLFLOW_EXPERIMENT = "churn-monitoring"
#: Exit code of ``churn score``/``churn monitor --fail-on`` when the verdict reaches the level.
FAIL_EXIT_CODE = 3


@dataclass(frozen=True)
class MonitorConfig:
    """Thresholds of every monitoring check. Defaults suit weekly runs of 500–1M accounts."""

    #: PSI floors: how big a shift must be to matter, on top of the sampling-noise quantile.
    psi_warn: float = 0.10
    psi_alert: float = 0.25
    #: Quantile of (1/n + 1/m)·χ²(bins − 1) added to the floors.
    noise_quantile: float = 0.999
    #: Family-wise error rate of the drift tests (Holm across features).
    alpha: float = 0.01
    #: Shift floors, in reference spreads (≈ standard deviations) the values moved.
    shift_warn: float = 0.20
    shift_alert: float = 0.40
    #: Features drifting at "alert" raise the verdict to alert when together they carry this
    #: share of the model's gain (drift in features the model barely uses is a warning).
    important_gain_share: float = 0.05
    #: Event volume: trailing windows (days before as_of) compared with the baseline before them.
    volume_windows_days: tuple[int, ...] = (2, 7)
    #: 12 weeks always hold the end of a 31-day month: billing-day gaps are in the baseline too.
    volume_baseline_days: int = 84
    #: Missing values: the last ``max(volume_windows_days)`` days against the weeks before.
    missing_baseline_days: int = 28
    volume_drop_warn: float = 0.20
    volume_drop_alert: float = 0.40
    volume_rise_warn: float = 1.00
    #: z-score a volume or missing-rate change must reach (day-to-day variance of the baseline).
    z_threshold: float = 4.0
    #: Windows expecting fewer events than this are not judged (too few to tell).
    min_expected_events: float = 20.0
    missing_rise_warn: float = 0.10
    missing_rise_alert: float = 0.30
    new_category_warn: float = 0.01
    new_category_alert: float = 0.10
    rejected_warn: float = 0.01
    rejected_alert: float = 0.10
    freshness_warn_days: float = 2.0
    freshness_alert_days: float = 7.0
    #: Account alert when the probability rose by more than this (0.10 = 10 points).
    jump_points: float = 0.10
    #: Realized ROC-AUC alert: the interval's upper end is this far below the training value.
    auc_drop_alert: float = 0.05
    #: Calibration warning: actual / expected churn outside [1/x, x] and outside the interval.
    calibration_ratio: float = 1.25
    confidence: float = 0.95
    #: Realized performance is recomputed for at most this many of the latest matured runs.
    max_matured_runs: int = 12
    #: Account alerts copied into monitoring.json (all of them go to alerts.csv).
    alerts_in_document: int = 100

    @property
    def window_days(self) -> int:
        """Days of events before as_of that the data-quality checks read."""
        return max(self.volume_windows_days) + max(self.volume_baseline_days, self.missing_baseline_days)

    def __post_init__(self) -> None:
        if not 0 < self.psi_warn <= self.psi_alert:
            raise ValueError("PSI floors must satisfy 0 < psi_warn <= psi_alert")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if not self.volume_windows_days or min(self.volume_windows_days) < 1:
            raise ValueError("volume_windows_days must hold positive day counts")


def worst(statuses: Iterable[str]) -> str:
    """The most severe of some statuses ("ok" when there are none)."""
    level = max((STATUS_LEVEL[s] for s in statuses), default=0)
    return {v: k for k, v in STATUS_LEVEL.items()}[level]


def _float(x: object) -> float | None:
    """A JSON-safe float: NaN and infinities become None."""
    value = float(x)  # type: ignore[arg-type]
    return value if np.isfinite(value) else None


def to_json_safe(obj: Any) -> Any:
    """Plain Python containers and scalars; NaN → None, timestamps → ISO text."""
    if isinstance(obj, Mapping):
        return {str(k): to_json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [to_json_safe(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _float(obj)
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    if obj is None or obj is pd.NA or obj is pd.NaT:
        return None
    return obj


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return to_json_safe(frame.to_dict(orient="records"))  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- reference


def _numeric_values(values: pd.Series | np.ndarray) -> np.ndarray:
    """Floats; infinities count as missing (they have no place on a percentile grid)."""
    if isinstance(values, np.ndarray) and values.dtype == np.float64:
        v = values
    else:
        v = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return v if np.isfinite(v).all() else np.where(np.isfinite(v), v, np.nan)


def _numeric_profile(values: pd.Series | np.ndarray, bins: int) -> dict[str, object]:
    v = _numeric_values(values)
    finite = v[~np.isnan(v)]
    n = len(v)
    if len(finite) == 0:
        return {"kind": "numeric", "n": n, "missing": 1.0 if n else 0.0, "edges": [], "shares": [0.0], "grid": [], "cdf": [], "quantiles": {}, "mean": None, "spread": 0.0}
    grid_all = np.quantile(finite, GRID_QUANTILES, method="inverted_cdf")  # actual data values
    step = max(1, round(100 / bins))
    edges = np.unique(grid_all[step - 1 :: step][: bins - 1])  # a subset of the grid, by construction
    grid = np.unique(grid_all)
    n_missing = n - len(finite)
    below = _counts_at_or_below(grid, finite)
    at_edges = below[np.searchsorted(grid, edges)]
    shares = np.diff(np.r_[0, at_edges, len(finite)]) / n
    quantiles = np.quantile(finite, [0.05, 0.25, 0.5, 0.75, 0.95])
    return {
        "kind": "numeric",
        "n": n,
        "missing": n_missing / n,
        "edges": edges.tolist(),
        "shares": shares.tolist(),
        "grid": grid.tolist(),
        "cdf": ((n_missing + below) / n).tolist(),
        "quantiles": dict(zip(("p05", "p25", "p50", "p75", "p95"), quantiles.tolist())),
        "mean": float(finite.mean()),
        # spread of the values between the 1st and 99th percentile: the unit of the shift
        "spread": float(np.clip(finite, grid[0], grid[-1]).std()),
    }


def _counts_at_or_below(grid: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """#values ≤ each grid point, in one pass (searchsorted + bincount, no sort of the data)."""
    idx = np.searchsorted(grid, finite, side="left")  # grid[idx-1] < x <= grid[idx]
    return np.cumsum(np.bincount(idx, minlength=len(grid) + 1))[: len(grid)]


def _category_codes(values: pd.Series, categories: Sequence[str]) -> np.ndarray:
    """Codes into ``categories``; −1 for missing or unknown values (as the features code them).
    Text is factorised first, so each distinct value is looked up once, not each row."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return codes_for(values, list(categories)).astype(np.int64)
    codes, uniques = pd.factorize(values)
    lookup = np.append(codes_for(pd.Series(uniques), list(categories)), -1)
    return lookup[codes].astype(np.int64)  # code −1 (missing) picks the appended −1


def _categorical_profile(values: pd.Series) -> dict[str, object]:
    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = [str(c) for c in values.cat.categories]
    else:
        categories = sorted(values.dropna().astype("str").unique())
    codes = _category_codes(values, categories)
    n = len(values)
    counts = np.bincount(codes + 1, minlength=len(categories) + 1)
    return {
        "kind": "categorical",
        "n": n,
        "categories": categories,
        "shares": (counts[1:] / max(n, 1)).tolist(),
        "missing": float(counts[0] / max(n, 1)),
    }


def reference_profile(
    table: pd.DataFrame,
    columns: list[str],
    categorical: list[str],
    probabilities: np.ndarray | None = None,
    *,
    bins: int = 10,
    thresholds: tuple[float, float] = (0.10, 0.25),
) -> dict[str, object]:
    """Distribution summaries of the training data that drift is measured against.

    Stored with the model (``model.metadata["monitoring_reference"]``), so it holds only
    summaries, never rows: per numeric feature the decile bin edges and the share of rows
    in each bin, the missing rate, the percentiles 1–99 with the cumulative share at each
    (for the KS statistic) and a few quantiles; per categorical feature the share of each
    category and of missing values; the score distribution and the share per risk band.

    Parameters
    ----------
    table : the rows the model was evaluated on (one per account and cutoff).
    columns : the model's feature columns; ``categorical`` names those that are categories.
    probabilities : calibrated probabilities of the same rows, for prediction drift.
    bins : number of quantile bins for PSI (fewer where values repeat).
    thresholds : the (medium, high) risk-band thresholds the band shares use.

    Returns
    -------
    dict — JSON-serialisable: ``{"version", "n", "features": {name: {...}}, "score": {...}}``.

    Examples
    --------
    >>> frame = pd.DataFrame({"waits": [1.0, 2.0, 2.0, None], "plan": pd.Categorical(["a", "b", "a", "a"])})
    >>> ref = reference_profile(frame, ["waits", "plan"], ["plan"], bins=2)
    >>> ref["n"], ref["features"]["waits"]["missing"], ref["features"]["plan"]["shares"]
    (4, 0.25, [0.75, 0.25])
    """
    cat = set(categorical)
    features = {c: _categorical_profile(table[c]) if c in cat else _numeric_profile(table[c], bins) for c in columns}
    profile: dict[str, object] = {"version": REFERENCE_VERSION, "n": len(table), "bins": bins, "features": features}
    if probabilities is not None:
        p = np.asarray(probabilities, dtype=float)
        score = _numeric_profile(p, bins)
        medium, high = thresholds
        score["bands"] = {
            "thresholds": [medium, high],
            "shares": {"low": float(np.mean(p < medium)), "medium": float(np.mean((p >= medium) & (p < high))), "high": float(np.mean(p >= high))},
        }
        profile["score"] = score
    return to_json_safe(profile)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- drift statistics


def psi(reference: np.ndarray, current: np.ndarray, eps: float = 1e-4) -> float:
    """Population stability index Σ (c − r)·ln(c / r) over bins given as shares.

    Empty bins are floored at ``eps`` so that a bin seen on one side only counts, finitely.

    >>> round(psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])), 4)
    0.2747
    """
    r = np.maximum(np.asarray(reference, dtype=float), eps)
    c = np.maximum(np.asarray(current, dtype=float), eps)
    return float(np.sum((c - r) * np.log(c / r)))


def psi_noise(n_reference: int, n_current: int, n_bins: int, quantile: float = 0.999) -> float:
    """The ``quantile`` of PSI between two samples of the *same* distribution.

    PSI is the symmetric Kullback–Leibler divergence; for samples of n and m rows it is
    ≈ (1/n + 1/m)·χ²(bins − 1) under no change, so small samples need a higher bar.

    >>> round(psi_noise(1000, 1000, 11), 4)
    0.0592
    """
    if n_reference <= 0 or n_current <= 0:
        return float("inf")
    return float((1 / n_reference + 1 / n_current) * stats.chi2.ppf(quantile, max(n_bins - 1, 1)))


def ks_pvalue(statistic: float, n_reference: int, n_current: int) -> float:
    """Asymptotic two-sample KS p-value (Kolmogorov distribution at D·√(nm/(n+m)))."""
    if n_reference <= 0 or n_current <= 0:
        return float("nan")
    en = n_reference * n_current / (n_reference + n_current)
    return float(stats.kstwobign.sf(statistic * np.sqrt(en)))


def chi2_homogeneity(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Chi-square test that two count vectors come from one distribution: (statistic, p)."""
    table = np.vstack([reference_counts, current_counts]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


@dataclass
class _NumericComparison:
    current: np.ndarray  # shares in the reference's bins, missing last
    reference: np.ndarray
    ks: float
    shift: float
    finite: np.ndarray


def _numeric_current(profile: Mapping[str, Any], values: pd.Series | np.ndarray) -> _NumericComparison:
    """Compare values with a numeric profile in one pass over the data.

    * shares in the reference's bins, with missing values as a last bin (for PSI);
    * the KS statistic on the reference's percentile grid, missing values counting as a
      point below every value (exact where values repeat, within 1 % of the data otherwise);
    * the *shift*: the Wasserstein distance between the present values' distributions,
      ∫|F_ref − F_now| dx over the reference's 1st–99th percentile, in units of the
      reference's spread — how far values moved, where PSI measures how much mass moved
      (tripled waits move the few accounts with contacts a long way: a small PSI, a big shift).
    """
    v = _numeric_values(values)
    finite = v[~np.isnan(v)]
    m = len(v)
    grid = np.asarray(profile["grid"], dtype=float)
    edges = np.asarray(profile["edges"], dtype=float)
    ref = np.r_[np.asarray(profile["shares"], dtype=float), profile["missing"]]
    missing = (m - len(finite)) / m if m else 0.0
    below = _counts_at_or_below(grid, finite)
    at_edges = below[np.searchsorted(grid, edges)] if len(edges) else np.zeros(0, dtype=np.int64)
    cur = np.r_[np.diff(np.r_[0, at_edges, len(finite)]) / max(m, 1), missing]
    ref_cdf = np.asarray(profile["cdf"], dtype=float)
    cdf = (m - len(finite) + below) / max(m, 1)
    gaps = np.abs(np.r_[cdf - ref_cdf, missing - profile["missing"]])
    shift = float("nan")
    spread = profile.get("spread") or 0.0
    if len(grid) > 1 and len(finite) and spread > 0 and profile["missing"] < 1:
        ref_fin = (ref_cdf - profile["missing"]) / (1 - profile["missing"])
        cur_fin = below / len(finite)
        shift = float(np.sum(np.abs(ref_fin - cur_fin)[:-1] * np.diff(grid)) / spread)
    return _NumericComparison(cur, ref, float(gaps.max()), shift, finite)


def _drift_row(name: str, kind: str, ref: np.ndarray, cur: np.ndarray, n: int, m: int, config: MonitorConfig) -> dict[str, object]:
    """PSI with its sample-size-aware thresholds and the chi-square test on the same bins."""
    n_bins = int(((ref > 0) | (cur > 0)).sum())
    noise = psi_noise(n, m, n_bins, config.noise_quantile)
    chi2, chi2_p = chi2_homogeneity(np.round(ref * n), np.round(cur * m))
    return {
        "feature": name,
        "kind": kind,
        "statistic": "psi",
        "value": psi(ref, cur),
        "threshold": config.psi_alert + noise,
        "warn_threshold": config.psi_warn + noise,
        "psi_noise": noise,
        "shift": float("nan"),
        "ks_statistic": float("nan"),
        "ks_p_value": float("nan"),
        "chi2_statistic": chi2,
        "chi2_p_value": chi2_p,
        "p_value": chi2_p,
        "n_reference": n,
        "n_current": m,
        "missing_reference": float(ref[-1]),
        "missing_current": float(cur[-1]),
        "median_reference": None,
        "median_current": None,
        "importance": None,
    }


def _numeric_row(name: str, kind: str, profile: Mapping[str, Any], values: pd.Series | np.ndarray, config: MonitorConfig) -> dict[str, object]:
    """A drift row for numbers: PSI, chi-square on its bins, KS and the shift.

    KS is weak where most accounts share one value (no long waits at all) and the
    chi-square on bins is weak for smooth moves inside bins, so the row's p-value is the
    smaller of the two, doubled (Bonferroni within the feature)."""
    n, m = int(profile["n"]), len(values)
    comp = _numeric_current(profile, values)
    row = _drift_row(name, kind, comp.reference, comp.current, n, m, config)
    ks_p = ks_pvalue(comp.ks, n, m)
    row.update(
        shift=comp.shift,
        ks_statistic=comp.ks,
        ks_p_value=ks_p,
        p_value=min(1.0, 2 * min(ks_p, row["chi2_p_value"])),  # type: ignore[type-var]
        median_reference=profile["quantiles"].get("p50"),
        median_current=float(np.median(comp.finite)) if len(comp.finite) else None,
    )
    return row


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error control, no independence assumed).

    Equal to ``statsmodels.stats.multitest.multipletests(p, method="holm")[1]``, which also
    runs a full garbage collection on every call (0.1–1 s next to a large scoring run).

    >>> holm(np.array([0.01, 0.04, 0.03])).round(2).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    steps = (len(p) - np.arange(len(p))) * p[order]
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(steps), 1.0)
    return adjusted


def _judge(frame: pd.DataFrame, config: MonitorConfig) -> pd.DataFrame:
    """Holm-adjust the p-values across rows and set each row's status: a shift must be
    statistically clear (adjusted p < alpha) *and* large (PSI over its threshold, or values
    moved by more than ``shift_warn``/``shift_alert`` spreads)."""
    frame["p_adjusted"] = holm(frame["p_value"].astype(float).fillna(1.0).to_numpy())
    clear = (frame["p_adjusted"] < config.alpha).to_numpy()
    value = frame["value"].astype(float).to_numpy()
    shift = frame["shift"].astype(float).fillna(0.0).to_numpy()
    frame["status"] = np.select(
        [clear & ((value > frame["threshold"].to_numpy(dtype=float)) | (shift > config.shift_alert)),
         clear & ((value > frame["warn_threshold"].to_numpy(dtype=float)) | (shift > config.shift_warn))],
        ["alert", "warn"],
        default="ok",
    )  # fmt: skip
    return frame


DRIFT_COLUMNS = [
    "feature", "kind", "statistic", "value", "threshold", "warn_threshold", "status", "psi_noise", "shift",
    "ks_statistic", "ks_p_value", "chi2_statistic", "chi2_p_value", "p_value", "p_adjusted", "n_reference",
    "n_current", "missing_reference", "missing_current", "median_reference", "median_current", "importance",
]  # fmt: skip
PREDICTION_COLUMNS = [*DRIFT_COLUMNS, "reference_mean", "current_mean", "detail"]


def feature_drift(
    reference: Mapping[str, Any],
    current: pd.DataFrame,
    *,
    config: MonitorConfig = MonitorConfig(),
    importance: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Drift of every reference feature in ``current``, with a status each.

    Returns one row per feature: ``feature``, ``statistic`` ("psi"), ``value`` (the PSI),
    ``threshold`` (alert) and ``warn_threshold`` (floor + the 99.9 % PSI of pure noise for
    these sample sizes and bins), ``status``, the ``shift`` (numbers: Wasserstein distance
    in reference spreads), the KS and chi-square tests with the Holm-adjusted ``p_adjusted``,
    missing rates, medians and the model's gain share (``importance``). Largest PSI first.
    """
    rows = []
    for name, profile in reference["features"].items():
        if name not in current.columns:
            continue
        if profile["kind"] == "categorical":
            n, m = int(profile["n"]), len(current)
            codes = _category_codes(current[name], profile["categories"])
            counts = np.bincount(codes + 1, minlength=len(profile["categories"]) + 1)
            cur = np.r_[counts[1:], counts[0]] / max(m, 1)
            ref = np.r_[np.asarray(profile["shares"], dtype=float), profile["missing"]]
            row = _drift_row(name, "categorical", ref, cur, n, m, config)
        else:
            row = _numeric_row(name, "numeric", profile, current[name], config)
        row["importance"] = None if importance is None else float(importance.get(name, 0.0))
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[c for c in DRIFT_COLUMNS if c not in ("p_adjusted", "status")])
    return _judge(frame, config)[DRIFT_COLUMNS].sort_values("value", ascending=False, kind="stable").reset_index(drop=True)


def prediction_drift(
    reference: Mapping[str, Any],
    probabilities: np.ndarray,
    bands: np.ndarray | pd.Series,
    *,
    thresholds: tuple[float, float],
    config: MonitorConfig = MonitorConfig(),
) -> pd.DataFrame:
    """Drift of the score (as a numeric feature) and of the risk-band shares (PSI and
    chi-square over low/medium/high), with the mean probability on both sides.

    When the band thresholds differ from the reference's, the reference band shares are
    read off its percentile grid (within 1 point) — the ``detail`` column says so.
    """
    score = reference.get("score")
    if not score:
        return pd.DataFrame(columns=PREDICTION_COLUMNS)
    p = np.asarray(probabilities, dtype=float)
    n, m = int(score["n"]), len(p)
    row = _numeric_row("churn_probability", "score", score, p, config)
    row.update(reference_mean=score.get("mean"), current_mean=float(np.nanmean(p)) if m else None, detail="")
    labels = ("low", "medium", "high")
    note = ""
    if list(score["bands"]["thresholds"]) == list(thresholds):
        ref_bands = np.array([score["bands"]["shares"][b] for b in labels])
    else:
        grid, cdf = np.asarray(score["grid"]), np.asarray(score["cdf"])
        below = np.interp(thresholds, grid, cdf, left=0.0, right=1.0) if len(grid) else np.zeros(2)
        ref_bands = np.diff(np.r_[0.0, below, 1.0])
        note = f"reference band shares read off the score percentiles (trained bands {score['bands']['thresholds']}, now {list(thresholds)})"
    cur_bands = pd.Series(np.asarray(bands)).value_counts().reindex(labels, fill_value=0).to_numpy() / max(m, 1)
    band_row = _drift_row("risk_band", "bands", np.r_[ref_bands, 0.0], np.r_[cur_bands, 0.0], n, m, config)
    shares = ", ".join(f"{b} {100 * r:.1f} % → {100 * c:.1f} %" for b, r, c in zip(labels, ref_bands, cur_bands))
    band_row.update(reference_mean=None, current_mean=None, detail="; ".join(filter(None, [shares, note])))
    return _judge(pd.DataFrame([row, band_row]), config)[PREDICTION_COLUMNS]


# --------------------------------------------------------------------------- data quality

DQ_COLUMNS = ["check", "subject", "value", "expected", "threshold", "status", "detail"]


def _codes(values: pd.Series, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes (−1 for missing) of the ``rows`` (a boolean mask) of a text or
    categorical column, and the labels they index."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy()[rows].astype(np.int64), values.cat.categories.astype("str").to_numpy()
    codes, labels = pd.factorize(values[rows])
    return codes.astype(np.int64), np.asarray(labels, dtype=object).astype(str)


def _days_before(interactions: pd.DataFrame, as_of: pd.Timestamp) -> np.ndarray:
    """Whole days from each event to ``as_of``: 0 for [as_of − 1 day, as_of), 1 for the day
    before, …; −1 at or after as_of. Integer arithmetic on the stored timestamps."""
    t = interactions["occurred_at"]
    scale = pd.Timedelta(1, unit=t.dt.unit).value  # nanoseconds per stored unit (ns, us, ms, s)
    before = as_of.value // scale - t.array.asi8  # > 0 strictly before as_of
    return np.where(before > 0, (before - 1) // (pd.Timedelta(days=1).value // scale), -1)


def daily_event_counts(interactions: pd.DataFrame, *, as_of: pd.Timestamp, days: int) -> pd.DataFrame:
    """Events per day (rows, oldest first; days with none count 0) and event type (columns),
    for the ``days`` days before ``as_of``, plus an ``all events`` column."""
    before = _days_before(interactions, as_of)
    keep = (before >= 0) & (before < days)
    codes, labels = _codes(interactions["event_type"], keep)
    ok = codes >= 0
    day = days - 1 - before[keep][ok]  # 0 = oldest day
    counts = np.bincount(codes[ok] * days + day, minlength=len(labels) * days).reshape(len(labels), days)
    index = pd.date_range(end=as_of - pd.Timedelta(days=1), periods=days, freq="D", name="day")
    frame = pd.DataFrame(counts.T, index=index, columns=pd.Index(labels, name="event_type"))
    frame = frame.loc[:, frame.sum() > 0].sort_index(axis=1)
    frame["all events"] = frame.sum(axis=1)
    return frame


def event_volume(
    interactions: pd.DataFrame, *, as_of: pd.Timestamp, config: MonitorConfig = MonitorConfig(), counts: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Events per type in each trailing window (the last 2 and 7 days) against the weeks before.

    A window is flagged when its count is all of: far off (a drop of ``volume_drop_warn``/
    ``_alert`` or a rise of ``volume_rise_warn``); beyond noise (``z_threshold`` standard
    deviations, from the baseline's own day-to-day variance, at least Poisson); and
    *unprecedented* — below the lowest (above the highest) total of any stretch of as many
    days in the baseline. The last condition keeps calendar cycles quiet: a month whose last
    days bill nobody, or a weekend, happened in the baseline too. ``counts`` may hold
    :func:`daily_event_counts` of the window, if already computed.
    """
    recent = max(config.volume_windows_days)
    total = recent + config.volume_baseline_days
    if len(interactions) == 0:
        return pd.DataFrame(columns=DQ_COLUMNS)
    counts = daily_event_counts(interactions, as_of=as_of, days=total) if counts is None else counts
    first = interactions["occurred_at"].min()
    covered = int(np.clip(np.ceil((as_of - first) / pd.Timedelta(days=1)), 0, total))  # days with data in them
    baseline = counts.iloc[total - covered : total - recent]
    rows = []
    for k in sorted(config.volume_windows_days):
        observed = counts.iloc[total - k :].sum().to_numpy(dtype=float)
        if len(baseline) < max(7, k + 1):
            for name, obs in zip(counts.columns, observed):
                rows.append({"check": "volume", "subject": f"{name}, last {k} days", "value": obs, "expected": None, "threshold": None, "status": "ok", "detail": f"only {len(baseline)} days of history before the window: not judged"})
            continue
        mean = baseline.mean().to_numpy(dtype=float)
        var = baseline.var(ddof=1).to_numpy(dtype=float)
        stretches = baseline.rolling(k).sum().iloc[k - 1 :]
        lowest, highest = stretches.min().to_numpy(dtype=float), stretches.max().to_numpy(dtype=float)
        expected = k * mean
        spread = np.sqrt(k * np.maximum(var, mean))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = observed / expected
            z = (observed - expected) / spread
        drop = 1 - ratio
        low = (expected >= config.min_expected_events) & (z <= -config.z_threshold) & (observed < lowest)
        high = (expected >= config.min_expected_events) & (z >= config.z_threshold) & (observed > highest)
        status = np.select(
            [low & (drop >= config.volume_drop_alert), low & (drop >= config.volume_drop_warn), high & (ratio - 1 >= config.volume_rise_warn)],
            ["alert", "warn", "warn"],
            default="ok",
        )
        for i, name in enumerate(counts.columns):
            judged = expected[i] >= config.min_expected_events
            change = f"{100 * (ratio[i] - 1):+.0f} %, z = {z[i]:+.1f}; {k}-day totals before: {lowest[i]:,.0f}–{highest[i]:,.0f}" if judged else "too few events to judge"
            rows.append(
                {
                    "check": "volume",
                    "subject": f"{name}, last {k} days",
                    "value": observed[i],
                    "expected": expected[i],
                    "threshold": config.volume_drop_alert,
                    "status": status[i],
                    "detail": f"{observed[i]:,.0f} events vs {expected[i]:,.0f} expected from the {len(baseline)} days before ({change})",
                }
            )
    return pd.DataFrame(rows, columns=DQ_COLUMNS)


def interaction_missing(interactions: pd.DataFrame, *, as_of: pd.Timestamp, config: MonitorConfig = MonitorConfig()) -> pd.DataFrame:
    """Share of missing values per event type and optional column: the last days against
    the baseline weeks. Only pairs the baseline uses (a column some events of that type
    fill) are judged — a wait time is never expected on a login."""
    from churn.contract import OPTIONAL_INTERACTION_COLUMNS

    recent = max(config.volume_windows_days)
    total = recent + config.missing_baseline_days
    columns = [c for c in OPTIONAL_INTERACTION_COLUMNS if c in interactions.columns]
    if not columns or len(interactions) == 0:
        return pd.DataFrame(columns=DQ_COLUMNS)
    before = _days_before(interactions, as_of)
    rows = (before >= 0) & (before < total)
    codes, labels = _codes(interactions["event_type"], rows)
    ok = codes >= 0
    key = codes[ok] * 2 + (before[rows][ok] < recent)  # (event type, baseline | recent)
    size = np.bincount(key, minlength=2 * len(labels)).reshape(-1, 2).astype(float)
    nulls = np.stack(
        [np.bincount(key, weights=interactions[c].isna().to_numpy()[rows][ok], minlength=2 * len(labels)).reshape(-1, 2) for c in columns],
        axis=1,
    )  # event type × column × period
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = nulls / size[:, None, :]
    frame = pd.DataFrame(
        {
            "event_type": np.repeat(labels, len(columns)),
            "column": np.tile(columns, len(labels)),
            "baseline": shares[:, :, 0].ravel(),
            "recent": shares[:, :, 1].ravel(),
            "n_baseline": np.repeat(size[:, 0], len(columns)),
            "n_recent": np.repeat(size[:, 1], len(columns)),
        }
    )
    frame = frame[(frame["baseline"] < 1) & frame["recent"].notna()].reset_index(drop=True)
    status = _missing_rise_status(frame["recent"], frame["n_recent"], frame["baseline"], frame["n_baseline"], config)
    return pd.DataFrame(
        {
            "check": "missing",
            "subject": frame["event_type"] + " · " + frame["column"],
            "value": frame["recent"].to_numpy(),
            "expected": frame["baseline"].to_numpy(),
            "threshold": config.missing_rise_alert,
            "status": status,
            "detail": [
                f"missing in {100 * r:.1f} % of the last {recent} days' events vs {100 * b:.1f} % before"
                for r, b in zip(frame["recent"], frame["baseline"])
            ],
        },
        columns=DQ_COLUMNS,
    )


def _missing_rise_status(recent: pd.Series, n_recent: pd.Series, baseline: pd.Series, n_baseline: pd.Series, config: MonitorConfig) -> np.ndarray:
    """ok/warn/alert per row: a missing-value rate that rose by a set amount *and* clearly
    (two-proportion z-test against the pooled rate), so small samples do not cry wolf."""
    pooled = (recent * n_recent + baseline * n_baseline) / (n_recent + n_baseline)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_recent + 1 / n_baseline))
    rise = recent - baseline
    z = (rise / se.where(se > 0)).fillna(0.0)
    clear = z >= config.z_threshold
    return np.select([(rise >= config.missing_rise_alert) & clear, (rise >= config.missing_rise_warn) & clear], ["alert", "warn"], default="ok")


def feature_missing(drift: pd.DataFrame, config: MonitorConfig = MonitorConfig()) -> pd.DataFrame:
    """Missing-value rate of each model feature now against the training reference."""
    if drift.empty:
        return pd.DataFrame(columns=DQ_COLUMNS)
    r, c = drift["missing_reference"].astype(float), drift["missing_current"].astype(float)
    status = _missing_rise_status(c, drift["n_current"].astype(float), r, drift["n_reference"].astype(float), config)
    return pd.DataFrame(
        {
            "check": "missing",
            "subject": "feature " + drift["feature"],
            "value": c.to_numpy(),
            "expected": r.to_numpy(),
            "threshold": config.missing_rise_alert,
            "status": status,
            "detail": [f"missing for {100 * a:.1f} % of accounts vs {100 * b:.1f} % in training" for a, b in zip(c, r)],
        },
        columns=DQ_COLUMNS,
    )


def new_categories(
    values: Mapping[str, pd.Series],
    known: Mapping[str, Sequence[str]],
    config: MonitorConfig = MonitorConfig(),
) -> pd.DataFrame:
    """Share of values the model has never seen, per column (``values`` and ``known`` by
    column name): the model treats them as missing."""
    rows = []
    for column, series in values.items():
        if column not in known or len(series) == 0:
            continue
        present = series.notna().to_numpy()
        codes = _category_codes(series, list(known[column]))
        unseen = present & (codes < 0)
        share = float(unseen.sum() / len(series))
        examples = pd.Series(series[unseen]).astype("str").value_counts().head(3)
        rows.append(
            {
                "check": "new_category",
                "subject": column,
                "value": share,
                "expected": 0.0,
                "threshold": config.new_category_alert,
                "status": "alert" if share >= config.new_category_alert else "warn" if share >= config.new_category_warn else "ok",
                "detail": (f"{unseen.sum():,} rows ({100 * share:.1f} %) with values the model never saw: " + ", ".join(f"{k} ({v:,})" for k, v in examples.items()))
                if unseen.any()
                else "no unseen values",
            }
        )
    return pd.DataFrame(rows, columns=DQ_COLUMNS)


def rejected_rows(reports: Iterable["TableReport"], config: MonitorConfig = MonitorConfig()) -> pd.DataFrame:
    """Share of rows the data contract rejected, per table, with the main reasons."""
    rows = []
    for rep in reports:
        if rep.rows_read == 0:
            continue
        share = rep.rejected_total / rep.rows_read
        reasons = ", ".join(f"{reason} ({count:,})" for reason, count in sorted(rep.rejected.items(), key=lambda kv: -kv[1])[:3])
        rows.append(
            {
                "check": "rejected_rows",
                "subject": rep.table,
                "value": share,
                "expected": 0.0,
                "threshold": config.rejected_alert,
                "status": "alert" if share >= config.rejected_alert else "warn" if share >= config.rejected_warn else "ok",
                "detail": f"{rep.rejected_total:,} of {rep.rows_read:,} rows rejected" + (f": {reasons}" if reasons else ""),
            }
        )
    return pd.DataFrame(rows, columns=DQ_COLUMNS)


def freshness(interactions: pd.DataFrame, *, as_of: pd.Timestamp, config: MonitorConfig = MonitorConfig()) -> pd.DataFrame:
    """Days between the latest event before ``as_of`` and ``as_of``."""
    before = interactions["occurred_at"][interactions["occurred_at"] < as_of]
    if len(before) == 0:
        return pd.DataFrame(
            [{"check": "freshness", "subject": "interactions", "value": None, "expected": None, "threshold": config.freshness_alert_days, "status": "alert", "detail": "no event before as_of in the scoring window"}],
            columns=DQ_COLUMNS,
        )
    latest = before.max()
    days = (as_of - latest) / pd.Timedelta(days=1)
    status = "alert" if days > config.freshness_alert_days else "warn" if days > config.freshness_warn_days else "ok"
    return pd.DataFrame(
        [{"check": "freshness", "subject": "interactions", "value": days, "expected": None, "threshold": config.freshness_alert_days, "status": status, "detail": f"latest event {latest:%Y-%m-%d %H:%M} UTC, {days:.1f} days before as_of"}],
        columns=DQ_COLUMNS,
    )


def data_quality(
    *,
    as_of: pd.Timestamp,
    interactions: pd.DataFrame | None = None,
    accounts: pd.DataFrame | None = None,
    reports: Iterable["TableReport"] = (),
    known: Mapping[str, Sequence[str]] | None = None,
    drift: pd.DataFrame | None = None,
    volume: pd.DataFrame | None = None,
    config: MonitorConfig = MonitorConfig(),
) -> pd.DataFrame:
    """Every data-quality check that its inputs allow, one row per check and subject.

    ``interactions``: the events of the scoring window (volume, missing values, new event
    types/channels, freshness); ``accounts``: the scored accounts' rows (new attribute
    values); ``reports``: the data contract's reports (rejected rows); ``known``: the values
    the model knows per column; ``drift``: :func:`feature_drift`'s table (feature missing
    rates); ``volume``: :func:`daily_event_counts` of the volume window, if already computed.
    """
    known = known or {}
    parts = [rejected_rows(reports, config)]
    if interactions is not None and len(interactions):
        parts += [event_volume(interactions, as_of=as_of, config=config, counts=volume), interaction_missing(interactions, as_of=as_of, config=config), freshness(interactions, as_of=as_of, config=config)]
        before = _days_before(interactions, as_of)
        recent = (before >= 0) & (before < max(config.volume_windows_days))
        parts.append(new_categories({c: interactions[c][recent] for c in ("event_type", "channel") if c in interactions.columns}, known, config))
    if accounts is not None:
        parts.append(new_categories({c: accounts[c] for c in accounts.columns if c in known}, known, config))
    if drift is not None:
        parts.append(feature_missing(drift, config))
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True)[DQ_COLUMNS] if parts else pd.DataFrame(columns=DQ_COLUMNS)


# --------------------------------------------------------------------------- realized performance


def wilson(count: np.ndarray | int, nobs: np.ndarray | int, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion (vectorised; NaN where nobs is 0)."""
    from statsmodels.stats.proportion import proportion_confint

    count, nobs = np.asarray(count, dtype=float), np.asarray(nobs, dtype=float)
    safe = np.where(nobs > 0, nobs, 1.0)
    low, high = proportion_confint(count, safe, alpha=1 - confidence, method="wilson")
    return np.where(nobs > 0, low, np.nan), np.where(nobs > 0, high, np.nan)


def auc_interval(auc: float, positives: int, negatives: int, confidence: float = 0.95) -> tuple[float, float]:
    """Hanley–McNeil (1982) interval of a ROC-AUC from its value and the class counts."""
    if not np.isfinite(auc) or positives == 0 or negatives == 0:
        return float("nan"), float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)) / (positives * negatives)
    half = stats.norm.ppf(0.5 + confidence / 2) * np.sqrt(max(var, 0.0))
    return float(max(auc - half, 0.0)), float(min(auc + half, 1.0))


def ap_interval(ap: float, positives: int, confidence: float = 0.95) -> tuple[float, float]:
    """Logit interval of average precision (PR-AUC): logit(AP) ± z / √(n₊·AP·(1 − AP))
    (Boyd, Eng & Page 2013) — stays inside (0, 1) and widens with few churners."""
    if not np.isfinite(ap) or positives == 0 or not 0 < ap < 1:
        return float("nan"), float("nan")
    eta = np.log(ap / (1 - ap))
    half = stats.norm.ppf(0.5 + confidence / 2) / np.sqrt(positives * ap * (1 - ap))
    return float(1 / (1 + np.exp(-(eta - half)))), float(1 / (1 + np.exp(-(eta + half))))


def expected_roc_auc(p: np.ndarray) -> float:
    """The ROC-AUC these accounts would show if their calibrated probabilities were true
    (confidence-based performance estimation): every pair of a churner i and a stayer j
    counts with weight p_i·(1 − p_j), a win when p_i > p_j and half a win on a tie.

    It is the fair yardstick for a list's realized ROC-AUC: leaving out the accounts that were
    called removes most of the easy churners, so the AUC of the rest is lower than the
    training AUC even for a model that works exactly as trained."""
    p = np.sort(np.asarray(p, dtype=float))
    if len(p) < 2:
        return float("nan")
    stay = 1.0 - p
    # stayer weight strictly below each value, and on the value itself (ties)
    values, first, counts = np.unique(p, return_index=True, return_counts=True)
    below = np.concatenate([[0.0], np.cumsum(stay)])[first]
    tied = stay[first] * counts  # every account of a value has the same p
    weight_below = np.repeat(below, counts)
    weight_tied = np.repeat(tied, counts) - stay  # the same value, other accounts
    wins = float(np.sum(p * (weight_below + 0.5 * weight_tied)))
    pairs = float(np.sum(p * (stay.sum() - stay)))
    return wins / pairs if pairs > 0 else float("nan")


def realized_performance(
    risk: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    training: Mapping[str, float] | None = None,
    config: MonitorConfig = MonitorConfig(),
) -> dict[str, object]:
    """How one past list actually did, once its horizon has passed.

    Accounts that were **called** are left out: outreach changes their outcome, so they say
    nothing about the model. The control group — a random share of the flagged accounts,
    never contacted — stands in for them, and its churn rate *is* the list's precision at
    capacity (with no control group, all flagged accounts are used, a lower bound when the
    calls work). ROC-AUC and PR-AUC are over the accounts not called, with Hanley–McNeil
    and logit intervals; the churn rates have Wilson intervals.

    Parameters
    ----------
    risk : the run's risk list (``account_id``, ``churn_probability``, ``risk_band``,
        ``outreach``, ``control``).
    labels : ``account_id`` and ``churned`` (0/1) over the run's horizon.
    training : the model's test-slice metrics (``roc_auc``, ``pr_auc``, ...) to compare with.

    Returns
    -------
    dict — metrics with ``*_low``/``*_high``, per-band calibration, ``status`` and ``detail``.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    merged = risk[["account_id", "churn_probability", "risk_band", "outreach", "control"]].merge(labels[["account_id", "churned"]], on="account_id", how="inner")
    judged = merged[~merged["outreach"].to_numpy(dtype=bool)]
    y = judged["churned"].to_numpy(dtype=int)
    p = judged["churn_probability"].to_numpy(dtype=float)
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    both = pos > 0 and neg > 0
    roc = float(roc_auc_score(y, p)) if both else float("nan")
    ap = float(average_precision_score(y, p)) if both else float("nan")
    control = merged[merged["control"].to_numpy(dtype=bool)]
    basis = control if len(control) else merged[(merged["outreach"] | merged["control"]).to_numpy(dtype=bool)]
    basis_note = f"control group ({len(control):,} accounts never contacted)" if len(control) else f"all {len(basis):,} flagged accounts, contacted ones included (no control group): a lower bound if the calls work"
    hits = int(basis["churned"].sum())
    prec_low, prec_high = wilson(hits, len(basis), config.confidence)
    actual_low, actual_high = wilson(pos, len(y), config.confidence)
    by_band = judged.groupby("risk_band", observed=True).agg(accounts=("churned", "size"), churned=("churned", "sum"), expected=("churn_probability", "mean"))
    by_band = by_band.reindex([b for b in ("high", "medium", "low") if b in by_band.index])
    band_low, band_high = wilson(by_band["churned"].to_numpy(), by_band["accounts"].to_numpy(), config.confidence)
    bands = pd.DataFrame(
        {
            "band": by_band.index,
            "accounts": by_band["accounts"].to_numpy(),
            "churned": by_band["churned"].to_numpy(),
            "expected": by_band["expected"].to_numpy(),
            "actual": (by_band["churned"] / by_band["accounts"]).to_numpy(),
            "actual_low": band_low,
            "actual_high": band_high,
        }
    )
    out: dict[str, object] = {
        "accounts": int(len(merged)),
        "evaluated": int(len(judged)),
        "excluded_outreach": int(len(merged) - len(judged)),
        "churners": pos,
        "roc_auc": roc,
        "pr_auc": ap,
        "precision_at_capacity": hits / len(basis) if len(basis) else float("nan"),
        "precision_low": float(prec_low),
        "precision_high": float(prec_high),
        "precision_basis": basis_note,
        "flagged_expected": float(basis["churn_probability"].mean()) if len(basis) else float("nan"),
        "expected_rate": float(p.mean()) if len(p) else float("nan"),
        "actual_rate": pos / len(y) if len(y) else float("nan"),
        "actual_low": float(actual_low),
        "actual_high": float(actual_high),
        "brier": float(np.mean((p - y) ** 2)) if len(y) else float("nan"),
        "bands": _records(bands),
        "training": dict(training or {}),
    }
    out["expected_roc_auc"] = expected_roc_auc(p)
    out["roc_auc_low"], out["roc_auc_high"] = auc_interval(roc, pos, neg, config.confidence)
    out["pr_auc_low"], out["pr_auc_high"] = ap_interval(ap, pos, config.confidence)
    out["status"], out["detail"] = _performance_status(out, config)
    return out


def _performance_status(perf: Mapping[str, Any], config: MonitorConfig) -> tuple[str, str]:
    notes, status = [], "ok"
    # The yardstick: the training ROC-AUC, or — lower when the called accounts were left out —
    # what the model's own probabilities promise for exactly these accounts.
    trained = (perf.get("training") or {}).get("roc_auc")
    promised = perf.get("expected_roc_auc")
    candidates = [(float(v), name) for v, name in ((trained, "the training"), (promised, "the expected")) if v is not None and np.isfinite(v)]
    high = perf.get("roc_auc_high")
    if candidates and high is not None and np.isfinite(high):
        bar, name = min(candidates)
        if high < bar - config.auc_drop_alert:
            status = "alert"
            notes.append(f"ROC-AUC {perf['roc_auc']:.3f} (95 % CI {perf['roc_auc_low']:.3f}–{high:.3f}) is clearly below {name} {bar:.3f}")
        elif high < bar:
            status = "warn"
            notes.append(f"ROC-AUC {perf['roc_auc']:.3f} (95 % CI {perf['roc_auc_low']:.3f}–{high:.3f}) is below {name} {bar:.3f}")
    expected, actual = perf.get("expected_rate"), perf.get("actual_rate")
    low, up = perf.get("actual_low"), perf.get("actual_high")
    if expected and actual is not None and np.isfinite(expected) and np.isfinite(low):
        ratio = actual / expected
        outside = not low <= expected <= up
        if outside and not 1 / config.calibration_ratio <= ratio <= config.calibration_ratio:
            status = worst([status, "warn"])
            notes.append(f"actual churn {100 * actual:.1f} % (95 % CI {100 * low:.1f}–{100 * up:.1f}) vs {100 * expected:.1f} % predicted: recalibrate")
    return status, "; ".join(notes) or "in line with training"


def expected_churn(risk: pd.DataFrame) -> dict[str, object]:
    """The label-free estimate of a list: expected churn among the flagged accounts (and
    all accounts) from the calibrated probabilities."""
    flagged = (risk["outreach"] | risk["control"]).to_numpy(dtype=bool)
    p = risk["churn_probability"].to_numpy(dtype=float)
    return {
        "flagged": int(flagged.sum()),
        "expected_flagged_rate": float(p[flagged].mean()) if flagged.any() else float("nan"),
        "expected_flagged_churners": float(p[flagged].sum()),
        "expected_rate": float(p.mean()) if len(p) else float("nan"),
    }


# --------------------------------------------------------------------------- account alerts

ALERT_COLUMNS = [
    "account_id", "rank", "churn_probability", "previous_probability", "probability_change", "risk_band",
    "previous_band", "alert", "outreach", "control", "reasons", "new_reasons", "dropped_reasons",
]  # fmt: skip


def _reasons_long(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (account, reason position): feature name and sentence."""
    names = frame["reason_features"].fillna("").str.split(",")
    long = names.explode().rename("feature").to_frame()
    long["position"] = long.groupby(level=0).cumcount()
    long["account_id"] = frame["account_id"].reindex(long.index).to_numpy()
    texts = frame[["reason_1", "reason_2", "reason_3"]].reindex(long.index).to_numpy()
    long["text"] = texts[np.arange(len(long)), np.minimum(long["position"].to_numpy(), 2)]
    return long[long["feature"].fillna("") != ""].reset_index(drop=True)


def _reason_diff(long_a: pd.DataFrame, long_b: pd.DataFrame) -> pd.Series:
    """Per account: the sentences of reasons in ``a`` whose feature is not among ``b``'s."""
    merged = long_a.merge(long_b[["account_id", "feature"]], on=["account_id", "feature"], how="left", indicator=True)
    only = merged[merged["_merge"] == "left_only"]
    return only.groupby("account_id", sort=False)["text"].agg("; ".join)


def risk_alerts(current: pd.DataFrame, previous: pd.DataFrame | None, *, config: MonitorConfig = MonitorConfig()) -> pd.DataFrame:
    """Accounts whose risk jumped since the previous run, with the reasons that changed.

    An account alerts when its band rose to ``high`` (from low or medium) or its probability
    rose by more than ``config.jump_points``. ``new_reasons`` are today's reasons that were
    not among last run's; ``dropped_reasons`` the other way round. Sorted by rank.
    """
    if previous is None or previous.empty:
        return pd.DataFrame(columns=ALERT_COLUMNS)
    prev = previous[["account_id", "churn_probability", "risk_band"]].rename(columns={"churn_probability": "previous_probability", "risk_band": "previous_band"})
    keep = ["account_id", "rank", "churn_probability", "risk_band", "outreach", "control", "reason_1", "reason_2", "reason_3", "reason_features"]
    merged = current[keep].merge(prev, on="account_id", how="inner")
    change = merged["churn_probability"] - merged["previous_probability"]
    band_up = (merged["risk_band"] == "high") & merged["previous_band"].isin(["low", "medium"])
    jump = change > config.jump_points
    hit = (band_up | jump).to_numpy()
    alerts = merged[hit].copy()
    alerts["probability_change"] = change[hit]
    band_text = np.where(band_up[hit], "band " + alerts["previous_band"] + " → high", "")
    points = (100 * alerts["probability_change"]).round().astype(int).astype("str")
    jump_text = np.where(jump[hit], "risk +" + points + " points", "")
    alerts["alert"] = pd.Series(band_text, index=alerts.index).str.cat(pd.Series(jump_text, index=alerts.index), sep="; ").str.strip("; ")
    now = _reasons_long(alerts)
    before = _reasons_long(previous[previous["account_id"].isin(alerts["account_id"])])
    alerts["reasons"] = alerts["account_id"].map(now.groupby("account_id", sort=False)["text"].agg("; ".join)).fillna("")
    alerts["new_reasons"] = alerts["account_id"].map(_reason_diff(now, before)).fillna("")
    alerts["dropped_reasons"] = alerts["account_id"].map(_reason_diff(before, now)).fillna("")
    return alerts.sort_values("rank")[ALERT_COLUMNS].reset_index(drop=True)


# --------------------------------------------------------------------------- verdict


def verdict(
    *,
    features: pd.DataFrame,
    prediction: pd.DataFrame,
    data_quality: pd.DataFrame,
    performance: Sequence[Mapping[str, Any]],
    config: MonitorConfig = MonitorConfig(),
) -> dict[str, object]:
    """``ok`` / ``warn`` / ``alert``, ``retrain_recommended`` and the reasons for both.

    * alert: a data-quality alert, a prediction-drift alert, drift alerts on features that
      together carry ≥ ``important_gain_share`` of the model's gain, or realized performance
      of the latest matured list clearly below training;
    * warn: any other warning or alert;
    * retrain: prediction drift, drift of important features or a performance alert — but
      never while the data itself is broken (fix the feed first: the drift may be its echo).
    """
    reasons: list[str] = []
    retrain: list[str] = []
    levels: list[str] = []
    dq_alert = data_quality[data_quality["status"] == "alert"] if len(data_quality) else data_quality
    for row in dq_alert.itertuples(index=False):
        reasons.append(f"data quality ({row.check}) {row.subject}: {row.detail}")
    levels.append("alert" if len(dq_alert) else "ok")
    dq_warn = data_quality[data_quality["status"] == "warn"] if len(data_quality) else data_quality
    if len(dq_warn):
        levels.append("warn")
        reasons.append(f"data quality: {len(dq_warn)} warning(s) — " + "; ".join(f"{r.subject}: {r.detail}" for r in dq_warn.head(3).itertuples(index=False)))

    drifting = features[features["status"] == "alert"] if len(features) else features
    flagged = features[features["status"] != "ok"] if len(features) else features
    share = drifting["importance"].astype(float) if len(drifting) else pd.Series(dtype=float)
    relied_on = len(drifting) > 0 and (share.isna().any() or share.sum() >= config.important_gain_share)  # unknown importance counts
    names = ", ".join(f"{r.feature} ({r.status}, PSI {r.value:.2f})" for r in flagged.head(6).itertuples(index=False)) + (" …" if len(flagged) > 6 else "")
    if relied_on:
        levels.append("alert")
        weight = "" if share.isna().any() else f", {100 * share.sum():.0f} % of the model's gain"
        reasons.append(f"drift in {len(flagged)} feature(s){weight}: {names}")
        retrain.append(f"features the model relies on have shifted: {names}")
    elif len(flagged):
        levels.append("warn")
        why = f"features carrying {100 * share.sum():.1f} % of the model's gain" if len(drifting) else "warning level"
        reasons.append(f"drift in {len(flagged)} feature(s) ({why}): {names}")

    for row in prediction.itertuples(index=False) if len(prediction) else []:
        if row.status != "ok":
            levels.append(row.status)
            text = f"prediction drift ({row.feature}): PSI {row.value:.2f} over the threshold {row.warn_threshold if row.status == 'warn' else row.threshold:.2f}"
            reasons.append(text + (f" — {row.detail}" if row.detail else ""))
            if row.status == "alert":
                retrain.append(text)

    if performance:
        latest = performance[-1]
        if latest["status"] != "ok":
            levels.append(latest["status"])
            reasons.append(f"realized performance of the list as of {latest['as_of']}: {latest['detail']}")
            if latest["status"] == "alert":
                retrain.append(latest["detail"])
    level = worst(levels)
    if retrain and len(dq_alert):
        retrain = []
        reasons.append("retraining not recommended until the data-quality alerts are fixed: drift may be their echo")
    return {"verdict": level, "retrain_recommended": bool(retrain), "reasons": reasons or ["all checks within their thresholds"], "retrain_reasons": retrain}


# --------------------------------------------------------------------------- document


def monitoring_document(
    *,
    record: Mapping[str, Any],
    features: pd.DataFrame,
    prediction: pd.DataFrame,
    data_quality: pd.DataFrame,
    performance: Sequence[Mapping[str, Any]],
    expected: Sequence[Mapping[str, Any]],
    alerts: pd.DataFrame,
    notes: Sequence[str] = (),
    reference: Mapping[str, Any] | None = None,
    volume: pd.DataFrame | None = None,
    config: MonitorConfig = MonitorConfig(),
) -> dict[str, object]:
    """The ``monitoring.json`` document of one run (JSON-safe)."""
    decision = verdict(features=features, prediction=prediction, data_quality=data_quality, performance=performance, config=config)
    doc = {
        "run_id": record.get("run_id"),
        "as_of": record.get("as_of"),
        "model": record.get("model"),
        **decision,
        "summary": {
            "features_checked": int(len(features)),
            "features_warn": int((features["status"] == "warn").sum()) if len(features) else 0,
            "features_alert": int((features["status"] == "alert").sum()) if len(features) else 0,
            "data_quality_warn": int((data_quality["status"] == "warn").sum()) if len(data_quality) else 0,
            "data_quality_alert": int((data_quality["status"] == "alert").sum()) if len(data_quality) else 0,
            "account_alerts": int(len(alerts)),
            "matured_runs": len(performance),
        },
        "notes": list(notes),
        "reference": dict(reference or {}),
        "features": _records(features),
        "prediction": _records(prediction),
        "data_quality": _records(data_quality),
        "performance": list(performance),
        "expected": list(expected),
        "alerts": _records(alerts.head(config.alerts_in_document)),
        "volume_daily": None if volume is None or volume.empty else {"days": [f"{d:%Y-%m-%d}" for d in volume.index], "counts": {str(c): volume[c].tolist() for c in volume.columns}},
        "thresholds": asdict(config),
    }
    return to_json_safe(doc)  # type: ignore[no-any-return]


def monitoring_metrics(doc: Mapping[str, Any]) -> dict[str, float]:
    """Flat numeric metrics of a monitoring document, for MLflow."""
    summary = doc["summary"]
    metrics = {
        "verdict_level": float(STATUS_LEVEL[doc["verdict"]]),
        "retrain_recommended": float(doc["retrain_recommended"]),
        **{k: float(v) for k, v in summary.items()},
    }
    for row in doc["features"]:
        if row["value"] is not None:
            metrics[f"psi.{row['feature']}"] = float(row["value"])
    for row in doc["prediction"]:
        if row["value"] is not None:
            metrics[f"prediction_psi.{row['feature']}"] = float(row["value"])
    if doc["performance"]:
        latest = doc["performance"][-1]
        for key in ("roc_auc", "pr_auc", "precision_at_capacity", "actual_rate", "expected_rate"):
            if latest.get(key) is not None:
                metrics[f"realized.{key}"] = float(latest[key])
    if doc["expected"]:
        value = doc["expected"][-1].get("expected_flagged_rate")
        if value is not None:
            metrics["expected_flagged_rate"] = float(value)
    return metrics


# --------------------------------------------------------------------------- history


def drift_onset(history: pd.DataFrame) -> pd.DataFrame:
    """When drift began, per feature: the first run of the latest unbroken streak of
    warn/alert statuses that reaches the latest run (features drifting now only).

    ``history`` has ``as_of``, ``feature`` and ``status`` (one row per run and feature), as
    :func:`read_monitoring_history` returns.
    """
    frame = history.sort_values(["feature", "as_of"]).reset_index(drop=True)
    latest = frame["as_of"].max()
    off = frame["status"].eq("ok")
    streak = off.groupby(frame["feature"]).cumsum()  # a new streak starts after each ok
    frame["streak"] = streak
    last = frame.groupby("feature")["streak"].transform("last")
    drifting = frame[~off & frame["streak"].eq(last)]
    onset = drifting.groupby("feature").agg(since=("as_of", "min"), until=("as_of", "max"), runs=("as_of", "size"), worst_psi=("value", "max"))
    onset = onset[onset["until"] == latest]
    return onset.sort_values(["since", "worst_psi"], ascending=[True, False]).reset_index()


# --------------------------------------------------------------------------- run (I/O)

HISTORY_SUFFIX = ".monitoring.json"


@dataclass
class Monitoring:
    document: dict[str, Any]
    alerts: pd.DataFrame
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return str(self.document["verdict"])


def fails(verdict_level: str, fail_on: str | None) -> bool:
    """True when ``--fail-on`` asks for a non-zero exit at this verdict."""
    return fail_on is not None and STATUS_LEVEL[verdict_level] >= STATUS_LEVEL[fail_on]


def read_monitoring(folder: Path) -> dict[str, Any] | None:
    """The monitoring.json of a run folder — or of a scoring folder's latest run (the
    top-level name links to it) — or None before monitoring first ran there."""
    path = Path(folder) / MONITORING_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def read_monitoring_history(out_dir: Path) -> pd.DataFrame:
    """Feature drift of every monitored run: ``as_of``, ``run_id``, ``verdict``,
    ``feature``, ``value`` (PSI), ``threshold``, ``status`` — one row per run and feature."""
    from churn import runs

    frames = []
    for run_id in runs.list_runs(out_dir)["run_id"] if runs.latest_run(out_dir) else []:
        doc = read_monitoring(runs.run_dir(out_dir, str(run_id)))
        if doc is None:
            continue
        rows = pd.DataFrame(doc["features"] + doc["prediction"], columns=["feature", "value", "threshold", "status"])
        frames.append(rows.assign(as_of=pd.Timestamp(doc["as_of"], tz="UTC"), run_id=doc["run_id"], verdict=doc["verdict"]))
    columns = ["as_of", "run_id", "verdict", "feature", "value", "threshold", "status"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns].sort_values(["as_of", "feature"]).reset_index(drop=True)


def came_from_mlflow(model_label: str) -> bool:
    """Whether :func:`churn.tracking.load_model` loaded the model from MLflow (its label then
    names the ``models:/`` or ``runs:/`` URI; a bundle's label is its path)."""
    return model_label.startswith(("models:/", "runs:/")) or "(models:/" in model_label


def past_performance(
    out_dir: Path,
    *,
    accounts: pd.DataFrame,
    interactions: pd.DataFrame,
    data_end: pd.Timestamp,
    training: Mapping[str, float] | None,
    config: MonitorConfig = MonitorConfig(),
    history: pd.DataFrame | None = None,
    earlier: Mapping[str, Any] | None = None,
    current: tuple[Mapping[str, Any], pd.DataFrame] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Realized performance of the latest matured runs and the expected-vs-realized churn
    of every recent run (matured or not), each judged by its own stored churn definition.

    ``earlier`` is an earlier monitoring document: a run it already judged after maturity
    (outcomes are final then) or listed as pending is taken from it instead of reloading
    its list, so a weekly run loads only the lists that matured since. ``current`` is the
    (run record, risk list) being scored, already in memory and not yet published (it
    replaces a published run of the same date). Returns (performance, expected), oldest run
    first.
    """
    from churn.labels import label_accounts
    from churn.score import load_run, read_history
    from churn.workflow import definition_from_dict  # workflow imports this module

    history = read_history(out_dir) if history is None else history
    if current is not None:
        record = current[0]
        as_of = pd.Timestamp(str(record["as_of"]), tz="UTC")
        row = pd.DataFrame([{"run_id": str(record["run_id"]), "as_of": as_of, "scored_at": record.get("scored_at"), "model": record.get("model"), "churn": record.get("churn")}])
        kept = history[history["as_of"] != as_of] if len(history) else history
        history = pd.concat([kept, row], ignore_index=True) if len(kept) else row
    if history.empty or "churn" not in history:
        return [], []
    history = history[history["churn"].map(lambda raw: isinstance(raw, Mapping))]
    history = history.sort_values(["as_of", "scored_at"]).drop_duplicates("as_of", keep="last")
    ends = history["as_of"] + pd.to_timedelta(history["churn"].map(lambda raw: int(raw["horizon_days"])), unit="D")
    matured = history[ends <= data_end].tail(config.max_matured_runs)
    pending = history[ends > data_end]
    judged = {p["run_id"]: p for p in (earlier or {}).get("performance", [])}
    listed = {e["run_id"]: e for e in (earlier or {}).get("expected", [])}
    performance, expected = [], []
    for run in pd.concat([matured, pending]).sort_values("as_of").itertuples(index=False):
        done = run.run_id in set(matured["run_id"])
        if done and run.run_id in judged and listed.get(run.run_id, {}).get("matured"):
            performance.append(judged[run.run_id])
            expected.append(listed[run.run_id])
            continue
        if not done and run.run_id in listed:
            expected.append(listed[run.run_id])
            continue
        risk = current[1] if current is not None and str(current[0]["run_id"]) == run.run_id else load_run(out_dir, run.run_id)
        definition = definition_from_dict(run.churn)
        row: dict[str, Any] = {"run_id": run.run_id, "as_of": f"{run.as_of:%Y-%m-%d}", "model": run.model, "horizon_days": definition.horizon_days, "matures_on": f"{run.as_of + definition.horizon:%Y-%m-%d}"}
        row.update(expected_churn(risk))
        if done:
            labels = label_accounts(accounts, interactions, as_of=run.as_of, definition=definition)
            perf = realized_performance(risk, labels, training=training, config=config)
            performance.append(to_json_safe({**{k: row[k] for k in ("run_id", "as_of", "model", "horizon_days")}, **perf}))
            row.update(matured=True, realized_flagged_rate=perf["precision_at_capacity"], realized_low=perf["precision_low"], realized_high=perf["precision_high"])
        else:
            row.update(matured=False, realized_flagged_rate=None, realized_low=None, realized_high=None)
        expected.append(to_json_safe(row))
    return performance, expected


def write_monitoring(folder: Path, doc: Mapping[str, Any], alerts: pd.DataFrame) -> dict[str, Path]:
    """monitoring.json and alerts.csv in a run's folder."""
    from churn.io import write_table, write_text

    return {
        "monitoring": write_text(Path(folder) / MONITORING_FILE, json.dumps(doc, indent=1)),
        "alerts": write_table(alerts, Path(folder) / ALERTS_FILE, "csv"),
    }


def log_monitoring(doc: Mapping[str, Any]) -> dict[str, object]:
    """Log a document's metrics (and the document) to the ``churn-monitoring`` MLflow
    experiment. Best effort: any failure is returned as a note, never raised — an
    unreachable tracking server must not fail a scoring run."""
    try:
        import mlflow

        found = mlflow.get_experiment_by_name(MLFLOW_EXPERIMENT)
        if found is not None:
            experiment_id = found.experiment_id
        else:
            uri = mlflow.get_tracking_uri()
            location = (Path(uri[len("sqlite:///") :]).parent / "mlartifacts").resolve().as_uri() if uri.startswith("sqlite:///") else None
            experiment_id = mlflow.create_experiment(MLFLOW_EXPERIMENT, artifact_location=location)
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"monitor {doc['as_of']}") as run:
            mlflow.set_tags({"as_of": str(doc["as_of"]), "model": str(doc["model"])[:250], "verdict": str(doc["verdict"]), "scoring_run": str(doc["run_id"])})
            mlflow.log_metrics(monitoring_metrics(doc))
            mlflow.log_dict(dict(doc), "monitoring.json")
        return {"logged": True, "run_id": run.info.run_id}
    except Exception as exc:  # noqa: BLE001 — best effort by design (see docstring)
        return {"logged": False, "error": f"{type(exc).__name__}: {exc}"[:300]}


def model_known_values(model: "ChurnModel") -> dict[str, list[str]]:
    """Values the model knows per raw column: event types, channels, attribute categories."""
    spec = model.spec
    known = {"event_type": list(spec.event_types), "channel": list(spec.channels)}
    known.update({name: list(cats) for name, cats in spec.categorical_attributes})
    return known


def monitoring_window(interactions: pd.DataFrame, as_of: pd.Timestamp, config: MonitorConfig = MonitorConfig()) -> pd.DataFrame:
    """The events the data-quality checks read: ``config.window_days`` before ``as_of``
    (one pass over the scoring data, which holds a year of events)."""
    t = interactions["occurred_at"]
    return interactions[((t >= as_of - pd.Timedelta(days=config.window_days)) & (t < as_of)).to_numpy()]


def _active(accounts: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The accounts scored at ``as_of`` — :func:`churn.features.active_accounts`' rule, by
    date only (a join on a million account ids would cost seconds)."""
    active = accounts["signup_at"] < as_of
    if "churned_at" in accounts.columns:
        active &= ~(accounts["churned_at"] <= as_of).fillna(False)
    return accounts[active]


def monitor_run(
    out_dir: Path,
    *,
    folder: Path,
    record: Mapping[str, Any],
    risk: pd.DataFrame,
    features: pd.DataFrame,
    model: "ChurnModel",
    accounts: pd.DataFrame,
    interactions: pd.DataFrame | None,
    reports: Iterable["TableReport"] = (),
    previous: pd.DataFrame | None = None,
    thresholds: tuple[float, float] = (0.10, 0.25),
    data_end: pd.Timestamp | None = None,
    config: MonitorConfig = MonitorConfig(),
) -> Monitoring:
    """Monitor one scoring run of ``out_dir`` whose files are being written to ``folder`` (the
    end of ``churn score``, before the run is published): drift against the model's
    reference, data quality of the scoring window, realized performance of matured past runs,
    account alerts against ``previous``. Writes monitoring.json and alerts.csv into ``folder``;
    logs to MLflow when the model came from MLflow. ``interactions=None`` (Spark engine)
    skips the event-level checks."""
    from churn.score import gain_shares
    from churn.workflow import definition_from_dict  # workflow imports this module

    as_of = pd.Timestamp(record["as_of"], tz="UTC")
    notes: list[str] = []
    reference = model.metadata.get("monitoring_reference")
    importance = dict(zip(model.feature_names, gain_shares(model).tolist()))
    if reference:
        drift = feature_drift(reference, features, config=config, importance=importance)
        prediction = prediction_drift(reference, risk["churn_probability"].to_numpy(), risk["risk_band"].to_numpy(), thresholds=thresholds, config=config)
        if "score" not in reference:
            notes.append("the model's reference has no score distribution: prediction drift not checked")
    else:
        drift = feature_drift({"n": 0, "features": {}}, features, config=config)
        prediction = pd.DataFrame(columns=PREDICTION_COLUMNS)
        notes.append("the model carries no monitoring reference (trained before monitoring existed): feature and prediction drift not checked — retrain to enable them")
    if interactions is None:
        notes.append("events stay on the cluster (Spark engine): volume, missing values and freshness not checked")
    known = model_known_values(model)
    scored = _active(accounts, as_of)
    window = monitoring_window(interactions, as_of, config) if interactions is not None else None
    volume = daily_event_counts(window, as_of=as_of, days=max(config.volume_windows_days) + config.volume_baseline_days) if window is not None and len(window) else None
    quality = data_quality(as_of=as_of, interactions=window, accounts=scored, reports=reports, known=known, drift=drift if reference else None, volume=volume, config=config)
    training = (model.metadata.get("evaluation") or {}).get("metrics", {}).get("model")
    if interactions is None and definition_from_dict(dict(record["churn"])).resolve_kind(accounts) == "inactivity":
        performance, expected = [], []
        notes.append("inactivity churn on the Spark engine: realized performance needs the events (run `churn monitor --data`)")
    else:
        performance, expected = past_performance(
            out_dir, accounts=accounts, interactions=interactions if interactions is not None else pd.DataFrame(columns=["account_id", "occurred_at", "event_type"]),
            data_end=data_end or as_of, training=training, config=config, earlier=read_monitoring(out_dir), current=(record, risk),
        )  # fmt: skip
    alerts = risk_alerts(risk, previous, config=config)
    ref_info = {"source": "model" if reference else None, "n": (reference or {}).get("n"), "known_categories": known}
    doc = monitoring_document(
        record=record, features=drift, prediction=prediction, data_quality=quality, performance=performance, expected=expected,
        alerts=alerts, notes=notes, reference=ref_info, volume=volume, config=config,
    )  # fmt: skip
    doc["mlflow"] = log_monitoring(doc) if came_from_mlflow(str(record.get("model", ""))) else None
    paths = write_monitoring(folder, doc, alerts)
    return Monitoring(doc, alerts, paths)


def monitor_folder(scores: Path, *, data: Path | None = None, config: MonitorConfig = MonitorConfig()) -> Monitoring:
    """``churn monitor``: re-judge the latest run of a scoring folder.

    Drift was measured when the run was scored (the feature values are not kept) and is
    taken from its monitoring document. With ``data``, data quality is recomputed for the
    run's window and realized performance for every run matured in that data — the weekly
    check once new outcomes have arrived. Account alerts are recomputed from the history.
    """
    from churn import runs
    from churn.contract import OPTIONAL_INTERACTION_COLUMNS, load
    from churn.labels import observed_until
    from churn.score import load_run, previous_run, read_history

    history = read_history(scores)
    if history.empty:
        raise ValueError(f"{scores} holds no scoring history: run `churn score --out {scores}` first")
    latest = history.sort_values(["as_of", "scored_at"]).iloc[-1]
    record = latest.to_dict()
    record["as_of"] = f"{latest['as_of']:%Y-%m-%d}"
    as_of = latest["as_of"]
    folder = runs.run_dir(scores, str(latest["run_id"]))
    stored = read_monitoring(folder) or {}
    if stored.get("run_id") != latest["run_id"]:
        stored = {}
    notes = [n for n in stored.get("notes", []) if "realized" not in n]
    features = pd.DataFrame(stored.get("features", []), columns=DRIFT_COLUMNS)
    prediction = pd.DataFrame(stored.get("prediction", []), columns=PREDICTION_COLUMNS)
    if not stored:
        notes.append("no monitoring document for this run (scored before monitoring existed): drift not available")
    quality = pd.DataFrame(stored.get("data_quality", []), columns=DQ_COLUMNS)
    performance, expected = stored.get("performance", []), stored.get("expected", [])
    known = (stored.get("reference") or {}).get("known_categories") or {}
    volume = None
    run_json = folder / "run.json"
    evaluation = json.loads(run_json.read_text(encoding="utf-8")).get("evaluation", {}) if run_json.exists() else {}
    training = (evaluation.get("metrics") or {}).get("model")
    risk = load_run(scores, latest["run_id"])
    if data is not None:
        horizon = max((int(h["horizon_days"]) for h in history.get("churn", []) if isinstance(h, Mapping)), default=0)
        days = max(config.volume_windows_days) + config.volume_baseline_days
        since = min(as_of - pd.Timedelta(days=config.window_days), history["as_of"].min() - pd.Timedelta(days=horizon))
        contract = load(data, interaction_columns=OPTIONAL_INTERACTION_COLUMNS, since=since)
        window = monitoring_window(contract.interactions, as_of, config)
        scored = _active(contract.accounts, as_of)
        drift_missing = features if len(features) and stored.get("reference", {}).get("source") else None
        volume = daily_event_counts(window, as_of=as_of, days=days) if len(window) else None
        quality = data_quality(as_of=as_of, interactions=window, accounts=scored, reports=contract.reports, known=known, drift=drift_missing, volume=volume, config=config)
        end = observed_until(contract.accounts, contract.interactions)
        performance, expected = past_performance(scores, accounts=contract.accounts, interactions=contract.interactions, data_end=end, training=training, config=config, history=history)
    elif stored.get("volume_daily"):
        daily = stored["volume_daily"]
        volume = pd.DataFrame(daily["counts"], index=pd.to_datetime(daily["days"], utc=True))
    alerts = risk_alerts(risk, previous_run(scores, as_of), config=config)
    doc = monitoring_document(
        record=record, features=features, prediction=prediction, data_quality=quality, performance=performance, expected=expected,
        alerts=alerts, notes=notes, reference=stored.get("reference"), volume=volume, config=config,
    )  # fmt: skip
    doc["mlflow"] = stored.get("mlflow")
    paths = write_monitoring(folder, doc, alerts)
    runs.refresh_links(scores)  # a run monitored for the first time gets its top-level links
    return Monitoring(doc, alerts, paths)
