"""The uplift model learned from a real scoring folder (issue 25, items 4–5): weekly `churn score`
runs with a control group on a generated business (calls change nothing), the data advanced
until their horizons end, then `churn uplift` — features recomputed at each run's date."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churn.config import ChurnDefinition, ScoreConfig, TrainConfig
from churn.data.contract import load
from churn.data.rules import OPTIONAL_INTERACTION_COLUMNS
from churn.data.synthetic import generate, write
from churn.features.labels import build_training_table
from churn.features.spec import FeatureSpec
from churn.jobs.uplift import NotEnoughExperiment, UpliftTraining, matured_cohorts, run_cohort, uplift_from_scores
from churn.modeling.model import load_bundle, model_columns, save_bundle
from churn.modeling.train import fit_churn_model
from churn.outreach import runs

FIRST = pd.Timestamp("2023-10-02", tz="UTC")
WEEKS = 5
#: Small enough for five tiny weekly runs; the gate needs 3 cohorts and 5 accounts per arm here.
TRAINING = UpliftTraining(min_cohorts=3, min_per_arm=5, capacity=60)
SCORING = ScoreConfig(capacity=120, control_share=0.3, max_exact_reasons=20)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A plain business (calls change nothing) scored weekly five times with a control group,
    the data running two months past the last run; a small churn model trained before the first."""
    data = generate(800, start="2023-01-01", months=12, seed=5)
    root = tmp_path_factory.mktemp("uplift_runs")
    write(data, str(root / "raw"))
    cutoffs = [pd.Timestamp(t, tz="UTC") for t in ("2023-06-01", "2023-07-01", "2023-08-01")]
    spec = FeatureSpec.from_data(data.accounts, data.interactions, history=data.attribute_history, before=cutoffs[-1])
    definition = ChurnDefinition().resolved(data.accounts)
    table = build_training_table(data.accounts, data.interactions, cutoffs=cutoffs, spec=spec, history=data.attribute_history, definition=definition)
    model, _ = fit_churn_model(table, spec=spec, definition=definition, config=TrainConfig(n_jobs=1, n_estimators=60, early_stopping_rounds=10, calibration_folds=2))
    save_bundle(model, root / "churn.joblib")
    from churn.jobs.weekly import score_run

    for k in range(WEEKS):
        score_run(root / "raw", as_of=FIRST + pd.Timedelta(days=7 * k), model=model, model_label="test", out_dir=root / "scores", config=SCORING)
    learned = uplift_from_scores(root / "raw", root / "scores", model, out=root / "with_uplift.joblib", training=TRAINING)
    return root, model, learned


def test_features_recomputed_at_assignment_are_those_the_run_scored(folder) -> None:  # type: ignore[no-untyped-def]
    root, model, learned = folder
    rows = learned.matured.rows
    assert rows["cohort"].nunique() == WEEKS and set(rows["arm"]) == {"outreach", "control"}
    for record in runs.list_runs(root / "scores").to_dict("records"):
        risk = runs.load_risk_list(root / "scores", record["run_id"]).set_index("account_id")
        mine = rows[rows["run_id"] == record["run_id"]]
        new = risk[(risk["outreach"] | risk["control"]) & (risk["assigned_as_of"] == risk["as_of"])]
        assert sorted(mine["account_id"]) == sorted(new.index)  # every account the run newly assigned, none other
        # the churn model on the recomputed features gives exactly the probability the run scored
        np.testing.assert_allclose(model.predict_proba(mine), risk.loc[mine["account_id"], "churn_probability"].to_numpy(), rtol=0, atol=1e-12)
        np.testing.assert_array_equal(mine["treated"].to_numpy(), risk.loc[mine["account_id"], "outreach"].to_numpy())
        assert mine["propensity"].iloc[0] == pytest.approx(new["outreach"].mean())


