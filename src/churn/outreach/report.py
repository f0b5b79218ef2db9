"""The HTML report customer-success teams open in a browser: one self-contained page.

Plots are PNGs embedded as data URIs (no JavaScript, no external files), so the page can
be mailed or attached to a ticket and still shows everything.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from matplotlib.figure import Figure

from churn.config import ACTIONABLE_DRIVERS, DRIVERS
from churn.data.io import write_text
from churn.modeling.evaluate import METRIC_LABELS
from churn.outreach.whom import whom_to_call_view


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _fig(width: float = 6.0, height: float = 3.4) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def retention_chart(retention: pd.DataFrame) -> str | None:
    if retention is None or retention.empty:
        return None
    fig, ax = _fig()
    overall = retention[retention["segment"].isna()] if "segment" in retention.columns else retention
    ax.plot(overall["period_start"], overall["retention_rate"], marker="o", lw=2, label="all customers")
    if "segment" in retention.columns:
        for seg, part in retention[retention["segment"].notna()].groupby("segment"):
            ax.plot(part["period_start"], part["retention_rate"], lw=1, alpha=0.7, label=str(seg))
    ax.set(ylabel="Retention (E − N) / S, %", title="Actual monthly retention")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    return _png(fig)


def risk_distribution(risk: pd.DataFrame, thresholds: tuple[float, float]) -> str:
    fig, ax = _fig()
    ax.hist(risk["churn_probability"], bins=50, color="#4c72b0")
    ax.set_yscale("log")
    for t, label in zip(thresholds, ("medium", "high")):
        ax.axvline(t, ls="--", c="#c44e52")
        ax.text(t, ax.get_ylim()[1] * 0.5, f" {label}", color="#c44e52", fontsize=8)
    ax.set(xlabel="Churn probability within the horizon", ylabel="Accounts (log scale)", title="Risk distribution")
    return _png(fig)


def gains_chart(evaluation: dict) -> str | None:
    gains = evaluation.get("gains") if evaluation else None
    if not gains:
        return None
    fig, ax = _fig()
    for name, g in gains.items():
        ax.plot([0, *g["contacted"]], [0, *g["captured"]], marker=".", label=name)
    ax.plot([0, 1], [0, 1], ls=":", c="grey", label="random")
    ax.set(xlabel="Share of accounts contacted", ylabel="Share of churners reached", title=f"Lift / gains (test {evaluation['test_cutoff']})")
    ax.legend(fontsize=8)
    return _png(fig)


def calibration_chart(evaluation: dict) -> str | None:
    cal = evaluation.get("calibration") if evaluation else None
    if not cal:
        return None
    fig, ax = _fig()
    top = max(max(cal["predicted"]), max(cal["observed"]))
    ax.plot(cal["predicted"], cal["observed"], marker="o", label="model")
    ax.plot([0, top], [0, top], ls=":", c="grey", label="perfect")
    ax.set(xlabel="Predicted churn probability", ylabel="Observed churn rate", title="Calibration")
    ax.legend(fontsize=8)
    return _png(fig)


def driver_summary(risk: pd.DataFrame, descriptions: dict[str, str], top: int = 3) -> pd.DataFrame:
    """Lead reasons of the accounts people act on (flagged or high band), by driver family:
    actionable families first, each with its most common lead features.

    Columns: ``family``, ``meaning``, ``actionable``, ``accounts`` (whose lead reason is in
    the family), ``share`` of those acted-on accounts with a reason, ``features`` (list of
    ``{"feature", "description", "accounts"}``, most common first, at most ``top``)."""
    acted = risk[risk["outreach"] | risk["control"] | (risk["risk_band"] == "high")]
    lead = pd.DataFrame({"feature": acted["reason_features"].astype("str").str.split(",").str[0].fillna("")})
    if "reason_drivers" in acted.columns:
        lead["family"] = acted["reason_drivers"].astype("str").str.split(",").str[0].fillna("").to_numpy()
    else:  # a run scored before reasons named their driver family
        lead["family"] = "unknown"
    lead = lead[lead["feature"] != ""]
    columns = ["family", "meaning", "actionable", "accounts", "share", "features"]
    if lead.empty:
        return pd.DataFrame(columns=columns)
    counts = lead.groupby(["family", "feature"]).size().rename("accounts").reset_index()
    counts = counts.sort_values(["family", "accounts", "feature"], ascending=[True, False, True], kind="stable")
    rows = []
    for family, part in counts.groupby("family", sort=False):
        rows.append(
            {
                "family": family,
                "meaning": DRIVERS.get(str(family), ""),
                "actionable": family in ACTIONABLE_DRIVERS,
                "accounts": int(part["accounts"].sum()),
                "share": float(part["accounts"].sum() / len(lead)),
                "features": [
                    {"feature": f, "description": descriptions.get(f, f), "accounts": int(c)} for f, c in zip(part["feature"].head(top), part["accounts"].head(top))
                ],
            }
        )
    out = pd.DataFrame(rows, columns=columns)
    return out.sort_values(["actionable", "accounts", "family"], ascending=[False, False, True], kind="stable").reset_index(drop=True)


def drivers_chart(drivers: pd.DataFrame) -> str | None:
    if drivers.empty:
        return None
    fig, ax = _fig(6.5, 0.35 * len(drivers) + 1.2)
    colors = np.where(drivers["actionable"].to_numpy(dtype=bool), "#55a868", "#b0b0b0")
    ax.barh(drivers["family"][::-1], drivers["accounts"][::-1], color=colors[::-1])
    ax.set(xlabel="Accounts whose lead reason is in this family", title="Lead reasons by driver (flagged and high-risk accounts)")
    return _png(fig)


def uplift_rows(uplift: pd.DataFrame | None) -> dict[str, list[dict]] | None:
    """Uplift rows formatted for the page, by analysis (intention-to-treat first)."""
    if uplift is None or uplift.empty:
        return None
    pct = lambda v: "–" if pd.isna(v) else f"{100 * v:.1f}"  # noqa: E731
    money = lambda v: "–" if pd.isna(v) else f"{v:,.0f}"  # noqa: E731
    rows: dict[str, list[dict]] = {}
    for r in uplift.to_dict(orient="records"):
        rows.setdefault(r["analysis"], []).append(
            {
                "scope": "pooled" if r["scope"] == "pooled" else r["as_of"],
                "pooled": r["scope"] == "pooled",
                "band": r["band"],
                "outreach_n": f"{int(r['outreach_n']):,}",
                "outreach_churn": pct(r["outreach_churn"]),
                "control_n": f"{int(r['control_n']):,}",
                "control_churn": pct(r["control_churn"]),
                "difference": pct(r["difference"]),
                "ci": f"{pct(r['ci_low'])} to {pct(r['ci_high'])}",
                "p_value": "–" if pd.isna(r["p_value"]) else "<0.001" if r["p_value"] < 0.001 else f"{r['p_value']:.3f}",
                "revenue": money(r["revenue_retained"]),
                "revenue_ci": f"{money(r['revenue_ci_low'])} to {money(r['revenue_ci_high'])}",
                "reached": pct(r.get("outreach_reached")),
                "control_reached": pct(r.get("control_reached")),
            }
        )
    return rows


STATUS_COLOURS = {"ok": "#55a868", "warn": "#dd8452", "alert": "#c44e52"}


def drift_chart(features: list[dict], top: int = 15) -> str | None:
    """PSI (with each feature's own alert threshold) and shift per feature, worst first."""
    if not features:
        return None
    frame = pd.DataFrame(features)
    frame["level"] = frame["status"].map({"ok": 0, "warn": 1, "alert": 2})
    frame = frame.sort_values(["level", "value"], ascending=False).head(top)[::-1]
    fig = Figure(figsize=(7.5, 0.3 * len(frame) + 1.4), dpi=100, layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True, width_ratios=[3, 2])
    colours = frame["status"].map(STATUS_COLOURS)
    y = np.arange(len(frame))
    left.barh(y, frame["value"], color=colours)
    left.scatter(frame["threshold"], y, marker="|", s=120, c="black", label="alert threshold")
    left.set(yticks=y, yticklabels=frame["feature"], xlabel="PSI", title="Feature drift vs. training")
    left.legend(fontsize=8, loc="lower right")
    right.barh(y, frame["shift"].astype(float).fillna(0.0), color=colours)
    right.set(xlabel="shift (reference spreads)", title="How far values moved")
    return _png(fig)


def realized_chart(expected: list[dict]) -> str | None:
    """Expected churn among flagged accounts per run, and the realized figure once matured."""
    if not expected:
        return None
    frame = pd.DataFrame(expected).assign(as_of=lambda d: pd.to_datetime(d["as_of"]))
    fig, ax = _fig()
    ax.plot(frame["as_of"], 100 * frame["expected_flagged_rate"].astype(float), marker="o", label="expected (calibrated probabilities)")
    done = frame[frame["matured"].astype(bool)]
    if len(done):
        mid = 100 * done["realized_flagged_rate"].astype(float)
        # clipped at 0: a control group with no churner has a lower bound a rounding error above 0 %
        err = [(mid - 100 * done["realized_low"].astype(float)).clip(lower=0), (100 * done["realized_high"].astype(float) - mid).clip(lower=0)]
        ax.errorbar(done["as_of"], mid, yerr=err, fmt="s", capsize=4, color="#c44e52", label="realized (control group, 95 % CI)")
    ax.set(ylabel="Churn among flagged accounts, %", title="Expected vs. realized churn of each list")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    return _png(fig)


def volume_chart(volume: dict | None, recent_days: int = 7) -> str | None:
    """Events per day and type relative to each type's mean before the last ``recent_days``
    (1 = normal; a feed that loses half its events drops to 0.5)."""
    if not volume:
        return None
    counts = pd.DataFrame(volume["counts"], index=pd.to_datetime(volume["days"]))
    base = counts.iloc[:-recent_days].mean()
    relative = counts.loc[:, base > 0] / base[base > 0]
    fig, ax = _fig()
    for name in relative.columns:
        ax.plot(relative.index, relative[name], lw=2.5 if name == "all events" else 1, label=name)
    ax.axhline(1, ls=":", c="grey")
    ax.set(ylabel="Events per day / earlier mean", title="Data volume before as_of")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7, ncols=2)
    fig.autofmt_xdate()
    return _png(fig)


