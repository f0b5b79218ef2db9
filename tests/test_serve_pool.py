"""POST /score in scoring worker processes (``score_workers``): the same answers as scoring in
the server process — scores, rejected rows, schema errors — a worker that dies costs the
requests it held a 503 and the pool comes back, and shutdown leaves no process behind."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from churn.config import ChurnDefinition, TrainConfig
from churn.data.dataend import observed_until
from churn.data.synthetic import GeneratedData, generate
from churn.features.labels import build_training_table, default_cutoffs
from churn.features.spec import FeatureSpec
from churn.modeling.train import fit_churn_model
from churn.serve.app import create_app
from churn.serve.limits import REQUEST_LIMITS, RequestLimits
from churn.serve.model import ServingModel
from churn.serve.pool import BodyKind, InvalidRequest, parse_body
from churn.serve.schemas import ScoreRequest
from churn.serve.settings import ServeSettings
from tests.serve_support import request_body


@dataclass(frozen=True)
class Tiny:
    """A small business and a small model: a worker's start-up (imports, unpickling) stays short."""

    data: GeneratedData
    serving: ServingModel
    as_of: pd.Timestamp
    customers: list[str]

    def body(self, ids: list[str], as_of: pd.Timestamp | None = None) -> dict[str, object]:
        as_of = as_of if as_of is not None else self.as_of
        t = self.data.interactions["occurred_at"]
        rows = self.data.interactions[self.data.interactions["account_id"].isin(ids) & (t < as_of) & (t >= as_of - pd.Timedelta(days=365))]
        return request_body(self.data.accounts[self.data.accounts["account_id"].isin(ids)], rows, f"{as_of:%Y-%m-%d}")


@pytest.fixture(scope="module")
def tiny() -> Tiny:
    data = generate(600, months=14, seed=5)
    spec = FeatureSpec.from_data(data.accounts, data.interactions)
    definition = ChurnDefinition().resolved(data.accounts)
    end = observed_until(data.accounts, data.interactions)
    table = build_training_table(data.accounts, data.interactions, cutoffs=default_cutoffs(end, definition, 4), spec=spec)
    model, _ = fit_churn_model(table, spec=spec, definition=definition, config=TrainConfig(n_jobs=1, n_estimators=40, calibration_folds=2))
    as_of = end.normalize()
    signed = data.accounts.loc[(data.accounts["signup_at"] < as_of - pd.Timedelta(days=200)) & data.accounts["churned_at"].isna(), "account_id"]
    return Tiny(data, ServingModel.wrap(model, "tiny model"), as_of, signed.head(6).tolist())


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> ServeSettings:
    return ServeSettings(scores_dir=tmp_path_factory.mktemp("no-runs"), model_ref=None, reload_check_seconds=0, background_reload=False)


@pytest.fixture(scope="module")
def in_process(tiny: Tiny, settings: ServeSettings) -> TestClient:
    return TestClient(create_app(settings, model=tiny.serving))