def test_no_event_after_a_runs_date_is_used(folder) -> None:  # type: ignore[no-untyped-def]
    """Every event from a run's date on deleted, and every earlier one kept: the cohort's features
    are unchanged (its outcomes are not — they come from those later events)."""
    root, model, learned = folder
    record = runs.list_runs(root / "scores").to_dict("records")[1]
    contract = load(root / "raw", interaction_columns=OPTIONAL_INTERACTION_COLUMNS)
    cut = contract.interactions[contract.interactions["occurred_at"] < record["as_of"]].reset_index(drop=True)
    assert len(cut) < len(contract.interactions)
    risk = runs.load_risk_list(root / "scores", record["run_id"])
    full, _ = run_cohort(contract, record, risk, model, order=1)
    before = copy.copy(contract)
    before.interactions = cut
    blind, _ = run_cohort(before, record, risk, model, order=1)
    columns = [c for c in model_columns(full) if c in model.feature_names]
    assert len(columns) == len(model.feature_names)
    pd.testing.assert_frame_equal(full[["account_id", *columns]], blind[["account_id", *columns]])
    stored = learned.matured.rows[learned.matured.rows["run_id"] == record["run_id"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(stored[["account_id", *columns]], full[["account_id", *columns]])


def test_plain_business_the_gate_does_not_switch_and_the_run_says_why(folder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, model, learned = folder
    passed, reason = learned.gate
    assert not passed and reason  # the gate says why (its wording is modeling/uplift.py's)
    bundle = load_bundle(root / "with_uplift.joblib")
    assert bundle.uplift is not None and bundle.metadata["uplift"]["gate_passed"] is False
    scores = tmp_path / "scores"
    shutil.copytree(root / "scores", scores, symlinks=True)
    from churn.jobs.weekly import score_run

    at = FIRST + pd.Timedelta(days=7 * WEEKS)
    out = score_run(root / "raw", as_of=at, model=bundle, model_label="test", out_dir=scores, config=SCORING)
    assert out.record["ranking"] == "value" and out.record["ranking_reason"] == reason
    assert out.risk["uplift"].notna().all()
    doc = json.loads(out.paths["uplift_evaluation"].read_text())
    assert doc["ranking"] == "value" and doc["gate_passed"] is False and len(doc["qini_curve"]["share"]) == 20
    page = out.paths["report"].read_text()
    assert 'id="qini-chart"' in page and 'id="whom-ranking"' in page and 'id="whom-missing"' not in page
    with pytest.raises(ValueError, match="`churn uplift`"):
        score_run(root / "raw", as_of=at, model=model, model_label="test", out_dir=tmp_path / "plain", config=ScoreConfig(**{**SCORING.__dict__, "rank_by": "uplift"}))
    asked = score_run(root / "raw", as_of=at, model=bundle, model_label="test", out_dir=scores, config=ScoreConfig(**{**SCORING.__dict__, "rank_by": "uplift"}))
    assert asked.record["ranking"] == "uplift" and asked.record["ranking_reason"] == "--rank-by uplift was asked for"
    flagged = asked.risk[asked.risk["outreach"] & (asked.risk["assigned_as_of"] == asked.risk["as_of"])]
    assert len(flagged) and (flagged["uplift"] >= 0).all()  # a negative estimated effect is never called


def test_not_enough_matured_experiment_is_one_clear_sentence(folder) -> None:  # type: ignore[no-untyped-def]
    root, model, learned = folder
    contract = load(root / "raw", interaction_columns=OPTIONAL_INTERACTION_COLUMNS)
    early = matured_cohorts(contract, root / "scores", model, data_end=FIRST + pd.Timedelta(days=7 + 30))
    assert early.rows["cohort"].nunique() == 2 and len(early.pending) == WEEKS - 2
    from churn.jobs.uplift import split_cohorts

    with pytest.raises(NotEnoughExperiment) as info:
        split_cohorts(early, TRAINING)
    message = str(info.value)
    assert "2 matured cohort(s)" in message and "at least 3 matured cohorts" in message and "called and" in message
    assert f"{WEEKS - 2} more run(s) mature" in message and "2023-11-15" in message


def test_per_protocol_keeps_the_reached_outreach_accounts_and_the_controls_not_reached(folder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from churn.jobs.outcomes import record_contacts

    root, model, learned = folder
    itt = learned.matured.rows
    first = itt[itt["cohort"] == 0]
    called = first.loc[first["arm"] == "outreach", "account_id"].tolist()
    control = first.loc[first["arm"] == "control", "account_id"].tolist()
    day = f"{FIRST + pd.Timedelta(days=2):%Y-%m-%d}"
    log = pd.DataFrame({"account_id": called[:30] + control[:3], "contacted_at": day, "outcome": ["reached"] * 20 + ["no answer"] * 10 + ["reached"] * 3})
    log.to_csv(tmp_path / "calls.csv", index=False)
    scores = tmp_path / "scores"
    shutil.copytree(root / "scores", scores, symlinks=True)
    record_contacts(tmp_path / "calls.csv", scores)
    contract = load(root / "raw", interaction_columns=OPTIONAL_INTERACTION_COLUMNS)
    pp = matured_cohorts(contract, scores, model, data_end=learned.matured.data_end, analysis="per-protocol").rows
    mine = pp[pp["cohort"] == 0]
    assert sorted(mine.loc[mine["treated"], "account_id"]) == sorted(called[:20])
    assert sorted(mine.loc[~mine["treated"], "account_id"]) == sorted(control[3:])
    assert len(pp[pp["cohort"] > 0]) == int((itt["cohort"] > 0).sum() - (itt[itt["cohort"] > 0]["treated"]).sum())  # nobody else reached


def test_churn_uplift_command_tracks_the_evaluation_and_refuses_clearly(folder, mlflow_root: Path) -> None:  # type: ignore[no-untyped-def]
    import mlflow

    from churn.cli import app

    root, _, _ = folder
    runner = CliRunner()
    args = ["uplift", "--data", str(root / "raw"), "--scores", str(root / "scores"), "--model", str(root / "churn.joblib"), "--min-per-arm", "5", "--capacity", "60"]
    ok = runner.invoke(app, [*args, "--out", str(mlflow_root / "u.joblib")])
    assert ok.exit_code == 0, ok.output
    assert "Matured cohorts by" in ok.output and "Gate not passed" in ok.output and "Qini, uplift ranking" in ok.output
    assert (mlflow_root / "u.joblib").exists()
    found = mlflow.search_runs(experiment_names=["churn-uplift"])
    assert len(found) == 1 and "metrics.qini_difference_low" in found.columns and found["params.analysis"].iloc[0] == "intention-to-treat"

    assert "Warning: attributes" not in ok.output  # the generated business declares its attributes (static or with history)
    undeclared = runner.invoke(app, [*args, "--out", str(mlflow_root / "u2.joblib"), "--static-attributes", "", "--attributes-as-of", "2030-01-01"])
    assert undeclared.exit_code == 0, undeclared.output
    text = " ".join(undeclared.output.split())
    assert "Warning: attributes whose value at the earliest run's date the data does not hold" in text, text

    early = runner.invoke(app, [*args, "--data-end", "2023-11-10"])
    assert early.exit_code == 2 and "not enough matured experiment" in early.output and "Traceback" not in early.output
    assert "2 matured cohort(s)" in early.output and "at least 3" in early.output
    no_log = runner.invoke(app, [*args, "--analysis", "per-protocol"])
    assert no_log.exit_code == 2 and "per-protocol needs one" in no_log.output
    empty = runner.invoke(app, [*args, "--scores", str(mlflow_root / "nothing")])
    assert empty.exit_code == 2 and "holds no scoring run" in empty.output


def test_a_list_whose_control_group_had_no_churner_still_gets_its_chart() -> None:
    """The realized rate 0 % with a lower bound a rounding error above it (seen on a real run)."""
    from churn.outreach.report import realized_chart

    rows = [{"as_of": "2023-10-16", "expected_flagged_rate": 0.07, "matured": True, "realized_flagged_rate": 0.0, "realized_low": 2.7755575615628914e-17, "realized_high": 0.24}]
    assert realized_chart(rows)
