"""The report's "Whom to call" section: the uplift model's Qini curve next to the risk
ranking's, and what each calling policy achieved — read from the run's
``uplift_evaluation.json`` (written by the uplift model's evaluation into the run's folder).

The file (JSON object)::

    qini_curve          {"share": [0..1], "uplift_ranking": [...], "risk_ranking": [...]}
                        share of accounts called, best-ranked first, and the cumulative
                        incremental customers saved (Qini) of each ranking at that share
    qini, risk_qini     Qini coefficient of the uplift ranking and of the risk ranking
    qini_interval       [low, high] of ``qini`` (bootstrap)
    difference_interval [low, high] of qini − risk_qini
    ranking             the ranking the run used ("uplift", "risk", "value", …)
    ranking_reason      why, in a sentence
    policies            [{policy, customers_saved, revenue_retained, calls, cost}, …]

Every key but ``qini_curve`` and ``policies`` may be missing or null; a file that is not
this shape is reported in one line, never a broken report.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from matplotlib.figure import Figure

#: The file's name inside a run's folder (linked at the top of the scoring folder for the latest run).
UPLIFT_EVALUATION_FILE = "uplift_evaluation.json"
POLICY_FIELDS = ("policy", "customers_saved", "revenue_retained", "calls", "cost")


def read_uplift_evaluation(folder: Path) -> dict | str:
    """The evaluation in a run's folder, or one line saying why there is none."""
    path = Path(folder) / UPLIFT_EVALUATION_FILE
    if not path.exists():
        return f"No uplift model was evaluated for this run ({UPLIFT_EVALUATION_FILE} is not in its folder), so the list is not ranked by the effect of a call."
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"{path} could not be read ({exc}); the section is left out."
    problem = _shape_problem(doc)
    return f"{path}: {problem}; the section is left out." if problem else doc


def _shape_problem(doc: object) -> str | None:
    if not isinstance(doc, dict):
        return "not a JSON object"
    curve = doc.get("qini_curve")
    if not isinstance(curve, dict) or not all(isinstance(curve.get(k), list) for k in ("share", "uplift_ranking", "risk_ranking")):
        return "qini_curve needs the lists share, uplift_ranking and risk_ranking"
    if len({len(curve[k]) for k in ("share", "uplift_ranking", "risk_ranking")}) != 1 or not curve["share"]:
        return "qini_curve's lists must have the same, non-zero length"
    policies = doc.get("policies", [])
    if not isinstance(policies, list) or not all(isinstance(p, dict) and "policy" in p for p in policies):
        return "policies must be a list of objects with a policy name"
    return None


def _number(value: object, spec: str) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "–"
    return format(value, spec)


def _difference(a: object, b: object) -> float | None:
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    return float(a) - float(b) if numbers else None  # type: ignore[arg-type]


def _interval(value: object, spec: str) -> str | None:
    if isinstance(value, list) and len(value) == 2:
        return f"{_number(value[0], spec)} to {_number(value[1], spec)}"
    return None


def qini_chart(curve: dict, png) -> str:  # type: ignore[no-untyped-def]
    """Qini curves of both rankings and of calling at random (the straight line)."""
    fig = Figure(figsize=(6.0, 3.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    share = [100 * float(s) for s in curve["share"]]
    ax.plot(share, curve["uplift_ranking"], lw=2, label="by estimated effect of a call (uplift)")
    ax.plot(share, curve["risk_ranking"], lw=2, label="by churn risk")
    end = float(curve["uplift_ranking"][-1])
    ax.plot([share[0], share[-1]], [0.0, end], ls=":", c="grey", label="at random")
    ax.set(xlabel="Share of accounts called, %", ylabel="Customers saved (incremental)", title="Qini curve on held-out cohorts")
    ax.legend(fontsize=8)
    return png(fig)  # type: ignore[no-any-return]


def whom_to_call_view(doc: dict | str, png) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """What the section shows: the reason it is missing, or the chart, figures and policies."""
    if isinstance(doc, str):
        return {"missing": doc}
    policies = [
        {
            "policy": str(p.get("policy")),
            "customers_saved": _number(p.get("customers_saved"), ",.1f"),
            "revenue_retained": _number(p.get("revenue_retained"), ",.0f"),
            "calls": _number(p.get("calls"), ",.0f"),
            "cost": _number(p.get("cost"), ",.0f"),
        }
        for p in doc.get("policies", [])
    ]
    return {
        "missing": None,
        "chart": qini_chart(doc["qini_curve"], png),
        "qini": _number(doc.get("qini"), ".3f"),
        "qini_interval": _interval(doc.get("qini_interval"), ".3f"),
        "risk_qini": _number(doc.get("risk_qini"), ".3f"),
        "difference": _number(_difference(doc.get("qini"), doc.get("risk_qini")), ".3f"),
        "difference_interval": _interval(doc.get("difference_interval"), ".3f"),
        "ranking": doc.get("ranking"),
        "ranking_reason": doc.get("ranking_reason"),
        "policies": policies,
    }