@pytest.fixture(scope="module")
def pooled(tiny: Tiny, settings: ServeSettings):  # type: ignore[no-untyped-def]
    """One worker process, started by the app's lifespan (the ``with``) and stopped after the module."""
    app = create_app(replace(settings, score_workers=1), model=tiny.serving)
    with TestClient(app) as client:
        yield client


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def requests(tiny: Tiny) -> dict[str, tuple[dict, int]]:  # type: ignore[type-arg]
    """``client.post`` arguments and the status each must get: scores, rows the contract rejects,
    bodies that fail the schema or are not JSON at all."""
    ids = tiny.customers
    base = tiny.body(ids[:1])
    unknown = {**base, "interactions": [dict(r) for r in base["interactions"]]}
    unknown["interactions"][1]["account_id"] = "SOMEONE-ELSE"
    as_json = {"content-type": "application/json"}
    return {
        "six accounts": ({"json": tiny.body(ids)}, 200),
        "a month earlier": ({"json": tiny.body(ids[1:3], tiny.as_of - pd.Timedelta(days=30))}, 200),
        "unknown account": ({"json": unknown}, 422),
        "not a customer": ({"json": {**base, "as_of": "2020-01-01"}}, 422),
        "schema: ces out of range": ({"json": {**base, "interactions": [{**base["interactions"][0], "ces": 9}]}}, 422),
        "schema: as_of a number": ({"json": {**base, "as_of": 20240101}}, 422),
        "schema: no accounts": ({"json": {**base, "accounts": []}}, 422),
        "schema: a list": ({"json": [base]}, 422),
        "not JSON": ({"content": b'{"as_of": "2024-01-01", "accounts": [', "headers": as_json}, 422),
        "not UTF-8": ({"content": b'{"as_of": "\xff\xfe"}', "headers": as_json}, 400),
        "text/plain": ({"content": json.dumps(base).encode(), "headers": {"content-type": "text/plain"}}, 422),
        "vendor +json": ({"content": json.dumps(base).encode(), "headers": {"content-type": "application/vnd.crm+json; charset=utf-8"}}, 200),
        "no content type": ({"content": json.dumps(base).encode()}, 422),
        "empty": ({"content": b"", "headers": as_json}, 422),
        # bodies the worker's strict JSON validation refuses and the usual way decides
        "flag and number as text": ({"json": {**base, "interactions": [{**r, "resolved": "true", "wait_seconds": "30"} for r in base["interactions"]]}}, 200),
        "schema: occurred_at a number": ({"json": {**base, "interactions": [{**base["interactions"][0], "occurred_at": 1700000000}]}}, 422),
        "schema: a long event type": ({"json": {**base, "interactions": [{**base["interactions"][0], "event_type": "x" * 201}]}}, 422),
        "schema: a long channel": ({"json": {**base, "interactions": [{**base["interactions"][0], "channel": "x" * 201}]}}, 422),
        "NaN amount": ({"content": json.dumps({**base, "interactions": [{**base["interactions"][0], "amount": float("nan")}]}).encode(), "headers": as_json}, 200),
    }


def test_a_worker_answers_exactly_as_the_server_process(in_process: TestClient, pooled: TestClient, tiny: Tiny) -> None:
    pool = pooled.app.state.service.pool  # type: ignore[attr-defined]
    assert pool is not None and len(pool.pids()) == 1 and os.getpid() not in pool.pids()
    for name, (kwargs, status) in requests(tiny).items():
        here, there = in_process.post("/score", **kwargs), pooled.post("/score", **kwargs)
        assert (here.status_code, there.status_code) == (status, status), (name, here.text, there.text)
        assert there.json() == here.json(), name  # the scores exactly, the error details one for one
    assert pooled.get("/openapi.json").json() == in_process.get("/openapi.json").json()


