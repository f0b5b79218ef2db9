"""Debian's Chromium for the browser tests: where it is, and the HTML report as the browser
renders it (the DOM after scripts ran, and any console message)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.needs import missing

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
#: Headless, offline, no first-run or background traffic.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium_command(profile: Path) -> list[str]:
    """The browser with its flags and a fresh profile; skips the test when there is none (fails it in CI)."""
    if CHROMIUM is None:
        missing("Chromium", "apt-get install chromium chromium-driver; .ci/run installs it")
    return [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]


def rendered_dom(page: Path, profile: Path) -> tuple[str, list[str]]:
    """The DOM of ``page`` after its scripts ran, and the console lines it logged."""
    dom = subprocess.run(
        [*chromium_command(profile), "--enable-logging=stderr", "--v=0", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    return dom.stdout, [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
