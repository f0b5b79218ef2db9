"""Feature and prediction drift against the model's reference profile.

Every model feature is compared with the *reference profile* stored with the model at
training time (:func:`churn.modeling.profile.reference_profile`: bin edges, shares and
percentiles — never raw rows): the population stability index (PSI) on the reference's decile
bins plus a bin for missing values; for numbers the two-sample Kolmogorov–Smirnov test and the
*shift* (how far values moved, in reference spreads); chi-square on the bins for all. The
score distribution and the share per risk band are compared the same way.

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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from churn.modeling.profile import category_codes, counts_at_or_below, numeric_values
from churn.monitoring.settings import MonitorConfig


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
    v = numeric_values(values)
    finite = v[~np.isnan(v)]
    m = len(v)
    grid = np.asarray(profile["grid"], dtype=float)
    edges = np.asarray(profile["edges"], dtype=float)
    ref = np.r_[np.asarray(profile["shares"], dtype=float), profile["missing"]]
    missing = (m - len(finite)) / m if m else 0.0
    below = counts_at_or_below(grid, finite)
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
            codes = category_codes(current[name], profile["categories"])
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
