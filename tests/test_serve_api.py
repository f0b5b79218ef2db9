"""The service in-process (FastAPI TestClient): every endpoint, auth, errors, on-demand
scores equal to the batch run's, and a new run picked up without a restart."""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from churn.serve.app import create_app
from churn.serve.model import ServingModel
from churn.serve.settings import ServeSettings
from tests.serve_support import API_KEY, AS_OFS, ServeData, batch_probabilities, crm_rows, request_body, score_request, serve_data


@pytest.fixture(scope="module")
def sd(tmp_path_factory, training_data, trained) -> ServeData:  # type: ignore[no-untyped-def]
    return serve_data(tmp_path_factory, training_data, trained)


@pytest.fixture(scope="module")
def settings(sd: ServeData) -> ServeSettings:
    return ServeSettings(scores_dir=sd.scores_dir, data_dir=sd.data_dir, model_ref=None, reload_check_seconds=0, background_reload=False)


@pytest.fixture(scope="module")
def client(sd: ServeData, settings: ServeSettings) -> TestClient:
    return TestClient(create_app(settings, model=sd.serving()))


def assert_error(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    """Every error has one shape: {"error": {status, error, message, details}}."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"status", "error", "message", "details"}
    assert body["error"]["status"] == status and body["error"]["error"] == code and body["error"]["message"]
    return body["error"]


# --------------------------------------------------------------------------- service


def test_health_ready_version(client: TestClient, sd: ServeData) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    version = client.get("/version").json()
    assert version["model"] == "test model" and version["as_of"] == AS_OFS[-1]
    assert version["run_id"].startswith(AS_OFS[-1].replace("-", ""))


def test_not_ready_without_run_or_model(tmp_path: Path, sd: ServeData) -> None:
    empty = TestClient(create_app(ServeSettings(scores_dir=tmp_path, model_ref=None)))
    ready = empty.get("/ready")
    assert ready.status_code == 503
    body = ready.json()
    assert body["ready"] is False and not body["model_loaded"] and not body["run_present"] and len(body["problems"]) == 2
    assert_error(empty.get("/accounts"), 503, "no_run")
    assert_error(empty.post("/score", json=score_request(sd, ["x"], AS_OFS[0])), 503, "no_model")
    assert empty.get("/health").status_code == 200


def test_missing_champion_falls_back_to_the_bundle(tmp_path: Path, sd: ServeData, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    app = create_app(ServeSettings(scores_dir=sd.scores_dir, fallback_bundle=sd.bundle))
    service = app.state.service
    assert service.model is not None and str(sd.bundle) in service.model.label
    assert "churn@champion" in service.model_note and "serving the bundle" in service.model_note
    none = create_app(ServeSettings(scores_dir=sd.scores_dir, fallback_bundle=tmp_path / "absent.joblib")).state.service
    assert none.model is None and "train one (`churn train`)" in none.model_problem


# --------------------------------------------------------------------------- accounts


def test_list_is_the_whole_risk_list_in_rank_order(client: TestClient, sd: ServeData) -> None:
    risk = sd.latest()
    page = client.get("/accounts", params={"limit": 500}).json()
    assert page["total"] == len(risk) and page["as_of"] == AS_OFS[-1]
    assert [r["account_id"] for r in page["items"]] == risk["account_id"].head(500).tolist()
    first = page["items"][0]
    row = risk.iloc[0]
    assert first["rank"] == 1 and first["churn_probability"] == row["churn_probability"] and first["owner"] == row["owner"]
    assert first["reasons"] == [r for r in row[["reason_1", "reason_2", "reason_3"]] if r]
    # paging walks every account exactly once
    seen, offset = [], 0
    while offset < len(risk):
        seen += [r["account_id"] for r in client.get("/accounts", params={"limit": 500, "offset": offset}).json()["items"]]
        offset += 500
    assert seen == risk["account_id"].tolist()


@pytest.mark.parametrize(
    "params",
    [
        {"band": "high"},
        {"band": "medium", "segment": "smb"},
        {"owner": "Chloé <Dupont>"},
        {"outreach": "true"},
        {"control": "true", "band": "high"},
        {"outreach": "false", "control": "false", "band": "high"},
        {"q": "a00001"},
        {"q": "1", "owner": "Ana Lima", "band": "low"},
    ],
)
def test_filters_match_the_risk_list(client: TestClient, sd: ServeData, params: dict[str, str]) -> None:
    risk = sd.latest()
    keep = np.ones(len(risk), dtype=bool)
    for key, value in params.items():
        if key == "band":
            keep &= (risk["risk_band"] == value).to_numpy()
        elif key in ("owner", "segment"):
            keep &= (risk[key] == value).fillna(False).to_numpy()
        elif key in ("outreach", "control"):
            keep &= (risk[key] == (value == "true")).to_numpy()
        elif key == "q":
            keep &= risk["account_id"].str.lower().str.contains(value.lower(), regex=False).to_numpy()
    expected = risk.loc[keep, "account_id"].tolist()
    assert expected, "a filter case that matches nothing tests nothing"
    page = client.get("/accounts", params={**params, "limit": 500}).json()
    assert page["total"] == len(expected)
    assert [r["account_id"] for r in page["items"]] == expected[:500]


@pytest.mark.parametrize("sort", ["-churn_probability", "churn_probability", "-revenue_at_risk", "account_id", "-rank", "-probability_change"])
def test_sorting(client: TestClient, sd: ServeData, sort: str) -> None:
    risk = sd.latest()
    key, descending = sort.lstrip("-"), sort.startswith("-")
    expected = risk.assign(_r=risk["rank"]).sort_values([key, "_r"] if key != "rank" else ["_r"], ascending=[not descending, True] if key != "rank" else [not descending], na_position="last", kind="stable")
    for params in ({"sort": sort, "limit": 100}, {"sort": sort, "band": "medium", "limit": 100}):
        page = client.get("/accounts", params=params).json()
        want = expected if "band" not in params else expected[expected["risk_band"] == "medium"]
        assert [r["account_id"] for r in page["items"]] == want["account_id"].head(100).tolist(), params


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 501}, {"offset": -1}, {"band": "extreme"}, {"sort": "mrr"}, {"outreach": "maybe"}, {"q": "x" * 101}, {"bnad": "high"}, {"owner": ["a", "b"]}],
)
def test_bad_list_parameters_are_422(client: TestClient, params: dict[str, object]) -> None:
    error = assert_error(client.get("/accounts", params=params), 422, "invalid_request")
    assert error["details"] and error["details"][0]["field"].startswith("query.")


def test_account_detail_with_history(client: TestClient, sd: ServeData) -> None:
    risk = sd.latest()
    row = risk[risk["owner"].notna() & (risk["reason_1"] != "")].iloc[3]
    detail = client.get(f"/accounts/{row['account_id']}").json()
    for col in ("rank", "churn_probability", "risk_band", "revenue_at_risk", "outreach", "control", "suggested_action", "owner", "segment"):
        assert detail[col] == row[col], col
    assert detail["reasons"][0] == row["reason_1"] and detail["reason_features"] == row["reason_features"].split(",")
    assert detail["reason_drivers"] == row["reason_drivers"].split(",") and detail["action_wording"] == row["action_wording"]
    assert detail["reason_contributions"] == [float(v) for v in row["reason_contributions"].split(",")]
    from churn.outreach.runs import list_runs, load_risk_list

    runs = list_runs(sd.scores_dir)
    earlier = load_risk_list(sd.scores_dir, runs["run_id"].iloc[0]).set_index("account_id")
    history = detail["history"]
    assert [p["as_of"] for p in history] == list(AS_OFS) and history[-1]["churn_probability"] == row["churn_probability"]
    assert history[0]["churn_probability"] == earlier.loc[row["account_id"], "churn_probability"]
    assert history[0]["risk_band"] == earlier.loc[row["account_id"], "risk_band"]


def test_unknown_account_is_404(client: TestClient) -> None:
    error = assert_error(client.get("/accounts/NO-SUCH-ACCOUNT"), 404, "not_found")
    assert "NO-SUCH-ACCOUNT" in error["message"]
    assert_error(client.get("/no/such/endpoint"), 404, "not_found")


def test_runs_newest_first(client: TestClient) -> None:
    runs = client.get("/runs").json()["runs"]
    assert [r["as_of"] for r in runs] == list(reversed(AS_OFS))
    assert runs[0]["latest"] and not runs[1]["latest"]
    assert runs[0]["accounts"] == runs[0]["high"] + runs[0]["medium"] + runs[0]["low"] > 0


def test_metrics_prometheus_text(client: TestClient, sd: ServeData) -> None:
    account = sd.latest()["account_id"].iloc[0]
    client.get(f"/accounts/{account}")
    client.get("/accounts/NOPE")
    text = client.get("/metrics").text
    assert 'churn_http_requests_total{method="GET",route="/accounts/{account_id}",status="200"}' in text
    assert 'route="/accounts/{account_id}",status="404"' in text
    assert account not in text  # route templates, never raw ids, as label values
    assert 'churn_model_info{model="test model"' in text
    assert "churn_http_request_duration_seconds_bucket" in text
    assert f"churn_latest_run_accounts {float(len(sd.latest()))}" in text


# --------------------------------------------------------------------------- auth


@pytest.fixture(scope="module")
def secured(sd: ServeData, settings: ServeSettings) -> TestClient:
    return TestClient(create_app(replace(settings, api_key=API_KEY), model=sd.serving()))


def test_api_key_required_except_health(secured: TestClient, sd: ServeData, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert secured.get("/health").status_code == 200
    for path in ("/accounts", "/runs", "/version", "/ready", "/metrics", "/openapi.json", f"/accounts/{sd.latest()['account_id'].iloc[0]}"):
        assert_error(secured.get(path), 401, "unauthorized")
        assert_error(secured.get(path, headers={"X-API-Key": API_KEY + "x"}), 401, "unauthorized")
        assert secured.get(path, headers={"X-API-Key": API_KEY}).status_code == 200, path
    assert_error(secured.post("/score", json={}), 401, "unauthorized")
    schema = secured.get("/openapi.json", headers={"X-API-Key": API_KEY}).json()
    assert schema["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    secured_ops = {path for path, ops in schema["paths"].items() for op in ops.values() if op.get("security")}
    assert secured_ops == set(schema["paths"]) - {"/health"}  # documented exactly where it is enforced
    assert "X-API-Key" in schema["info"]["description"]
    assert API_KEY not in caplog.text and API_KEY not in repr(secured.app.state.service.settings)


def test_pages_login_sets_a_session_cookie(secured: TestClient) -> None:
    secured = TestClient(secured.app)  # its own cookie jar
    page = secured.get("/app?band=high", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/app/login?next=%2Fapp%3Fband%3Dhigh"
    form = secured.get(page.headers["location"])
    assert form.status_code == 200 and 'name="key"' in form.text and 'value="/app?band=high"' in form.text
    wrong = secured.post("/app/login", data={"key": "nope", "next": "/app"}, follow_redirects=False)
    assert wrong.status_code == 401 and "not right" in wrong.text
    evil = secured.post("/app/login", data={"key": API_KEY, "next": "//evil.example/app"}, follow_redirects=False)
    assert evil.status_code == 303 and evil.headers["location"] == "/app"  # never an open redirect
    ok = secured.post("/app/login", data={"key": API_KEY, "next": "/app?band=high"}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/app?band=high"
    cookie = ok.cookies.get("churn_session")
    assert cookie and API_KEY not in cookie
    assert "httponly" in ok.headers["set-cookie"].lower()
    secured.cookies.clear()
    assert secured.get("/app", headers={"Cookie": f"churn_session={cookie}"}).status_code == 200
    # change the signature's first character: the last one of an unpadded base64 text carries
    # spare bits, and '1' → '0' there can decode to the same bytes (a valid cookie, ~5 % of runs)
    at = cookie.rindex(".") + 1
    tampered = cookie[:at] + ("A" if cookie[at] != "A" else "B") + cookie[at + 1 :]
    assert secured.get("/app", headers={"Cookie": f"churn_session={tampered}"}, follow_redirects=False).status_code == 303


# --------------------------------------------------------------------------- on-demand scoring


def test_score_equals_the_batch_probability(client: TestClient, sd: ServeData) -> None:
    risk = sd.latest()
    picks = risk.iloc[[0, 1, 40, len(risk) // 2, len(risk) - 1]]  # top of the list to the bottom
    picks = pd.concat([picks, risk[risk["control"]].head(1), risk[risk["risk_band"] == "medium"].head(1)])
    body = score_request(sd, picks["account_id"].tolist(), AS_OFS[-1])
    response = client.post("/score", json=body)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["account_id"] for r in results] == [a["account_id"] for a in body["accounts"]]  # request order
    by_id = risk.set_index("account_id")
    for r in results:
        assert r["churn_probability"] == by_id.loc[r["account_id"], "churn_probability"]  # exactly, not approximately
        assert r["risk_band"] == by_id.loc[r["account_id"], "risk_band"]
        assert r["suggested_action"] and all("{v}" not in s for s in r["reasons"])
        assert len(r["reasons"]) == len(r["reason_features"]) == len(r["reason_drivers"]) == len(r["reason_contributions"]) <= 3
        assert r["reason_method"] == "tree_shap" and r["action_wording"]
        if not by_id.loc[r["account_id"], "control"]:  # same lead family → the weekly list's action
            lead = by_id.loc[r["account_id"], "reason_drivers"].split(",")[0]
            assert lead != r["reason_drivers"][0] or r["suggested_action"] == by_id.loc[r["account_id"], "suggested_action"]
    # the earlier run's as_of, on the same data, gives that run's probability
    from churn.outreach.runs import list_runs, load_risk_list

    first = load_risk_list(sd.scores_dir, list_runs(sd.scores_dir)["run_id"].iloc[0]).set_index("account_id")
    account = picks["account_id"].iloc[0]
    again = client.post("/score", json=score_request(sd, [account], AS_OFS[0])).json()["results"][0]
    assert again["churn_probability"] == first.loc[account, "churn_probability"]


def test_score_rejects_invalid_rows_naming_row_and_reason(client: TestClient, sd: ServeData) -> None:
    account = sd.latest()["account_id"].iloc[0]
    base = score_request(sd, [account], AS_OFS[-1])

    body = {**base, "interactions": [dict(r) for r in base["interactions"]]}
    body["interactions"][2]["account_id"] = "SOMEONE-ELSE"
    error = assert_error(client.post("/score", json=body), 422, "invalid_rows")
    assert {"table": "interactions", "row": 2, "reason": "unknown account_id", "field": None} in error["details"]

    body = {**base, "accounts": base["accounts"] * 2}
    error = assert_error(client.post("/score", json=body), 422, "invalid_rows")
    assert any(d["table"] == "accounts" and d["row"] == 1 and "duplicate" in d["reason"] for d in error["details"])

    body = {**base, "as_of": "2020-01-01"}  # before the account signed up
    error = assert_error(client.post("/score", json=body), 422, "invalid_rows")
    assert error["details"][0]["row"] == 0 and "not a customer" in error["details"][0]["reason"]

    body = {**base, "accounts": [{k: v for k, v in base["accounts"][0].items() if k != "contract"}]}
    error = assert_error(client.post("/score", json=body), 422, "invalid_rows")
    assert "accounts column 'contract'" in error["message"]

    body = {**base, "accounts": [{**base["accounts"][0], "signup_at": "1200-01-01"}]}
    error = assert_error(client.post("/score", json=body), 422, "invalid_rows")
    assert error["details"][0]["field"] == "signup_at" and "outside the years" in error["details"][0]["reason"]

    body = {**base, "interactions": [{**base["interactions"][0], "ces": 9}]}  # the schema's range (1–7)
    error = assert_error(client.post("/score", json=body), 422, "invalid_request")
    assert error["details"][0]["table"] == "interactions" and error["details"][0]["row"] == 0 and "ces" in error["details"][0]["field"]

    for broken in ({**base, "as_of": 20240101}, {**base, "accounts": []}, {"accounts": base["accounts"]}):
        assert_error(client.post("/score", json=broken), 422, "invalid_request")
    assert_error(client.post("/score", content=b"{not json", headers={"content-type": "application/json"}), 422, "invalid_request")


# --------------------------------------------------------------------------- the model's population


def crm_accounts(sd: ServeData, *, recent: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """Eight customers of the latest list from top to bottom, signed up long before it and
    active in its last week (of ``recent`` event types other than login too, when given);
    every other one is made quiet by the test."""
    as_of = pd.Timestamp(AS_OFS[-1], tz="UTC")
    t = sd.interactions["occurred_at"]
    week = sd.interactions[(t < as_of) & (t >= as_of - pd.Timedelta(days=7))]["account_id"]
    old = sd.accounts.loc[sd.accounts["signup_at"] < as_of - pd.Timedelta(days=180), "account_id"]
    busy = set(week) & set(old)
    if recent:
        month = sd.interactions[(t < as_of) & (t >= as_of - pd.Timedelta(days=20)) & sd.interactions["event_type"].isin(recent)]
        busy &= set(month["account_id"])
    risk = sd.latest()
    ids = [a for a in risk["account_id"] if a in busy]
    ids = ids[:: max(1, len(ids) // 8)][:8]
    assert len(ids) == 8
    return ids, ids[::2]


def _served(client: TestClient, body: dict) -> dict[str, float]:  # type: ignore[type-arg]
    response = client.post("/score", json=body)
    assert response.status_code == 200, response.text
    return {r["account_id"]: r["churn_probability"] for r in response.json()["results"]}


def test_a_subscription_model_scores_quiet_crm_accounts_like_the_batch(client: TestClient, sd: ServeData, tmp_path: Path) -> None:
    """A CRM sends live accounts (``churned_at`` empty for all); half have had no event for 45
    days — the risky ones. The model defines churn by subscription end, so all are customers:
    scored, with the weekly job's probabilities for the same rows and as_of."""
    ids, quiet = crm_accounts(sd)
    accounts, interactions = crm_rows(sd, ids, AS_OFS[-1], quiet=quiet, quiet_days=45)
    last = interactions.groupby("account_id")["occurred_at"].max()
    assert (last.reindex(quiet) < pd.Timestamp(AS_OFS[-1], tz="UTC") - pd.Timedelta(days=44)).fillna(True).all()  # quiet indeed
    served = _served(client, request_body(accounts, interactions, AS_OFS[-1]))
    batch = batch_probabilities(tmp_path, sd.model, accounts, interactions, AS_OFS[-1])
    assert sorted(batch.index) == sorted(ids)
    assert served == pytest.approx(batch.to_dict(), rel=1e-9, abs=1e-12)


INACTIVITY = [
    # (horizon, activity types, which events the quiet accounts lack for 45 days, are they customers)
    pytest.param(60, [], (), True, id="60-day horizon: 45 quiet days is still a customer"),
    pytest.param(30, [], (), False, id="30-day horizon: 45 quiet days has lapsed"),
    pytest.param(30, ["login"], ("login",), False, id="activity = login: other events do not count"),
    pytest.param(30, [], ("login",), True, id="activity = any event: other events count"),
]


@pytest.mark.parametrize(("horizon", "activity", "silenced", "customer"), INACTIVITY)
def test_an_inactivity_model_scores_the_batch_population(  # type: ignore[no-untyped-def]
    sd: ServeData, settings: ServeSettings, tmp_path: Path, horizon: int, activity: list[str], silenced: tuple[str, ...], customer: bool
) -> None:
    """Inactivity churn with the model's horizon and activity types, never the defaults: an
    account is scored on demand exactly when the weekly job would list it."""
    model = replace(sd.model, definition={"horizon_days": horizon, "kind": "inactivity", "activity_event_types": activity})
    client = TestClient(create_app(settings, model=ServingModel.wrap(model, "inactivity model")))
    ids, quiet = crm_accounts(sd, recent=("feature_use", "invoice", "support_contact", "survey") if silenced else ())
    accounts, interactions = crm_rows(sd, ids, AS_OFS[-1], quiet=quiet, quiet_days=45, quiet_types=silenced)
    batch = batch_probabilities(tmp_path, model, accounts, interactions, AS_OFS[-1])
    assert set(quiet) <= set(batch.index) if customer else not set(quiet) & set(batch.index)

    response = client.post("/score", json=request_body(accounts, interactions, AS_OFS[-1]))
    if customer:
        assert response.status_code == 200, response.text
    else:
        error = assert_error(response, 422, "invalid_rows")
        named = {accounts["account_id"].iloc[d["row"]] for d in error["details"]}
        assert named == set(ids) - set(batch.index) and set(quiet) <= named
        assert all("not a customer" in d["reason"] and f"{horizon}-day" in d["reason"] for d in error["details"])
    kept = accounts["account_id"].isin(batch.index)
    served = _served(client, request_body(accounts[kept], interactions[interactions["account_id"].isin(batch.index)], AS_OFS[-1]))
    assert served == pytest.approx(batch.to_dict(), rel=1e-9, abs=1e-12)


def test_rows_that_contradict_a_subscription_model_get_a_422_naming_the_account(client: TestClient, sd: ServeData) -> None:
    ids, _ = crm_accounts(sd)
    accounts, interactions = crm_rows(sd, ids, AS_OFS[-1])
    accounts.loc[3, "churned_at"] = pd.Timestamp(AS_OFS[-1], tz="UTC") - pd.Timedelta(days=20, hours=3)
    error = assert_error(client.post("/score", json=request_body(accounts, interactions, AS_OFS[-1])), 422, "invalid_rows")
    assert [(d["table"], d["row"]) for d in error["details"]] == [("accounts", 3)]
    reason = error["details"][0]["reason"]
    assert repr(accounts.loc[3, "account_id"]) in reason and "not a customer" in reason and "churned_at 2024-05-11" in reason and "subscription" in reason


def test_an_auto_model_takes_its_kind_from_the_batch_runs_never_from_the_request(sd: ServeData, settings: ServeSettings, tmp_path: Path) -> None:
    """A model that stored ``kind="auto"`` (trained through the library without resolving
    it) is scored with the kind the weekly runs decided on the whole data folder: quiet CRM
    accounts without ``churned_at`` are not turned into an inactivity population."""
    auto = ServingModel.wrap(replace(sd.model, definition={**sd.model.definition, "kind": "auto"}), "auto model")
    ids, quiet = crm_accounts(sd)
    body = request_body(*crm_rows(sd, ids, AS_OFS[-1], quiet=quiet, quiet_days=45), AS_OFS[-1])
    served = _served(TestClient(create_app(settings, model=auto)), body)
    assert served == _served(TestClient(create_app(settings, model=sd.serving())), body)
    alone = TestClient(create_app(ServeSettings(scores_dir=tmp_path, model_ref=None), model=auto))
    error = assert_error(alone.post("/score", json=body), 503, "model_definition")
    assert "kind" in error["message"] and "auto" in error["message"] and "churn train" in error["message"]


# --------------------------------------------------------------------------- a new run


def test_a_new_run_is_served_without_a_restart(tmp_path: Path, sd: ServeData, trained, settings: ServeSettings) -> None:  # type: ignore[no-untyped-def]
    from churn.jobs.weekly import score_run

    scores = tmp_path / "scores"
    shutil.copytree(sd.scores_dir, scores, symlinks=True)  # a run store links `latest` to a run folder
    inline = TestClient(create_app(replace(settings, scores_dir=scores), model=sd.serving()))
    background = create_app(replace(settings, scores_dir=scores, background_reload=True), model=sd.serving())
    before = inline.get("/version").json()["run_id"]
    score_run(sd.data_dir, as_of=pd.Timestamp("2024-06-15", tz="UTC"), model=trained.model, model_label="test model", out_dir=scores)
    after = inline.get("/version").json()
    assert after["as_of"] == "2024-06-15" and after["run_id"] != before
    assert [p["as_of"] for p in inline.get(f"/accounts/{sd.latest()['account_id'].iloc[0]}").json()["history"]][-1] == "2024-06-15"
    with TestClient(background) as bg:
        assert bg.get("/version").json()["run_id"] == before  # answered from the old run while the new one loads
        background.state.service.latest.wait(timeout=60)
        assert bg.get("/version").json()["run_id"] == after["run_id"]


# --------------------------------------------------------------------------- CLI


def test_cli_serve_help() -> None:
    from churn.cli.commands import app

    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--scores", "--model", "--data", "--host", "--port", "CHURN_API_KEY"):
        assert option in result.output
    bad = CliRunner().invoke(app, ["serve", "--data", "/no/such/folder"])
    assert bad.exit_code == 2 and "no such folder" in bad.output and "Traceback" not in bad.output


# --------------------------------------------------------------------------- pages (HTML)


def test_pages_render_escaped_and_page_through(client: TestClient, sd: ServeData) -> None:
    risk = sd.latest()
    assert client.get("/", follow_redirects=False).headers["location"] == "/app"
    page = client.get("/app", params={"band": "", "owner": "", "flag": "", "q": "", "sort": "rank"})  # an untouched filter form
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f"Showing 1–50 of {len(risk):,} accounts" in page.text and page.text.count('class="account-link"') == 50
    assert "Chloé &lt;Dupont&gt;" in page.text and "<Dupont>" not in page.text  # escaped, never markup
    assert 'id="next" href="/app?offset=50"' in page.text
    second = client.get("/app", params={"offset": 50})
    assert f'href="/app/accounts/{risk["account_id"].iloc[50]}"' in second.text and 'id="prev"' in second.text
    calls = client.get("/app", params={"flag": "control"})
    assert f"of {int(risk['control'].sum()):,} accounts" in calls.text
    mine = client.get("/app/owners/Dev & Co")
    assert "My accounts: Dev &amp; Co" in mine.text and f"of {int((risk['owner'] == 'Dev & Co').sum()):,} accounts" in mine.text


def test_page_errors_are_pages(client: TestClient) -> None:
    missing = client.get("/app/accounts/NOPE")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"] and "not on the latest risk list" in missing.text
    bad = client.get("/app", params={"band": "<script>"})
    assert bad.status_code == 422 and "&lt;script&gt;" in bad.text and "<script>" not in bad.text.split("</head>")[1]


def test_account_page_without_data_says_contacts_are_unavailable(sd: ServeData, settings: ServeSettings) -> None:
    bare = TestClient(create_app(replace(settings, data_dir=None), model=sd.serving()))
    account = sd.latest()["account_id"].iloc[0]
    page = bare.get(f"/app/accounts/{account}")
    assert page.status_code == 200 and "Support contacts are unavailable" in page.text and 'id="trend"' in page.text
    with_data = TestClient(create_app(settings, model=sd.serving())).get(f"/app/accounts/{account}").text
    assert 'id="contacts"' in with_data or 'id="contacts-none"' in with_data
