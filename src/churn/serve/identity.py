"""Who is signed in: the agent's name for the calls logged on the account page.

A stand-in until the service has per-agent sessions: it always answers None, so the page
asks the agent to type their name. When ``churn.serve.auth.session_user`` exists, this
function should return what it returns (one line to change; nothing else depends on it).
"""

from __future__ import annotations

from fastapi import Request


def session_user(request: Request) -> str | None:
    """The signed-in agent's name, or None when the request has no per-agent session."""
    return None
