"""What earlier lists did: the assignments still running, each run's cohorts, the contact log,
and the outcomes and uplift of every list whose horizon has passed.

Reads the run store (:mod:`churn.outreach.runs`); each run is judged by the churn definition
stored with it, so a change of horizon never rewrites what an earlier list achieved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from churn.config import ChurnDefinition, UpliftConfig, definition_from_dict
from churn.features.labels import label_accounts
from churn.outreach import runs
from churn.outreach.experiment import CONTACT_COLUMNS, CONTACT_DETAIL_COLUMNS, active_assignments, cohort, reached_in_window, uplift_table
from churn.outreach.retention import customer_spells, list_outcomes, retention_table


def run_definition(record: dict, fallback: ChurnDefinition) -> ChurnDefinition:
    """The churn definition a run was scored with (``fallback`` for records without one)."""
    raw = record.get("churn")
    return definition_from_dict(raw) if isinstance(raw, dict) else fallback


def prior_assignments(out_dir: Path, as_of: pd.Timestamp, definition: ChurnDefinition) -> pd.DataFrame:
    """Assignments of earlier runs still within their own horizon at ``as_of``."""
    frames = []
    for record in runs.list_runs(out_dir).to_dict("records"):
        horizon = run_definition(record, definition).horizon_days
        if not record["as_of"] < as_of < record["as_of"] + pd.Timedelta(days=horizon):
            continue
        risk = runs.load_risk_list(out_dir, record["run_id"], columns=["account_id", "outreach", "control", "assigned_as_of"])
        frames.append(cohort(risk, record["as_of"]).assign(run_as_of=record["as_of"], horizon_days=horizon))
    return active_assignments(pd.concat(frames, ignore_index=True) if frames else None, as_of)


def assignment_cohorts(out_dir: Path, definition: ChurnDefinition = ChurnDefinition()) -> pd.DataFrame:
    """Every run's newly assigned accounts (``arm``) with ``run_id``, ``run_as_of`` and
    ``horizon_days`` — what a contact log is checked against."""
    frames = [
        cohort(runs.load_risk_list(out_dir, record["run_id"], columns=["account_id", "outreach", "control", "assigned_as_of"]), record["as_of"]).assign(
            run_id=record["run_id"], run_as_of=record["as_of"], horizon_days=run_definition(record, definition).horizon_days
        )
        for record in runs.list_runs(out_dir).to_dict("records")
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["account_id", "arm", "run_id", "run_as_of", "horizon_days"])


def stale_later_runs(out_dir: Path, as_of: pd.Timestamp, horizon: pd.Timedelta, risk: pd.DataFrame) -> list[str]:
    """Later runs (within this run's horizon) that were scored without this run's draw.

    Scoring an earlier date after a later one — a backfill, or two dates run out of order —
    means the later runs could not hold this run's new controls out. Re-running a date
    that reproduces its previous draw changes nothing, so that case is not reported.
    """
    history = runs.list_runs(out_dir)
    later = history[(history["as_of"] > as_of) & (history["as_of"] < as_of + horizon)]
    if later.empty:
        return []
    same = history[history["as_of"] == as_of]
    if len(same):
        columns = ["account_id", "outreach", "control", "assigned_as_of"]
        key = lambda frame: cohort(frame[columns], as_of)[["account_id", "arm"]].sort_values("account_id").reset_index(drop=True)  # noqa: E731
        if key(runs.load_risk_list(out_dir, same["run_id"].iloc[0], columns=columns)).equals(key(risk)):
            return []
    return [f"{t:%Y-%m-%d}" for t in later["as_of"]]





_OUTCOME_COLUMNS = ["account_id", "as_of", "churn_probability", "risk_band", "annual_value", "outreach", "control", "assigned_as_of"]


def read_contacts(out_dir: Path) -> pd.DataFrame | None:
    """The folder's contact log (``churn contacts``, calls logged in ``churn serve``), or None."""
    path = Path(out_dir) / runs.CONTACTS_FILE
    if not path.exists():
        return None
    log = pd.read_parquet(path)
    return log[CONTACT_COLUMNS + [c for c in CONTACT_DETAIL_COLUMNS if c in log.columns]]


@dataclass
class PastResults:
    """What happened to the matured past lists."""

    outcomes: pd.DataFrame  # churn per run × group / risk band (retention.list_outcomes)
    uplift: pd.DataFrame  # experiment.uplift_table
    cohorts: pd.DataFrame  # one row per account each run newly assigned, with its outcome


def past_results(
    out_dir: Path,
    accounts: pd.DataFrame,
    interactions: pd.DataFrame,
    definition: ChurnDefinition,
    data_end: pd.Timestamp,
    contacts: pd.DataFrame | None = None,
    uplift: UpliftConfig = UpliftConfig(),
) -> PastResults:
    """Outcomes and uplift of every earlier list whose horizon has passed by ``data_end``,
    each judged by the churn definition stored with it (``definition`` only for old records)."""
    outcomes, cohorts = [], []
    for record in runs.list_runs(out_dir).to_dict("records"):
        own = run_definition(record, definition)
        as_of = record["as_of"]
        if as_of + own.horizon > data_end:
            continue
        labels = label_accounts(accounts, interactions, as_of=as_of, definition=own)
        risk = runs.load_risk_list(out_dir, record["run_id"], columns=_OUTCOME_COLUMNS)
        outcome = list_outcomes(risk, labels)
        outcome.insert(0, "run_as_of", f"{as_of:%Y-%m-%d}")
        outcome.insert(1, "run_id", record["run_id"])
        outcomes.append(outcome)
        assigned = cohort(risk, as_of).merge(labels[["account_id", "churned"]], on="account_id", how="inner")
        cohorts.append(assigned.assign(run_id=record["run_id"], run_as_of=as_of, horizon_days=own.horizon_days))
    if not outcomes:
        return PastResults(pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
    table = pd.concat(cohorts, ignore_index=True)
    if contacts is not None:
        table["reached"] = reached_in_window(table, contacts)
    return PastResults(pd.concat(outcomes, ignore_index=True), uplift_table(table, alpha=uplift.alpha), table)


def recent_retention(
    accounts: pd.DataFrame,
    as_of: pd.Timestamp,
    months: int = 12,
    *,
    interactions: pd.DataFrame | None = None,
    definition: ChurnDefinition | None = None,
) -> pd.DataFrame:
    """Monthly (E − N)/S for the last ``months`` complete months, overall and by segment.

    For inactivity churn (no ``churned_at``) an account churns ``horizon`` days after its last
    qualifying activity, as in ``churn retention``; a month counts only once the events given
    cover a whole horizon before it — earlier lapses cannot be dated from them."""
    start = (as_of - pd.DateOffset(months=months)).replace(day=1)
    if definition is not None and definition.resolve_kind(accounts) == "inactivity":
        if interactions is None or interactions.empty:
            return retention_table(accounts, start=as_of, end=as_of)  # nothing to date a lapse by: no months
        start = max(start, interactions["occurred_at"].min() + definition.horizon)
        accounts = customer_spells(accounts, interactions, definition, as_of)
    overall = retention_table(accounts, start=start, end=as_of)
    if "segment" not in accounts.columns:
        return overall
    by_segment = retention_table(accounts, start=start, end=as_of, by=["segment"])
    return pd.concat([overall.assign(segment=None), by_segment], ignore_index=True)
