"""Web pages for customer-success teams, rendered on the server from the same index as the API.

* ``/app`` — the whole risk list: search, filters (band, owner, segment, outreach/control),
  sorting and paging;
* ``/app/owners/{owner}`` — an account manager's "my accounts";
* ``/app/accounts/{id}`` — one account: reasons in plain language, suggested action,
  score trend over runs, recent support contacts and surveys, and a form to log a call
  (POSTed to ``/app/accounts/{id}/calls``, written to the scoring folder's contact log).

Templates escape everything (Jinja2 autoescape); the only script is a few lines that
submit the filter form when a drop-down changes.
"""

from __future__ import annotations

import hmac
from dataclasses import replace
from pathlib import Path
from typing import Annotated, get_args
from urllib.parse import parse_qs, quote, urlencode

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from churn.outreach.calls import MAX_AGENT, MAX_NOTE, log_calls
from churn.outreach.runs import FolderLockedError
from churn.serve.auth import COOKIE, Sessions, session_user
from churn.serve.calls import CSRF_COOKIE, LOCK_WAIT_SECONDS, MAX_BODY, OUTCOME_LABELS, CallForm, csrf_for_form, csrf_ok, parse_form, to_call
from churn.serve.deps import get_service, get_snapshot
from churn.serve.errors import ApiError
from churn.serve.index import BANDS
from churn.serve.index import Query as ListQuery
from churn.serve.latest import Snapshot
from churn.serve.routers.accounts import MAX_LIMIT, account_detail
from churn.serve.schemas import Sort

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
SORT_LABELS = {
    "rank": "Rank (first to call)",
    "-churn_probability": "Highest churn probability",
    "-revenue_at_risk": "Most revenue at risk",
    "-probability_change": "Biggest rise since last run",
    "account_id": "Account id",
}

router = APIRouter(include_in_schema=False)


def _pct(value: object) -> str:
    return "–" if value is None or pd.isna(value) else f"{100 * float(value):.1f} %"  # type: ignore[arg-type]


def _pct0(value: object) -> str:
    return "–" if value is None or pd.isna(value) else f"{100 * float(value):.0f} %"  # type: ignore[arg-type]


def _money(value: object) -> str:
    return "–" if value is None or pd.isna(value) else f"{float(value):,.0f}"  # type: ignore[arg-type]


def _signed_pct(value: object) -> str:
    return "" if value is None or pd.isna(value) else f"{100 * float(value):+.1f} pts"  # type: ignore[arg-type]


def make_environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters.update(pct=_pct, pct0=_pct0, money=_money, signed_pct=_signed_pct)
    return env


def trend_chart(history: list[dict[str, object]], thresholds: tuple[float, float], *, width: int = 560, height: int = 170, pad: int = 32) -> dict[str, object]:
    """Coordinates of the score trend (x: runs in order, y: probability), for an inline SVG."""
    probs = [float(p["churn_probability"]) for p in history]  # type: ignore[arg-type]
    top = max([*probs, thresholds[1] * 1.2, 0.05])
    top = min(1.0, top * 1.1)
    span_x = width - 2 * pad
    span_y = height - 2 * pad

    def y(p: float) -> float:
        return round(height - pad - span_y * p / top, 1)

    step = span_x / max(len(probs) - 1, 1)
    points = [
        {"x": round(pad + (i * step if len(probs) > 1 else span_x / 2), 1), "y": y(p), "label": f"{point['as_of']}: {100 * p:.1f} %"}
        for i, (p, point) in enumerate(zip(probs, history))  # one per run
    ]
    ticks = [{"y": y(t), "label": f"{100 * t:.0f} %"} for t in (0.0, top / 2, top)]
    lines = [{"y": y(t), "label": name} for t, name in zip(thresholds, ("medium", "high")) if t <= top]
    return {
        "width": width,
        "height": height,
        "pad": pad,
        "polyline": " ".join(f"{p['x']},{p['y']}" for p in points),
        "points": points,
        "ticks": ticks,
        "thresholds": lines,
        "first": history[0]["as_of"] if history else None,
        "last": history[-1]["as_of"] if history else None,
    }


def _render(request: Request, name: str, status: int = 200, **context: object) -> HTMLResponse:
    env: Environment = request.app.state.templates
    return HTMLResponse(env.get_template(name).render(user=session_user(request), **context), status_code=status)


def _list_url(query: ListQuery, base: str, **changes: object) -> str:
    """The page's link with the same filters (pager links)."""
    params = {"band": query.band, "owner": query.owner if base == "/app" else None, "segment": query.segment, "flag": _flag(query), "q": query.q, "sort": query.sort, "limit": query.limit, "offset": query.offset}
    params.update(changes)
    clean = {k: v for k, v in params.items() if v not in (None, "") and not (k == "sort" and v == "rank") and not (k == "offset" and v == 0) and not (k == "limit" and v == 50)}
    return base + ("?" + urlencode(clean) if clean else "")


