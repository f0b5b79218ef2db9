"""MLflow tracking, registry, the champion gate, and the bundle file."""

from __future__ import annotations

import copy
import pickle
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from churn.config import ChurnDefinition, TrainConfig
from churn.data.contract import ContractData
from churn.jobs.training import champion_view
from churn.modeling.gate import ChampionView, eligible_folds, judge
from churn.modeling.model import IncompatibleBundleError, incompatibilities, load_bundle, save_bundle
from churn.modeling.tracking import (
    CHAMPION,
    MODEL_NAME,
    decide_champion,
    export_bundle,
    list_versions,
    load_model,
    log_training_run,
    to_model_input,
)
from churn.modeling.train import fit_churn_model


def _contract(data) -> ContractData:  # type: ignore[no-untyped-def]
    return ContractData(data.accounts.assign(account_id=data.accounts["account_id"].astype("str")), data.interactions, {}, [], data.attribute_history)


def test_run_registry_alias_and_bundle(trained, latest_features, mlflow_root: Path) -> None:  # type: ignore[no-untyped-def]
    # a feature named after a user's column "=cmd": the logged CSV must not run it as a formula
    formula = trained.leakage.head(1).assign(feature="=cmd|' /C calc'!A0")
    run_id, version = log_training_run(replace(trained, leakage=pd.concat([trained.leakage, formula], ignore_index=True)), root=mlflow_root, data_fingerprint={"accounts": 1})
    sentinel = mlflow.artifacts.load_text(f"runs:/{run_id}/leakage_sentinel.csv")
    assert "'=cmd|" in sentinel and not any(cell.startswith("=") for line in sentinel.splitlines() for cell in line.split(","))
    assert str(mlflow_root / "mlflow.db") in mlflow.get_tracking_uri()
    run = MlflowClient().get_run(run_id)
    for name in ("model", "logistic"):  # the evaluation's numbers, as logged (quality itself: test_train)
        assert run.data.metrics[f"{name}_precision_at_capacity"] == pytest.approx(trained.metrics.loc[name, "precision_at_capacity"])
    assert "rule_lift_top10" in run.data.metrics and "model_emp" in run.data.metrics
    assert run.data.params["evaluation"] == "time" and int(run.data.params["train_rows"]) == trained.info.rows
    artifacts = {a.path for a in MlflowClient().list_artifacts(run_id)}
    assert {
        "plots", "feature_catalogue.csv", "churn_definition.json", "data_fingerprint.json", "metrics.csv", "cutoffs.json",
        "evaluation_folds.csv", "leakage_sentinel.csv", "attributes.json",
    } <= artifacts
    plots = {Path(a.path).name for a in MlflowClient().list_artifacts(run_id, "plots")}
    assert plots == {"roc.png", "precision_recall.png", "gains.png", "calibration.png", "importance.png"}
    deployed = mlflow.artifacts.load_dict(f"runs:/{run_id}/cutoffs.json")["deployed_model"]
    assert deployed["train_rows"] == trained.info.rows and len(deployed["cutoffs"]) == 9

    decision = decide_champion(trained, version, None, capacity=200)
    assert decision.promoted and "first champion" in decision.reason

    # the registered model scores raw feature rows through pyfunc
    pyfunc = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{CHAMPION}")
    p = np.asarray(pyfunc.predict(to_model_input(latest_features.head(50), trained.model)))
    assert p.shape == (50,) and ((p >= 0) & (p <= 1)).all()

    # the bundle scores identically
    bundle = export_bundle(trained.model, mlflow_root / "models", version=version, run_id=run_id)
    np.testing.assert_allclose(load_bundle(bundle).predict_proba(latest_features.head(50)), p)
    model, label = load_model(f"models:/{MODEL_NAME}@{CHAMPION}")
    assert "v1" in label and model.metadata["split_kind"] == "time"
    assert list_versions().set_index("version").loc[1, "aliases"] == "champion"


def test_gate_never_judges_a_champion_on_a_slice_it_trained_on(trained, training_data) -> None:  # type: ignore[no-untyped-def]
    """A champion fitted on every cutoff up to the latest test slice has seen all the
    evaluation slices: it cannot be judged on them, so it stays."""
    data, _, _ = training_data
    evaluation = trained.evaluation
    # the deployed model itself, as if it were the champion: its training includes every slice
    view = champion_view("1", trained.model, evaluation, _contract(data))
    assert eligible_folds(evaluation, view) == [] and view.scores == {}
    decision = judge(evaluation, "2", view, definition=trained.model.definition, capacity=200)
    assert not decision.promoted and "no evaluation slice is later than champion v1's training data" in decision.reason


