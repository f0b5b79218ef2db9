"""The service under attack, in-process: bodies over the limit are refused unread (413), rows,
text and attributes over the limits are 422, sign-ins are throttled (429), the pages'
session is signed, expires, ends at sign-out and never opens the API (401), cookies are
Secure over HTTPS or behind a TLS proxy, and ``churn serve`` refuses to listen openly on a
non-loopback address."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from churn.serve.app import create_app
from churn.serve.limits import RequestLimits
from churn.serve.settings import ServeSettings, bind_refusal, is_loopback
from tests.serve_support import API_KEY, AS_OFS, ServeData, serve_data

KEY = {"X-API-Key": API_KEY}
SMALL = RequestLimits(max_body_bytes=20_000, max_form_bytes=600, max_accounts=2, max_interactions=3, max_string_chars=20, max_extra_keys=2)


@pytest.fixture(scope="module")
def sd(tmp_path_factory, training_data, trained) -> ServeData:  # type: ignore[no-untyped-def]
    return serve_data(tmp_path_factory, training_data, trained)


@pytest.fixture(scope="module")
def settings(sd: ServeData) -> ServeSettings:
    return ServeSettings(scores_dir=sd.scores_dir, model_ref=None, reload_check_seconds=0, background_reload=False, api_key=API_KEY, limits=SMALL)


@pytest.fixture()
def client(sd: ServeData, settings: ServeSettings) -> TestClient:
    """A fresh app each test: its own throttle, sessions and cookie jar."""
    return TestClient(create_app(settings, model=sd.serving()))


def error(response, status: int, code: str) -> str:  # type: ignore[no-untyped-def]
    """The product's error shape, with this status and code; its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == status and body["error"]["error"] == code
    return str(body["error"]["message"])


def sign_in(client: TestClient, name: str = "Ana Lima", key: str = API_KEY) -> str:
    response = client.post("/app/login", data={"key": key, "name": name, "next": "/app"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return str(response.cookies["churn_session"])


# --------------------------------------------------------------------------- limits


def test_a_body_over_the_limit_is_refused_before_it_is_read(client: TestClient) -> None:
    """413 from Content-Length alone: the app never asks for a byte of the 50 MB."""
    app = client.app
    reads = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal reads
        reads += 1  # bounded even when nothing guards the app: 50 MB in all, then the body ends
        return {"type": "http.request", "body": b"x" * 65536, "more_body": reads < 800}

    async def send(message: dict) -> None:
        sent.append(message)

    headers = [(b"content-length", str(50 * 2**20).encode()), (b"content-type", b"application/json"), *[(k.lower().encode(), v.encode()) for k, v in KEY.items()]]
    scope = {"type": "http", "method": "POST", "path": "/score", "raw_path": b"/score", "query_string": b"", "headers": headers, "http_version": "1.1",
             "scheme": "http", "server": ("testserver", 80), "client": ("127.0.0.1", 5000), "root_path": "", "app": app}  # fmt: skip
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413 and reads == 0
    assert b'"content_too_large"' in sent[1]["body"]
    # the same refusal reaches a client without the key, and a streamed (chunked) body is counted as it arrives
    error(client.post("/score", content=b"{" + b" " * 30_000 + b"}", headers={"content-type": "application/json"}), 413, "content_too_large")
    chunks = (b" " * 1000 for _ in range(40))  # 40 kB, no Content-Length
    assert "20,000 bytes" in error(client.post("/score", content=chunks, headers={**KEY, "content-type": "application/json"}), 413, "content_too_large")


def _body(accounts: list[dict], interactions: list[dict]) -> dict:
    return {"as_of": AS_OFS[-1], "accounts": accounts, "interactions": interactions}


ACCOUNT = {"account_id": "a1", "signup_at": "2023-01-01"}
EVENT = {"account_id": "a1", "occurred_at": "2024-05-01", "event_type": "login"}


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        pytest.param(_body([ACCOUNT] * 3, []), "body.accounts", "at most 2 accounts", id="accounts"),
        pytest.param(_body([ACCOUNT], [EVENT] * 4), "body.interactions", "at most 3 interactions", id="interactions"),
        pytest.param(_body([{**ACCOUNT, "account_id": "a" * 21}], []), "body.accounts.0", "account_id is longer than 20", id="account id"),
        pytest.param(_body([ACCOUNT], [{**EVENT, "channel": "x" * 21}]), "body.interactions.0", "channel is longer than 20", id="channel"),
        pytest.param(_body([ACCOUNT], [{**EVENT, "event_type": "e" * 21}]), "body.interactions.0", "event_type is longer than 20", id="event type"),
        pytest.param(_body([{**ACCOUNT, "plan": "p" * 21}], []), "body.accounts.0", "plan is longer than 20", id="attribute value"),
        pytest.param(_body([{**ACCOUNT, "k" * 21: "pro"}], []), "body.accounts.0", "attribute name is longer than 20", id="attribute name"),
        pytest.param(_body([{**ACCOUNT, "churned_at": None, "mrr": 1.0, "a": "1", "b": "2", "c": "3"}], []), "body.accounts.0", "at most 6", id="extra keys"),
    ],
)
def test_rows_text_and_attributes_over_the_limits_are_422(client: TestClient, body: dict, field: str, reason: str) -> None:
    response = client.post("/score", json=body, headers=KEY)
    message = error(response, 422, "invalid_request")
    assert response.json()["error"]["details"][0]["field"] == field and reason in message