def _fmt(value: object, spec: str = ".3f", scale: float = 1.0) -> str:
    """A number for a table cell; "–" where there is none (JSON null)."""
    return "–" if value is None else format(scale * float(value), spec)  # type: ignore[arg-type]


def monitoring_view(doc: dict | None, top: int = 10) -> dict | None:
    """What the monitoring section shows: verdict, flagged checks, recent lists, top alerts."""
    if not doc:
        return None
    features = doc.get("features", [])
    flagged = [f for f in features if f["status"] != "ok"]
    shown = flagged or sorted(features, key=lambda f: -(f["value"] or 0))[:5]
    drift_rows = [
        {
            "feature": f["feature"], "status": f["status"], "detail": f.get("detail") or "",
            "psi": _fmt(f["value"]), "limit": _fmt(f["threshold"]), "moved": _fmt(f.get("shift"), ".2f"),
            "p": _fmt(f.get("p_adjusted"), ".2g"),
            "missing": f"{_fmt(f.get('missing_current'), '.1f', 100)} % / {_fmt(f.get('missing_reference'), '.1f', 100)} %",
        }
        for f in shown + doc.get("prediction", [])
    ]  # fmt: skip
    performance = []
    for p in doc.get("performance", []):
        trained = p.get("training") or {}
        ci = lambda k: f"{_fmt(p.get(k))} ({_fmt(p.get(k + '_low'))}–{_fmt(p.get(k + '_high'))})"  # noqa: E731
        performance.append(
            {
                "as_of": p["as_of"], "evaluated": p["evaluated"], "churners": p["churners"], "status": p["status"],
                "roc": ci("roc_auc"), "pr": ci("pr_auc"), "trained_roc": _fmt(trained.get("roc_auc")), "trained_pr": _fmt(trained.get("pr_auc")),
                "precision": f"{_fmt(p.get('precision_at_capacity'))} ({_fmt(p.get('precision_low'))}–{_fmt(p.get('precision_high'))})",
                "expected": _fmt(p.get("expected_rate"), ".1f", 100),
                "actual": f"{_fmt(p.get('actual_rate'), '.1f', 100)} ({_fmt(p.get('actual_low'), '.1f', 100)}–{_fmt(p.get('actual_high'), '.1f', 100)})",
            }
        )  # fmt: skip
    alerts = [
        {**a, "now": _fmt(a["churn_probability"], ".1f", 100), "was": _fmt(a["previous_probability"], ".1f", 100)}
        for a in doc.get("alerts", [])[:top]
    ]
    quality = doc.get("data_quality", [])
    return {
        "verdict": doc["verdict"],
        "retrain": doc["retrain_recommended"],
        "reasons": doc["reasons"],
        "notes": doc.get("notes", []),
        "summary": doc["summary"],
        "features": drift_rows,
        "features_flagged": len(flagged),
        "quality": [q for q in quality if q["status"] != "ok"],
        "quality_checked": len(quality),
        "performance": performance,
        "alerts": alerts,
        "charts": {
            "drift": drift_chart(features),
            "realized": realized_chart(doc.get("expected", [])),
            "volume": volume_chart(doc.get("volume_daily")),
        },
    }


