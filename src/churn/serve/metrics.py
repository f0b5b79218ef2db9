"""Prometheus metrics: requests, latency, the model and the run being served.

Each app gets its own registry (nothing is created at import time), so two apps in one
process — tests — never share counters.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The service's instruments on a private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("churn_http_requests", "HTTP requests by route and status", ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("churn_http_request_duration_seconds", "Request latency by route", ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.model = Info("churn_model", "The model behind POST /score", registry=self.registry)
        self.run_accounts = Gauge("churn_latest_run_accounts", "Accounts on the risk list being served", registry=self.registry)
        self.run_as_of = Gauge("churn_latest_run_as_of_timestamp_seconds", "as_of of the run being served (Unix time)", registry=self.registry)
        self.scored = Counter("churn_accounts_scored_on_demand", "Accounts scored through POST /score", registry=self.registry)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Count and time every HTTP request by its route template (never the raw path, so
    account ids do not become label values)."""

    def __init__(self, app: Callable[..., Any], metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or ("/static" if scope["path"].startswith("/static/") else "unmatched")
            self.metrics.requests.labels(scope["method"], path, str(status)).inc()
            self.metrics.latency.labels(scope["method"], path).observe(time.perf_counter() - start)
