"""The service's pure parts on hand-made rows: the in-memory index, history alignment, the
trend chart, contacts, run summaries, auth helpers, the risk list's pass-through columns and
the churn definition on-demand scoring decides customers by."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.config import ChurnDefinition, FeatureConfig
from churn.serve.auth import Sessions, authorised
from churn.serve.contacts import ContactIndex, recent_contacts
from churn.serve.index import Query, RunIndex, align_history
from churn.serve.model import ServingModel, UnresolvedDefinition
from churn.serve.routers.pages import safe_next, trend_chart
from churn.serve.routers.runs import run_summaries


@pytest.fixture()
def index() -> RunIndex:
    """Six accounts; rows deliberately not in rank order."""
    risk = pd.DataFrame(
        {
            "account_id": ["c", "a", "f", "b", "e", "d"],
            "rank": [3, 1, 6, 2, 5, 4],
            "churn_probability": [0.30, 0.50, 0.02, 0.40, 0.05, 0.12],
            "risk_band": ["high", "high", "low", "high", "low", "medium"],
            "revenue_at_risk": [30.0, 20.0, 1.0, 40.0, 2.0, 10.0],
            "owner": ["ana", "ben", None, "ana", "ben", "ana"],
            "segment": ["smb", "smb", "consumer", "enterprise", "consumer", "smb"],
            "outreach": [True, True, False, False, False, False],
            "control": [False, False, False, True, False, False],
            "probability_change": [0.1, np.nan, 0.0, -0.2, 0.01, 0.05],
            "reason_1": ["r1", "", "", "x", "", ""],
        }
    )
    return RunIndex(risk, run_id="r2", as_of="2024-06-01")


def ids(index: RunIndex, **kw: object) -> tuple[list[str], int]:
    positions, total = index.select(Query(**kw))  # type: ignore[arg-type]
    return [index.ids[p] for p in positions], total


def test_index_filters_in_rank_order(index: RunIndex) -> None:
    assert ids(index) == (["a", "b", "c", "d", "e", "f"], 6)
    assert ids(index, band="high") == (["a", "b", "c"], 3)
    assert ids(index, band="high", owner="ana") == (["b", "c"], 2)
    assert ids(index, owner="ana", segment="smb") == (["c", "d"], 2)
    assert ids(index, outreach=True) == (["a", "c"], 2)
    assert ids(index, control=True) == (["b"], 1)
    assert ids(index, outreach=False, control=False) == (["d", "e", "f"], 3)
    assert ids(index, owner="nobody") == ([], 0)
    assert ids(index, band="medium", owner="ben") == ([], 0)
    assert ids(index, q="B") == (["b"], 1)  # case-insensitive text in the id
    assert ids(index, q="e", owner="ben") == (["e"], 1)


def test_index_sorts_and_pages(index: RunIndex) -> None:
    assert ids(index, sort="-churn_probability")[0] == ["a", "b", "c", "d", "e", "f"]
    assert ids(index, sort="churn_probability")[0] == ["f", "e", "d", "c", "b", "a"]
    assert ids(index, sort="-revenue_at_risk")[0] == ["b", "c", "a", "d", "e", "f"]
    assert ids(index, sort="-rank")[0] == ["f", "e", "d", "c", "b", "a"]
    assert ids(index, sort="account_id", owner="ana")[0] == ["b", "c", "d"]
    # missing values last in both directions; ties keep rank order
    assert ids(index, sort="-probability_change")[0] == ["c", "d", "e", "f", "b", "a"]
    assert ids(index, sort="probability_change")[0] == ["b", "f", "e", "d", "c", "a"]
    assert ids(index, limit=2, offset=2) == (["c", "d"], 6)
    assert ids(index, band="high", sort="-revenue_at_risk", limit=2, offset=1) == (["c", "a"], 3)
    assert ids(index, limit=5, offset=10) == ([], 6)


def test_index_lookups_and_records(index: RunIndex) -> None:
    assert index.position("a") == 0 and index.position("f") == 5 and index.position("zz") is None
    assert index.values("owner") == ["ana", "ben"] and index.counts("risk_band") == {"high": 3, "low": 2, "medium": 1}
    record = index.records(np.array([1]))[0]
    assert record["account_id"] == "b" and record["reasons"] == ["x"] and record["control"] is True
    assert index.records(np.array([0]))[0]["probability_change"] is None  # NaN → None for JSON
    assert index.records(np.array([5]))[0]["owner"] is None
    old_run = RunIndex(pd.DataFrame({"account_id": ["a"], "rank": [1], "churn_probability": [0.1], "risk_band": ["low"], "outreach": [False], "control": [False]}), run_id="r0", as_of="2023-01-01")
    assert old_run.records(np.array([0]))[0]["owner"] is None  # runs scored before the column existed
    assert ids(old_run, owner="ana") == ([], 0)


def test_align_history() -> None:
    latest = np.array(["a", "b", "c"], dtype=object)
    runs = [
        ("r1", "2024-05-01", pd.DataFrame({"account_id": ["b", "z"], "churn_probability": [0.2, 0.9], "risk_band": ["high", "high"]})),
        ("r2", "2024-06-01", pd.DataFrame({"account_id": ["c", "b", "a"], "churn_probability": [0.3, 0.1, 0.05], "risk_band": ["high", "medium", "low"]})),
    ]
    history = align_history(latest, runs)
    assert history.for_position(1) == [
        {"run_id": "r1", "as_of": "2024-05-01", "churn_probability": 0.2, "risk_band": "high"},
        {"run_id": "r2", "as_of": "2024-06-01", "churn_probability": 0.1, "risk_band": "medium"},
    ]
    assert [p["run_id"] for p in history.for_position(0)] == ["r2"]  # not scored in r1


def test_trend_chart_coordinates() -> None:
    history = [{"as_of": "2024-05-01", "churn_probability": 0.1}, {"as_of": "2024-06-01", "churn_probability": 0.3}]
    chart = trend_chart(history, (0.1, 0.25), width=200, height=100, pad=10)
    # y axis tops out at 1.1 × max(0.3, 1.2 × 0.25) = 0.33; the plot spans 80 px each way
    assert chart["polyline"] == "10.0,65.8 190.0,17.3"  # y = 90 − 80 · p / 0.33
    assert [t["label"] for t in chart["ticks"]] == ["0 %", "16 %", "33 %"]
    assert [t["label"] for t in chart["thresholds"]] == ["medium", "high"]
    single = trend_chart(history[:1], (0.1, 0.25), width=200, height=100, pad=10)
    assert single["points"][0]["x"] == 100  # one run: in the middle


def test_recent_contacts_and_lookup() -> None:
    t = pd.to_datetime(["2024-05-01", "2024-05-03", "2024-05-02", "2024-05-04", "2024-05-05"], utc=True)
    interactions = pd.DataFrame(
        {
            "account_id": ["b", "a", "a", "a", "b"],
            "occurred_at": t,
            "event_type": ["support_contact", "login", "support_contact", "survey", "support_contact"],
            "channel": ["phone", None, "chat", None, "email"],
            "ces": [np.nan, np.nan, np.nan, 6.0, np.nan],
        }
    )
    contacts = recent_contacts(interactions, support_event_type="support_contact")
    assert contacts["event_type"].tolist() == ["survey", "support_contact", "support_contact", "support_contact"]  # no login
    index = ContactIndex(contacts, since=t.min())
    a = index.for_account("a", limit=5)
    assert [c["occurred_at"].day for c in a] == [4, 2] and a[0]["ces"] == 6.0 and a[1]["ces"] is None  # newest first
    assert [c["channel"] for c in index.for_account("b", limit=1)] == ["email"]
    assert index.for_account("zz", limit=5) == []
    by_channel = recent_contacts(interactions, support_event_type="*channel*")
    assert len(by_channel) == 4 and "login" not in by_channel["event_type"].tolist()


def test_run_summaries() -> None:
    runs = pd.DataFrame(
        {
            "run_id": ["r1", "r2"],
            "as_of": pd.to_datetime(["2024-05-01", "2024-06-01"], utc=True),
            "scored_at": ["t1", "t2"],
            "model": ["m", "m"],
            "model_version": [np.nan, 3.0],
            "accounts": [10, 12],
            "high": [1, 2],
        }
    )
    out = run_summaries(runs, "r2")
    assert [r.run_id for r in out] == ["r2", "r1"] and out[0].latest and not out[1].latest
    assert out[0].model_version == "3" and out[1].model_version is None and out[0].as_of == "2024-06-01"
    assert out[0].accounts == 12 and out[0].outreach is None  # absent from older run logs


def test_auth_helpers() -> None:
    # the API takes the key in its header only: a cookie, even a valid session's, never opens it
    cookie = Sessions("k", 3600).issue("ana")[1]
    assert not authorised("k", [(b"cookie", f"churn_session={cookie}".encode())])
    assert not authorised("k", [(b"x-api-key", cookie.encode())])  # the cookie's value is useless as an API key
    assert authorised("k", [(b"x-api-key", b"k")])
    assert not authorised("k", [(b"x-api-key", b"K")])
    assert not authorised("k", [])
    # a session is signed with a secret derived from the key: another key's service refuses it
    assert Sessions("k", 3600).read(cookie).name == "ana"
    assert Sessions("k2", 3600).read(cookie) is None and Sessions("k", 3600).read("k") is None
    assert safe_next("/app?band=high") == "/app?band=high"
    for evil in ("https://evil.example", "//evil.example/app", "/\\evil", "/docs", None):
        assert safe_next(evil) == "/app"


def test_risk_list_passes_owner_and_segment_through() -> None:
    from churn.outreach.score import pass_through

    accounts = pd.DataFrame({"account_id": ["a", "b", "c"], "owner": ["x", None, "z"], "segment": pd.Categorical(["s1", "s2", None])})
    out = pass_through(pd.Series(["c", "a", "q"]), accounts)
    assert out["owner"].tolist()[:2] == ["z", "x"] and pd.isna(out["owner"].iloc[2])
    assert pd.isna(out["segment"].iloc[0]) and out["segment"].iloc[1] == "s1"
    assert all(pd.isna(v) for v in pass_through(pd.Series(["a"]), accounts[["account_id"]])["owner"])
    assert all(pd.isna(v) for v in pass_through(pd.Series(["a"]), None)["segment"])


def _serving(definition: ChurnDefinition) -> ServingModel:
    return ServingModel(None, "m", None, FeatureConfig(), definition)  # type: ignore[arg-type]  # only the definition is read


def test_the_churn_kind_comes_from_the_model_or_its_runs_never_from_a_request() -> None:
    """POST /score decides customers by the model's definition; a model that stored
    kind="auto" takes the kind its own weekly runs recorded (latest first), else refuses."""
    stored = ChurnDefinition(horizon_days=45, kind="inactivity", activity_event_types=("login",))
    runs = pd.DataFrame({"churn": [ChurnDefinition(horizon_days=45, kind="subscription", activity_event_types=("login",)).as_dict()]})
    assert _serving(stored).churn_definition(runs) == stored  # the model's own kind wins
    auto = _serving(ChurnDefinition(horizon_days=45, activity_event_types=("login",)))
    log = pd.DataFrame(
        {
            "churn": [
                ChurnDefinition(horizon_days=45, kind="inactivity", activity_event_types=("login",)).as_dict(),
                ChurnDefinition(horizon_days=45, kind="subscription", activity_event_types=("login",)).as_dict(),
                ChurnDefinition(horizon_days=30, kind="inactivity", activity_event_types=("login",)).as_dict(),  # another model's
                ChurnDefinition(horizon_days=45, kind="inactivity").as_dict(),  # other activity types
                None,  # a run recorded without a definition
            ]
        }
    )
    assert auto.churn_definition(log) == ChurnDefinition(horizon_days=45, kind="subscription", activity_event_types=("login",))
    for nothing in (None, pd.DataFrame({"run_id": ["r1"]}), log.iloc[2:]):
        with pytest.raises(UnresolvedDefinition, match="'auto'.*churn train"):
            auto.churn_definition(nothing)
