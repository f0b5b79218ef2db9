"""The latest risk list: filtered, sorted pages of it, and one account in full."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from churn.outreach.reasons import split_reasons
from churn.serve.deps import get_snapshot
from churn.serve.errors import ERROR_RESPONSES, ApiError
from churn.serve.index import DETAIL_COLUMNS
from churn.serve.index import Query as ListQuery
from churn.serve.latest import Snapshot
from churn.serve.schemas import AccountDetail, AccountPage, AccountSummary, Band, ErrorResponse, Sort

router = APIRouter(tags=["accounts"])
NO_RUN = {503: {"model": ErrorResponse, "description": "No scoring run yet"}}
MAX_LIMIT = 500


def list_query(
    band: Annotated[Band | None, Query(description="high, medium or low")] = None,
    owner: Annotated[str | None, Query(max_length=200, description="account manager: 'my accounts'")] = None,
    segment: Annotated[str | None, Query(max_length=200)] = None,
    outreach: Annotated[bool | None, Query(description="on this week's call list")] = None,
    control: Annotated[bool | None, Query(description="held out as the no-contact control group")] = None,
    q: Annotated[str | None, Query(max_length=100, description="text in the account id (case-insensitive)")] = None,
    sort: Annotated[Sort, Query(description="column, '-column' for descending")] = "rank",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000_000)] = 0,
) -> ListQuery:
    return ListQuery(band=band, owner=owner, segment=segment, outreach=outreach, control=control, q=q or None, sort=sort, limit=limit, offset=offset)


@router.get("/accounts", response_model=AccountPage, summary="The latest risk list: filter, sort, page", responses={**ERROR_RESPONSES, **NO_RUN})
def list_accounts(query: ListQuery = Depends(list_query), snapshot: Snapshot = Depends(get_snapshot)) -> AccountPage:
    index = snapshot.index
    positions, total = index.select(query)
    items = [AccountSummary(**row) for row in index.records(positions)]
    return AccountPage(run_id=index.run_id, as_of=index.as_of, total=total, offset=query.offset, limit=query.limit, items=items)


def account_detail(snapshot: Snapshot, account_id: str) -> AccountDetail:
    """One account of the latest run with its score history; 404 when it is not on it."""
    index = snapshot.index
    pos = index.position(account_id)
    if pos is None:
        raise ApiError(404, "not_found", f"account {account_id!r} is not on the latest risk list (run {index.run_id}, as of {index.as_of})")
    row = index.records([pos], DETAIL_COLUMNS)[0]
    row = {k: None if isinstance(v, float) and v != v else v for k, v in row.items()}  # no curve (NaN) → null: JSON has no NaN
    row.update(split_reasons(row["reason_features"], row["reason_drivers"], row["reason_contributions"]))
    return AccountDetail(**row, run_id=index.run_id, as_of=index.as_of, history=snapshot.history.for_position(pos))


@router.get(
    "/accounts/{account_id}",
    response_model=AccountDetail,
    summary="One account: score, reasons, suggested action and score history",
    responses={**ERROR_RESPONSES, **NO_RUN, 404: {"model": ErrorResponse, "description": "Not on the latest risk list"}},
)
def get_account(account_id: Annotated[str, Path(max_length=200)], snapshot: Snapshot = Depends(get_snapshot)) -> AccountDetail:
    return account_detail(snapshot, account_id)
