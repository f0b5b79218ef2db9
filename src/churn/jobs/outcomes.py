"""``churn retention`` and ``churn contacts``: actual retention per period, how past lists
turned out, and the contact log the per-protocol figures read.

Each function does the work and returns what a command shows; none prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from churn.config import ChurnDefinition, DataSettings, ScoreConfig, UpliftConfig, to_utc
from churn.data.attributes import AttributeDecision, unknown_at
from churn.data.contract import load
from churn.data.dataend import loaded_data_end
from churn.data.io import write_table
from churn.jobs.weekly import rerender_report
from churn.outreach import runs
from churn.outreach.experiment import merge_contacts, parse_contacts, power_note, reached_in_window
from churn.outreach.experiment import reached as reached_contacts
from churn.outreach.history import PastResults, assignment_cohorts, past_results, read_contacts, run_definition
from churn.outreach.retention import customer_spells, observed_start, retention_table


@dataclass(frozen=True)
class Retention:
    """``churn retention --data``: (E − N) / S per period and where it was written."""

    table: pd.DataFrame
    by: list[str]
    #: Transactional data: churn was dated as the inactivity lapse (no churned_at values).
    inactivity: bool
    horizon_days: int
    paths: list[Path]
    #: ``--by`` columns whose values are the export's, not known over the periods counted.
    unknown_by: tuple[AttributeDecision, ...] = ()


def retention(
    data: Path,
    settings: DataSettings,
    *,
    freq: str,
    by: list[str],
    horizon: int,
    since: str | None,
    until: str | None,
    out: Path,
) -> Retention:
    """Actual retention rates per period, overall or by account columns, written as CSV and Parquet."""
    contract = load(data, interaction_columns=[], date_format=settings.date_format, tables=settings.source)
    accounts = contract.accounts
    end, _ = loaded_data_end(contract, settings)
    definition = ChurnDefinition(horizon_days=horizon)
    inactivity = definition.resolve_kind(accounts) == "inactivity"
    accounts = customer_spells(accounts, contract.interactions, definition, end)
    missing = [c for c in by if c not in accounts.columns]
    if missing:
        raise ValueError(f"--by column(s) not in accounts: {', '.join(missing)} (have: {', '.join(accounts.columns)})")
    start = to_utc(since) if since else observed_start(contract)
    table = retention_table(accounts, freq=freq, by=by, start=start, end=to_utc(until) if until else end)
    paths = [write_table(table, out, fmt) for fmt in ("csv", "parquet")]
    unknown = unknown_at(by, contract.accounts, contract.attribute_history, as_of=start, settings=settings, export_date=end)
    return Retention(table, by, inactivity, horizon, paths, tuple(unknown))


@dataclass(frozen=True)
class ListOutcomes:
    """``churn retention --scores``: what the matured lists achieved, or why none has matured."""

    past: PastResults
    definition: ChurnDefinition
    data_end: pd.Timestamp
    #: Dates of the runs in the folder (for "none has matured yet").
    run_dates: list[pd.Timestamp]
    power: str | None = None
    outcomes_path: Path | None = None
    uplift_path: Path | None = None
    report: Path | None = None


def list_outcomes(data: Path, scores: Path, settings: DataSettings) -> ListOutcomes:
    """Closed loop: how past risk lists turned out and what the outreach did (uplift), written
    into the latest run's folder, with its report re-rendered."""
    runs.upgrade(scores, timeout=ScoreConfig().lock_timeout_seconds)
    latest = runs.latest_run(scores)
    if latest is None:
        raise ValueError(f"{scores} holds no scoring history")
    contract = load(data, interaction_columns=[], date_format=settings.date_format, tables=settings.source)
    end, _ = loaded_data_end(contract, settings)
    definition = run_definition(latest, ChurnDefinition())
    uplift = UpliftConfig()
    past = past_results(scores, contract.accounts, contract.interactions, definition, data_end=end, contacts=read_contacts(scores), uplift=uplift)
    dates = list(runs.list_runs(scores)["as_of"])
    if past.outcomes.empty:
        return ListOutcomes(past, definition, end, dates)
    note = power_note(past.uplift, alpha=uplift.alpha, power=uplift.power, relative_reduction=uplift.relative_reduction)
    folder = runs.run_dir(scores, str(latest["run_id"]))
    outcome_path = write_table(past.outcomes, folder / "outcomes", "csv")
    uplift_path = write_table(past.uplift, folder / "uplift", "csv")
    report = rerender_report(scores, past.outcomes, past.uplift, run_id=str(latest["run_id"]))
    with runs.locked(scores, timeout=ScoreConfig().lock_timeout_seconds, holder="churn retention --scores"):
        runs.refresh_links(scores)
    return ListOutcomes(past, definition, end, dates, note, outcome_path, uplift_path, report)


@dataclass(frozen=True)
class ContactLog:
    """``churn contacts``: the merged log, how many rows were new, and who was reached."""

    log: pd.DataFrame
    added: int
    given: int
    path: Path
    #: Per run arm (``outreach``/``control``): accounts assigned, and reached within their horizon.
    assigned: dict[str, int]
    reached: dict[str, int]
    #: Contacts in the whole log whose outcome says the account was reached.
    reached_total: int


def read_contact_file(file: Path) -> pd.DataFrame:
    """A contact log export as it was written (CSV or Parquet)."""
    if not file.exists():
        raise ValueError(f"{file}: no such file")
    if file.suffix.lower() == ".csv":
        return pd.read_csv(file, dtype={"account_id": "str"}, keep_default_na=False, na_values=[""])
    if file.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(file)
    raise ValueError(f"{file}: give a .csv or .parquet file")


def record_contacts(file: Path, scores: Path) -> ContactLog:
    """Merge a contact log export into the scoring folder's log (under its lock), and count
    the outreach and control accounts contacted within their horizon."""
    new = parse_contacts(read_contact_file(file), str(file))
    with runs.locked(scores, timeout=ScoreConfig().lock_timeout_seconds, holder="churn contacts"):
        runs.migrate_legacy(scores)
        if runs.latest_run(scores) is None:
            raise ValueError(f"{scores} holds no scoring run: score first, then record the contacts made on its list")
        existing = read_contacts(scores)
        merged = merge_contacts(existing, new)
        path = write_table(merged, scores / runs.CONTACTS_FILE.removesuffix(".parquet"), "parquet")
    added = len(merged) - (0 if existing is None else len(existing))
    cohorts = assignment_cohorts(scores)
    assigned: dict[str, int] = {}
    reached: dict[str, int] = {}
    if len(cohorts):
        hit = reached_in_window(cohorts, merged)
        arm = cohorts["arm"].to_numpy()
        for name in ("outreach", "control"):
            assigned[name] = int((arm == name).sum())
            reached[name] = int(hit[arm == name].sum())
    return ContactLog(merged, added, len(new), path, assigned, reached, int(reached_contacts(merged["outcome"]).sum()))