def _flag(query: ListQuery) -> str:
    if query.outreach:
        return "outreach"
    if query.control:
        return "control"
    if query.outreach is False and query.control is False:
        return "none"
    return ""


def _list_page(request: Request, query: ListQuery, snapshot: Snapshot, owner_view: str | None) -> HTMLResponse:
    index = snapshot.index
    positions, total = index.select(query)
    base = "/app" if owner_view is None else f"/app/owners/{quote(owner_view, safe='')}"
    prev_offset = max(query.offset - query.limit, 0) if query.offset > 0 else None
    next_offset = query.offset + query.limit if query.offset + query.limit < total else None
    return _render(
        request,
        "list.html",
        title=f"My accounts: {owner_view}" if owner_view else "Risk list",
        owner_view=owner_view,
        base=base,
        rows=index.records(positions),
        total=total,
        first=query.offset + 1 if total else 0,
        last=min(query.offset + query.limit, total),
        query=query,
        flag=_flag(query),
        owners=[str(o) for o in index.values("owner")],
        segments=[str(s) for s in index.values("segment")],
        band_counts=index.counts("risk_band"),
        sort_labels=SORT_LABELS,
        prev_url=None if prev_offset is None else _list_url(query, base, offset=prev_offset),
        next_url=None if next_offset is None else _list_url(query, base, offset=next_offset),
        run=index,
        accounts=len(index),
    )


def _page_query(
    band: str = "",
    owner: Annotated[str, Query(max_length=200)] = "",
    segment: Annotated[str, Query(max_length=200)] = "",
    flag: str = "",
    q: Annotated[str, Query(max_length=100)] = "",
    sort: str = "rank",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000_000)] = 0,
) -> ListQuery:
    """The filter form's fields: empty means "all" (a form sends every field), and one
    ``flag`` select stands for the API's outreach/control filters."""
    if band and band not in BANDS:
        raise ApiError(422, "invalid_request", f"band must be one of {', '.join(BANDS)}, not {band!r}")
    if sort not in get_args(Sort):
        raise ApiError(422, "invalid_request", f"cannot sort by {sort!r}")
    flags = {"": (None, None), "outreach": (True, None), "control": (None, True), "none": (False, False)}
    if flag not in flags:
        raise ApiError(422, "invalid_request", f"flag must be outreach, control or none, not {flag!r}")
    outreach, control = flags[flag]
    return ListQuery(band=band or None, owner=owner or None, segment=segment or None, outreach=outreach, control=control, q=q or None, sort=sort, limit=limit, offset=offset)


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/app", status_code=307)


@router.get("/app", response_class=HTMLResponse)
def risk_list_page(request: Request, query: ListQuery = Depends(_page_query), snapshot: Snapshot = Depends(get_snapshot)) -> HTMLResponse:
    return _list_page(request, query, snapshot, owner_view=None)


@router.get("/app/owners/{manager}", response_class=HTMLResponse)
def my_accounts_page(
    request: Request, manager: Annotated[str, PathParam(max_length=200)], query: ListQuery = Depends(_page_query), snapshot: Snapshot = Depends(get_snapshot)
) -> HTMLResponse:
    return _list_page(request, replace(query, owner=manager), snapshot, owner_view=manager)


def _account_page(request: Request, account_id: str, snapshot: Snapshot, *, form: CallForm | None = None, logged: bool = False, status: int = 200) -> HTMLResponse:
    service = get_service(request)
    detail = account_detail(snapshot, account_id)
    thresholds = (snapshot.score_config.medium_threshold, snapshot.score_config.high_threshold)
    contacts = None if snapshot.contacts is None else snapshot.contacts.for_account(account_id, service.settings.max_contacts)
    token, new_cookie = csrf_for_form(request)
    response = _render(
        request,
        "account.html",
        status=status,
        title=f"Account {account_id}",
        a=detail,
        chart=trend_chart([p.model_dump() for p in detail.history], thresholds) if detail.history else None,
        contacts=contacts,
        contacts_note=snapshot.contacts_note,
        contact_days=service.settings.contact_days,
        contacts_since=None if snapshot.contacts is None else f"{snapshot.contacts.since:%Y-%m-%d}",
        run=snapshot.index,
        call=form or CallForm(),
        call_csrf=token,
        call_agent=session_user(request),
        call_logged=logged,
        call_outcomes=OUTCOME_LABELS,
        call_limits={"note": MAX_NOTE, "agent": MAX_AGENT},
        today=f"{pd.Timestamp.now(tz='UTC'):%Y-%m-%d}",
    )
    if new_cookie:
        response.set_cookie(CSRF_COOKIE, new_cookie, httponly=True, samesite="strict", path="/app")
    return response


