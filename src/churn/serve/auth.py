"""Who may ask what: the API key for the API, a signed, expiring session for the pages.

With a key configured, every request but the public paths needs it. Public paths are
matched exactly (``/health``, the sign-in and sign-out form), plus the static files under
``/static/``: a future ``/app/login-something`` is not public by accident.

* The API (``/score``, ``/accounts…``, ``/runs``, ``/docs``, …) accepts **only** the
  ``X-API-Key`` header. A session cookie sent to the API gets 401: a stolen cookie must
  not be a second, never-expiring API key.
* The pages (``/app…``) accept the header or a session. Browsers cannot add a header to a
  link, so the sign-in form exchanges the key for a session cookie: signed (itsdangerous,
  with a secret derived from the key, so a new key ends every session), carrying a random
  id, the agent's name and the sign-in time; it expires after ``session_seconds``, and
  signing out revokes its id in this process. The cookie is HttpOnly, SameSite=Lax, and
  Secure when the request came over HTTPS or the service is told it sits behind a TLS proxy.

Keys are compared in constant time and never logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from itsdangerous import BadSignature, URLSafeSerializer

from churn.serve.errors import error_body

HEADER = "x-api-key"
COOKIE = "churn_session"
#: Public without the key, matched exactly.
OPEN_PATHS = frozenset({"/health", "/app/login", "/app/logout"})
STATIC_PREFIX = "/static/"
#: Revoked session ids kept at most (each only until it would have expired anyway).
MAX_REVOKED = 100_000


def is_page(path: str) -> bool:
    return path == "/app" or path.startswith("/app/")


@dataclass(frozen=True)
class Session:
    """One signed-in browser: who (the name typed at sign-in) and since when (Unix time)."""

    sid: str
    name: str
    login_time: float


class Sessions:
    """Issues, reads and revokes the pages' session cookies. ``clock`` (Unix seconds) is an
    attribute so a test can move time forward instead of sleeping through an expiry."""

    def __init__(self, api_key: str | None, max_age: float, *, behind_tls_proxy: bool = False, clock: Callable[[], float] = time.time) -> None:
        # From the key: sessions survive a restart and end when the key changes. Without a key
        # (an open service) a random secret: sessions only carry the agent's name.
        secret = hmac.new(api_key.encode(), b"churn-serve-session-secret", hashlib.sha256).digest() if api_key else secrets.token_bytes(32)
        self._serializer = URLSafeSerializer(secret, salt="churn-serve-session")
        self.max_age = max_age
        self.behind_tls_proxy = behind_tls_proxy
        self.clock = clock
        self._revoked: dict[str, float] = {}  # sid → when it expires anyway
        self._lock = threading.Lock()

    def issue(self, name: str) -> tuple[Session, str]:
        """A new session and the cookie value that carries it."""
        session = Session(secrets.token_urlsafe(16), name, self.clock())
        return session, self._serializer.dumps({"sid": session.sid, "name": session.name, "t": session.login_time})

    def read(self, value: str | None) -> Session | None:
        """The session a cookie carries, or None: unsigned, tampered, expired or signed out."""
        if not value:
            return None
        try:
            data = self._serializer.loads(value)
            session = Session(str(data["sid"]), str(data["name"]), float(data["t"]))
        except (BadSignature, KeyError, TypeError, ValueError):
            return None
        age = self.clock() - session.login_time
        if not 0 <= age < self.max_age or session.sid in self._revoked:
            return None
        return session

    def revoke(self, session: Session) -> None:
        """Sign out: this session id is refused until it would have expired anyway."""
        with self._lock:
            now = self.clock()
            for sid in [s for s, until in self._revoked.items() if until <= now]:
                del self._revoked[sid]
            self._revoked[session.sid] = session.login_time + self.max_age
            while len(self._revoked) > MAX_REVOKED:  # oldest first: dicts keep insertion order
                del self._revoked[next(iter(self._revoked))]

    def secure(self, request: Request) -> bool:
        """Mark the cookie Secure: over HTTPS (the scheme a trusted proxy forwarded, too) or behind a TLS proxy."""
        return self.behind_tls_proxy or request.url.scheme == "https"


def session_user(request: Request) -> str | None:
    """The signed-in agent's name on a page request (for logging who did what), or None."""
    sessions: Sessions | None = getattr(request.app.state, "sessions", None)
    session = None if sessions is None else sessions.read(request.cookies.get(COOKIE))
    return None if session is None else session.name


def _cookie(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == COOKIE:
                    return v
    return None


def authorised(key: str, headers: list[tuple[bytes, bytes]]) -> bool:
    """True when the request carries the key in the ``X-API-Key`` header (the only way into the API)."""
    sent = next((v for n, v in headers if n == HEADER.encode()), None)
    return sent is not None and hmac.compare_digest(sent, key.encode())


class ApiKeyMiddleware:
    """Refuse requests without the key: 401 for the API, the sign-in form for the pages."""

    def __init__(self, app: Callable[..., Any], key: str, sessions: Sessions) -> None:
        self.app = app
        self.key = key
        self.sessions = sessions

    def _allowed(self, path: str, headers: list[tuple[bytes, bytes]]) -> bool:
        if path in OPEN_PATHS or path.startswith(STATIC_PREFIX) or authorised(self.key, headers):
            return True
        return is_page(path) and self.sessions.read(_cookie(headers)) is not None

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or self._allowed(path, scope["headers"]):
            await self.app(scope, receive, send)
            return
        if is_page(path):  # a browser: to the sign-in form, then back
            query = scope.get("query_string", b"").decode("latin-1")
            target = urlencode({"next": path + (f"?{query}" if query else "")})
            await send({"type": "http.response.start", "status": 303, "headers": [(b"location", f"/app/login?{target}".encode("latin-1")), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        why = "missing or wrong X-API-Key header"
        if _cookie(scope["headers"]) is not None:
            why += " (a sign-in session opens the pages only, never the API)"
        body = json.dumps(error_body(401, "unauthorized", why)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"www-authenticate", b"ApiKey")]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})
