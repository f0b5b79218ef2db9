"""Expected maximum profit (EMP) of a churn model, computed in closed form.

Verbraken, T., Verbeke, W. and Baesens, B. (2013). A novel profit maximizing metric for measuring
classification performance of customer churn prediction models. IEEE Transactions on Knowledge
and Data Engineering, 25(5), 961-973.

Why it lives here: the reference implementation (``empulse``) is AGPL-3.0 and this package is
MIT, so the product computes the metric itself and keeps ``empulse`` only as the reference its
tests compare against (to 1e-6). The parameters and their defaults are the ones of
``empulse.metrics.empc_score`` (alpha 6, beta 14, CLV 200, incentive 10, contact 1).

The campaign. Customers above a threshold are contacted at cost ``f`` each; a contacted churner
accepts an incentive of cost ``d`` with probability ``gamma`` and is then worth its lifetime value
``clv``; a contacted non-churner takes the incentive (cost ``d``). With ``pi1`` the share of
churners (positives, label 1), ``pi0 = 1 - pi1`` and a threshold giving the true and false positive
rates ``(TPR, FPR)``, the profit per customer is linear in ``gamma``:

    P(gamma; TPR, FPR) = pi1 TPR (gamma (clv - d) - f) - pi0 FPR (d + f)

For a given ``gamma`` the best threshold is a vertex of the ROC convex hull (a linear function
is maximised at a vertex), and because ``P`` is linear in ``gamma`` the best vertex changes only
where two vertices' lines cross: the maximum over vertices is the upper envelope of one line
per vertex, and ``[0, 1]`` splits into intervals ``[l_k, u_k]`` on which one vertex ``k`` is best.
EMP averages that maximum over ``gamma ~ Beta(alpha, beta)``:

    EMP = sum_k  a_k E[gamma; l_k < gamma < u_k] + b_k P(l_k < gamma < u_k)

with ``a_k = pi1 TPR_k (clv - d)``, ``b_k = -pi1 TPR_k f - pi0 FPR_k (d + f)``,
``P(l < gamma < u) = I_u(alpha, beta) - I_l(alpha, beta)`` and the partial first moment
``E[gamma; l < gamma < u] = alpha / (alpha + beta) (I_u(alpha + 1, beta) - I_l(alpha + 1, beta))``
(``I`` is the regularised incomplete beta function, ``scipy.special.betainc``). No numerical
integration is involved.

The profit-optimal share is the expected share of customers contacted at the best threshold,
``sum_k (pi1 TPR_k + pi0 FPR_k) P(l_k < gamma < u_k)``.

As in empulse, a per-customer ``clv`` array enters through its mean (the metric is defined on the
class priors, not per customer), and a sample of one class only gets the hull (0, 0)-(1, 1):
contact nobody or everybody.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import betainc


@dataclass(frozen=True)
class EmpResult:
    """EMP per customer (in the unit of ``clv``) and the share of customers to contact."""

    emp: float
    share: float


def roc_convex_hull(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The vertices (TPR, FPR) of the ROC curve's upper convex hull from (0, 0) to (1, 1).

    Tied scores form one threshold. The turns are judged on integer counts, so no vertex is lost
    to rounding. With one class only the hull is the diagonal's two ends."""
    y = np.asarray(y, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return np.array([0.0, 1.0]), np.array([0.0, 1.0])
    order = np.argsort(-scores, kind="stable")
    s, yy = scores[order], y[order]
    last = np.r_[s[1:] != s[:-1], True]  # the last sample of each run of tied scores
    tp = np.cumsum(yy)[last]
    fp = np.cumsum(1 - yy)[last]
    hull: list[tuple[int, int]] = [(0, 0)]  # (false positives, true positives)
    for point in zip(fp.tolist(), tp.tolist()):
        while len(hull) >= 2:
            (ox, oy), (ax, ay) = hull[-2], hull[-1]
            if (ax - ox) * (point[1] - oy) - (ay - oy) * (point[0] - ox) < 0:  # a right turn: keep
                break
            hull.pop()
        hull.append(point)
    counts = np.array(hull, dtype=np.float64)
    return counts[:, 1] / n_pos, counts[:, 0] / n_neg


def _upper_envelope(slope: np.ndarray, intercept: np.ndarray) -> tuple[list[int], list[float]]:
    """Indices of the lines on the upper envelope of ``slope * x + intercept``, left to right,
    and the x where each hands over to the next (one fewer)."""
    order = np.lexsort((intercept, slope))  # slope ascending; among equal slopes the highest last
    kept: list[int] = []
    cuts: list[float] = []
    for i in order.tolist():
        if kept and slope[kept[-1]] == slope[i]:  # same slope, at least as high: replaces it
            kept.pop()
            if cuts:
                cuts.pop()
        while kept:
            j = kept[-1]
            x = (intercept[j] - intercept[i]) / (slope[i] - slope[j])
            if cuts and x <= cuts[-1]:  # line j is never on top
                kept.pop()
                cuts.pop()
                continue
            cuts.append(float(x))
            break
        kept.append(i)
    return kept, cuts


def expected_max_profit_churn(
    y: np.ndarray,
    scores: np.ndarray,
    *,
    alpha: float = 6.0,
    beta: float = 14.0,
    clv: np.ndarray | float = 200.0,
    incentive_cost: float = 10.0,
    contact_cost: float = 1.0,
) -> EmpResult:
    """EMP for customer churn (EMPC) and the profit-optimal share of customers to contact.

    ``y`` is 1 for a churner; higher ``scores`` mean more likely to churn. See the module
    docstring for the formula."""
    y = np.asarray(y)
    clv_mean = float(np.mean(clv))
    pi1 = float(np.mean(y))
    pi0 = 1.0 - pi1
    tpr, fpr = roc_convex_hull(y, scores)
    d, f = float(incentive_cost), float(contact_cost)
    slope = pi1 * tpr * (clv_mean - d)
    intercept = -pi1 * tpr * f - pi0 * fpr * (d + f)
    kept, cuts = _upper_envelope(slope, intercept)
    edges = np.clip(np.array([0.0, *cuts, 1.0]), 0.0, 1.0)
    lower, upper = edges[:-1], edges[1:]
    mass = np.where(upper > lower, betainc(alpha, beta, upper) - betainc(alpha, beta, lower), 0.0)
    moment = np.where(upper > lower, alpha / (alpha + beta) * (betainc(alpha + 1, beta, upper) - betainc(alpha + 1, beta, lower)), 0.0)
    k = np.array(kept)
    emp = float(np.sum(slope[k] * moment + intercept[k] * mass))
    share = float(np.sum((pi1 * tpr[k] + pi0 * fpr[k]) * mass))
    return EmpResult(emp, share)
