"""``churn uplift``: learn the effect of a call from a scoring folder's own matured experiment.

Every ``churn score`` run is a randomised experiment among the accounts it newly flagged: a
block-random share is held out as the no-contact control group
(:func:`churn.outreach.experiment.assign_controls`). The run's folder stores who was in which
arm (the risk list's ``outreach``, ``control``, ``assigned_as_of``) and the probability it
scored, but not the features the account had then. It does not need to: features are
point-in-time (:func:`churn.features.build.build_features` uses only events strictly before
the date and attributes valued at it), so the features at assignment are **recomputed** from
the data, with the feature spec and settings of the churn model the uplift model will sit
beside — the same features ``churn score`` gives that model when it scores.

A **matured cohort** is one run's newly assigned accounts once the run's own horizon has
ended by the end of the data: each row holds the features at the run's ``as_of``, ``treated``,
the recorded ``propensity`` of being assigned to be called, and ``churned`` within the horizon
by the one churn rule (:func:`churn.features.labels.label_accounts`, the run's own definition —
as ``churn retention --scores`` judges it).

``treated`` is **intention-to-treat** by default: assigned to be called (``arm`` = outreach),
whether or not the team reached the account. That is the randomised comparison, and it is the
decision the list makes — whom to *assign* a call. ``per-protocol`` (needs the folder's contact
log) keeps the outreach accounts actually reached within the window and the controls not
reached; it says what a call that gets through does, but it is no longer randomised (who
answers is not random). The propensity is the run's own draw: newly flagged accounts were held
out one per block of consecutive ranks, so each was called with probability (newly flagged −
controls) / newly flagged. The experiment covers only the accounts the list flagged: the
uplift model learns the effect of a call at the top of the list, not below the cut.

Fit and judge as ``churn train`` does: the uplift model (:func:`churn.modeling.uplift.fit_uplift`, the shift learner by default)
is fitted on the earlier cohorts and evaluated on the later ones held out
(:func:`churn.modeling.uplift.evaluate_uplift`: Qini, AUUC, uplift at capacity, the risk
ranking's Qini — the probability each run scored — with bootstrap intervals), the gate decided
(:func:`churn.modeling.uplift.uplift_gate`), then the deployed uplift model is refitted on every
matured cohort and saved inside a copy of the churn model's bundle (``ChurnModel.uplift``,
its evaluation in ``metadata["uplift"]``); the evaluation is logged to MLflow.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import pandas as pd

from churn.config import DataSettings
from churn.data.attributes import unknown_at
from churn.data.contract import ContractData, load
from churn.data.dataend import loaded_data_end
from churn.data.io import atomic_path
from churn.data.rules import OPTIONAL_INTERACTION_COLUMNS
from churn.features.build import build_features
from churn.features.labels import LABEL, label_accounts
from churn.modeling.model import ChurnModel, check_inputs, model_settings, save_bundle
from churn.modeling.tracking import MODEL_NAME, configure, log_uplift_evaluations
from churn.modeling.uplift import (
    PROPENSITY,
    TREATED,
    WEIGHT,
    UpliftModel,
    UpliftSettings,
    evaluate_uplift,
    fit_uplift,
    ipw_weights,
    qini_curve,
    ranking_positions,
    uplift_gate,
)
from churn.outreach import runs
from churn.outreach.experiment import cohort, reached_in_window
from churn.outreach.history import read_contacts, run_definition

Analysis = Literal["intention-to-treat", "per-protocol"]
ANALYSES: tuple[str, ...] = ("intention-to-treat", "per-protocol")
#: What a cohort row keeps of the run's risk list besides the arm.
_RISK_COLUMNS = ["account_id", "churn_probability", "annual_value", "revenue_at_risk", "outreach", "control", "assigned_as_of"]
#: Points of the Qini curves stored for the report (as evaluate_uplift's own curve).
CURVE_POINTS = 20


@dataclass(frozen=True)
class UpliftTraining:
    """How much matured experiment is enough, and how it is split and judged."""

    analysis: Analysis = "intention-to-treat"
    #: Matured cohorts needed: the earlier ones fit, the later ones are held out.
    min_cohorts: int = 3
    #: Called and held-out accounts needed in each arm, among the fitted and among the held-out rows.
    min_per_arm: int = 30
    #: Share of the matured cohorts (the latest) held out for the evaluation, at least one.
    held_out_share: float = 1 / 3
    #: Accounts the team can call: the evaluation's "uplift at capacity".
    capacity: int = 200
    settings: UpliftSettings = field(default_factory=UpliftSettings)

    def __post_init__(self) -> None:
        if self.analysis not in ANALYSES:
            raise ValueError(f"analysis must be one of {', '.join(ANALYSES)}, got {self.analysis!r}")
        if self.min_cohorts < 2:
            raise ValueError("min_cohorts must be at least 2: earlier cohorts to fit, later ones to hold out")


class NotEnoughExperiment(ValueError):
    """The scoring folder's matured cohorts cannot fit and judge an uplift model yet."""