def test_a_worker_that_dies_costs_its_requests_a_503_and_the_pool_comes_back(pooled: TestClient, tiny: Tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    pool = pooled.app.state.service.pool  # type: ignore[attr-defined]
    body = tiny.body(tiny.customers[:1])
    before = pool.pids()
    on_event_loop: list[bool] = []
    replace_pool = pool._replace  # noqa: SLF001

    def watched(broken):  # type: ignore[no-untyped-def]
        try:
            asyncio.get_running_loop()
            on_event_loop.append(True)  # starting workers here would stop every GET meanwhile
        except RuntimeError:
            on_event_loop.append(False)
        replace_pool(broken)

    monkeypatch.setattr(pool, "_replace", watched)
    executor = pool._executor  # noqa: SLF001 — queue a crash ahead of the request on the one worker
    executor.submit(time.sleep, 1.5)
    executor.submit(os._exit, 1)
    response = pooled.post("/score", json=body)
    assert response.status_code == 503, response.text
    assert response.json()["error"]["error"] == "scoring_unavailable"
    again = pooled.post("/score", json=body)  # a new worker loads the model and scores
    assert again.status_code == 200, again.text
    assert pool.restarts == 1 and pool.pids() != before
    assert not any(_alive(pid) for pid in before)
    assert on_event_loop == [False]  # the new pool was started in a thread, not on the event loop


def test_shutdown_leaves_no_worker_behind(tiny: Tiny, settings: ServeSettings) -> None:
    app = create_app(replace(settings, score_workers=1), model=tiny.serving)
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        pids = app.state.service.pool.pids()
        assert pids and all(_alive(pid) for pid in pids)
    assert not any(_alive(pid) for pid in pids)
    response = client.post("/score", json=tiny.body(tiny.customers[:1]))
    assert response.status_code == 503 and response.json()["error"]["error"] == "scoring_unavailable"


@pytest.mark.parametrize("limits", [RequestLimits(), RequestLimits(max_interactions=3), RequestLimits(max_string_chars=9)])
def test_the_fast_json_validation_gives_the_usual_model_or_errors(tiny: Tiny, limits: RequestLimits) -> None:
    """``parse_body`` validates a clean body from the JSON text (``clean_json_request``): the
    same request model as json.loads + model_validate, and for any other body the same errors."""
    token = REQUEST_LIMITS.set(limits)
    try:
        for name, (kwargs, _) in requests(tiny).items():
            body = kwargs["content"] if "content" in kwargs else json.dumps(kwargs["json"]).encode()
            try:
                usual: object = repr(ScoreRequest.model_validate(json.loads(body), from_attributes=True).model_dump())  # repr: NaN equals NaN
            except ValidationError as exc:
                usual = [(tuple(e["loc"]), e["msg"], e["type"]) for e in exc.errors()]
            except json.JSONDecodeError as exc:
                usual = [((exc.pos,), "JSON decode error", "json_invalid")]
            except ValueError:  # not UTF-8
                usual = "unreadable"
            got = parse_body(body, BodyKind.JSON)
            mine = repr(got.model_dump()) if isinstance(got, ScoreRequest) else got.errors if isinstance(got, InvalidRequest) else "unreadable"
            assert mine == usual, (name, limits)
    finally:
        REQUEST_LIMITS.reset(token)


@pytest.fixture(scope="module")
def guarded(tiny: Tiny, settings: ServeSettings):  # type: ignore[no-untyped-def]
    """One worker, a short timeout and room for two requests at a time."""
    app = create_app(replace(settings, score_workers=1, score_timeout_seconds=3.0, score_queue=2), model=tiny.serving)
    with TestClient(app) as client:
        yield client


def _post_in_threads(client: TestClient, body: dict, n: int) -> tuple[list[threading.Thread], list]:  # type: ignore[type-arg]
    answers: list = []  # type: ignore[type-arg]
    threads = [threading.Thread(target=lambda: answers.append(client.post("/score", json=body))) for _ in range(n)]
    for thread in threads:
        thread.start()
    return threads, answers


def _wait_for(condition, seconds: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return bool(condition())


def test_a_worker_that_hangs_is_stopped_after_the_timeout_and_the_pool_comes_back(guarded: TestClient, tiny: Tiny) -> None:
    pool = guarded.app.state.service.pool  # type: ignore[attr-defined]
    pool.start()
    before, restarts = pool.pids(), pool.restarts
    assert guarded.get("/ready").json()["scoring_processes"] == 1
    pool._executor.submit(time.sleep, 120)  # noqa: SLF001 — the one worker hangs ahead of the requests
    started = time.monotonic()
    threads, answers = _post_in_threads(guarded, tiny.body(tiny.customers[:1]), 2)  # one taken by the pool, one queued behind it
    for thread in threads:
        thread.join(60)
    assert [a.status_code for a in answers] == [503, 503], [a.text for a in answers]
    assert all(a.json()["error"]["error"] == "scoring_unavailable" for a in answers)  # JSON errors, not a bare 500
    assert any("finished for 3 s" in a.json()["error"]["message"] for a in answers)
    assert 3.0 <= time.monotonic() - started < 60  # answered at the timeout, not when the sleep ends
    assert pool.restarts == restarts + 1 and not any(_alive(pid) for pid in before)
    pool.start()  # wait for the new worker to load the model
    assert guarded.get("/ready").json()["scoring_processes"] == 1
    again = guarded.post("/score", json=tiny.body(tiny.customers[:1]))
    assert again.status_code == 200, again.text


def test_a_long_queue_that_moves_is_not_a_hang(guarded: TestClient, tiny: Tiny) -> None:
    """Five one-second jobs ahead: the request waits longer than the 3 s timeout, but something
    finishes every second, so it is scored and the pool is left alone."""
    pool = guarded.app.state.service.pool  # type: ignore[attr-defined]
    pool.start()
    restarts = pool.restarts
    for _ in range(5):
        pool._executor.submit(time.sleep, 1.0).add_done_callback(pool._finished)  # noqa: SLF001 — as score() tracks its own
    started = time.monotonic()
    response = guarded.post("/score", json=tiny.body(tiny.customers[:1]))
    assert response.status_code == 200, response.text
    assert time.monotonic() - started > 3.0 and pool.restarts == restarts


def test_requests_beyond_the_queue_get_503_busy_with_retry_after_at_once(guarded: TestClient, tiny: Tiny) -> None:
    pool = guarded.app.state.service.pool  # type: ignore[attr-defined]
    pool.start()
    body = tiny.body(tiny.customers[:1])
    pool._executor.submit(time.sleep, 1.5)  # noqa: SLF001 — the worker is busy: the first requests wait in the pool
    threads, answers = _post_in_threads(guarded, body, 2)
    assert _wait_for(lambda: pool.pending == 2)
    busy = guarded.post("/score", json=body)
    assert busy.status_code == 503 and busy.json()["error"]["error"] == "scoring_busy", busy.text
    assert busy.headers["retry-after"] == "1"
    for thread in threads:
        thread.join(30)
    assert [a.status_code for a in answers] == [200, 200] and pool.pending == 0  # the queued requests were scored; the slots are free again


def test_ready_replaces_a_pool_that_broke_while_idle(guarded: TestClient) -> None:
    pool = guarded.app.state.service.pool  # type: ignore[attr-defined]
    pool.start()
    restarts, (pid,) = pool.restarts, pool.pids()
    os.kill(pid, signal.SIGKILL)
    assert _wait_for(lambda: getattr(pool._executor, "_broken", False))  # noqa: SLF001 — the pool noticed
    first = guarded.get("/ready").json()
    assert first["scoring_processes"] == 0 and any("scoring processes running" in p for p in first["problems"])
    assert _wait_for(lambda: guarded.get("/ready").json()["scoring_processes"] == 1, 60)
    assert pool.restarts == restarts + 1 and pool.pids() != [pid]


def test_requests_queued_behind_a_hang_get_503_not_a_cancellation(tiny: Tiny) -> None:
    """More requests than the call queue holds: those still waiting in the pool when it is replaced
    are cancelled by the shutdown; each must still end as :class:`ScoringUnavailable` (a 503)."""
    from churn.config import ScoreConfig
    from churn.serve.pool import ScoringPool, ScoringUnavailable

    pool = ScoringPool(tiny.serving, 1, RequestLimits(), timeout=2.0, max_pending=8)
    try:
        pool.start()
        pool._executor.submit(time.sleep, 120)  # noqa: SLF001

        async def many() -> list[object]:
            calls = [pool.score(b"{}", BodyKind.JSON, ScoreConfig(), ChurnDefinition()) for _ in range(6)]
            return await asyncio.gather(*calls, return_exceptions=True)

        outcomes = asyncio.run(many())
        assert all(isinstance(o, ScoringUnavailable) for o in outcomes), [type(o).__name__ for o in outcomes]
    finally:
        pool.close()
