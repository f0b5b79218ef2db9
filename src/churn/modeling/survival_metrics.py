"""Judging survival curves with censored outcomes, and the two yardsticks they are judged against.

Every account observed from a cutoff has a time (months until it lapsed, or until the data
ends) and an event flag (False: still a customer at the end — *censored*). A censored account
says "at least this long", never "this long"; the measures below weight the accounts whose
outcome is known by the inverse probability of still being observed (IPCW, from the
Kaplan–Meier curve of the censoring), so the accounts that happened to be seen longest do not
decide the score:

* :func:`uno_c_index` — Uno et al. (2011): of the pairs where one account lapsed before
  ``tau`` and before the other, the weighted share where it was given the higher risk;
* :func:`integrated_brier` — Graf et al. (1999): squared error of S(t) against "still a
  customer at t", IPCW-weighted, averaged over a grid of months;
* :func:`calibration_by_decile` — predicted S(t) per decile against the Kaplan–Meier S(t) of
  the decile's accounts (Kaplan–Meier, because the censored cannot be counted as survivors),
  with the standard error of that observed value (account bootstrap) and the mean gap a
  perfectly calibrated model would still show from that noise alone.

The yardsticks: :func:`kaplan_meier` per segment (no features at all) and :class:`CoxModel`,
a proportional-hazards model with a small ridge penalty on the same feature matrix (Breslow
ties and baseline hazard), written here rather than taken from a GPL package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits


def kaplan_meier(times: np.ndarray, events: np.ndarray, at: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """S(t) at each point of ``at`` (right-continuous: an event at t counts at t). ``weights``
    (rows × ``draws``, or one per row) count a row that many times: the account bootstrap of
    :func:`calibration_by_decile` reweights rows instead of copying them; the result is then
    len(at) × draws."""
    times, events = np.asarray(times, dtype=float), np.asarray(events, dtype=bool)
    if not len(times):
        return np.ones(len(np.atleast_1d(at)))
    unique, inverse = np.unique(times, return_inverse=True)
    w = np.ones((len(times), 1)) if weights is None else np.asarray(weights, dtype=float).reshape(len(times), -1)
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(len(unique)))
    deaths = np.add.reduceat(w[order] * events[order, None], starts, axis=0)
    leaving = np.add.reduceat(w[order], starts, axis=0)
    at_risk = w.sum(axis=0) - np.vstack([np.zeros((1, w.shape[1])), np.cumsum(leaving, axis=0)[:-1]])
    curve = np.cumprod(1.0 - np.divide(deaths, at_risk, out=np.zeros_like(deaths), where=at_risk > 0), axis=0)
    idx = np.searchsorted(unique, np.asarray(at, dtype=float), side="right") - 1
    out = np.where((idx >= 0)[..., None], curve[np.clip(idx, 0, None)], 1.0)
    return out[..., 0] if weights is None or np.ndim(weights) == 1 else out


def _censoring_left(times: np.ndarray, events: np.ndarray, at: np.ndarray) -> np.ndarray:
    """G(t−): the chance of still being observed just before t (Kaplan–Meier of the censoring),
    floored so one late event cannot take an unbounded weight."""
    eps = 1e-9
    return np.maximum(kaplan_meier(times, ~np.asarray(events, dtype=bool), np.asarray(at, dtype=float) - eps), 1e-3)


def uno_c_index(times: np.ndarray, events: np.ndarray, risk: np.ndarray, tau: float) -> float:
    """Uno's C: Σ_i Σ_j δ_i G(T_i−)^−2 1[T_i < T_j, T_i < τ] (1[r_i > r_j] + ½ 1[r_i = r_j]),
    divided by the same sum without the risk terms. O(n log n): accounts are taken from the
    latest time down, and a Fenwick tree over risk ranks counts the later ones with lower risk."""
    times, events, risk = np.asarray(times, dtype=float), np.asarray(events, dtype=bool), np.asarray(risk, dtype=float)
    weight = np.where(events & (times < tau), _censoring_left(times, events, times) ** -2.0, 0.0)
    ranks = np.unique(risk, return_inverse=True)[1] + 1
    tree = np.zeros(ranks.max() + 1 if len(ranks) else 1)

    def prefix(i: int) -> float:
        total = 0.0
        while i > 0:
            total += tree[i]
            i -= i & -i
        return total

    def add(i: int) -> None:
        while i < len(tree):
            tree[i] += 1.0
            i += i & -i

    order = np.argsort(-times, kind="stable")
    num = den = 0.0
    inserted, start = 0, 0
    while start < len(order):
        stop = start
        while stop < len(order) and times[order[stop]] == times[order[start]]:
            stop += 1
        group = order[start:stop]
        for i in group:  # compared only with strictly later accounts (already inserted)
            if weight[i] > 0 and inserted:
                lower, upto = prefix(int(ranks[i]) - 1), prefix(int(ranks[i]))
                num += weight[i] * (lower + 0.5 * (upto - lower))
                den += weight[i] * inserted
        for i in group:
            add(int(ranks[i]))
        inserted += len(group)
        start = stop
    return num / den if den > 0 else float("nan")


def brier_scores(times: np.ndarray, events: np.ndarray, survival: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """IPCW Brier score at each month of ``grid``; ``survival`` is n × len(grid) (S(t) per account)."""
    times, events = np.asarray(times, dtype=float), np.asarray(events, dtype=bool)
    g_own = _censoring_left(times, events, times)
    out = np.empty(len(grid))
    for k, t in enumerate(grid):
        s = survival[:, k]
        lapsed = (times <= t) & events
        alive = times > t
        g_t = kaplan_meier(times, ~events, np.array([t]))[0]
        out[k] = np.mean(np.where(lapsed, s**2 / g_own, 0.0) + np.where(alive, (1 - s) ** 2 / max(g_t, 1e-3), 0.0))
    return out


def integrated_brier(times: np.ndarray, events: np.ndarray, survival: np.ndarray, grid: np.ndarray) -> float:
    """The Brier score averaged over ``grid`` (trapezoid rule, divided by the grid's span)."""
    scores = brier_scores(times, events, survival, grid)
    if len(grid) == 1:
        return float(scores[0])
    return float(np.sum((scores[1:] + scores[:-1]) / 2 * np.diff(grid)) / (grid[-1] - grid[0]))


#: The chance of |N(0, σ²)| is σ·√(2/π) on average: the mean gap a perfectly calibrated model
#: still shows when each decile's observed survival carries standard error σ.
MEAN_ABS_NORMAL = math.sqrt(2.0 / math.pi)


def calibration_by_decile(
    times: np.ndarray,
    events: np.ndarray,
    predicted: np.ndarray,
    month: float,
    bins: int = 10,
    *,
    groups: np.ndarray | None = None,
    draws: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Per decile of predicted S(month): rows, mean predicted, Kaplan–Meier observed S(month)
    (censoring-aware: a censored account is not counted as a survivor), their gap, and ``se``,
    the standard error of the observed value.

    ``se`` comes from resampling whole accounts (``groups``; each row its own when None): one
    account's rows at successive cutoffs share its one lapse date, so they are not independent
    and Greenwood's formula, which treats them as such, would understate the noise. With
    ``se`` per decile, ``noise`` = se·√(2/π) is the mean gap a perfectly calibrated model would
    show on these rows — the floor below which a calibration gap says nothing."""
    times, events, predicted = np.asarray(times, dtype=float), np.asarray(events, dtype=bool), np.asarray(predicted, dtype=float)
    groups = np.arange(len(times)) if groups is None else np.asarray(groups)
    decile = pd.qcut(pd.Series(predicted).rank(method="first"), q=min(bins, len(predicted)), labels=False).to_numpy()
    rng = np.random.default_rng(seed)
    rows = []
    for d in np.unique(decile):
        m = decile == d
        codes, uniques = pd.factorize(groups[m])
        counts = rng.multinomial(len(uniques), np.full(len(uniques), 1.0 / len(uniques)), size=draws).T  # accounts × draws
        boot = kaplan_meier(times[m], events[m], np.array([month]), weights=counts[codes])[0]
        observed = float(kaplan_meier(times[m], events[m], np.array([month]))[0])
        rows.append({"decile": int(d) + 1, "rows": int(m.sum()), "accounts": len(uniques), "predicted": float(predicted[m].mean()), "observed": observed, "se": float(np.std(boot, ddof=1)) if draws > 1 else float("nan")})
    out = pd.DataFrame(rows)
    out["gap"] = (out["predicted"] - out["observed"]).abs()
    out["noise"] = out["se"] * MEAN_ABS_NORMAL
    return out


@dataclass
class SegmentKM:
    """Kaplan–Meier curves per segment (one curve when there is no segment): the curve knowing
    nothing about an account but its segment."""

    grid: np.ndarray
    curves: dict[str, np.ndarray]
    overall: np.ndarray

    @classmethod
    def fit(cls, times: np.ndarray, events: np.ndarray, segments: np.ndarray | None, grid: np.ndarray, min_rows: int = 30) -> "SegmentKM":
        overall = kaplan_meier(times, events, grid)
        curves: dict[str, np.ndarray] = {}
        if segments is not None:
            seg = np.asarray(segments).astype(str)
            for name in np.unique(seg):
                m = seg == name
                if m.sum() >= min_rows:
                    curves[name] = kaplan_meier(times[m], events[m], grid)
        return cls(np.asarray(grid, dtype=float), curves, overall)

    def predict(self, segments: np.ndarray | None, n: int) -> np.ndarray:
        if segments is None:
            return np.tile(self.overall, (n, 1))
        return np.vstack([self.curves.get(s, self.overall) for s in np.asarray(segments).astype(str)])


@dataclass
class CoxModel:
    """Cox proportional hazards on a numeric matrix: missing values → the column's median,
    standardised, ridge penalty ``penalty`` × Σβ² (keeps 100 correlated features finite);
    Breslow ties and baseline hazard."""

    penalty: float = 1.0
    center: np.ndarray | None = None
    scale: np.ndarray | None = None
    beta: np.ndarray | None = None
    base_times: np.ndarray | None = None
    base_hazard: np.ndarray | None = None

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        x = np.where(np.isnan(x), self.center, x)
        return (x - self.center) / self.scale

    def fit(self, x: np.ndarray, times: np.ndarray, events: np.ndarray) -> "CoxModel":
        x = np.asarray(x, dtype=float)
        med = np.nanmedian(np.where(np.isfinite(x), x, np.nan), axis=0) if len(x) else np.zeros(x.shape[1])
        self.center = np.nan_to_num(med)
        spread = np.nanstd(np.where(np.isnan(x), self.center, x), axis=0)
        self.scale = np.where(spread > 0, spread, 1.0)
        z = self._standardise(x)
        order = np.argsort(-np.asarray(times, dtype=float), kind="stable")  # latest first: risk sets are prefixes
        z, t, d = z[order], np.asarray(times, dtype=float)[order], np.asarray(events, dtype=bool)[order]
        last_of_tie = np.r_[t[1:] != t[:-1], True]  # Breslow: the risk set of a time includes all its ties
        tie_end = np.minimum.accumulate(np.where(last_of_tie, np.arange(len(t)), len(t))[::-1])[::-1]  # end of each tie group

        def loss(beta: np.ndarray) -> tuple[float, np.ndarray]:
            eta = z @ beta
            shift = eta.max() if len(eta) else 0.0
            w = np.exp(eta - shift)
            s0 = np.cumsum(w)[tie_end]  # Σ w over the risk set of each account's time
            ll = np.sum(d * (eta - shift - np.log(s0)))
            # Σ_i d_i Σ_{j in R(i)} w_j z_j / s0_i = zᵀ (w · c), c_j = Σ over the events whose risk set holds j
            c = np.cumsum(np.bincount(tie_end, weights=d / s0, minlength=len(t))[::-1])[::-1]
            grad = z.T @ (d - w * c)
            return -ll + self.penalty * beta @ beta, -grad + 2 * self.penalty * beta

        with threadpool_limits(1):  # 13k × 100 matrix-vector products: threads only contend (30× slower on a busy machine)
            result = minimize(loss, np.zeros(z.shape[1]), jac=True, method="L-BFGS-B")
        self.beta = result.x
        eta = z @ self.beta
        w = np.exp(eta)
        event_times = np.unique(t[d])
        at_risk = self._risk_sums(t, w, event_times)
        deaths = np.bincount(np.searchsorted(event_times, t[d]), minlength=len(event_times))
        self.base_times, self.base_hazard = event_times, np.cumsum(deaths / at_risk)
        return self

    @staticmethod
    def _risk_sums(t: np.ndarray, w: np.ndarray, at: np.ndarray) -> np.ndarray:
        order = np.argsort(t)
        suffix = np.r_[np.cumsum(w[order][::-1])[::-1], 0.0]
        return suffix[np.searchsorted(t[order], at, side="left")]

    def survival(self, x: np.ndarray, grid: np.ndarray) -> np.ndarray:
        """S(t | x) = exp(−H0(t) · exp(xβ)) at each month of ``grid`` (n × len(grid))."""
        idx = np.searchsorted(self.base_times, np.asarray(grid, dtype=float), side="right") - 1
        h0 = np.where(idx >= 0, self.base_hazard[np.clip(idx, 0, None)], 0.0)  # type: ignore[index]
        risk = np.exp(self._standardise(np.asarray(x, dtype=float)) @ self.beta)
        return np.exp(-np.outer(risk, h0))
