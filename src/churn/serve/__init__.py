"""``churn serve``: the risk list as a REST API for CRMs and web pages for customer-success teams.

Build the app with :func:`create_app` over a scoring folder; run it with uvicorn (the CLI
does). Layout: ``settings`` (what to serve), ``store`` (the only code that reads the
scoring folder), ``index``/``latest`` (the latest run in memory), ``scoring`` (on-demand
scores), ``schemas`` (request/response models), ``routers`` (one per resource, pages with
their templates), ``auth`` (the key, the pages' sessions), ``limits``/``guard``/``throttle``
(how much one request or client may ask).

Imports: :mod:`churn.outreach` and the stages below it; a sibling of :mod:`churn.monitoring`,
and below :mod:`churn.jobs` and the CLI, which it never imports.
"""

from churn.serve.app import create_app
from churn.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
