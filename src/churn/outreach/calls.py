"""Calls logged one at a time (the account page of ``churn serve``), added to the scoring
folder's contact log — the same ``contacts.parquet`` that ``churn contacts`` merges exports
into and that the per-protocol figures and the uplift model read.

A logged call is one row of the log: ``account_id``, ``contacted_at`` (UTC), ``outcome``, plus
two optional columns the readers ignore, ``agent`` and ``note``. ``outcome`` is
``not_reached`` when nobody answered (one of :data:`churn.outreach.experiment.NOT_REACHED`,
so the call does not count as reaching the account), else what the call achieved
(:data:`CALL_OUTCOMES`). Rows are added under the folder's lock and the file is replaced
atomically, so two agents saving at once both keep their row and a reader never sees half a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from churn.data.io import write_table
from churn.outreach import runs
from churn.outreach.experiment import CONTACT_COLUMNS, CONTACT_DETAIL_COLUMNS, merge_contacts

#: What a call that reached the account achieved (the form's choices, as stored).
CALL_OUTCOMES = ("saved", "not_interested", "call_back", "other")
#: The outcome stored for a call that did not reach the account.
NOT_REACHED_OUTCOME = "not_reached"
#: The longest note kept with a call (characters).
MAX_NOTE = 1000
MAX_AGENT = 100


@dataclass(frozen=True)
class Call:
    """One call as an agent logged it."""

    account_id: str
    contacted_at: pd.Timestamp
    reached: bool
    #: One of :data:`CALL_OUTCOMES`; None only when the call did not reach the account.
    outcome: str | None
    agent: str
    note: str = ""

    def __post_init__(self) -> None:
        if self.reached and self.outcome not in CALL_OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(CALL_OUTCOMES)} for a call that reached the account, not {self.outcome!r}")
        if self.outcome is not None and self.outcome not in CALL_OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(CALL_OUTCOMES)}, not {self.outcome!r}")
        if not self.agent.strip() or len(self.agent) > MAX_AGENT:
            raise ValueError(f"the agent's name must be 1 to {MAX_AGENT} characters")
        if len(self.note) > MAX_NOTE:
            raise ValueError(f"the note is {len(self.note):,} characters; at most {MAX_NOTE:,} are kept")
        if self.contacted_at.tzinfo is None:
            raise ValueError("contacted_at must carry a time zone")

    @property
    def stored_outcome(self) -> str:
        return self.outcome if self.reached and self.outcome else NOT_REACHED_OUTCOME


def call_rows(calls: list[Call]) -> pd.DataFrame:
    """Calls as contact-log rows (the columns and types :func:`experiment.parse_contacts` gives)."""
    return pd.DataFrame(
        {
            "account_id": pd.Series([c.account_id for c in calls], dtype="object"),
            "contacted_at": pd.Series([c.contacted_at for c in calls], dtype="datetime64[ns, UTC]"),
            "outcome": pd.Series([c.stored_outcome for c in calls], dtype="object"),
            "agent": pd.Series([c.agent.strip() for c in calls], dtype="object"),
            "note": pd.Series([c.note.strip() for c in calls], dtype="object"),
        }
    )[[*CONTACT_COLUMNS, *CONTACT_DETAIL_COLUMNS]]


def read_log(scores: Path) -> pd.DataFrame | None:
    """The whole contact log with its optional columns, or None when there is none yet."""
    path = Path(scores) / runs.CONTACTS_FILE
    return pd.read_parquet(path) if path.exists() else None


def log_calls(scores: Path, calls: list[Call], *, timeout: float) -> Path:
    """Add ``calls`` to the folder's contact log under the folder's lock (waiting at most
    ``timeout`` seconds: :class:`runs.FolderLockedError` after that) and return its path."""
    with runs.locked(scores, timeout=timeout, holder="churn serve: log a call"):
        merged = merge_contacts(read_log(scores), call_rows(calls))
        return write_table(merged, Path(scores) / runs.CONTACTS_FILE.removesuffix(".parquet"), "parquet")