def test_the_schema_states_the_limits(client: TestClient) -> None:
    models = client.get("/openapi.json", headers=KEY).json()["components"]["schemas"]
    assert models["ScoreRequest"]["properties"]["accounts"]["maxItems"] == 2
    assert models["ScoreRequest"]["properties"]["interactions"]["maxItems"] == 3
    assert models["InteractionIn"]["properties"]["event_type"]["maxLength"] == 20
    assert models["AccountIn"]["maxProperties"] == 6 and models["AccountIn"]["propertyNames"] == {"maxLength": 20}


def test_the_login_form_is_bounded(client: TestClient) -> None:
    """Unauthenticated, so bounded hardest: more than 10 fields is 422 (was 500), a big form 413."""
    many = "&".join(f"f{i}=1" for i in range(11))
    crowded = client.post("/app/login", content=many, headers={"content-type": "application/x-www-form-urlencoded"})
    assert crowded.status_code == 422 and "more than 10 fields" in crowded.text
    assert client.post("/app/login", data={"key": "k" * 700}).status_code == 413  # max_form_bytes: 600
    assert client.post("/app/login", data={"key": API_KEY, "name": "n" * 21}).status_code == 422


# --------------------------------------------------------------------------- sign-in and sessions


def test_failed_sign_ins_are_throttled_per_client(sd: ServeData, settings: ServeSettings) -> None:
    app = create_app(settings, model=sd.serving())
    now = [1000.0]
    app.state.login_throttle.clock = lambda: now[0]
    attacker = TestClient(app, client=("203.0.113.9", 4000))
    for _ in range(5):
        assert attacker.post("/app/login", data={"key": "guess"}).status_code == 401
    refused = attacker.post("/app/login", data={"key": API_KEY}, follow_redirects=False)  # even the right key waits
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
    assert TestClient(app, client=("198.51.100.7", 4000)).post("/app/login", data={"key": API_KEY}, follow_redirects=False).status_code == 303
    now[0] += 61
    assert attacker.post("/app/login", data={"key": API_KEY}, follow_redirects=False).status_code == 303


def test_a_session_opens_the_pages_and_never_the_api(client: TestClient, sd: ServeData) -> None:
    cookie = sign_in(client)
    assert client.get("/app").status_code == 200
    account = sd.latest()["account_id"].iloc[0]
    for path in ("/accounts", f"/accounts/{account}", "/runs", "/openapi.json"):
        assert "pages only" in error(client.get(path), 401, "unauthorized")
    assert "pages only" in error(TestClient(client.app).post("/score", json={}, headers={"Cookie": f"churn_session={cookie}"}), 401, "unauthorized")
    assert client.get("/accounts", headers=KEY).status_code == 200


def test_the_session_carries_the_agent_and_the_sign_in_time(client: TestClient) -> None:
    from starlette.requests import Request

    from churn.serve.auth import COOKIE, session_user

    before = client.app.state.sessions.clock()
    cookie = sign_in(client, name="  Chloé   <Dupont> ")
    page = client.get("/app")
    assert 'id="user">Chloé &lt;Dupont&gt;</span>' in page.text  # escaped on the page
    session = client.app.state.sessions.read(cookie)
    assert session.name == "Chloé <Dupont>" and before <= session.login_time <= client.app.state.sessions.clock()
    request = Request({"type": "http", "app": client.app, "headers": [(b"cookie", f"{COOKIE}={cookie}".encode())]})
    assert session_user(request) == "Chloé <Dupont>"
    assert session_user(Request({"type": "http", "app": client.app, "headers": [(b"cookie", f"{COOKIE}={cookie[:-2]}xx".encode())]})) is None
    assert client.app.state.sessions.read(sign_in(TestClient(client.app), name=" ")).name == "agent"  # no name given


