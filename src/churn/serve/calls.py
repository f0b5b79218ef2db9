"""Logging a call on the account page: the form's fields, checked, and its CSRF token.

The page is used with a cookie session, so a form posted from another site would carry the
cookie. Each form therefore holds a token that only this service can make: an HMAC (keyed by
the service's secret) of a random per-browser cookie (``churn_csrf``, SameSite=Strict,
HttpOnly) and of the session cookie when there is one. A POST without the cookie or with a
token that does not match it is refused (403) and writes nothing.

Who logged the call: the signed-in agent (:func:`churn.serve.auth.session_user`), else
the name typed in the form (a service without sessions, e.g. open dev mode).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import pandas as pd
from fastapi import Request

from churn.outreach.calls import CALL_OUTCOMES, MAX_AGENT, MAX_NOTE, Call
from churn.serve.auth import COOKIE as SESSION_COOKIE

CSRF_COOKIE = "churn_csrf"
CSRF_FIELD = "csrf_token"
#: The form's outcome choices, in the order shown.
OUTCOME_LABELS = {"saved": "Saved: stays a customer", "not_interested": "Not interested", "call_back": "Call back", "other": "Other"}
#: How long saving a call waits for the scoring folder's lock (a scoring run holds it while it runs).
LOCK_WAIT_SECONDS = 10.0
#: A form body larger than this is refused (413): the note is bounded, and so is what is read.
MAX_BODY = 16_384
_secret_lock = threading.Lock()


def _secret(request: Request) -> bytes:
    """The service's CSRF key: derived from the API key (the same in every worker), or random
    per process when the service runs without one."""
    state = request.app.state
    with _secret_lock:
        secret = getattr(state, "csrf_secret", None)
        if secret is None:
            key = request.app.state.service.settings.api_key
            secret = hmac.new(key.encode(), b"churn-serve-csrf", hashlib.sha256).digest() if key else secrets.token_bytes(32)
            state.csrf_secret = secret
    return secret  # type: ignore[no-any-return]


def _token(request: Request, browser: str) -> str:
    session = request.cookies.get(SESSION_COOKIE, "")
    return hmac.new(_secret(request), f"{browser}\n{session}".encode(), hashlib.sha256).hexdigest()


def csrf_for_form(request: Request) -> tuple[str, str | None]:
    """(the form's token, a new ``churn_csrf`` cookie value to set, or None when the browser has one)."""
    browser = request.cookies.get(CSRF_COOKIE)
    new = None if browser else secrets.token_urlsafe(32)
    return _token(request, browser or new or ""), new


def csrf_ok(request: Request, sent: str) -> bool:
    browser = request.cookies.get(CSRF_COOKIE)
    return bool(browser) and hmac.compare_digest(sent.encode(), _token(request, browser or "").encode())


@dataclass
class CallForm:
    """What the form sent (kept to fill the form again when it is refused)."""

    reached: str = "yes"
    outcome: str = ""
    note: str = ""
    agent: str = ""
    called_on: str = ""
    csrf: str = ""
    problems: list[str] = field(default_factory=list)


def parse_form(body: bytes) -> CallForm:
    """The urlencoded body, first value of each field (at most 10 fields)."""
    try:
        fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=10)
    except ValueError:  # more fields than the form has: not this form
        fields = {}

    def first(name: str) -> str:
        return (fields.get(name) or [""])[0]

    return CallForm(first("reached"), first("outcome"), first("note"), first("agent"), first("called_on"), first(CSRF_FIELD))


def to_call(form: CallForm, account_id: str, *, agent: str | None, now: pd.Timestamp) -> Call | None:
    """The call the form describes, or None with ``form.problems`` saying what to fix.

    A call dated today is stored with the current time; one dated an earlier day (logged
    late) at the start of that day, UTC.
    """
    problems = form.problems
    if form.reached not in ("yes", "no"):
        problems.append("Say whether the call reached the account.")
    reached = form.reached == "yes"
    outcome = form.outcome or None
    if reached and outcome not in CALL_OUTCOMES:
        problems.append("Choose what the call achieved.")
    elif outcome is not None and outcome not in CALL_OUTCOMES:
        problems.append("Choose one of the listed outcomes.")
    name = (agent or form.agent).strip()
    if not name:
        problems.append("Give your name (who made the call).")
    elif len(name) > MAX_AGENT:
        problems.append(f"A name has at most {MAX_AGENT} characters.")
    if len(form.note) > MAX_NOTE:
        problems.append(f"The note has {len(form.note):,} characters; at most {MAX_NOTE:,} are kept.")
    when = now
    if form.called_on and form.called_on != f"{now:%Y-%m-%d}":
        try:
            when = pd.Timestamp(form.called_on, tz="UTC")
        except ValueError:
            problems.append("The date of the call must be a date (YYYY-MM-DD).")
        else:
            if len(form.called_on) != 10 or when > now:
                problems.append("The date of the call must be a day (YYYY-MM-DD), today or earlier.")
    if problems:
        return None
    return Call(account_id=account_id, contacted_at=when, reached=reached, outcome=outcome, agent=name, note=form.note)
