"""Everything the service reads from a scoring folder, in one place.

The rest of the package asks this module for the run history, one run's risk list, the
settings a run was scored with, and a cheap token that changes when a new run lands. A
change in how runs are stored is a change to this file only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from churn.config import ScoreConfig
from churn.outreach import runs

#: The scoring folder's append-only run log: it changes exactly when a run is published.
RUN_LOGS = (runs.LOG_FILE,)


class ScoresFolder:
    """Read-only view of a folder written by ``churn score --out``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def token(self) -> tuple[tuple[int, int], ...] | None:
        """(mtime, size) of the run log: a ``stat`` call, changes whenever a run is added.
        None while the folder holds no run."""
        stats = []
        for name in RUN_LOGS:
            try:
                st = os.stat(self.root / name)
            except OSError:
                continue
            stats.append((st.st_mtime_ns, st.st_size))
        return tuple(stats) or None

    def runs(self) -> pd.DataFrame:
        """One row per run, oldest first (by as_of, then by when it was scored)."""
        history = runs.list_runs(self.root)
        if history.empty:
            return history
        return history.sort_values(["as_of", "scored_at"], kind="stable").reset_index(drop=True)

    def risk_list(self, run_id: str, columns: list[str] | None = None) -> pd.DataFrame:
        """One run's risk list (all of it, or only ``columns``)."""
        return runs.load_risk_list(self.root, run_id, columns=columns)

    def score_config(self, default: ScoreConfig) -> ScoreConfig:
        """The band thresholds of the latest run (``run.json``), so on-demand scores are banded
        like the list next to them; ``default`` when the folder does not say."""
        latest = runs.latest_run(self.root)
        if latest is None:
            return default
        try:
            context = json.loads((runs.run_dir(self.root, str(latest["run_id"])) / "run.json").read_text(encoding="utf-8"))
            medium, high = (float(t) for t in context["thresholds"])
            return ScoreConfig(medium_threshold=medium, high_threshold=high, top_reasons=default.top_reasons)
        except (OSError, ValueError, KeyError, TypeError):
            return default