@dataclass(frozen=True)
class MaturedCohorts:
    """The experiment rows of every matured run, and the runs still waiting for their outcome."""

    rows: pd.DataFrame
    #: (run as of, the date its outcome window ends) of the runs not matured by ``data_end``.
    pending: list[tuple[pd.Timestamp, pd.Timestamp]]
    data_end: pd.Timestamp
    analysis: Analysis
    #: Assigned accounts dropped: not a customer at the run's date in this data (per run id).
    dropped: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------- the cohorts


def propensities(assigned: pd.DataFrame) -> np.ndarray:
    """Per newly assigned row, the probability it was assigned to be called: the run drew
    ``round(share × newly flagged)`` controls one per block of consecutive ranks, so each newly
    flagged account was held out with probability 1 / its block's size — controls / newly
    flagged when the blocks are equal, and block sizes differ by at most one account."""
    called = (assigned["arm"] == "outreach").to_numpy()
    return np.full(len(assigned), called.mean() if len(called) else np.nan)


def run_cohort(
    data: ContractData, record: dict, risk: pd.DataFrame, model: ChurnModel, *, order: int
) -> tuple[pd.DataFrame, int]:
    """One matured run's experiment rows: its newly assigned accounts with the features they had
    at the run's date (the model's spec and settings, events strictly before it), the arm,
    ``treated`` (assigned to be called), ``propensity`` and ``churned`` within the run's own
    horizon. Also how many assigned accounts are not customers at that date in this data."""
    as_of = pd.Timestamp(record["as_of"])
    definition, fconfig = model_settings(model)
    own = run_definition(record, definition).resolved(data.accounts)
    assigned = cohort(risk, as_of)
    assigned = assigned.assign(**{TREATED: (assigned["arm"] == "outreach").to_numpy(), PROPENSITY: propensities(assigned)})
    features = build_features(
        data.accounts, data.interactions, as_of=as_of, spec=model.spec, config=fconfig, definition=definition.resolved(data.accounts),
        history=data.attribute_history,
    )  # fmt: skip
    labels = label_accounts(data.accounts, data.interactions, as_of=as_of, definition=own)[["account_id", LABEL]]
    keep = ["account_id", "arm", TREATED, PROPENSITY, "churn_probability", "annual_value", "revenue_at_risk"]
    rows = features.merge(assigned[[c for c in keep if c in assigned.columns]], on="account_id", how="inner", validate="one_to_one")
    rows = rows.merge(labels, on="account_id", how="inner", validate="one_to_one")
    rows = rows.assign(run_id=str(record["run_id"]), run_as_of=as_of, horizon_days=own.horizon_days, cohort=order)
    return rows, int(len(assigned) - len(rows))


