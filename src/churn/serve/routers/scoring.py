"""On-demand scoring of accounts sent in the request.

Two routes answer ``POST /score``, one per app: ``router`` scores in the server process (FastAPI
validates the body, the sync handler scores in the server's thread pool); ``pooled_router`` —
included ahead of it when the app has scoring processes (``serve/pool.py``), so it is the one that
matches — hands the raw body to a worker, which validates it as FastAPI would and scores it, and
the server's event loop keeps answering other requests meanwhile. The pooled route is left out
of the OpenAPI schema: the documented route (the same path, never reached then) describes both,
and their answers are the same (``tests/test_serve_pool.py``).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from churn.config import ChurnDefinition, ScoreConfig, to_utc
from churn.serve.deps import Service, get_model, get_service
from churn.serve.errors import ERROR_RESPONSES, ApiError
from churn.serve.model import ServingModel, UnresolvedDefinition
from churn.serve.pool import Failed, InvalidRequest, Outcome, RejectedRows, Scored, ScoringBusy, ScoringUnavailable, Unreadable, body_kind
from churn.serve.schemas import ErrorDetail, ErrorResponse, ScoredAccount, ScoreRequest, ScoreResponse
from churn.serve.scoring import InvalidPayload, score_records

router = APIRouter(tags=["scoring"])
pooled_router = APIRouter(tags=["scoring"])
log = logging.getLogger("churn.serve")


def _settings(service: Service, serving: ServingModel) -> tuple[ScoreConfig, ChurnDefinition]:
    """The bands of the run being served and the churn definition the model decides customers by."""
    snapshot = service.latest.current()
    config = snapshot.score_config if snapshot is not None else service.settings.score
    try:
        return config, serving.churn_definition(snapshot.runs if snapshot is not None else None)
    except UnresolvedDefinition as exc:
        raise ApiError(503, "model_definition", str(exc)) from None


def _response(outcome: Outcome, service: Service, serving: ServingModel) -> ScoreResponse:
    """The answer, or the error the outcome stands for, in the product's error shape."""
    if isinstance(outcome, RejectedRows):
        details = [ErrorDetail(table=p.table, row=p.row, field=p.field, reason=p.reason) for p in outcome.problems[:100]]
        raise ApiError(422, "invalid_rows", outcome.message, details)
    if isinstance(outcome, InvalidRequest):  # as FastAPI reports a body that fails the schema
        raise RequestValidationError([{"loc": ("body", *loc), "msg": msg, "type": kind} for loc, msg, kind in outcome.errors])
    if isinstance(outcome, Unreadable):
        raise HTTPException(400, "There was an error parsing the body")  # FastAPI's words
    if isinstance(outcome, Failed):
        log.error("POST /score failed in a scoring process:\n%s", outcome.traceback)
        raise ApiError(500, "internal_error", "unexpected server error; the service log has the details")
    service.metrics.scored.inc(len(outcome.rows))
    results = [ScoredAccount(**row) for row in outcome.rows]
    return ScoreResponse(as_of=outcome.as_of, model=serving.label, results=results)


DOCUMENTED = dict(
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
            "description": "No model loaded, the model's churn kind is unknown (`model_definition`), or a scoring process stopped (`scoring_unavailable`: retry)",
        },
    },
)


@router.post("/score", **DOCUMENTED)  # type: ignore[arg-type]
def score(request: ScoreRequest, service: Service = Depends(get_service), serving: ServingModel = Depends(get_model)) -> ScoreResponse:
    config, definition = _settings(service, serving)
    outcome: Outcome
    try:
        with serving.one_thread():
            outcome = Scored(score_records(request, serving, config=config, definition=definition), to_utc(request.as_of).isoformat())
    except InvalidPayload as exc:
        outcome = RejectedRows(str(exc), list(exc.problems))
    return _response(outcome, service, serving)


@pooled_router.post("/score", include_in_schema=False, response_model=ScoreResponse)
async def score_in_a_worker(raw: Request, service: Service = Depends(get_service), serving: ServingModel = Depends(get_model)) -> ScoreResponse:
    # in a thread, as the plain route's are: the first run to appear is indexed by this call
    config, definition = await run_in_threadpool(_settings, service, serving)
    body = await raw.body()
    if not body:  # FastAPI's answer to a route's missing body
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    assert service.pool is not None
    try:
        outcome = await service.pool.score(body, body_kind(raw.headers.get("content-type")), config, definition)
    except ScoringBusy as exc:
        raise ApiError(503, "scoring_busy", str(exc), headers={"Retry-After": "1"}) from None
    except ScoringUnavailable as exc:
        raise ApiError(503, "scoring_unavailable", str(exc)) from None
    return _response(outcome, service, serving)
