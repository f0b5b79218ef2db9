"""The pages in headless Chromium (Playwright driving the system's /usr/bin/chromium) against
``churn serve`` started as a user would, on a free local port: sign in, search an account,
filter by band, open the account page, open an owner's "my accounts"."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.browser_support import CHROMIUM
from tests.needs import missing
from tests.serve_support import API_KEY, AS_OFS, ServeData, serve_data

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session", autouse=True)
def chromium_installed() -> None:
    """Chromium, or every test here is skipped (failed under CI=true) — judged before the
    session's trained model and the server are built."""
    if CHROMIUM is None:
        missing("Chromium", "apt-get install chromium chromium-driver; .ci/run installs it")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def sd(tmp_path_factory, training_data, trained) -> ServeData:  # type: ignore[no-untyped-def]
    return serve_data(tmp_path_factory, training_data, trained)


@pytest.fixture(scope="module")
def server(sd: ServeData, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """`churn serve` in a subprocess on 127.0.0.1:<free port>; stopped after the module."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    env = {**os.environ, "CHURN_API_KEY": API_KEY, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "churn", "serve", "--scores", str(sd.scores_dir), "--data", str(sd.data_dir), "--model", str(sd.bundle), "--port", str(port), "--no-access-log"]
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path_factory.mktemp("serve-cwd"))
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):  # up to ~2 minutes on a busy machine; usually a few seconds
            if process.poll() is not None:
                pytest.fail(f"churn serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        else:
            pytest.fail(f"churn serve did not answer /health:\n{log.read_text()}")
        yield base, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert API_KEY not in log.read_text()  # the key is never logged


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def test_cli_started_service_answers(server, sd: ServeData) -> None:  # type: ignore[no-untyped-def]
    base, log = server
    ready = httpx.get(f"{base}/ready", headers={"X-API-Key": API_KEY}).json()
    assert ready["ready"], ready
    assert httpx.get(f"{base}/accounts").status_code == 401
    assert f"as of {AS_OFS[-1]}" in log.read_text() and "Auth: X-API-Key required" in log.read_text()


def test_search_filter_and_open_an_account(server, browser, sd: ServeData, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base, _ = server
    risk = sd.latest()
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    # sign in: the key is exchanged for a session cookie
    page.goto(f"{base}/app")
    page.fill("input[name=key]", API_KEY)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert f"of {len(risk):,} accounts" in page.inner_text("#count")

    # search an account by part of its id
    target = risk[risk["owner"].notna()].iloc[7]
    page.fill("#search", target["account_id"][-5:])
    with page.expect_navigation():
        page.press("#search", "Enter")
    ids = page.locator("#risk-table tbody a.account-link").all_inner_texts()
    assert target["account_id"] in ids and all(target["account_id"][-5:] in i for i in ids)

    # filter by band: the drop-down submits the form by itself (the page's script)
    page.fill("#search", "")
    with page.expect_navigation():
        page.press("#search", "Enter")
    assert f"of {len(risk):,} accounts" in page.inner_text("#count")
    with page.expect_navigation():
        page.select_option("#band", "high")
    high = int((risk["risk_band"] == "high").sum())
    assert f"of {high:,} accounts" in page.inner_text("#count")
    bands = page.locator("#risk-table tbody .band").all_inner_texts()
    assert bands and set(bands) == {"high"}

    # open the first high-risk account
    first = page.locator("#risk-table tbody a.account-link").first
    account = first.inner_text()
    with page.expect_navigation():
        first.click()
    row = risk.set_index("account_id").loc[account]
    assert account in page.inner_text("#account-title")
    assert page.inner_text("#probability").startswith(f"{100 * row['churn_probability']:.1f}")
    assert page.locator("#reasons li").count() >= 1 and row["reason_1"] in page.inner_text("#reasons")
    assert page.inner_text("#action") == row["suggested_action"]
    assert page.locator("#trend circle").count() == len(AS_OFS)  # one point per run
    assert page.locator("#contacts tbody tr").count() >= 1 or page.locator("#contacts-none").count() == 1
    page.screenshot(path=str(tmp_path / "account.png"), full_page=True)

    # "my accounts": the owner's view lists only their accounts, names escaped, not injected
    owner = "Chloé <Dupont>"
    page.goto(f"{base}/app/owners/{owner}")
    assert page.inner_text("h1") == f"My accounts: {owner}"
    mine = int((risk["owner"] == owner).sum())
    assert f"of {mine:,} accounts" in page.inner_text("#count")
    assert page.locator("dupont").count() == 0  # "<Dupont>" is text, not an element
    assert errors == []


def test_log_a_call_on_the_account_page(server, browser, sd: ServeData) -> None:  # type: ignore[no-untyped-def]
    """An agent fills the account page's form in the browser; the call lands in the scoring
    folder's contact log (removed afterwards: the folder is shared with other tests)."""
    import pandas as pd

    from churn.outreach.runs import CONTACTS_FILE

    base, _ = server
    log = sd.scores_dir / CONTACTS_FILE
    assert not log.exists()
    account = sd.latest().query("outreach")["account_id"].iloc[3]
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{base}/app/accounts/{account}")
        if page.locator("input[name=key]").count():  # a fresh browser page signs in first
            page.fill("input[name=key]", API_KEY)
            page.fill("input[name=name]", "Dev & Co")  # the agent: the log takes the name from the session
            with page.expect_navigation():
                page.click("button[type=submit]")
        page.check("input[name=reached][value=yes]")
        page.select_option("#call-outcome", "call_back")
        page.fill("#call-date", "2024-06-03")
        page.fill("#call-note", "Asked for the new price list & a call next week")
        assert page.locator("#call-agent").count() == 0  # signed in: no name to type
        with page.expect_navigation():
            page.click("#call-submit")
        assert page.locator("#call-logged").is_visible() and account in page.inner_text("#account-title")
        row = pd.read_parquet(log).iloc[-1]
        assert (row["account_id"], row["outcome"], row["agent"]) == (account, "call_back", "Dev & Co")
        assert row["note"] == "Asked for the new price list & a call next week" and row["contacted_at"] == pd.Timestamp("2024-06-03", tz="UTC")
        assert errors == []
    finally:
        page.close()
        log.unlink(missing_ok=True)