def matured_cohorts(data: ContractData, scores: Path, model: ChurnModel, *, data_end: pd.Timestamp, analysis: Analysis = "intention-to-treat") -> MaturedCohorts:
    """Every run of ``scores`` whose outcome window has ended by ``data_end``, as experiment rows
    (:func:`run_cohort`), oldest first; per-protocol keeps the reached outreach accounts and the
    controls not reached (the folder's contact log, :func:`churn.outreach.experiment.reached_in_window`)."""
    definition, _ = model_settings(model)
    contacts = read_contacts(scores) if analysis == "per-protocol" else None
    if analysis == "per-protocol" and contacts is None:
        raise NotEnoughExperiment(f"{scores} has no contact log ({runs.CONTACTS_FILE}): per-protocol needs one (`churn contacts`); use intention-to-treat")
    parts, pending, dropped = [], [], {}
    for record in runs.list_runs(scores).to_dict("records"):
        own = run_definition(record, definition)
        if record["as_of"] + own.horizon > data_end:
            pending.append((record["as_of"], record["as_of"] + own.horizon))
            continue
        risk = runs.load_risk_list(scores, record["run_id"], columns=_RISK_COLUMNS)
        rows, lost = run_cohort(data, record, risk, model, order=len(parts))
        parts.append(rows)
        if lost:
            dropped[str(record["run_id"])] = lost
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["account_id", "run_id", "run_as_of", "cohort", TREATED, PROPENSITY, LABEL])
    if contacts is not None and len(rows):
        reached = reached_in_window(rows, contacts)
        rows = rows[np.where(rows[TREATED].to_numpy(dtype=bool), reached, ~reached)].reset_index(drop=True)
    return MaturedCohorts(rows, pending, data_end, analysis, dropped)


# --------------------------------------------------------------------------- enough to learn from?


def split_cohorts(matured: MaturedCohorts, training: UpliftTraining) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(earlier cohorts to fit, later cohorts held out); :class:`NotEnoughExperiment` with the
    counts — cohorts, called and held-out accounts, when more runs mature — when they cannot
    fit and judge an uplift model."""
    rows = matured.rows
    cohorts = sorted(rows["cohort"].unique()) if len(rows) else []
    n_out = max(1, int(round(len(cohorts) * training.held_out_share)))
    held = rows["cohort"].isin(cohorts[-n_out:]).to_numpy() if len(rows) else np.zeros(0, dtype=bool)
    fit_rows, test = rows[~held].reset_index(drop=True), rows[held].reset_index(drop=True)
    counts = [(name, int(part[TREATED].astype(bool).sum()), int((~part[TREATED].astype(bool)).sum())) for name, part in (("fitted", fit_rows), ("held-out", test))]
    short = len(cohorts) < training.min_cohorts or any(min(called, control) < training.min_per_arm for _, called, control in counts)
    if short:
        raise NotEnoughExperiment(_not_enough(matured, training, len(cohorts), counts))
    return fit_rows, test


def _not_enough(matured: MaturedCohorts, training: UpliftTraining, n: int, counts: list[tuple[str, int, int]]) -> str:
    have = "; ".join(f"{name} cohorts: {called:,} called and {control:,} held out" for name, called, control in counts) if n else "no assigned accounts"
    more = ""
    if matured.pending:
        first = min(end for _, end in matured.pending)
        more = f" {len(matured.pending)} more run(s) mature as the data reaches their horizon's end (the first on {first:%Y-%m-%d})."
    return (
        f"not enough matured experiment to learn the effect of a call: {n} matured cohort(s) by the end of the data ({matured.data_end:%Y-%m-%d}) "
        f"({matured.analysis}; {have}). The uplift model needs at least {training.min_cohorts} matured cohorts (the latest "
        f"{training.held_out_share:.0%} held out to judge it) and at least {training.min_per_arm} called and {training.min_per_arm} held-out accounts "
        f"among both the fitted and the held-out cohorts.{more} Keep scoring weekly with a control group (--control-share)."
    )


# --------------------------------------------------------------------------- fit, judge, keep


@dataclass(frozen=True)
class UpliftResult:
    """What ``churn uplift`` learned: the churn model carrying the uplift model, its evaluation."""

    model: ChurnModel
    evaluation: dict[str, object]
    gate: tuple[bool, str]
    matured: MaturedCohorts
    fitted_cohorts: int
    held_out_cohorts: int
    path: Path | None = None
    run_id: str | None = None
    #: The model's attributes whose value at the earliest run's date the data does not hold
    #: (read from a later export, not static, no history), each with why.
    attributes_unknown: tuple[str, ...] = ()


def qini_curves(rows: pd.DataFrame, uplift: np.ndarray, risk: np.ndarray, points: int = CURVE_POINTS) -> dict[str, list[float]]:
    """Both rankings' Qini curves on the held-out rows at the same shares, in the shape of the
    report's ``uplift_evaluation.json`` (:mod:`churn.outreach.whom`)."""
    t = rows[TREATED].to_numpy(dtype=bool)
    y = rows[LABEL].to_numpy(dtype=float)
    w = ipw_weights(t, rows[PROPENSITY].to_numpy(dtype=float), rows[WEIGHT].to_numpy(dtype=float) if WEIGHT in rows.columns else None)
    # ordered as the evaluation orders them (:func:`ranking_positions`): with no effect found the two curves are one
    by_uplift = qini_curve(ranking_positions(uplift, risk), t, y, w)
    by_risk = qini_curve(ranking_positions(np.zeros(len(risk)), risk), t, y, w)
    at = np.linspace(0, len(t) - 1, points).astype(int)
    return {"share": [float((i + 1) / len(t)) for i in at], "uplift_ranking": [float(by_uplift[i]) for i in at], "risk_ranking": [float(by_risk[i]) for i in at]}


