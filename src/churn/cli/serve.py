"""``churn serve``: the REST API and the web pages over a scoring folder (:mod:`churn.serve`).

Registered on the same Typer ``app`` as the other commands (imported by :mod:`churn.cli`); a
module of its own because its options (where to listen, who may call, how much one request may
ask) are many. Stage modules are imported inside the command: ``churn --help`` loads none.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from churn.cli import render
from churn.cli.commands import _quiet_mlflow, app
from churn.cli.options import ConfigOpt, ModelNameOpt, UsageError, data_settings, friendly_errors
from churn.cli.render import console

if TYPE_CHECKING:  # the web stack loads only when `churn serve` runs
    from churn.serve.limits import RequestLimits


@app.command()
@friendly_errors
def serve(
    scores: Annotated[Path, typer.Option(help="Scoring folder to serve (churn score --out); a new run there is picked up without a restart.")] = Path("reports/scores"),
    model: Annotated[
        Optional[str],
        typer.Option(help="Model for POST /score: models:/NAME@champion, another models:/ or runs:/ URI, or a .joblib bundle (default: the champion of --model-name)."),
    ] = None,
    model_name: ModelNameOpt = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="Data folder: recent support contacts and surveys on the account pages.")] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    history_runs: Annotated[int, typer.Option(min=1, help="Past runs kept in memory for each account's score trend.")] = 12,
    access_log: Annotated[bool, typer.Option(help="Log every request (method, path, status).")] = True,
    playbook: Annotated[
        Optional[Path], typer.Option("--playbook", help="Playbook TOML for POST /score's suggested actions, as for churn score (default: the shipped one).")
    ] = None,
    config: ConfigOpt = None,
    insecure_no_auth: Annotated[bool, typer.Option("--insecure-no-auth", help="Listen on a non-loopback address without CHURN_API_KEY (everything open).")] = False,
    forwarded_allow_ips: Annotated[
        Optional[str], typer.Option(help="Behind a TLS proxy: the proxy addresses whose X-Forwarded-For/-Proto are trusted (comma-separated); session cookies become Secure.")
    ] = None,
    # the defaults are serve.limits.RequestLimits' (importing it here would load the web stack for
    # `churn --help`); tests/test_serve_security.py checks they agree
    max_body_mb: Annotated[float, typer.Option(min=0.001, help="Largest request body (MiB); bigger ones get 413 before they are read.")] = 16.0,
    max_accounts: Annotated[int, typer.Option(min=1, help="Accounts per POST /score (more: 422).")] = 1000,
    max_interactions: Annotated[int, typer.Option(min=1, help="Interactions per POST /score (more: 422).")] = 100_000,
    max_string_chars: Annotated[int, typer.Option(min=1, help="Characters of any text value in a request (longer: 422).")] = 200,
    max_extra_keys: Annotated[int, typer.Option(min=1, help="Attributes besides the contract's columns on one account (more: 422).")] = 50,
    login_failures: Annotated[int, typer.Option(min=1, help="Wrong sign-ins a client may make within --login-window before 429.")] = 5,
    login_window: Annotated[float, typer.Option(min=1.0, help="Seconds over which a client's wrong sign-ins are counted.")] = 60.0,
    session_hours: Annotated[float, typer.Option(min=0.01, help="A page sign-in lasts this long.")] = 8.0,
    score_workers: Annotated[
        Optional[int],
        typer.Option(min=0, help="Processes scoring POST /score, each with the model loaded, so GETs are answered meanwhile (default: one per core, at most 2; 0: score in the server process)."),
    ] = None,
    score_timeout: Annotated[float, typer.Option(min=0.1, help="Seconds without any POST /score finishing in the scoring processes while one waits; past it they are taken as hung, restarted, and the waiting requests get 503.")] = 60.0,
    score_queue: Annotated[int, typer.Option(min=1, help="POST /score requests the scoring processes hold at once; more get 503 with Retry-After.")] = 32,
) -> None:
    """Serve the risk list: a REST API for CRMs and web pages for customer-success teams.

    Set CHURN_API_KEY to require the header X-API-Key on every endpoint except /health; without
    it the service only listens on a loopback address unless --insecure-no-auth is given."""
    import logging

    import uvicorn

    from churn.modeling.tracking import bundle_path, champion_uri
    from churn.outreach.playbook import load_playbook
    from churn.serve.app import create_app
    from churn.serve.pool import default_workers
    from churn.serve.settings import DEFAULT_BUNDLE, ServeSettings, bind_refusal

    api_key = os.environ.get("CHURN_API_KEY") or None
    refusal = bind_refusal(host, api_key, insecure_no_auth)
    if refusal is not None:
        render.print_error("Error", refusal)
        raise typer.Exit(1)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    _quiet_mlflow()
    if data is not None and not data.is_dir():
        raise UsageError(f"--data {data}: no such folder")
    load_playbook(playbook)  # a typo in the playbook fails at start-up, not on the first request
    limits = _request_limits(max_body_mb, max_accounts, max_interactions, max_string_chars, max_extra_keys)
    name = data_settings(data, config, model_name=model_name).model_name
    champion = champion_uri(name)  # without --model: the business's champion, or else its exported bundle
    settings = ServeSettings(
        scores_dir=scores, model_ref=model or champion, data_dir=data, api_key=api_key, history_runs=history_runs, playbook=playbook,
        fallback_bundle=bundle_path(DEFAULT_BUNDLE.parent, name), fallback_for=champion,
        limits=limits, session_seconds=session_hours * 3600, login_failures=login_failures, login_window_seconds=login_window, behind_tls_proxy=forwarded_allow_ips is not None,
        score_workers=default_workers() if score_workers is None else score_workers, score_timeout_seconds=score_timeout, score_queue=score_queue,
    )  # fmt: skip
    with console.status(f"Loading {settings.model_ref} and indexing the latest run in {scores}…"):
        api = create_app(settings)
    render.print_service(api.state.service, scores, host, port, auth=api_key is not None)
    gc.freeze()  # the loaded model and run index live as long as the process: keep them out of every garbage collection
    # proxy headers only from the addresses named: otherwise a client could set X-Forwarded-For and dodge the sign-in throttle
    proxy = {"proxy_headers": True, "forwarded_allow_ips": forwarded_allow_ips} if forwarded_allow_ips else {"proxy_headers": False}
    uvicorn.run(api, host=host, port=port, access_log=access_log, log_level="info", **proxy)


def _request_limits(max_body_mb: float, max_accounts: int, max_interactions: int, max_string_chars: int, max_extra_keys: int) -> RequestLimits:
    """The per-request limits from ``churn serve``'s options (the body limit given in MiB)."""
    from churn.serve.limits import MIB, RequestLimits

    return RequestLimits(
        max_body_bytes=max(1, round(max_body_mb * MIB)), max_accounts=max_accounts, max_interactions=max_interactions,
        max_string_chars=max_string_chars, max_extra_keys=max_extra_keys,
    )  # fmt: skip
