"""What routes depend on: the service's state, the current run and the model."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from churn.serve.errors import ApiError
from churn.serve.latest import LatestRun, Snapshot
from churn.serve.metrics import Metrics
from churn.serve.model import ServingModel
from churn.serve.pool import ScoringPool
from churn.serve.schemas import ErrorDetail
from churn.serve.settings import ServeSettings


@dataclass
class Service:
    """One app's state, created by ``create_app`` and kept on ``app.state.service``."""

    settings: ServeSettings
    latest: LatestRun
    metrics: Metrics
    model: ServingModel | None = None
    model_problem: str | None = None  # why there is no model
    model_note: str | None = None  # e.g. which fallback was loaded
    #: Scoring processes for POST /score (``settings.score_workers``); None scores in this process.
    pool: ScoringPool | None = None


def get_service(request: Request) -> Service:
    return request.app.state.service  # type: ignore[no-any-return]


def get_snapshot(request: Request) -> Snapshot:
    """The run being served; 503 until the scoring folder holds one."""
    service = get_service(request)
    snapshot = service.latest.current()
    if snapshot is None:
        why = service.latest.last_error or f"{service.settings.scores_dir} holds no scoring run yet (run `churn score --out {service.settings.scores_dir}`)"
        raise ApiError(503, "no_run", why)
    service.metrics.run_accounts.set(len(snapshot.index))
    return snapshot


def get_model(request: Request) -> ServingModel:
    service = get_service(request)
    if service.model is None:
        raise ApiError(503, "no_model", service.model_problem or "no model loaded: start the service with --model")
    return service.model


def _query_names(dependant) -> set[str]:  # type: ignore[no-untyped-def]
    """Every query parameter a route declares, its dependencies' included."""
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def strict_query(request: Request) -> None:
    """422 for a query parameter the route does not know, or one given twice: ``?bnad=high``
    must not silently return the unfiltered list, nor ``?owner=a&owner=b`` only b's accounts."""
    route = request.scope.get("route")
    known = _query_names(route.dependant) if route is not None else set()
    params = request.query_params
    details = [ErrorDetail(field=f"query.{name}", reason="unknown parameter") for name in sorted(set(params) - known)]
    details += [ErrorDetail(field=f"query.{name}", reason="given more than once") for name in sorted(set(params)) if len(params.getlist(name)) > 1]
    if details:
        raise ApiError(422, "invalid_request", "; ".join(f"{d.field}: {d.reason}" for d in details), details)
