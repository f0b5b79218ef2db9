"""Logging a call on the account page: the row lands in the scoring folder's contact log
(``contacts.parquet``), counts in the next ``churn retention --scores`` per-protocol rows, and
the form is refused without its CSRF token or with bad fields. Two writers at once keep
every row."""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from churn.outreach.calls import Call, log_calls
from churn.outreach.runs import CONTACTS_FILE, list_runs, load_risk_list
from churn.serve.app import create_app
from churn.serve.settings import ServeSettings
from tests.serve_support import API_KEY, AS_OFS, ServeData, serve_data


@pytest.fixture(scope="module")
def sd(tmp_path_factory, training_data, trained) -> ServeData:  # type: ignore[no-untyped-def]
    return serve_data(tmp_path_factory, training_data, trained)


@pytest.fixture()
def scores(sd: ServeData, tmp_path: Path) -> Path:
    """A copy of the scoring folder: each test writes its own contact log."""
    folder = tmp_path / "scores"
    shutil.copytree(sd.scores_dir, folder, symlinks=True)
    (folder / CONTACTS_FILE).unlink(missing_ok=True)
    return folder


def signed_in(scores: Path) -> TestClient:
    client = TestClient(create_app(ServeSettings(scores_dir=scores, model_ref=None, api_key=API_KEY, reload_check_seconds=0, background_reload=False)))
    # the agent's name comes from the signed session: whatever the form says, the log says who signed in
    assert client.post("/app/login", data={"key": API_KEY, "name": "Ana Lima", "next": "/app"}, follow_redirects=False).status_code == 303
    return client


def form_token(client: TestClient, account: str) -> str:
    page = client.get(f"/app/accounts/{account}")
    assert page.status_code == 200 and 'id="call-form"' in page.text
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert found
    return found.group(1)


def first_run_outreach(scores: Path, n: int) -> list[str]:
    run = list_runs(scores).iloc[0]
    assert f"{run['as_of']:%Y-%m-%d}" == AS_OFS[0]
    risk = load_risk_list(scores, run["run_id"])
    return risk.loc[risk["outreach"], "account_id"].head(n).tolist()


def test_a_logged_call_is_in_the_contact_log_and_the_per_protocol_rows(sd: ServeData, scores: Path) -> None:
    from churn.cli.commands import app

    reached, missed = first_run_outreach(scores, 2)
    client = signed_in(scores)
    for account, fields in ((reached, {"reached": "yes", "outcome": "saved"}), (missed, {"reached": "no", "outcome": ""})):
        body = {**fields, "called_on": "2024-05-10", "note": "Renewal <b>agreed</b>", "agent": "Someone Else", "csrf_token": form_token(client, account)}
        sent = client.post(f"/app/accounts/{account}/calls", data=body, follow_redirects=False)
        assert sent.status_code == 303 and sent.headers["location"].startswith(f"/app/accounts/{account}?logged=true"), sent.text
    assert 'id="call-logged"' in client.get(sent.headers["location"]).text

    log = pd.read_parquet(scores / CONTACTS_FILE).set_index("account_id")
    assert sorted(log.index) == sorted([reached, missed])
    assert log.loc[[reached, missed], "outcome"].tolist() == ["saved", "not_reached"] and log["agent"].tolist() == ["Ana Lima"] * 2
    assert log.loc[reached, "note"] == "Renewal <b>agreed</b>"
    assert (log["contacted_at"] == pd.Timestamp("2024-05-10", tz="UTC")).all()

    loop = CliRunner().invoke(app, ["retention", "--data", str(sd.data_dir), "--scores", str(scores)])
    assert loop.exit_code == 0, loop.output
    uplift = pd.read_csv(scores / "uplift.csv")
    first = uplift[(uplift["scope"] == list_runs(scores)["run_id"].iloc[0]) & (uplift["band"] == "all")].set_index("analysis")
    assert first.loc["per-protocol", "outreach_n"] == 1  # the reached call; the missed one is not "reached"
    assert first.loc["intention-to-treat", "outreach_reached"] == pytest.approx(1 / first.loc["intention-to-treat", "outreach_n"])


