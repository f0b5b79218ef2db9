"""Settings of the ``churn serve`` app: one frozen object, built by the CLI or a test."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from churn.config import ScoreConfig
from churn.serve.limits import RequestLimits

DEFAULT_MODEL = "models:/churn@champion"
DEFAULT_BUNDLE = Path("models/churn_champion.joblib")


@dataclass(frozen=True)
class ServeSettings:
    """What the service reads and how often it looks for a new run.

    Nothing here reads the environment: the CLI passes ``CHURN_API_KEY`` in as ``api_key``
    (kept out of ``repr`` so it never reaches a log line).
    """

    #: A scoring folder written by ``churn score --out``.
    scores_dir: Path = Path("reports/scores")
    #: ``models:/…``, ``runs:/…`` or a ``.joblib`` bundle; None serves lists without on-demand scoring.
    model_ref: str | None = DEFAULT_MODEL
    #: Tried when ``model_ref`` is ``fallback_for`` (the champion the bundle was exported from)
    #: and the MLflow registry cannot load it.
    fallback_bundle: Path | None = DEFAULT_BUNDLE
    fallback_for: str | None = DEFAULT_MODEL
    #: The data folder, for the recent support contacts and surveys on the account page.
    data_dir: Path | None = None
    #: Playbook TOML for POST /score's suggested actions (None: the shipped one), as ``churn score --playbook``.
    playbook: Path | None = None
    api_key: str | None = field(default=None, repr=False)
    #: Look for a new run at most this often (seconds); 0 = on every request.
    reload_check_seconds: float = 5.0
    #: Build a new run's index in a background thread (requests keep the old one meanwhile).
    background_reload: bool = True
    #: Past runs kept in memory for each account's score trend.
    history_runs: int = 12
    #: The account page shows support contacts and surveys of this many days.
    contact_days: int = 180
    max_contacts: int = 20
    #: Bands of on-demand scores when the scoring folder does not say (it does once a run exists).
    score: ScoreConfig = field(default_factory=ScoreConfig)
    #: Body size, rows, text length and attributes one request may carry (limits.py).
    limits: RequestLimits = field(default_factory=RequestLimits)
    #: A page session ends this long after sign-in (seconds).
    session_seconds: float = 8 * 3600
    #: Behind a TLS-terminating proxy (``--forwarded-allow-ips``): session cookies are always Secure.
    behind_tls_proxy: bool = False
    #: Failed sign-ins allowed per client address in ``login_window_seconds``; then 429.
    login_failures: int = 5
    login_window_seconds: float = 60.0
    #: Processes scoring POST /score (``serve/pool.py``); 0 scores in the server process.
    score_workers: int = 0
    #: No POST /score finishing in the scoring processes for this many seconds while one waits
    #: means one hangs: they are stopped and replaced, the waiting requests get 503.
    score_timeout_seconds: float = 60.0
    #: POST /score requests in the scoring processes' hands at once; more get 503 with Retry-After.
    score_queue: int = 32

    def __post_init__(self) -> None:
        if self.history_runs < 1:
            raise ValueError(f"history_runs must be at least 1, got {self.history_runs}")
        if self.session_seconds <= 0 or self.login_window_seconds <= 0 or self.login_failures < 1:
            raise ValueError("session_seconds and login_window_seconds must be positive, login_failures at least 1")
        if self.score_workers < 0:
            raise ValueError(f"score_workers must be >= 0, got {self.score_workers}")
        if self.score_timeout_seconds <= 0 or self.score_queue < 1:
            raise ValueError(f"score_timeout_seconds must be positive and score_queue at least 1, got {self.score_timeout_seconds} and {self.score_queue}")
        if self.reload_check_seconds < 0:
            raise ValueError(f"reload_check_seconds must be >= 0, got {self.reload_check_seconds}")


def is_loopback(host: str) -> bool:
    """Only this machine can reach ``host``: 127.0.0.0/8, ::1 or ``localhost``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def bind_refusal(host: str, api_key: str | None, insecure_no_auth: bool) -> str | None:
    """Why ``churn serve`` will not listen on ``host``, in one sentence, or None.

    Without a key every endpoint, ``POST /score`` included, is open to whoever reaches the
    port; on loopback that is only this machine, anywhere else it must be asked for."""
    if api_key or insecure_no_auth or is_loopback(host):
        return None
    return (
        f"refusing to listen on {host} without CHURN_API_KEY: every endpoint would be open to anyone who can reach it; "
        "set CHURN_API_KEY, listen on 127.0.0.1, or pass --insecure-no-auth to serve it open anyway"
    )
