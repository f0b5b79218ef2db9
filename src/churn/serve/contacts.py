"""Recent support contacts and survey answers per account, for the account page.

Read once per run from the data folder (through the data contract, only the recent
window), kept sorted by account so a page finds its rows by binary search.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from churn.config import SURVEY_RANGES
from churn.data.contract import load

CONTACT_COLUMNS = ("channel", "case_id", "wait_seconds", "handle_seconds", "resolved", "transferred", "ces", "csat", "nps")
SURVEY_COLUMNS = tuple(SURVEY_RANGES)


def recent_contacts(interactions: pd.DataFrame, *, support_event_type: str | None) -> pd.DataFrame:
    """Support contacts (the model's support event type, or any event with a channel when
    the data has none) and survey answers, sorted by account then newest first."""
    keep = np.zeros(len(interactions), dtype=bool)
    if support_event_type == "*channel*" and "channel" in interactions.columns:
        keep |= interactions["channel"].notna().to_numpy()
    elif support_event_type:
        keep |= (interactions["event_type"].astype("str") == support_event_type).to_numpy()
    for col in SURVEY_COLUMNS:
        if col in interactions.columns:
            keep |= interactions[col].notna().to_numpy()
    columns = ["account_id", "occurred_at", "event_type", *(c for c in CONTACT_COLUMNS if c in interactions.columns)]
    out = interactions.loc[keep, columns].copy()
    out["account_id"] = out["account_id"].astype("str")
    return out.sort_values(["account_id", "occurred_at"], ascending=[True, False], kind="stable").reset_index(drop=True)


class ContactIndex:
    """Look up an account's recent contacts in a frame sorted by account id."""

    def __init__(self, contacts: pd.DataFrame, *, since: pd.Timestamp) -> None:
        self.frame = contacts
        self.since = since
        self._ids = contacts["account_id"].to_numpy(dtype=object)

    def for_account(self, account_id: str, limit: int) -> list[dict[str, object]]:
        lo = int(np.searchsorted(self._ids, account_id, side="left"))
        hi = int(np.searchsorted(self._ids, account_id, side="right"))
        part = self.frame.iloc[lo : min(hi, lo + limit)]
        return part.astype(object).where(part.notna(), None).to_dict("records")


def load_contacts(data_dir: Path, *, since: pd.Timestamp, support_event_type: str | None) -> ContactIndex:
    """Contacts and surveys from ``since`` to the end of the data in ``data_dir``."""
    data = load(data_dir, interaction_columns=CONTACT_COLUMNS, since=since)
    return ContactIndex(recent_contacts(data.interactions, support_event_type=support_event_type), since=since)