def test_sessions_expire_and_end_at_sign_out(client: TestClient) -> None:
    sessions = client.app.state.sessions
    start = sessions.clock()
    sessions.clock = lambda: start
    cookie = sign_in(client)
    assert client.get("/app", follow_redirects=False).status_code == 200
    sessions.clock = lambda: start + sessions.max_age - 1
    assert client.get("/app", follow_redirects=False).status_code == 200
    sessions.clock = lambda: start + sessions.max_age + 1
    expired = client.get("/app", follow_redirects=False)
    assert expired.status_code == 303 and expired.headers["location"].startswith("/app/login")

    sessions.clock = lambda: start
    cookie = sign_in(client)
    out = client.post("/app/logout", follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/app/login"
    assert "churn_session=" in out.headers["set-cookie"] and "max-age=0" in out.headers["set-cookie"].lower()
    replayed = TestClient(client.app).get("/app", headers={"Cookie": f"churn_session={cookie}"}, follow_redirects=False)
    assert replayed.status_code == 303  # a copied cookie is dead too, not only the browser's


def test_cookie_flags_and_secure_over_https_or_behind_a_proxy(sd: ServeData, settings: ServeSettings) -> None:
    def set_cookie(app, base_url: str = "http://testserver") -> str:  # type: ignore[no-untyped-def]
        response = TestClient(app, base_url=base_url).post("/app/login", data={"key": API_KEY}, follow_redirects=False)
        return str(response.headers["set-cookie"]).lower()

    plain = create_app(settings, model=sd.serving())
    flags = set_cookie(plain)
    assert "httponly" in flags and "samesite=lax" in flags and "secure" not in flags and f"max-age={8 * 3600}" in flags
    assert "; secure" in set_cookie(plain, "https://testserver")
    assert "; secure" in set_cookie(create_app(replace(settings, behind_tls_proxy=True), model=sd.serving()))


def test_public_paths_are_exact(client: TestClient) -> None:
    assert client.get("/health").status_code == 200 and client.get("/app/login").status_code == 200
    assert client.get("/app/login-admin", follow_redirects=False).status_code == 303  # a page: to sign-in, not open
    error(client.get("/health/x"), 401, "unauthorized")
    error(client.get("/healthz"), 401, "unauthorized")


# --------------------------------------------------------------------------- churn serve


def test_bind_rule() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost", "LOCALHOST"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.5", "example.org"))
    assert bind_refusal("0.0.0.0", None, False) is not None and bind_refusal("::", "", False) is not None
    assert bind_refusal("0.0.0.0", "k", False) is None and bind_refusal("0.0.0.0", None, True) is None and bind_refusal("127.0.0.1", None, False) is None


def test_serve_refuses_an_open_non_loopback_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    import uvicorn

    from churn.cli import app

    runs: list[dict] = []
    monkeypatch.setattr(gc, "freeze", lambda: None)  # the command freezes its objects for a long-lived server: not this test process
    monkeypatch.setattr(uvicorn, "run", lambda api, **kw: runs.append({"app": api, **kw}))
    monkeypatch.delenv("CHURN_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    base = ["serve", "--scores", str(tmp_path), "--model", str(tmp_path / "none.joblib")]
    refused = CliRunner().invoke(app, [*base, "--host", "0.0.0.0"])
    assert refused.exit_code == 1 and runs == []
    text = " ".join(refused.output.split())
    assert "refusing to listen on 0.0.0.0 without CHURN_API_KEY" in text and "--insecure-no-auth" in text and "Traceback" not in text
    opened = CliRunner().invoke(app, [*base, "--host", "0.0.0.0", "--insecure-no-auth"])
    assert opened.exit_code == 0, opened.output
    assert runs[-1]["host"] == "0.0.0.0" and runs[-1]["proxy_headers"] is False  # no X-Forwarded-For trusted unless asked
    monkeypatch.setenv("CHURN_API_KEY", API_KEY)
    proxied = CliRunner().invoke(app, [*base, "--host", "10.0.0.5", "--forwarded-allow-ips", "10.0.0.1", "--max-body-mb", "1", "--session-hours", "2"])
    assert proxied.exit_code == 0, proxied.output
    assert runs[-1]["proxy_headers"] is True and runs[-1]["forwarded_allow_ips"] == "10.0.0.1"
    served = runs[-1]["app"].state.service.settings
    assert served.behind_tls_proxy and served.limits.max_body_bytes == 2**20 and served.session_seconds == 7200
    assert served.limits == replace(RequestLimits(), max_body_bytes=2**20)  # every other limit at its default
    assert (served.login_failures, served.login_window_seconds) == (5, 60.0)
    limited = ["--max-accounts", "3", "--max-interactions", "40", "--max-string-chars", "30", "--max-extra-keys", "2", "--login-failures", "9", "--login-window", "120"]
    assert CliRunner().invoke(app, [*base, *limited]).exit_code == 0
    served = runs[-1]["app"].state.service.settings
    assert served.limits == replace(RequestLimits(), max_accounts=3, max_interactions=40, max_string_chars=30, max_extra_keys=2)
    assert (served.login_failures, served.login_window_seconds) == (9, 120.0)
    assert runs[-1]["app"].state.login_throttle.failures == 9