def learn_uplift(model: ChurnModel, matured: MaturedCohorts, training: UpliftTraining = UpliftTraining()) -> UpliftResult:
    """Fit on the earlier cohorts, evaluate on the later ones (the gate), refit on all; a copy
    of ``model`` carrying the deployed uplift model and, in ``metadata["uplift"]``, the evaluation."""
    fit_rows, test = split_cohorts(matured, training)
    settings = training.settings
    judged = fit_uplift(fit_rows, settings)
    uplift = judged.predict(test)["uplift"].to_numpy()
    risk = test["churn_probability"].to_numpy(dtype=float)
    evaluation = evaluate_uplift(test, uplift, risk, capacity=training.capacity, settings=settings)
    gate = uplift_gate(evaluation)
    deployed: UpliftModel = fit_uplift(matured.rows, settings)
    n_fit, n_out = int(fit_rows["cohort"].nunique()), int(test["cohort"].nunique())
    deployed.metadata.update({"analysis": matured.analysis, "cohorts": n_fit + n_out, "data_end": f"{matured.data_end:%Y-%m-%d}"})
    out = copy.copy(model)
    out.metadata = {**model.metadata}
    out.uplift = deployed
    out.metadata["uplift"] = {
        "analysis": matured.analysis, "data_end": f"{matured.data_end:%Y-%m-%d}", "fitted_cohorts": n_fit, "held_out_cohorts": n_out,
        "runs": sorted(map(str, matured.rows["run_id"].unique())), "rows": int(len(matured.rows)),
        "evaluation": {k: v for k, v in evaluation.items() if k != "qini_curve"}, "qini_curve": qini_curves(test, uplift, risk),
        "gate_passed": gate[0], "gate_reason": gate[1],
    }  # fmt: skip
    return UpliftResult(out, evaluation, gate, matured, n_fit, n_out)


def stored_gate(model: ChurnModel) -> tuple[bool, str] | None:
    """The gate a bundle's uplift model passed or not when it was learned (None: no uplift model)."""
    info = model.metadata.get("uplift")
    if model.uplift is None or not isinstance(info, dict):
        return None
    return bool(info.get("gate_passed")), str(info.get("gate_reason", ""))


def evaluation_document(model: ChurnModel, ranking: str, reason: str) -> dict[str, object] | None:
    """A run's ``uplift_evaluation.json`` (the report's "Whom to call" section) from the bundle's
    uplift evaluation, with the ranking the run used and why; None without an uplift model."""
    info = model.metadata.get("uplift")
    if model.uplift is None or not isinstance(info, dict):
        return None
    e = dict(info.get("evaluation", {}))
    return {
        "qini_curve": info.get("qini_curve"), "qini": e.get("qini"), "qini_interval": [e.get("qini_low"), e.get("qini_high")],
        "risk_qini": e.get("qini_risk"), "difference_interval": [e.get("qini_difference_low"), e.get("qini_difference_high")],
        "auuc": e.get("auuc"), "auuc_interval": [e.get("auuc_low"), e.get("auuc_high")], "uplift_at_capacity": e.get("uplift_at_capacity"),
        "uplift_at_capacity_interval": [e.get("uplift_at_capacity_low"), e.get("uplift_at_capacity_high")], "capacity": e.get("capacity"),
        "held_out_rows": e.get("rows"), "analysis": info.get("analysis"), "fitted_cohorts": info.get("fitted_cohorts"),
        "held_out_cohorts": info.get("held_out_cohorts"), "data_end": info.get("data_end"), "gate_passed": info.get("gate_passed"),
        "ranking": ranking, "ranking_reason": reason, "policies": [],
    }  # fmt: skip


