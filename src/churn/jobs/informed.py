"""The ``informed`` policy's effect estimate: the learned policy with perfect segmentation.

Benchmark only (like the ``oracle``; not a ``churn simulate --policy`` choice, never on the
product's ranking path). The ``uplift`` policy must *discover* from features who responds to a
call; in the simulation the answer is planted per response group (``callback``, ``fed_up``,
``offer``, ``sleeping_dog``, … — :func:`churn.data.responding.responses`, known at assignment
time to the simulation and to no product). This estimate is told each row's group and nothing
else: not the planted shifts, not the outcomes of rows that have not matured. Everything else is
the uplift policy's — the same experiment, scoring, refits, ranking rule and costs — so what it
saves is the ceiling of a policy that learns the effect of a call from *this* experiment:

* if it reaches the goal, the experiment holds enough evidence and the gap is the learner's
  discovery of the groups from features;
* if it does not, no learner can reach the goal at this experiment size — only a larger
  experiment (more calls, controls or exploration) can.

The estimate, on the matured cohort rows (:func:`fit_informed`):

1. μ₀, the churn probability without a call: the uplift policy's own shift learner
   (:func:`churn.modeling.uplift.fit_uplift`, its departures off) — the same no-call model;
2. per group g, a calibration ``a_g``: the log-odds shift that fits the group's *not-called*
   rows (controls, the sampled pool below the cut) given ``logit μ₀`` (:func:`common_shift`) —
   μ₀ does not know the groups and may be off within one (the fed-up are riskier than their
   features say), which would otherwise land in the call's estimated effect;
3. per group g, the call's log-odds shift ``δ_g`` from the group's *called* rows given
   ``logit μ₀ + a_g`` (the same estimator), an intent-to-call effect (70 % are reached);
4. shrinkage (:func:`shrink`): each group's ``a_g`` towards the pooled calibration of all
   not-called rows, each ``δ_g`` towards the common shift of all called rows, by the
   DerSimonian–Laird random-effects weight ``τ² / (τ² + se_g²)`` — a group with little evidence
   (large ``se_g``) keeps little of its own estimate; a group with no rows takes the centre.

The uplift of a row is then ``p₀ − sigmoid(logit p₀ + δ_g)`` with ``p₀ = sigmoid(logit μ₀ + a_g)``;
no "within two standard errors of 0 is 0" rule (the shift learner's guard against calling on
noise): the shrinkage is the guard here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from churn.features.labels import LABEL
from churn.modeling.calibration import logit
from churn.modeling.uplift import TREATED, UpliftModel, UpliftSettings, common_shift, fit_uplift, sigmoid

#: The column of a cohort table (and of the frame ``predict`` reads) naming each row's planted
#: response group ("_" columns are never model inputs).
GROUP = "_group"


def shrink(estimates: np.ndarray, ses: np.ndarray, center: float) -> np.ndarray:
    """Each estimate moved towards ``center`` by the random-effects weight τ²/(τ² + se²), τ²
    the DerSimonian–Laird between-group variance (0 when the spread of the estimates is no more
    than their standard errors explain: then every group takes the centre). A NaN estimate (a
    group without rows) becomes the centre."""
    est, se = np.asarray(estimates, dtype=float), np.asarray(ses, dtype=float)
    ok = np.isfinite(est) & np.isfinite(se) & (se > 0)
    out = np.full(len(est), float(center))
    if ok.sum() < 2:
        return out
    w = 1.0 / se[ok] ** 2
    mean = float(np.sum(w * est[ok]) / w.sum())
    q = float(np.sum(w * (est[ok] - mean) ** 2))
    tau2 = max(0.0, (q - (ok.sum() - 1)) / (w.sum() - np.sum(w**2) / w.sum()))
    out[ok] = center + (est[ok] - center) * tau2 / (tau2 + se[ok] ** 2)
    return out


def group_shifts(groups: np.ndarray, mask: np.ndarray, churned: np.ndarray, offset: np.ndarray) -> tuple[dict[str, float], float]:
    """Per group, the log-odds shift of the ``mask`` rows' outcomes given ``offset``
    (:func:`common_shift`), shrunk towards the shift of all ``mask`` rows (:func:`shrink`);
    (the shrunk shift per group seen anywhere in ``groups``, that common shift)."""
    names = sorted({str(g) for g in groups})
    center, _ = common_shift(churned[mask], offset[mask]) if mask.any() else (0.0, float("inf"))
    raw = [common_shift(churned[m], offset[m]) if (m := mask & (groups == g)).any() else (np.nan, np.inf) for g in names]
    shrunk = shrink(np.array([r[0] for r in raw]), np.array([r[1] for r in raw]), center)
    return dict(zip(names, shrunk.tolist())), center


@dataclass
class InformedUplift:
    """μ₀ (the uplift policy's no-call model), per group the calibration and the call's shift."""

    no_call: UpliftModel
    calibration: dict[str, float]
    shifts: dict[str, float]
    common: float
    metadata: dict[str, object] = field(default_factory=dict)

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """``churn_if_called``, ``churn_if_not_called`` and ``uplift`` per row of ``features``,
        which must carry each row's group (``_group``)."""
        groups = features[GROUP].astype("str")
        z0 = logit(self.no_call.control_model.predict_proba(self.no_call.prepare(features))[:, 1])
        z0 = z0 + groups.map(self.calibration).fillna(0.0).to_numpy(dtype=float)
        p0 = sigmoid(z0)
        p1 = sigmoid(z0 + groups.map(self.shifts).fillna(self.common).to_numpy(dtype=float))
        return pd.DataFrame({"churn_if_called": p1, "churn_if_not_called": p0, "uplift": p0 - p1}, index=features.index)


def no_call_model(rows: pd.DataFrame, settings: UpliftSettings, baseline: pd.DataFrame | None = None) -> UpliftModel:
    """The uplift policy's shift learner with no departures: its μ₀ (churn without a call) and
    common shift, without the boosted search (a leaf would need more rows than there are) — the
    no-call model an estimate that groups the rows itself starts from."""
    return fit_uplift(rows, replace(settings, shift_min_child_samples=len(rows) + 1), baseline=baseline)


def fit_informed(rows: pd.DataFrame, settings: UpliftSettings, baseline: pd.DataFrame | None = None) -> InformedUplift:
    """The informed estimate on matured cohort rows (features, ``treated``, ``churned``,
    ``_group``): see the module docstring. ``baseline`` joins μ₀'s fit, as the uplift policy's."""
    no_call = no_call_model(rows, settings, baseline)  # the groups replace the departures' search
    groups = rows[GROUP].astype("str").to_numpy()
    treated, y = rows[TREATED].to_numpy(dtype=bool), rows[LABEL].to_numpy(dtype=float)
    z0 = logit(no_call.control_model.predict_proba(no_call.prepare(rows))[:, 1])
    calibration, _ = group_shifts(groups, ~treated, y, z0)
    z = z0 + np.array([calibration[g] for g in groups])
    shifts, common = group_shifts(groups, treated, y, z)
    counts = pd.Series(groups[treated]).value_counts().to_dict()
    return InformedUplift(no_call, calibration, shifts, common, {"called_per_group": counts, "rows": len(rows)})
