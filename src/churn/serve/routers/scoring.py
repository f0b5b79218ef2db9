"""On-demand scoring of accounts sent in the request."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from churn.config import to_utc
from churn.serve.deps import Service, get_model, get_service
from churn.serve.errors import ERROR_RESPONSES, ApiError
from churn.serve.model import ServingModel, UnresolvedDefinition
from churn.serve.schemas import ErrorDetail, ErrorResponse, ScoredAccount, ScoreRequest, ScoreResponse
from churn.serve.scoring import InvalidPayload, score_payload

router = APIRouter(tags=["scoring"])


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
        503: {"model": ErrorResponse, "description": "No model loaded, or the model's churn kind is unknown (`model_definition`)"},
    },
)
def score(request: ScoreRequest, service: Service = Depends(get_service), serving: ServingModel = Depends(get_model)) -> ScoreResponse:
    snapshot = service.latest.current()
    config = snapshot.score_config if snapshot is not None else service.settings.score
    try:
        definition = serving.churn_definition(snapshot.runs if snapshot is not None else None)
    except UnresolvedDefinition as exc:
        raise ApiError(503, "model_definition", str(exc)) from None
    try:
        with serving.one_thread():
            scored = score_payload(request, serving, config=config, definition=definition)
    except InvalidPayload as exc:
        details = [ErrorDetail(table=p.table, row=p.row, field=p.field, reason=p.reason) for p in exc.problems[:100]]
        raise ApiError(422, "invalid_rows", str(exc), details) from None
    service.metrics.scored.inc(len(scored))
    results = [ScoredAccount(**row) for row in scored.to_dict("records")]
    return ScoreResponse(as_of=to_utc(request.as_of).isoformat(), model=serving.label, results=results)
