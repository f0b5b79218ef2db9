"""API-key auth: with a key configured, every request but ``/health`` (and the static
files and login form of the pages) needs it.

API clients send ``X-API-Key``. Browsers cannot add a header to a link, so the pages'
login form exchanges the key for a cookie holding an HMAC of it (not the key itself).
Keys are compared in constant time and never logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from churn.serve.errors import error_body

HEADER = "x-api-key"
COOKIE = "churn_session"
OPEN_PATHS = ("/health",)
OPEN_PREFIXES = ("/static/", "/app/login")


def session_token(key: str) -> str:
    """What the browser cookie holds: derived from the key, useless for the API."""
    return hmac.new(key.encode(), b"churn-serve-session", hashlib.sha256).hexdigest()


def _cookie(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == COOKIE:
                    return v
    return None


def authorised(key: str, headers: list[tuple[bytes, bytes]]) -> bool:
    """True when the request carries the key (header) or a session cookie derived from it."""
    sent = next((v for n, v in headers if n == HEADER.encode()), None)
    if sent is not None:
        return hmac.compare_digest(sent, key.encode())
    cookie = _cookie(headers)
    return cookie is not None and hmac.compare_digest(cookie.encode(), session_token(key).encode())


class ApiKeyMiddleware:
    """Refuse requests without the key: 401 for the API, the login form for the pages."""

    def __init__(self, app: Callable[..., Any], key: str) -> None:
        self.app = app
        self.key = key

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES) or authorised(self.key, scope["headers"]):
            await self.app(scope, receive, send)
            return
        if path == "/app" or path.startswith("/app/"):  # a browser: to the login form, then back
            query = scope.get("query_string", b"").decode("latin-1")
            target = urlencode({"next": path + (f"?{query}" if query else "")})
            await send({"type": "http.response.start", "status": 303, "headers": [(b"location", f"/app/login?{target}".encode("latin-1")), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        body = json.dumps(error_body(401, "unauthorized", "missing or wrong X-API-Key header")).encode()
        content_type = b"application/json"
        await send({"type": "http.response.start", "status": 401, "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), (b"www-authenticate", b"ApiKey")]})
        await send({"type": "http.response.body", "body": body})