def test_the_form_is_refused_without_its_token_or_with_bad_fields(scores: Path) -> None:
    (account,) = first_run_outreach(scores, 1)
    client = signed_in(scores)
    token = form_token(client, account)
    good = {"reached": "yes", "outcome": "call_back", "called_on": "2024-05-10", "note": "", "agent": "Ben", "csrf_token": token}

    assert client.post(f"/app/accounts/{account}/calls", data={**good, "csrf_token": ""}).status_code == 403
    assert client.post(f"/app/accounts/{account}/calls", data={**good, "csrf_token": "0" * 64}).status_code == 403
    other = signed_in(scores)  # another browser: its own churn_csrf cookie, so this token is not its
    other.get(f"/app/accounts/{account}")
    assert other.post(f"/app/accounts/{account}/calls", data=good).status_code == 403

    for change, message in (
        ({"outcome": ""}, "Choose what the call achieved"),
        ({"outcome": "delighted"}, "Choose what the call achieved"),
        ({"note": "x" * 1001}, "at most 1,000 are kept"),
        ({"called_on": "2999-01-01"}, "today or earlier"),
        ({"called_on": "yesterday"}, "must be a date"),
    ):
        refused = client.post(f"/app/accounts/{account}/calls", data={**good, **change})
        assert refused.status_code == 422 and message in refused.text, change
    assert client.post("/app/accounts/no-such-account/calls", data=good).status_code == 404
    assert not (scores / CONTACTS_FILE).exists()
    assert client.post(f"/app/accounts/{account}/calls", data=good, follow_redirects=False).status_code == 303
    assert pd.read_parquet(scores / CONTACTS_FILE)["outcome"].tolist() == ["call_back"]


def test_a_call_is_not_saved_while_a_scoring_run_holds_the_folder(scores: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from churn.outreach import runs
    from churn.serve.routers import pages

    monkeypatch.setattr(pages, "LOCK_WAIT_SECONDS", 0.3)
    (account,) = first_run_outreach(scores, 1)
    client = signed_in(scores)
    body = {"reached": "yes", "outcome": "saved", "called_on": "2024-05-10", "note": "keep me", "agent": "Ana", "csrf_token": form_token(client, account)}
    with runs.locked(scores, holder="a scoring run"):  # this thread; the service's thread waits for it
        busy = client.post(f"/app/accounts/{account}/calls", data=body)
    assert busy.status_code == 503 and "the call was NOT saved" in busy.text and "keep me</textarea>" in busy.text
    assert not (scores / CONTACTS_FILE).exists()


def test_two_agents_logging_at_once_keep_every_row(tmp_path: Path) -> None:
    """Each save reads the log, adds its row and replaces the file: without the folder's lock
    two saves that overlap lose one of the rows."""
    start = pd.Timestamp("2024-05-10", tz="UTC")

    def agent(name: str) -> None:
        for k in range(15):
            call = Call(account_id=f"{name}-{k}", contacted_at=start + pd.Timedelta(minutes=k), reached=True, outcome="saved", agent=name)
            log_calls(tmp_path, [call], timeout=30)

    threads = [threading.Thread(target=agent, args=(name,)) for name in ("ana", "ben", "dev")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log = pd.read_parquet(tmp_path / CONTACTS_FILE)
    assert len(log) == 45 and log["account_id"].is_unique


def test_a_web_logged_call_keeps_its_agent_when_churn_contacts_merges_an_export(scores: Path, tmp_path: Path) -> None:
    from churn.cli.commands import app

    (account,) = first_run_outreach(scores, 1)
    log_calls(scores, [Call(account_id=account, contacted_at=pd.Timestamp("2024-05-10", tz="UTC"), reached=True, outcome="saved", agent="Ana", note="ok")], timeout=5)
    pd.DataFrame({"account_id": [account], "contacted_at": ["2024-05-11T09:00:00"], "outcome": ["reached"]}).to_csv(tmp_path / "export.csv", index=False)
    merged = CliRunner().invoke(app, ["contacts", "--scores", str(scores), "--file", str(tmp_path / "export.csv")])
    assert merged.exit_code == 0, merged.output
    log = pd.read_parquet(scores / CONTACTS_FILE)
    assert log["outcome"].tolist() == ["saved", "reached"] and log["agent"].iloc[0] == "Ana" and pd.isna(log["agent"].iloc[1])
