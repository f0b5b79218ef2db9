"""What a test does when something outside Python it needs (Chromium, a Java runtime, PySpark)
is missing: skipped on a developer's machine, but a failure in CI (``CI=true``), where
``.ci/run`` installs all of it — a green CI must not mean "the browser and Spark tests did not run"."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(what: str, install: str) -> NoReturn:
    """Skip (or, under ``CI=true``, fail) the current test or module: ``what`` is not there."""
    reason = f"{what} is not available ({install})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true runs every test, so a missing dependency fails the run instead of skipping", pytrace=False)
    pytest.skip(reason, allow_module_level=True)
