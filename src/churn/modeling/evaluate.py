"""Honest evaluation for imbalanced churn data: ranking, calibration and what outreach would get.

Accuracy is never reported — with 3 % churners, "nobody churns" is 97 % accurate.
Plots are drawn on :class:`matplotlib.figure.Figure` directly, so no global backend or
pyplot state is touched (safe in servers, tests and notebooks alike).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from churn.config import ProfitConfig
from churn.data.io import write_atomic
from churn.modeling.emp import expected_max_profit_churn

#: Metric names, in display order, with "higher is better" flags.
METRICS: dict[str, bool] = {
    "pr_auc": True,
    "roc_auc": True,
    "log_loss": False,
    "brier": False,
    "ece": False,
    "lift_top10": True,
    "capture_top10": True,
    "precision_at_capacity": True,
    "emp": True,
    "emp_share": True,
}

#: Short labels for tables and reports.
METRIC_LABELS: dict[str, str] = {
    "pr_auc": "PR-AUC",
    "roc_auc": "ROC-AUC",
    "log_loss": "log loss",
    "brier": "Brier",
    "ece": "ECE",
    "lift_top10": "lift@10%",
    "capture_top10": "capture@10%",
    "precision_at_capacity": "prec@K",
    "emp": "EMP",
    "emp_share": "EMP share",
}


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate − predicted probability| over equal-count bins, weighted by size.

    Equal-count bins suit churn scores, which crowd near zero.
    """
    if len(y) == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    total = 0.0
    for chunk in np.array_split(order, min(bins, len(order))):
        if len(chunk):
            total += len(chunk) * abs(y[chunk].mean() - p[chunk].mean())
    return total / len(y)


def top_share(y: np.ndarray, p: np.ndarray, share: float = 0.1) -> tuple[float, float]:
    """Lift and capture in the top ``share`` by score: how much better than random, and
    which fraction of all churners that slice contains."""
    k = max(1, int(round(len(y) * share)))
    top = np.argsort(-p, kind="stable")[:k]
    base = y.mean()
    precision = y[top].mean()
    lift = precision / base if base > 0 else float("nan")
    capture = y[top].sum() / y.sum() if y.sum() > 0 else float("nan")
    return float(lift), float(capture)


def precision_at_k(y: np.ndarray, p: np.ndarray, k: int) -> float:
    """Share of true churners among the ``k`` highest-risk accounts (the outreach list)."""
    k = max(1, min(k, len(y)))
    top = np.argsort(-p, kind="stable")[:k]
    return float(y[top].mean())


def expected_max_profit(y: np.ndarray, p: np.ndarray, clv: np.ndarray | float, config: ProfitConfig = ProfitConfig()) -> tuple[float, float]:
    """EMP per customer (in the unit of ``clv``) and the share of customers to contact at the
    profit-optimal threshold (closed form of Verbraken et al. 2013: :mod:`churn.modeling.emp`)."""
    y = np.asarray(y, dtype=int)
    if not 0 < y.sum() < len(y):
        return float("nan"), float("nan")
    result = expected_max_profit_churn(
        y, p, alpha=config.alpha, beta=config.beta, clv=clv, incentive_cost=config.incentive_cost, contact_cost=config.contact_cost
    )
    return result.emp, result.share


def customer_value(table: pd.DataFrame, config: ProfitConfig = ProfitConfig()) -> np.ndarray | float:
    """CLV per row: ``clv_years`` × 12 × the value column, or ``default_clv`` without one."""
    if config.value_column in table.columns:
        monthly = pd.to_numeric(table[config.value_column], errors="coerce").fillna(0.0).to_numpy(dtype=float)
        return config.clv_years * 12.0 * monthly
    return config.default_clv


