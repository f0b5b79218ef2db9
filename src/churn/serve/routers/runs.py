"""The run history: one entry per weekly list."""

from __future__ import annotations

import pandas as pd
from fastapi import APIRouter, Depends

from churn.serve.deps import get_snapshot
from churn.serve.errors import ERROR_RESPONSES
from churn.serve.latest import Snapshot
from churn.serve.schemas import ErrorResponse, RunList, RunSummary

router = APIRouter(tags=["runs"])
FIELDS = [f for f in RunSummary.model_fields if f not in ("latest", "as_of")]


def run_summaries(runs: pd.DataFrame, latest_run_id: str) -> list[RunSummary]:
    """Newest first; counts and model fields where the run log has them."""
    frame = runs.iloc[::-1].reindex(columns=FIELDS)
    frame = frame.astype(object).where(frame.notna(), None)
    as_of = [f"{t:%Y-%m-%d}" for t in runs["as_of"].iloc[::-1]]
    out = []
    for row, day in zip(frame.to_dict("records"), as_of):  # one per run: tens, not accounts
        for key in ("accounts", "high", "medium", "low", "outreach", "control"):
            row[key] = None if row[key] is None else int(row[key])
        for key in ("scored_at", "model", "model_version"):
            value = row[key]
            row[key] = None if value is None else str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
        out.append(RunSummary(**row, as_of=day, latest=row["run_id"] == latest_run_id))
    return out


@router.get("/runs", response_model=RunList, summary="Every scoring run, newest first", responses={**ERROR_RESPONSES, 503: {"model": ErrorResponse, "description": "No run yet"}})
def list_runs(snapshot: Snapshot = Depends(get_snapshot)) -> RunList:
    return RunList(runs=run_summaries(snapshot.runs, snapshot.index.run_id))
