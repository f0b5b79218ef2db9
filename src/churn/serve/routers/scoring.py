"""On-demand scoring of accounts sent in the request."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from churn.config import ChurnDefinition, ScoreConfig, to_utc
from churn.serve.deps import Service, get_model, get_service
from churn.serve.errors import ERROR_RESPONSES, ApiError
from churn.serve.model import ServingModel, UnresolvedDefinition
from churn.serve.pool import Failed, InvalidRequest, Outcome, RejectedRows, Scored, ScoringUnavailable
from churn.serve.schemas import ErrorDetail, ErrorResponse, ScoredAccount, ScoreRequest, ScoreResponse
from churn.serve.scoring import InvalidPayload, score_payload

router = APIRouter(tags=["scoring"])
log = logging.getLogger("churn.serve")


def _score_here(request: ScoreRequest, serving: ServingModel, config: ScoreConfig, definition: ChurnDefinition) -> Outcome:
    """In-process scoring (``score_workers=0``), in the server's thread pool."""
    try:
        with serving.one_thread():
            return Scored(score_payload(request, serving, config=config, definition=definition).to_dict("records"))
    except InvalidPayload as exc:
        return RejectedRows(str(exc), list(exc.problems))


def _rows(outcome: Outcome) -> list[dict[str, object]]:
    """The scored rows, or the error the outcome stands for, in the product's error shape."""
    if isinstance(outcome, Scored):
        return outcome.rows
    if isinstance(outcome, RejectedRows):
        details = [ErrorDetail(table=p.table, row=p.row, field=p.field, reason=p.reason) for p in outcome.problems[:100]]
        raise ApiError(422, "invalid_rows", outcome.message, details)
    if isinstance(outcome, InvalidRequest):  # as FastAPI reports a body that fails the schema
        raise RequestValidationError([{"loc": ("body", *loc), "msg": msg, "type": kind} for loc, msg, kind in outcome.errors])
    assert isinstance(outcome, Failed)
    log.error("POST /score failed in a scoring process:\n%s", outcome.traceback)
    raise ApiError(500, "internal_error", "unexpected server error; the service log has the details")


@router.post(
    "/score",
    response_model=ScoreResponse,
    summary="Score accounts now, from rows in the input contract's columns",
    description=(
        "Runs the data contract, the point-in-time features and the model of the weekly run on the "
        "request's rows: for the same account, data and `as_of`, the probability equals the batch run's. "
        "Who is a customer at `as_of` follows the model's churn definition, as in the weekly run, never the "
        "request's rows: under a subscription model an account without a `churned_at` is scored however quiet "
        "it has been; under an inactivity model the model's horizon and activity event types decide. "
        "Rows the contract rejects, and accounts that are not customers at `as_of`, are answered with 422 "
        "naming the table, row and reason."
    ),
    responses={
        **ERROR_RESPONSES,
        400: {"model": ErrorResponse, "description": "The body cannot be read (not UTF-8 JSON)"},
        503: {
            "model": ErrorResponse,
            "description": "No model loaded, the model's churn kind is unknown (`model_definition`), or the scoring process stopped (`scoring_unavailable`: retry)",
        },
    },
)
async def score(request: ScoreRequest, raw: Request, service: Service = Depends(get_service), serving: ServingModel = Depends(get_model)) -> ScoreResponse:
    snapshot = service.latest.current()
    config = snapshot.score_config if snapshot is not None else service.settings.score
    try:
        definition = serving.churn_definition(snapshot.runs if snapshot is not None else None)
    except UnresolvedDefinition as exc:
        raise ApiError(503, "model_definition", str(exc)) from None
    if service.pool is None:
        outcome = await run_in_threadpool(_score_here, request, serving, config, definition)
    else:  # the event loop answers other requests while a scoring process works
        try:
            outcome = await service.pool.score(await raw.body(), config, definition)
        except ScoringUnavailable as exc:
            raise ApiError(503, "scoring_unavailable", str(exc)) from None
    rows = _rows(outcome)
    service.metrics.scored.inc(len(rows))
    results = [ScoredAccount(**row) for row in rows]
    return ScoreResponse(as_of=to_utc(request.as_of).isoformat(), model=serving.label, results=results)