def test_gate_compares_on_slices_later_than_both_models(trained, training_data) -> None:  # type: ignore[no-untyped-def]
    data, spec, table = training_data
    cutoffs = sorted(table["as_of"].unique())
    early = table[table["as_of"] <= cutoffs[-3]]  # labels of cutoffs[-3] mature at cutoffs[-2]
    old, _ = fit_churn_model(early, spec=spec, definition=ChurnDefinition(), config=TrainConfig(n_estimators=200))
    view = champion_view("1", old, trained.evaluation, _contract(data))
    folds = eligible_folds(trained.evaluation, view)
    assert [trained.evaluation.folds[i].fold.test_cutoff for i in folds] == cutoffs[-2:]  # never cutoffs[-3] or earlier
    assert set(view.scores) == set(folds)
    decision = judge(trained.evaluation, "2", view, definition=trained.model.definition, capacity=200, margin=0.0)
    compared = decision.comparison
    assert list(compared["test_cutoff"]) == cutoffs[-2:]
    # the comparison's challenger figures are the evaluation's own
    for i, row in zip(folds, compared.itertuples()):
        assert row.challenger_precision_at_capacity == pytest.approx(trained.evaluation.folds[i].metrics.loc["model", "precision_at_capacity"])
    # a challenger whose scores are the "quiet the longest" rule loses to the same champion
    weak = copy.deepcopy(trained.evaluation)
    for r in weak.folds:
        r.scores["model"] = r.scores["rule"]
        r.metrics.loc["model"] = r.metrics.loc["rule"] + 1.0  # pass the baseline check; the comparison recomputes
    lost = judge(weak, "3", view, definition=trained.model.definition, capacity=200)
    assert not lost.promoted and "champion v1" in lost.reason


def test_gate_with_another_definition_or_schema(trained, training_data) -> None:  # type: ignore[no-untyped-def]
    data, _, _ = training_data
    other = ChampionView("1", {**trained.model.definition, "horizon_days": 60}, pd.Timestamp("2023-01-01", tz="UTC"))
    decision = judge(trained.evaluation, "2", other, definition=trained.model.definition, capacity=200)
    assert not decision.promoted and "another churn definition" in decision.reason and "churn promote 2" in decision.reason
    contract = _contract(data)
    contract.interactions = contract.interactions.drop(columns=["wait_seconds"])
    view = champion_view("1", trained.model, trained.evaluation, contract)
    assert "wait_seconds" in (view.schema_problem or "")
    decision = judge(trained.evaluation, "2", view, definition=trained.model.definition, capacity=200)
    assert decision.promoted and "data schema changed" in decision.reason


def test_model_that_loses_to_baselines_is_not_promoted(trained) -> None:  # type: ignore[no-untyped-def]
    losing = copy.deepcopy(trained.evaluation)
    for r in losing.folds:
        r.metrics.loc["model", "precision_at_capacity"] = 0.0
    decision = judge(losing, "1", None, definition=trained.model.definition, capacity=200)
    assert not decision.promoted and "does not beat the baselines" in decision.reason


def test_bundle_records_versions_and_refuses_incompatible_ones(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "m.joblib"
    save_bundle(trained.model, path)
    assert load_bundle(path).metadata["versions"]["lightgbm"]
    header = {"magic": "churn-model-bundle", "format": 2, "versions": {**trained.model.metadata["versions"], "scikit-learn": "0.24.2"}}
    old = tmp_path / "old.joblib"
    with open(old, "wb") as f:
        pickle.dump(header, f)
        f.write(path.read_bytes()[len(pickle.dumps(header)) :])
    with pytest.raises(IncompatibleBundleError, match=r"built with scikit-learn 0\.24\.2 \(here .*\): retrain"):
        load_bundle(old)
    legacy = tmp_path / "legacy.joblib"
    legacy.write_bytes(pickle.dumps({"not": "a bundle"}))
    with pytest.raises(IncompatibleBundleError, match="older churn without a version header"):
        load_bundle(legacy)
    with pytest.raises(ValueError, match="built with scikit-learn 0.24.2"):
        load_model(str(old))
    assert incompatibilities({"churn": "0.2.9", "lightgbm": "4.7.1", "scikit-learn": "1.9.0", "pandas": "3.0.0"}, {"churn": "0.2.0", "lightgbm": "4.7.0", "scikit-learn": "1.9.1", "pandas": "3.1.1"}) == []


def test_unknown_model_reference_is_a_clear_error(mlflow_root: Path) -> None:
    with pytest.raises(ValueError, match="no model at"):
        load_model("nowhere.joblib")
    with pytest.raises(ValueError, match="cannot load model"):
        load_model("models:/churn@champion")


def test_csv_artifacts_are_spreadsheet_safe() -> None:
    """What MLflow's CSV artifacts go through (csv_text): text cells and row labels that a
    spreadsheet would run get a leading apostrophe; numbers and plain text are untouched."""
    from churn.data.io import csv_text

    frame = pd.DataFrame({"feature": ["=cmd", "+1", "tenure_days"], "auc": [-0.5, 0.61, 0.7]}, index=pd.Index(["@x", "model", "-y"], name="row"))
    assert csv_text(frame) == "feature,auc\n'=cmd,-0.5\n'+1,0.61\ntenure_days,0.7\n"
    assert csv_text(frame, index=True).splitlines() == ["row,feature,auc", "'@x,'=cmd,-0.5", "model,'+1,0.61", "'-y,tenure_days,0.7"]
