"""Batch scoring: the risk list, outreach and control, reasons, history, outcomes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churn.config import ScoreConfig
from churn.outreach.retention import list_outcomes
from churn.outreach.runs import list_runs, previous_run, write_run
from churn.outreach.score import (
    CONTROL_ACTION,
    RISK_LIST_COLUMNS,
    build_risk_list,
)


@pytest.fixture(scope="module")
def features(latest_features) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    return latest_features


@pytest.fixture(scope="module")
def risk(trained, features):  # type: ignore[no-untyped-def]
    return build_risk_list(features, trained.model, config=ScoreConfig(capacity=150, control_share=0.1, seed=1))


def test_risk_list_columns_types_and_order(risk, features) -> None:  # type: ignore[no-untyped-def]
    frame, notes = risk
    assert list(frame.columns) == RISK_LIST_COLUMNS
    assert len(frame) == len(features) and set(frame["account_id"]) == set(features["account_id"])  # every active account
    assert frame["churn_probability"].between(0, 1).all()
    assert frame["rank"].tolist() == list(range(1, len(frame) + 1))  # sorted by rank, no gaps
    assert frame["revenue_at_risk"].is_monotonic_decreasing  # ranked by revenue at risk
    np.testing.assert_allclose(frame["revenue_at_risk"], frame["churn_probability"] * frame["annual_value"])
    assert set(frame["risk_band"]) <= {"high", "medium", "low"}
    assert str(frame["as_of"].dtype) == "datetime64[ns, UTC]"
    assert frame["outreach"].dtype == bool and frame["control"].dtype == bool
    assert notes["value"] == "annual value = 12 × mrr"


def test_capacity_and_control_group(risk, trained, features) -> None:  # type: ignore[no-untyped-def]
    frame, _ = risk
    flagged = frame[frame["outreach"] | frame["control"]]
    assert len(flagged) == 150 and flagged["rank"].max() == 150
    assert not (frame["outreach"] & frame["control"]).any()
    assert frame["control"].sum() == 15  # 10 % of 150
    # drawn evenly across the ranks: one control per block of 10
    assert sorted((frame.loc[frame["control"], "rank"] - 1) // 10) == list(range(15))
    assert (frame.loc[frame["control"], "suggested_action"] == CONTROL_ACTION).all()
    again, _ = build_risk_list(features, trained.model, config=ScoreConfig(capacity=150, control_share=0.1, seed=1))
    other, _ = build_risk_list(features, trained.model, config=ScoreConfig(capacity=150, control_share=0.1, seed=2))
    assert set(again.loc[again["control"], "account_id"]) == set(frame.loc[frame["control"], "account_id"])
    assert set(other.loc[other["control"], "account_id"]) != set(frame.loc[frame["control"], "account_id"])


def test_control_share_rounding_and_zero_capacity(trained, features) -> None:  # type: ignore[no-untyped-def]
    frame, _ = build_risk_list(features, trained.model, config=ScoreConfig(capacity=33, control_share=0.25))
    assert frame["control"].sum() == round(33 * 0.25) and (frame["outreach"] | frame["control"]).sum() == 33
    none, _ = build_risk_list(features, trained.model, config=ScoreConfig(capacity=0))
    assert not none["outreach"].any() and not none["control"].any()


def test_exact_reasons_are_risk_increasing_and_present(risk, trained, features) -> None:  # type: ignore[no-untyped-def]
    frame, notes = risk
    exact = frame[frame["reason_method"] == "tree_shap"]
    assert (frame.loc[frame["outreach"] | frame["control"], "reason_method"] == "tree_shap").all()
    assert notes["exact_reasons"] == len(exact) and (frame["reason_method"] == "deviation").sum() > 0
    model = trained.model
    rows = features.set_index("account_id").loc[exact["account_id"].head(60)]
    contrib = model.contributions(rows.reset_index())
    prepared = model.prepare(rows)
    column = {name: j for j, name in enumerate(model.feature_names)}
    for i, names in enumerate(exact["reason_features"].head(60)):
        for name in filter(None, names.split(",")):
            assert contrib[i, column[name]] > 0, name  # only drivers that raise this account's risk
            assert pd.notna(prepared.iloc[i][name]), name  # and that the account really has
    first = exact.iloc[0]
    assert first["reason_1"] and "{v}" not in first["reason_1"]


def test_rank_by_probability(trained, features) -> None:  # type: ignore[no-untyped-def]
    frame, _ = build_risk_list(features, trained.model, config=ScoreConfig(rank_by="probability"))
    assert frame["churn_probability"].is_monotonic_decreasing


def test_change_since_previous_run(risk, trained, features) -> None:  # type: ignore[no-untyped-def]
    frame, _ = risk
    previous = frame.copy()
    previous["churn_probability"] = previous["churn_probability"] * 0.5
    previous = previous.iloc[1:]  # the first account is new
    current, _ = build_risk_list(features, trained.model, config=ScoreConfig(capacity=150, control_share=0.1, seed=1), previous=previous)
    by_id = current.set_index("account_id")
    assert by_id.loc[frame["account_id"].iloc[0], "change"] == "new account"
    up = by_id[(by_id["probability_change"] > 0.02)]
    assert (up["change"].isin(["risk up", "newly flagged"])).all() and len(up) > 0
    assert set(current["change"]) <= {"new account", "newly flagged", "risk up", "risk down", "steady"}


def test_history_and_previous_run(tmp_path: Path, risk) -> None:  # type: ignore[no-untyped-def]
    frame, _ = risk
    as_of = frame["as_of"].iloc[0]
    write_run(tmp_path, frame, {"run_id": "r1", "as_of": f"{as_of:%Y-%m-%d}", "scored_at": "t1", "model": "m"})
    later = frame.assign(as_of=as_of + pd.Timedelta(days=30))
    write_run(tmp_path, later, {"run_id": "r2", "as_of": f"{as_of + pd.Timedelta(days=30):%Y-%m-%d}", "scored_at": "t2", "model": "m"})
    history = list_runs(tmp_path)
    assert history["run_id"].tolist() == ["r1", "r2"]
    assert previous_run(tmp_path, as_of + pd.Timedelta(days=30))["as_of"].iloc[0] == as_of
    assert previous_run(tmp_path, as_of) is None
    assert pd.read_csv(tmp_path / "risk_list.csv").shape[0] == len(frame)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_outcomes_by_group_hand_computed() -> None:
    risk = pd.DataFrame(
        {
            "account_id": list("abcdefgh"),
            "churn_probability": [0.5, 0.4, 0.3, 0.3, 0.2, 0.05, 0.05, 0.01],
            "risk_band": ["high", "high", "high", "high", "medium", "low", "low", "low"],
            "outreach": [True, True, False, True, False, False, False, False],
            "control": [False, False, True, False, True, False, False, False],
        }
    )
    labels = pd.DataFrame({"account_id": list("abcdefgh"), "churned": [1, 0, 1, 0, 1, 0, 1, 0]})
    out = list_outcomes(risk, labels).set_index(["dimension", "group"])
    # outreach a, b, d: 1 of 3 churned → retention (E − N)/S = 2/3
    assert out.loc[("group", "outreach"), ["S", "E", "churned"]].tolist() == [3, 2, 1]
    assert out.loc[("group", "outreach"), "retention_rate"] == 66.67
    # control c, e: both churned
    assert out.loc[("group", "control"), "actual_churn_rate"] == 100.0
    assert out.loc[("risk band", "low"), ["S", "churned"]].tolist() == [3, 1]
    assert out.loc[("risk band", "high"), "predicted_churn_rate"] == 37.5
    # Wilson 95 % interval of 2/2 churned: wide, and it contains the observed rate
    low, high = out.loc[("group", "control"), ["churn_rate_ci_low", "churn_rate_ci_high"]]
    assert 30 < low < 40 and high == 100.0
    low, high = out.loc[("group", "outreach"), ["churn_rate_ci_low", "churn_rate_ci_high"]]
    assert low < 33.33 < high


def test_invalid_score_config_is_refused() -> None:
    with pytest.raises(ValueError):
        ScoreConfig(control_share=1.0)
    with pytest.raises(ValueError):
        replace(ScoreConfig(), high_threshold=0.05, medium_threshold=0.1)


def test_risk_list_csv_cannot_run_spreadsheet_formulas(tmp_path: Path, risk) -> None:  # type: ignore[no-untyped-def]
    """OWASP CSV injection: a text cell starting with = + - @ is escaped in the CSV only."""
    frame, _ = risk
    evil = frame.head(4).copy()
    evil["account_id"] = ['=HYPERLINK("http://x","click")', "+1 555", "@SUM(A1)", "-2+3"]
    evil.loc[evil.index[0], "reason_1"] = "=cmd|' /C calc'!A0"
    write_run(tmp_path, evil, {"run_id": "r1", "as_of": "2024-01-01", "scored_at": "t", "model": "m"})
    csv = pd.read_csv(tmp_path / "risk_list.csv", dtype=str)
    assert csv["account_id"].tolist() == ["'=HYPERLINK(\"http://x\",\"click\")", "'+1 555", "'@SUM(A1)", "'-2+3"]
    assert csv["reason_1"].iloc[0].startswith("'=cmd")
    assert float(csv["churn_probability"].iloc[0]) == evil["churn_probability"].iloc[0]  # numbers untouched
    exact = pd.read_parquet(tmp_path / "risk_list.parquet")
    assert exact["account_id"].iloc[0] == '=HYPERLINK("http://x","click")'  # Parquet keeps the value as it was


def test_outcomes_keep_accounts_an_earlier_run_called_out_of_the_untouched() -> None:
    """A list's "not flagged" group is the untouched: an account an earlier run called (and
    still covers) is "contacted earlier", an earlier run's control is "held control"."""
    t = pd.Timestamp("2024-03-01", tz="UTC")
    risk = pd.DataFrame(
        {
            "account_id": list("abcd"),
            "as_of": t,
            "churn_probability": [0.5, 0.3, 0.1, 0.1],
            "risk_band": ["high", "high", "low", "low"],
            "outreach": [True, False, False, False],
            "control": [False, False, True, False],
            "assigned_as_of": [t, t - pd.Timedelta(days=7), t - pd.Timedelta(days=14), pd.NaT],
        }
    )
    labels = pd.DataFrame({"account_id": list("abcd"), "churned": [1, 0, 1, 1]})
    groups = list_outcomes(risk, labels).query("dimension == 'group'").set_index("group")["S"].to_dict()
    assert groups == {"outreach": 1, "held control": 1, "contacted earlier": 1, "not flagged": 1}