def save_uplift_bundle(model: ChurnModel, path: Path) -> Path:
    """Write the churn model carrying its uplift model as one bundle (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_bundle(model, tmp)
    return path


def uplift_from_scores(
    data: Path,
    scores: Path,
    model: ChurnModel,
    *,
    out: Path,
    settings: DataSettings = DataSettings(),
    training: UpliftTraining = UpliftTraining(),
    root: Path | None = None,
    model_label: str = "",
    progress: Callable[[str], None] = lambda _: None,
) -> UpliftResult:
    """``churn uplift``: load the data the matured runs need, collect their cohorts, learn and
    judge the uplift model, write the bundle to ``out`` and (with ``root``) log the evaluation
    to MLflow (experiment ``NAME-uplift``)."""
    runs.upgrade(scores)
    history = runs.list_runs(scores)
    if history.empty:
        raise NotEnoughExperiment(f"{scores} holds no scoring run: score weekly with a control group (`churn score --out {scores}`), then learn once the runs mature")
    if training.analysis == "per-protocol" and read_contacts(scores) is None:
        raise NotEnoughExperiment(f"{scores} has no contact log ({runs.CONTACTS_FILE}): per-protocol needs one (`churn contacts`); use intention-to-treat")
    definition, fconfig = model_settings(model)
    since = history["as_of"].min() - pd.Timedelta(days=max(fconfig.lookback_days, definition.horizon_days))
    progress("Loading the data…")
    contract = load(data, interaction_columns=OPTIONAL_INTERACTION_COLUMNS, since=since, date_format=settings.date_format, tables=settings.source)
    check_inputs(model, contract, str(data))
    end, _ = loaded_data_end(contract, settings)
    # the cohorts' features are recomputed at past dates: an attribute read from a later export
    # is the classic leak of a backfill, so say which ones (as a past-dated churn score does)
    names = [*model.spec.numeric_attributes, *(c for c, _ in model.spec.categorical_attributes)]
    first = pd.Timestamp(history["as_of"].min())
    unknown = unknown_at(names, contract.accounts, contract.attribute_history, as_of=first, settings=settings, export_date=end)
    progress("Recomputing the features at each matured run's date…")
    matured = matured_cohorts(contract, scores, model, data_end=end, analysis=training.analysis)
    progress("Fitting and judging the uplift model…")
    result = learn_uplift(model, matured, training)
    path = save_uplift_bundle(result.model, out)
    run_id = _track(result, root, model_label) if root is not None else None
    return UpliftResult(
        result.model, result.evaluation, result.gate, matured, result.fitted_cohorts, result.held_out_cohorts, path, run_id,
        attributes_unknown=tuple(f"{d.name}: {d.reason}" for d in unknown),
    )  # fmt: skip


def _track(result: UpliftResult, root: Path, model_label: str) -> str:
    configure(root)
    name = str(result.model.metadata.get("registered_model") or MODEL_NAME)
    evaluation = {**result.evaluation, "cycle": result.fitted_cohorts + result.held_out_cohorts, "gate_passed": result.gate[0], "gate_reason": result.gate[1]}
    params = {
        "source": "scoring folder", "analysis": result.matured.analysis, "data_end": f"{result.matured.data_end:%Y-%m-%d}", "churn_model": model_label,
        "fitted_cohorts": result.fitted_cohorts, "held_out_cohorts": result.held_out_cohorts, "rows": len(result.matured.rows),
    }  # fmt: skip
    return log_uplift_evaluations([evaluation], root=root, params=params, run_name=f"uplift-{result.matured.data_end:%Y-%m-%d}", model_name=name)