def profit_view(evaluation: dict, *, scored: int, capacity: int) -> dict[str, object] | None:
    """The profit-optimal share to contact (from the model's evaluation) next to the capacity."""
    model = (evaluation or {}).get("metrics", {}).get("model", {})
    share, emp = model.get("emp_share"), model.get("emp")
    if share is None or emp is None or not np.isfinite(share) or not scored:
        return None
    return {
        "share": f"{share:.1%}",
        "emp": f"{emp:,.2f}",
        "accounts": f"{share * scored:,.0f}",
        "scored": f"{scored:,}",
        "capacity": f"{capacity:,}",
        "capacity_share": f"{capacity / scored:.1%}",
        "more": share * scored > capacity,
    }


def retention_rows(retention: pd.DataFrame | None, months: int = 12) -> list[dict[str, object]] | None:
    """The report's table of the last ``months`` periods, all customers; a month that began
    without customers has no rate ("—"), not "nan"."""
    if retention is None or retention.empty:
        return None
    overall = retention[retention["segment"].isna()] if "segment" in retention.columns else retention
    recent = overall.tail(months).assign(period=lambda d: pd.to_datetime(d["period_start"]).dt.strftime("%Y-%m"))
    for rate in ("retention_rate", "churn_rate"):
        recent[rate] = recent[rate].astype(object).where(recent[rate].notna(), "—")
    return recent.to_dict(orient="records")


