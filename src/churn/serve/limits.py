"""How much one request may ask of the service (``guard.py`` enforces the body size).

The limits on a body's *content* (accounts, interactions, string lengths, extra keys) are
checked by the request models in ``schemas.py``. Pydantic models are classes fixed at import
time and FastAPI gives their validators no context, so the limits of the app answering the
request reach them through :data:`REQUEST_LIMITS`, a context variable ``guard.BodyLimitMiddleware``
sets for the request's task (each request its own value; two apps in one process never mix).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

MIB = 2**20


@dataclass(frozen=True)
class RequestLimits:
    """Bounds on one request. Defaults fit a CRM scoring a few accounts with a year of events
    each (about 200 bytes of JSON an interaction) and refuse anything far beyond."""

    #: Any request body (bytes); ``POST /score`` is the only route that takes a large one.
    max_body_bytes: int = 16 * MIB
    #: The sign-in form (bytes): a key, a name and where to go next.
    max_form_bytes: int = 4096
    #: Accounts and interactions in one ``POST /score``.
    max_accounts: int = 1000
    max_interactions: int = 100_000
    #: Characters of any text value (ids, event types, channels, attribute names and values).
    max_string_chars: int = 200
    #: Attributes besides the contract's columns on one account (plan, segment, …).
    max_extra_keys: int = 50

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive whole number, got {value!r}")


REQUEST_LIMITS: ContextVar[RequestLimits] = ContextVar("churn_request_limits", default=RequestLimits())
