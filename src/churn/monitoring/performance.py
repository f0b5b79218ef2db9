"""Realized performance of past lists whose horizon has passed (with intervals), and the
label-free expected churn of lists that have not matured yet."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Collection, Mapping

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score

from churn.config import definition_from_dict
from churn.data.frames import json_records, to_json_safe
from churn.features.labels import label_accounts
from churn.monitoring.settings import MonitorConfig, worst
from churn.outreach import runs
from churn.outreach.experiment import cohort
from churn.outreach.retention import CONTACTED_EARLIER, CONTROL, HELD_CONTROL, NOT_CONTACTED, OUTREACH, list_groups


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


#: Each account's place in one list's experiment (:func:`list_groups`).
def realized_performance(
    risk: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    training: Mapping[str, float] | None = None,
    config: MonitorConfig = MonitorConfig(),
    contacted_before: Collection[str] = (),
) -> dict[str, object]:
    """How one past list actually did, once its horizon has passed — judged on its own
    cohort only (:func:`list_groups`): its own controls and the accounts nobody has called.

    Accounts that were **called** — by this run, or by an earlier run whose horizon still
    covers this one — are left out: outreach changes their outcome, so they say nothing about
    the model. This list's control group — a random share of *its* flagged accounts, never
    contacted — stands in for them, and its churn rate *is* the list's precision at capacity
    (with no control group, all accounts this list flagged are used, a lower bound when the
    calls work). Controls held over from earlier runs are left out too: they were drawn from
    another list's top and sit at any rank of this one (mostly low, with little churn), so
    counting them as this list's controls would pull its precision towards the base rate.
    ROC-AUC and PR-AUC are over this list's controls and not-contacted accounts, with
    Hanley–McNeil and logit intervals; the churn rates have Wilson intervals.

    Parameters
    ----------
    risk : the run's risk list (``account_id``, ``churn_probability``, ``risk_band``,
        ``outreach``, ``control``; ``as_of`` and ``assigned_as_of`` where recorded).
    labels : ``account_id`` and ``churned`` (0/1) over the run's horizon.
    training : the model's test-slice metrics (``roc_auc``, ``pr_auc``, ...) to compare with.
    contacted_before : accounts an earlier run still covering this one assigned to outreach
        that the list itself may not record (:func:`earlier_outreach`).

    Returns
    -------
    dict — metrics with ``*_low``/``*_high``, per-band calibration, ``status`` and ``detail``.
    """

    columns = [c for c in ("account_id", "as_of", "churn_probability", "risk_band", "outreach", "control", "assigned_as_of") if c in risk.columns]
    merged = risk[columns].merge(labels[["account_id", "churned"]], on="account_id", how="inner")
    group = list_groups(merged, contacted_before)
    judged = merged[(group == CONTROL) | (group == NOT_CONTACTED)]
    y = judged["churned"].to_numpy(dtype=int)
    p = judged["churn_probability"].to_numpy(dtype=float)
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    both = pos > 0 and neg > 0
    roc = float(roc_auc_score(y, p)) if both else float("nan")
    ap = float(average_precision_score(y, p)) if both else float("nan")
    control = merged[group == CONTROL]
    basis = control if len(control) else merged[(group == OUTREACH) | (group == CONTROL)]
    hits = int(basis["churned"].sum())
    prec_low, prec_high = wilson(hits, len(basis), config.confidence)
    actual_low, actual_high = wilson(pos, len(y), config.confidence)
    bands = calibration_by_band(judged, config.confidence)
    out: dict[str, object] = {
        "accounts": int(len(merged)),
        "evaluated": int(len(judged)),
        "excluded_outreach": int((group == OUTREACH).sum()),
        "excluded_held_controls": int((group == HELD_CONTROL).sum()),
        "excluded_contacted_earlier": int((group == CONTACTED_EARLIER).sum()),
        "churners": pos,
        "roc_auc": roc,
        "pr_auc": ap,
        "precision_at_capacity": hits / len(basis) if len(basis) else float("nan"),
        "precision_low": float(prec_low),
        "precision_high": float(prec_high),
        "precision_basis": _basis_note(len(control), len(basis)),
        "flagged_expected": float(basis["churn_probability"].mean()) if len(basis) else float("nan"),
        "expected_rate": float(p.mean()) if len(p) else float("nan"),
        "actual_rate": pos / len(y) if len(y) else float("nan"),
        "actual_low": float(actual_low),
        "actual_high": float(actual_high),
        "brier": float(np.mean((p - y) ** 2)) if len(y) else float("nan"),
        "bands": json_records(bands),
        "training": dict(training or {}),
    }
    out["expected_roc_auc"] = expected_roc_auc(p)
    out["roc_auc_low"], out["roc_auc_high"] = auc_interval(roc, pos, neg, config.confidence)
    out["pr_auc_low"], out["pr_auc_high"] = ap_interval(ap, pos, config.confidence)
    out["status"], out["detail"] = _performance_status(out, config)
    return out


def _basis_note(controls: int, flagged: int) -> str:
    if controls:
        return f"control group ({controls:,} accounts this list held out, never contacted)"
    return f"all {flagged:,} flagged accounts, contacted ones included (no control group): a lower bound if the calls work"


def calibration_by_band(judged: pd.DataFrame, confidence: float) -> pd.DataFrame:
    """Per risk band (high, medium, low): accounts, churned, the expected and actual churn
    rate, and the Wilson interval of the actual rate."""
    by_band = judged.groupby("risk_band", observed=True).agg(accounts=("churned", "size"), churned=("churned", "sum"), expected=("churn_probability", "mean"))
    by_band = by_band.reindex([b for b in ("high", "medium", "low") if b in by_band.index])
    band_low, band_high = wilson(by_band["churned"].to_numpy(), by_band["accounts"].to_numpy(), confidence)
    return pd.DataFrame(
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
    """The label-free estimate of a list: expected churn among the accounts it flagged (and
    all accounts) from the calibrated probabilities.

    Flagged means this list's calls and its own controls (:func:`list_groups`) — the top the
    realized precision is measured on — not the controls an earlier run still holds out."""
    group = list_groups(risk)
    flagged = (group == OUTREACH) | (group == CONTROL)
    p = risk["churn_probability"].to_numpy(dtype=float)
    return {
        "flagged": int(flagged.sum()),
        "expected_flagged_rate": float(p[flagged].mean()) if flagged.any() else float("nan"),
        "expected_flagged_churners": float(p[flagged].sum()),
        "expected_rate": float(p.mean()) if len(p) else float("nan"),
    }


ASSIGNMENT_COLUMNS = ["account_id", "outreach", "control", "assigned_as_of"]


def earlier_outreach(history: pd.DataFrame, run_id: str, load: Callable[[str], pd.DataFrame], *, recorded: bool) -> set[str]:
    """Accounts that earlier runs assigned to outreach while their horizon covers run
    ``run_id``'s date, as far as that run's own list cannot say.

    A list records the assignments it honoured (``assigned_as_of`` before its date) — those of
    the runs scored before it. It cannot know a run scored after it for an earlier date (a
    backfill, or a re-run whose draw replaced the one it saw), nor anything at all when it
    predates recorded assignments (``recorded`` False). Only those runs' lists are read
    (``load``: run id → list with :data:`ASSIGNMENT_COLUMNS`), so in-order weekly runs read none.

    ``history``: one row per run (``run_id``, ``as_of``, ``scored_at``, ``churn`` with
    ``horizon_days``), the runs in effect — the latest scored of each date."""
    me = history[history["run_id"] == run_id].iloc[0]
    horizon = pd.to_timedelta(history["churn"].map(lambda raw: int(raw["horizon_days"])), unit="D")
    covering = history[(history["as_of"] < me["as_of"]) & (history["as_of"] + horizon > me["as_of"])]
    if recorded and len(covering):
        scored = pd.to_datetime(pd.concat([pd.Series([me["scored_at"]]), covering["scored_at"]]).astype("str"), utc=True, errors="coerce", format="mixed")
        known = (scored.iloc[1:] < scored.iloc[0]).to_numpy()  # scored before it: the list knows that draw
        covering = covering[~known]
    ids: set[str] = set()
    for run in covering.itertuples(index=False):
        assigned = cohort(load(str(run.run_id)), run.as_of)
        ids.update(assigned.loc[assigned["arm"] == "outreach", "account_id"].astype("str"))
    return ids


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
    replaces a published run of the same date). Each list is judged on its own cohort
    (:func:`realized_performance`); the accounts earlier runs called that a list cannot know
    of come from those runs' lists (:func:`earlier_outreach`). Returns (performance,
    expected), oldest run first.
    """

    history = runs.list_runs(out_dir) if history is None else history
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

    def load(run_id: str, columns: list[str] | None = None) -> pd.DataFrame:
        if current is not None and str(current[0]["run_id"]) == run_id:
            return current[1]
        return runs.load_risk_list(out_dir, run_id, columns=columns)

    for run in pd.concat([matured, pending]).sort_values("as_of").itertuples(index=False):
        done = run.run_id in set(matured["run_id"])
        if done and run.run_id in judged and listed.get(run.run_id, {}).get("matured"):
            performance.append(judged[run.run_id])
            expected.append(listed[run.run_id])
            continue
        if not done and run.run_id in listed:
            expected.append(listed[run.run_id])
            continue
        risk = load(run.run_id)
        definition = definition_from_dict(run.churn)
        row: dict[str, Any] = {"run_id": run.run_id, "as_of": f"{run.as_of:%Y-%m-%d}", "model": run.model, "horizon_days": definition.horizon_days, "matures_on": f"{run.as_of + definition.horizon:%Y-%m-%d}"}
        row.update(expected_churn(risk))
        if done:
            labels = label_accounts(accounts, interactions, as_of=run.as_of, definition=definition)
            before = earlier_outreach(history, run.run_id, lambda rid: load(rid, ASSIGNMENT_COLUMNS), recorded="assigned_as_of" in risk.columns)
            perf = realized_performance(risk, labels, training=training, config=config, contacted_before=before)
            performance.append(to_json_safe({**{k: row[k] for k in ("run_id", "as_of", "model", "horizon_days")}, **perf}))
            row.update(matured=True, realized_flagged_rate=perf["precision_at_capacity"], realized_low=perf["precision_low"], realized_high=perf["precision_high"])
        else:
            row.update(matured=False, realized_flagged_rate=None, realized_low=None, realized_high=None)
        expected.append(to_json_safe(row))
    return performance, expected
