"""The app factory: ``create_app(settings)`` builds a FastAPI app over a scoring folder.

Nothing happens at import time. The factory loads the model (unless one is passed in),
indexes the latest run, and wires routers, error handlers, auth and metrics; tests build
as many apps as they like over temporary folders.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles

from churn import __version__
from churn.outreach.playbook import load_playbook
from churn.serve.auth import ApiKeyMiddleware, Sessions
from churn.serve.deps import Service, strict_query
from churn.serve.errors import install_error_handlers
from churn.serve.guard import BodyLimitMiddleware
from churn.serve.latest import LatestRun
from churn.serve.metrics import Metrics, MetricsMiddleware
from churn.serve.model import ServingModel, load_serving_model
from churn.serve.pool import ScoringPool
from churn.serve.routers import accounts, health, pages, runs, scoring
from churn.serve.schemas import document_limits
from churn.serve.settings import ServeSettings
from churn.serve.store import ScoresFolder
from churn.serve.throttle import LoginThrottle

log = logging.getLogger("churn.serve")

DESCRIPTION = """
The weekly churn-risk list as a service.

* `GET /accounts` — the latest risk list, filtered, sorted and paged;
  `GET /accounts/{account_id}` — one account with its reasons, suggested action and score history.
* `POST /score` — score accounts now from rows in the input contract's columns (same data, same
  `as_of` → the same probability as the weekly run).
* `GET /runs` — every scoring run; `GET /metrics` — Prometheus text.

When the service has an API key, send it in the `X-API-Key` header (everything except `/health`);
the pages' sign-in session is never accepted here. Request bodies, rows per request, text
lengths and attributes per account are limited (413 or 422; the limits are in this schema).
Every error has the shape `{"error": {"status", "error", "message", "details"}}`.
"""

API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="The service's CHURN_API_KEY")


def _load_model(settings: ServeSettings) -> tuple[ServingModel | None, str | None, str | None]:
    """(model, why there is none, note on a fallback)."""
    if settings.model_ref is None:
        return None, "no model configured: start the service with --model to score on demand", None
    fallback = settings.fallback_bundle if settings.model_ref == settings.fallback_for else None
    try:
        model, note = load_serving_model(settings.model_ref, fallback=fallback, playbook=load_playbook(settings.playbook))
    except ValueError as exc:
        log.warning("no model: %s", exc)
        return None, str(exc), None
    if note:
        log.warning(note)
    return model, None, note


def create_app(settings: ServeSettings, *, model: ServingModel | None = None) -> FastAPI:
    """Build the service. ``model`` skips loading ``settings.model_ref`` (tests, notebooks)."""
    problem = note = None
    if model is None:
        model, problem, note = _load_model(settings)
    support_event_type = model.spec.support_event_type if model is not None else "support_contact"
    service = Service(settings=settings, latest=LatestRun(ScoresFolder(settings.scores_dir), settings, support_event_type), metrics=Metrics(), model=model, model_problem=problem, model_note=note)
    if model is not None:
        service.metrics.model.info({"model": model.label, "version": model.version or ""})
    service.latest.reload()  # the first run is indexed before the first request
    if model is not None and settings.score_workers:
        service.pool = ScoringPool(model, settings.score_workers, settings.limits, timeout=settings.score_timeout_seconds, max_pending=settings.score_queue)

    strict = [Depends(strict_query)]
    secured = [*strict, Depends(API_KEY_HEADER)] if settings.api_key else strict  # the key: documents the header in OpenAPI
    app = FastAPI(title="churn", version=__version__, description=DESCRIPTION, lifespan=_lifespan)
    app.state.service = service
    app.state.templates = pages.make_environment()
    app.state.sessions = Sessions(settings.api_key, settings.session_seconds, behind_tls_proxy=settings.behind_tls_proxy)
    app.state.login_throttle = LoginThrottle(settings.login_failures, settings.login_window_seconds)
    app.include_router(health.public, dependencies=strict)
    # with scoring processes their route comes first and answers POST /score; the in-process one documents it
    pooled = (scoring.pooled_router,) if service.pool is not None else ()
    for router in (health.router, accounts.router, *pooled, scoring.router, runs.router):
        app.include_router(router, dependencies=secured)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")
    install_error_handlers(app, pages.page_error)
    _document_limits(app, settings)
    if settings.api_key:
        app.add_middleware(ApiKeyMiddleware, key=settings.api_key, sessions=app.state.sessions)
    # before auth: an oversized body is refused unread, whoever sends it; the sign-in form has its own small limit
    app.add_middleware(BodyLimitMiddleware, limits=settings.limits, per_path={"/app/login": settings.limits.max_form_bytes})
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)  # outermost: counts refused requests too
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Scoring processes start (each loads the model) before the first request and stop, all
    of them, when the server does."""
    pool: ScoringPool | None = app.state.service.pool
    try:
        if pool is not None:
            pool.start()
            log.info("%d scoring process(es) started (pids %s)", pool.workers, ", ".join(map(str, pool.pids())))
        yield
    finally:
        if pool is not None:
            pool.close()


def _document_limits(app: FastAPI, settings: ServeSettings) -> None:
    """The OpenAPI schema states this app's limits (``maxItems``, ``maxLength``, …)."""
    build = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            document_limits(build(), settings.limits)  # build() caches the schema it returns
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
