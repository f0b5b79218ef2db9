"""The latest run, held in memory and swapped for the next one when it lands.

Every request asks :meth:`LatestRun.current`. At most every ``reload_check_seconds`` that
costs one ``stat`` of the run log; when the log changed, the new run is indexed (in a
background thread by default, while requests keep being answered from the previous run)
and swapped in whole, so a request never sees half of one run and half of another.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import pandas as pd

from churn.config import ScoreConfig
from churn.serve.contacts import ContactIndex, load_contacts
from churn.serve.index import RunIndex, ScoreHistory, align_history
from churn.serve.settings import ServeSettings
from churn.serve.store import ScoresFolder

log = logging.getLogger("churn.serve")

HISTORY_COLUMNS = ["account_id", "churn_probability", "risk_band"]


@dataclass
class Snapshot:
    """Everything the service shows about one run."""

    index: RunIndex
    history: ScoreHistory
    runs: pd.DataFrame  # the whole run log, oldest first
    score_config: ScoreConfig
    token: object
    contacts: ContactIndex | None = None
    contacts_note: str | None = None


def _as_of_text(value: object) -> str:
    return f"{pd.Timestamp(value):%Y-%m-%d}"


def build_snapshot(store: ScoresFolder, settings: ServeSettings, support_event_type: str | None) -> Snapshot | None:
    """Index the latest run of ``store`` (None when it holds none yet)."""
    token = store.token()
    runs = store.runs()
    if runs.empty:
        return None
    latest = runs.iloc[-1]
    index = RunIndex(store.risk_list(str(latest["run_id"])), run_id=str(latest["run_id"]), as_of=_as_of_text(latest["as_of"]))
    past = runs.iloc[-settings.history_runs :]
    frames = [
        (str(r.run_id), _as_of_text(r.as_of), index.frame[HISTORY_COLUMNS] if r.run_id == index.run_id else store.risk_list(str(r.run_id), HISTORY_COLUMNS))
        for r in past.itertuples(index=False)  # one file per past run, at most history_runs
    ]
    snapshot = Snapshot(
        index=index,
        history=align_history(index.ids, frames),
        runs=runs,
        score_config=store.score_config(settings.score),
        token=token,
    )
    if settings.data_dir is None:
        snapshot.contacts_note = "Support contacts are unavailable: the service was started without --data."
    else:
        since = pd.Timestamp(latest["as_of"]) - pd.Timedelta(days=settings.contact_days)
        try:
            snapshot.contacts = load_contacts(settings.data_dir, since=since, support_event_type=support_event_type)
        except Exception as exc:  # noqa: BLE001 - the pages still work without contacts
            snapshot.contacts_note = f"Support contacts are unavailable: {exc}"
            log.warning("contacts not loaded from %s: %s", settings.data_dir, exc)
    return snapshot


class LatestRun:
    """Holds the current :class:`Snapshot` and replaces it when a new run appears."""

    def __init__(self, store: ScoresFolder, settings: ServeSettings, support_event_type: str | None = None) -> None:
        self.store = store
        self.settings = settings
        self.support_event_type = support_event_type
        self._snapshot: Snapshot | None = None
        self._checked = float("-inf")
        self._lock = threading.Lock()
        self._loading: threading.Thread | None = None
        self.last_error: str | None = None

    def current(self) -> Snapshot | None:
        """The run to answer from; starts a reload when the folder has a newer one."""
        now = time.monotonic()
        if now - self._checked >= self.settings.reload_check_seconds:
            self._checked = now
            snapshot = self._snapshot
            token = self.store.token()
            if token is not None and (snapshot is None or token != snapshot.token):
                if snapshot is None or not self.settings.background_reload:
                    self.reload()
                else:
                    self._reload_in_background()
        return self._snapshot

    def reload(self) -> Snapshot | None:
        """Build the latest run's snapshot now and swap it in."""
        with self._lock:
            if self._snapshot is not None and self.store.token() == self._snapshot.token:
                return self._snapshot
            try:
                snapshot = build_snapshot(self.store, self.settings, self.support_event_type)
            except Exception as exc:  # noqa: BLE001 - keep serving the previous run
                self.last_error = f"cannot load the latest run from {self.store.root}: {type(exc).__name__}: {exc}"
                log.error(self.last_error)
                return self._snapshot
            self.last_error = None
            if snapshot is not None:
                self._snapshot = snapshot
                log.info("serving run %s (as of %s, %d accounts)", snapshot.index.run_id, snapshot.index.as_of, len(snapshot.index))
            return self._snapshot

    def _reload_in_background(self) -> None:
        if self._loading is not None and self._loading.is_alive():
            return
        self._loading = threading.Thread(target=self.reload, name="churn-serve-reload", daemon=True)
        self._loading.start()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a background reload to finish (tests, shutdown)."""
        if self._loading is not None:
            self._loading.join(timeout)