def render(
    *,
    risk: pd.DataFrame,
    record: dict[str, object],
    retention: pd.DataFrame | None,
    outcomes: pd.DataFrame | None,
    evaluation: dict,
    descriptions: dict[str, str],
    thresholds: tuple[float, float],
    top_n: int = 50,
    uplift: pd.DataFrame | None = None,
    power: str | None = None,
    monitoring: dict | None = None,
    whom_to_call: dict | str | None = None,
) -> str:
    """The page. ``whom_to_call``: the run's uplift evaluation (:func:`whom.read_uplift_evaluation`),
    or the one line saying why there is none."""
    env = Environment(loader=PackageLoader("churn.outreach", "templates"), autoescape=select_autoescape(["html"]))
    drivers = driver_summary(risk, descriptions)
    metrics = evaluation.get("metrics", {}) if evaluation else {}
    metric_rows = [
        {"model": name, **{label: f"{values.get(key, float('nan')):.3f}" for key, label in METRIC_LABELS.items()}}
        for name, values in metrics.items()
    ]
    flagged = risk[risk["outreach"] | risk["control"]]
    summary = {
        "accounts": f"{len(risk):,}",
        "high": f"{(risk['risk_band'] == 'high').sum():,}",
        "medium": f"{(risk['risk_band'] == 'medium').sum():,}",
        "low": f"{(risk['risk_band'] == 'low').sum():,}",
        "outreach": f"{risk['outreach'].sum():,}",
        "control": f"{record.get('control', risk['control'].sum()):,}",
        "held_controls": f"{record.get('held_controls', 0):,}",
        "revenue_at_risk": f"{risk['revenue_at_risk'].sum():,.0f}",
        "flagged_revenue_at_risk": f"{flagged['revenue_at_risk'].sum():,.0f}",
        "expected_churners": f"{risk['churn_probability'].sum():,.0f}",
    }
    top = risk.head(top_n).assign(
        churn_probability=lambda d: (100 * d["churn_probability"]).round(1),
        revenue_at_risk=lambda d: d["revenue_at_risk"].round(0),
        flag=lambda d: np.where(d["control"], "control", np.where(d["outreach"], "call", "")),
    )
    template = env.get_template("report.html")
    return template.render(
        record=record,
        summary=summary,
        top=top.to_dict(orient="records"),
        metric_rows=metric_rows,
        metric_labels=list(METRIC_LABELS.values()),
        evaluation=evaluation or {},
        drivers=drivers.to_dict(orient="records"),
        outcomes=None if outcomes is None or outcomes.empty else outcomes.to_dict(orient="records"),
        uplift=uplift_rows(uplift),
        uplift_has_log=uplift is not None and "outreach_reached" in uplift.columns and bool(uplift["outreach_reached"].notna().any()),
        power=power,
        retention=retention_rows(retention),
        charts={
            "retention": retention_chart(retention) if retention is not None else None,
            "risk": risk_distribution(risk, thresholds),
            "gains": gains_chart(evaluation),
            "calibration": calibration_chart(evaluation),
            "drivers": drivers_chart(drivers),
        },
        monitoring=monitoring_view(monitoring),
        whom=whom_to_call_view(whom_to_call if whom_to_call is not None else "No uplift evaluation was given for this report.", _png),
        profit=profit_view(evaluation, scored=len(risk), capacity=int(record.get("capacity", 0) or 0)),
    )


def write_report(path: Path, html: str) -> Path:
    return write_text(path, html)
