"""The champion gate: does a newly trained model replace the one in production?

The rules, in order:

1. The challenger must beat both baselines on the decision metric — precision at the
   outreach capacity, the share of the called accounts that would really churn — averaged
   over its evaluation folds.
2. A champion with another churn definition (kind, horizon, activity events) predicts a
   different target: it is not compared on these labels, and the challenger is not promoted
   automatically (promote it by hand with ``churn promote`` once the change is intended).
3. A champion that cannot score the data any more because the *data schema* changed (a
   column it needs is gone) is replaced, and the decision says so.
4. Otherwise both are judged on the same evaluation slices that are later than *both*
   models' training data: test cutoffs on or after the champion's last training cutoff plus
   its horizon (the challenger's fold models never saw their test cutoff by construction).
   So a champion is never judged on a slice it trained, early-stopped or calibrated on. With
   no such slice yet, the champion stays.
5. On those slices the challenger must be better on the mean precision at capacity by at
   least ``margin`` (relative), and — when the data has a value column — not worse on the
   expected maximum profit (EMP).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from churn.config import ProfitConfig
from churn.modeling.evaluate import classification_metrics, customer_value
from churn.modeling.results import Evaluation, FoldResult

DECISION_METRIC = "precision_at_capacity"


@dataclass
class ChampionView:
    """What the gate needs to know about the current champion."""

    version: str
    definition: dict[str, object]
    last_cutoff: pd.Timestamp | None
    #: Champion probabilities on the test rows of each evaluation fold it may be judged on
    #: (same row order as the fold's test rows); missing folds are not eligible.
    scores: dict[int, np.ndarray] = field(default_factory=dict)
    #: Set when the champion cannot score the data because a column it needs is gone.
    schema_problem: str | None = None

    @property
    def horizon(self) -> pd.Timedelta:
        return pd.Timedelta(days=int(self.definition["horizon_days"]))  # type: ignore[call-overload]


@dataclass
class Decision:
    promoted: bool
    reason: str
    version: str
    previous_champion: str | None = None
    comparison: pd.DataFrame = field(default_factory=pd.DataFrame)


def eligible_folds(evaluation: Evaluation, champion: ChampionView) -> list[int]:
    """Indices of evaluation folds later than the champion's training data."""
    if champion.last_cutoff is None:
        return []
    earliest = champion.last_cutoff + champion.horizon
    return [i for i, r in enumerate(evaluation.folds) if r.fold.test_cutoff is not None and r.fold.test_cutoff >= earliest]


def same_definition(a: dict[str, object], b: dict[str, object]) -> bool:
    keys = ("kind", "horizon_days", "activity_event_types")
    return all(list(np.atleast_1d(a.get(k, ()))) == list(np.atleast_1d(b.get(k, ()))) if k == "activity_event_types" else a.get(k) == b.get(k) for k in keys)


def _fold_metric(result: FoldResult, p: np.ndarray, capacity: int, profit: ProfitConfig) -> dict[str, float]:
    m = classification_metrics(result.y, p, capacity=capacity, clv=customer_value(result.test, profit), profit=profit)
    return {DECISION_METRIC: m[DECISION_METRIC], "emp": m["emp"], "pr_auc": m["pr_auc"]}


def judge(
    evaluation: Evaluation,
    version: str,
    champion: ChampionView | None,
    *,
    definition: dict[str, object],
    capacity: int,
    profit: ProfitConfig = ProfitConfig(),
    margin: float = 0.01,
    has_value: bool = False,
) -> Decision:
    """Apply the gate's rules (module docstring) and explain the outcome in one sentence."""
    headline = evaluation.main.metrics if evaluation.kind == "cv" else evaluation.mean_metrics()
    ours = float(headline.loc["model", DECISION_METRIC])
    base = headline[DECISION_METRIC]
    label = "precision at capacity"
    if not (ours > base["logistic"] and ours > base["rule"]):
        return Decision(
            False,
            f"{label} {ours:.3f} does not beat the baselines (logistic {base['logistic']:.3f}, rule {base['rule']:.3f})",
            version,
            champion.version if champion else None,
        )
    if champion is None:
        return Decision(True, f"first champion: {label} {ours:.3f} beats both baselines", version)
    if not same_definition(champion.definition, definition):
        return Decision(
            False,
            f"champion v{champion.version} predicts another churn definition ({champion.definition['kind']} within "
            f"{champion.definition['horizon_days']} days); not compared on these labels — promote by hand with "
            f"`churn promote {version}` if the new definition is intended",
            version,
            champion.version,
        )
    if champion.schema_problem:
        return Decision(
            True,
            f"the data schema changed — champion v{champion.version} cannot score it ({champion.schema_problem}); "
            f"{label} {ours:.3f} beats both baselines",
            version,
            champion.version,
        )
    folds = [i for i in eligible_folds(evaluation, champion) if i in champion.scores]
    if not folds:
        need = champion.last_cutoff + champion.horizon if champion.last_cutoff is not None else None
        return Decision(
            False,
            f"no evaluation slice is later than champion v{champion.version}'s training data yet"
            + (f" (needs a test cutoff on or after {need:%Y-%m-%d})" if need is not None else "")
            + f"; the champion stays (promote by hand with `churn promote {version}`)",
            version,
            champion.version,
        )
    rows = []
    for i in folds:
        result = evaluation.folds[i]
        ch = _fold_metric(result, result.scores["model"], capacity, profit)
        cm = _fold_metric(result, champion.scores[i], capacity, profit)
        rows.append({"test_cutoff": result.fold.test_cutoff, **{f"challenger_{k}": v for k, v in ch.items()}, **{f"champion_{k}": v for k, v in cm.items()}})
    comparison = pd.DataFrame(rows)
    mean = comparison.mean(numeric_only=True)
    ch_pk, cm_pk = mean[f"challenger_{DECISION_METRIC}"], mean[f"champion_{DECISION_METRIC}"]
    better = ch_pk >= cm_pk * (1 + margin) and ch_pk > cm_pk
    profit_ok = not has_value or not np.isfinite(mean["champion_emp"]) or mean["challenger_emp"] >= mean["champion_emp"]
    slices = ", ".join(f"{t:%Y-%m-%d}" for t in comparison["test_cutoff"])
    detail = f"{label} {ch_pk:.3f} vs champion v{champion.version} {cm_pk:.3f} on {len(folds)} later slice(s) ({slices})"
    if has_value:
        detail += f"; EMP {mean['challenger_emp']:.2f} vs {mean['champion_emp']:.2f}"
    if better and profit_ok:
        return Decision(True, f"beats the champion: {detail}", version, champion.version, comparison)
    why = "not better by the margin" if not better else "lower expected profit"
    return Decision(False, f"{why} ({margin:.0%} required): {detail}", version, champion.version, comparison)