def classification_metrics(
    y: np.ndarray | pd.Series,
    p: np.ndarray,
    *,
    capacity: int = 200,
    clv: np.ndarray | float | None = None,
    profit: ProfitConfig = ProfitConfig(),
) -> dict[str, float]:
    """Every metric in :data:`METRICS` plus counts; NaN where undefined (one class only).

    ``clv`` (per row, or one number) values a retained customer for the expected maximum
    profit; None uses ``profit.default_clv``."""
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    both = 0 < y.sum() < len(y)
    lift, capture = top_share(y, p, 0.1)
    emp, emp_share = expected_max_profit(y, p, profit.default_clv if clv is None else clv, profit)
    return {
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "lift_top10": lift,
        "capture_top10": capture,
        "precision_at_capacity": precision_at_k(y, p, capacity),
        "emp": emp,
        "emp_share": emp_share,
        "base_rate": float(y.mean()),
        "rows": float(len(y)),
        "positives": float(y.sum()),
    }


def metrics_table(results: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Models as rows, metrics as columns."""
    return pd.DataFrame(results).T[[*METRICS, "base_rate", "rows", "positives"]]


# --------------------------------------------------------------------------- plots


def _figure() -> tuple[Figure, object]:
    fig = Figure(figsize=(6, 4.2), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def plot_roc(y: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    fig, ax = _figure()
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC")
    ax.legend(loc="lower right")
    return fig


def plot_pr(y: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    fig, ax = _figure()
    for name, p in scores.items():
        prec, rec, _ = precision_recall_curve(y, p)
        ax.plot(rec, prec, label=f"{name} (AP {average_precision_score(y, p):.3f})")
    ax.axhline(np.mean(y), ls=":", c="grey", label=f"base rate {np.mean(y):.1%}")
    ax.set(xlabel="Recall", ylabel="Precision", title="Precision–recall")
    ax.legend(loc="upper right")
    return fig


def gains_curve(y: np.ndarray, p: np.ndarray, points: int = 20) -> pd.DataFrame:
    """Cumulative share of churners captured when contacting the top x % by score."""
    order = np.argsort(-p, kind="stable")
    hits = np.cumsum(np.asarray(y)[order])
    shares = np.linspace(1 / points, 1, points)
    idx = np.maximum((shares * len(order)).astype(int) - 1, 0)
    total = max(hits[-1], 1)
    captured = hits[idx] / total
    return pd.DataFrame({"contacted": shares, "captured": captured, "lift": captured / shares})


def plot_gains(y: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    fig, ax = _figure()
    for name, p in scores.items():
        g = gains_curve(y, p)
        ax.plot(np.r_[0, g["contacted"]], np.r_[0, g["captured"]], marker=".", label=name)
    ax.plot([0, 1], [0, 1], ls=":", c="grey", label="random")
    ax.set(xlabel="Share of accounts contacted (highest risk first)", ylabel="Share of churners reached", title="Cumulative gains")
    ax.legend(loc="lower right")
    return fig


def plot_calibration(y: np.ndarray, scores: dict[str, np.ndarray], bins: int = 10) -> Figure:
    fig, ax = _figure()
    top = 0.0
    for name, p in scores.items():
        observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="quantile")
        ax.plot(predicted, observed, marker="o", label=name)
        top = max(top, predicted.max(), observed.max())
    ax.plot([0, top], [0, top], ls=":", c="grey", label="perfect")
    ax.set(xlabel="Predicted churn probability", ylabel="Observed churn rate", title="Calibration (equal-count bins)")
    ax.legend(loc="upper left")
    return fig


def plot_importance(importance: pd.Series, top: int = 20) -> Figure:
    fig = Figure(figsize=(6.5, 0.28 * min(top, len(importance)) + 1.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    data = importance.sort_values(ascending=False).head(top)[::-1]
    ax.barh(data.index, data.to_numpy())
    ax.set(xlabel="Total gain", title="Feature importance (gain)")
    return fig


def save_figure(fig: Figure, path: Path) -> Path:

    return write_atomic(path, lambda p: fig.savefig(p, format="png"))


def evaluation_plots(y: np.ndarray, scores: dict[str, np.ndarray], importance: pd.Series, out_dir: Path) -> dict[str, Path]:
    """Write roc, pr, gains, calibration and importance PNGs; returns name → path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {
        "roc": plot_roc(y, scores),
        "precision_recall": plot_pr(y, scores),
        "gains": plot_gains(y, scores),
        "calibration": plot_calibration(y, scores),
        "importance": plot_importance(importance),
    }
    return {name: save_figure(fig, out_dir / f"{name}.png") for name, fig in figures.items()}
