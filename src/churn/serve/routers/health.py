"""Liveness, readiness, version and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from churn import __version__
from churn.serve.deps import Service, get_service
from churn.serve.errors import ERROR_RESPONSES
from churn.serve.schemas import Health, Ready, Version

public = APIRouter(tags=["service"])  # no auth, ever
router = APIRouter(tags=["service"])


@public.get("/health", response_model=Health, summary="The process is up (no auth, no checks)")
def health() -> Health:
    return Health()


@router.get(
    "/ready",
    response_model=Ready,
    summary="A model is loaded, a run is present and the scoring processes run",
    responses={**ERROR_RESPONSES, 503: {"model": Ready, "description": "Not ready yet; `problems` says why"}},
)
def ready(service: Service = Depends(get_service)) -> Response:
    snapshot = service.latest.current()
    problems = []
    if service.model is None:
        problems.append(service.model_problem or "no model loaded")
    if snapshot is None:
        problems.append(service.latest.last_error or f"no scoring run in {service.settings.scores_dir} yet")
    running = None
    if service.pool is not None:
        running = service.pool.alive()  # counted first: the answer is the pool found, not one a replacement has begun to start
        service.pool.check()  # a pool that broke while idle is replaced now, not on the next POST /score
        if running < service.pool.workers:
            problems.append(f"{running} of {service.pool.workers} scoring processes running (a new pool is starting)")
    body = Ready(ready=not problems, model_loaded=service.model is not None, run_present=snapshot is not None, scoring_processes=running, problems=problems)
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)


@router.get("/version", response_model=Version, summary="Service, model and run versions", responses=ERROR_RESPONSES)
def version(service: Service = Depends(get_service)) -> Version:
    snapshot = service.latest.current()
    return Version(
        version=__version__,
        model=None if service.model is None else service.model.label,
        model_version=None if service.model is None else service.model.version,
        run_id=None if snapshot is None else snapshot.index.run_id,
        as_of=None if snapshot is None else snapshot.index.as_of,
    )


@router.get(
    "/metrics",
    summary="Prometheus text exposition",
    response_class=Response,
    responses={**ERROR_RESPONSES, 200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}, "description": "Metrics"}},
)
def metrics(request: Request, service: Service = Depends(get_service)) -> Response:
    snapshot = service.latest.current()
    if snapshot is not None:
        service.metrics.run_accounts.set(len(snapshot.index))
        service.metrics.run_as_of.set(snapshot.runs["as_of"].iloc[-1].timestamp())
    return Response(service.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