@router.get("/app/accounts/{account_id}", response_class=HTMLResponse)
def account_page(
    request: Request, account_id: Annotated[str, PathParam(max_length=200)], logged: bool = False, snapshot: Snapshot = Depends(get_snapshot)
) -> HTMLResponse:
    return _account_page(request, account_id, snapshot, logged=logged)


@router.post("/app/accounts/{account_id}/calls", response_class=HTMLResponse)
async def log_call(request: Request, account_id: Annotated[str, PathParam(max_length=200)], snapshot: Snapshot = Depends(get_snapshot)) -> Response:
    """Add a call to the scoring folder's contact log (``contacts.parquet``), then back to the page."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ApiError(413, "too_large", f"The form sent {len(body):,} bytes; a logged call has at most {MAX_BODY:,}.")
    form = parse_form(body)
    if not csrf_ok(request, form.csrf):
        raise ApiError(403, "forbidden", "This form has expired or did not come from this service: open the account page again and log the call from there.")
    account_detail(snapshot, account_id)  # 404 for an account not on the list
    call = to_call(form, account_id, agent=session_user(request), now=pd.Timestamp.now(tz="UTC"))
    if call is None:
        return _account_page(request, account_id, snapshot, form=form, status=422)
    try:
        await run_in_threadpool(log_calls, get_service(request).settings.scores_dir, [call], timeout=LOCK_WAIT_SECONDS)
    except FolderLockedError:
        form.problems.append("The scoring folder is busy (a scoring run holds it): the call was NOT saved. Try again in a minute.")
        return _account_page(request, account_id, snapshot, form=form, status=503)
    return RedirectResponse(f"/app/accounts/{quote(account_id, safe='')}?logged=true#log-call", status_code=303)


# --------------------------------------------------------------------------- login


def safe_next(target: str | None) -> str:
    """Only local pages: never redirect a browser to another site after login."""
    if target and target.startswith("/app") and not target.startswith("//") and "\\" not in target:
        return target
    return "/app"


def _login_page(request: Request, next_path: str, message: str | None = None, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    needs_key = get_service(request).settings.api_key is not None
    response = _render(request, "login.html", status=status, title="Sign in", next=safe_next(next_path), message=message, run=None, needs_key=needs_key)
    response.headers.update(headers or {})
    return response


@router.get("/app/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/app") -> Response:  # noqa: A002 - the query parameter's name
    return _login_page(request, next)


#: Fields the sign-in form may send (key, name, next): a few more are tolerated, a flood is refused.
MAX_LOGIN_FIELDS = 10


def _login_fields(body: bytes) -> dict[str, list[str]]:
    """The form's fields; ValueError for more than ``MAX_LOGIN_FIELDS`` (the body itself is
    bounded by the guard's ``max_form_bytes``)."""
    return parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=MAX_LOGIN_FIELDS)


@router.post("/app/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """Exchange the key (and the agent's name) for a session; failures are throttled per client."""
    settings = get_service(request).settings
    throttle = request.app.state.login_throttle
    client = request.client.host if request.client else "unknown"
    wait = throttle.retry_after(client)
    if wait is not None:
        message = f"Too many failed sign-ins from this address: try again in {wait} s."
        return _login_page(request, "/app", message, status=429, headers={"Retry-After": str(wait)})
    try:
        form = _login_fields(await request.body())
    except ValueError:
        raise ApiError(422, "invalid_request", f"the sign-in form has more than {MAX_LOGIN_FIELDS} fields") from None
    target = safe_next((form.get("next") or ["/app"])[0])
    name = " ".join((form.get("name") or [""])[0].split()) or "agent"
    if len(name) > settings.limits.max_string_chars:
        return _login_page(request, target, f"Names are at most {settings.limits.max_string_chars} characters.", status=422)
    key = settings.api_key
    if key is not None and not hmac.compare_digest((form.get("key") or [""])[0].encode(), key.encode()):
        throttle.failed(client)
        return _login_page(request, target, "That key is not right.", status=401)
    throttle.succeeded(client)
    sessions: Sessions = request.app.state.sessions
    _, cookie = sessions.issue(name)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, cookie, max_age=int(sessions.max_age), httponly=True, samesite="lax", secure=sessions.secure(request), path="/")
    return response


@router.post("/app/logout")
def logout(request: Request) -> RedirectResponse:
    """End the session: its id is refused from now on, and the browser forgets the cookie."""
    sessions: Sessions = request.app.state.sessions
    session = sessions.read(request.cookies.get(COOKIE))
    if session is not None:
        sessions.revoke(session)
    response = RedirectResponse("/app/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=sessions.secure(request))
    return response


def page_error(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> HTMLResponse:
    """Errors on the pages: the same status, as a page a person can read."""
    response = _render(request, "error.html", status=status, title=f"Error {status}", code=status, message=message)
    for k, v in (headers or {}).items():
        response.headers[k] = v
    return response
