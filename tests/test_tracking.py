"""MLflow tracking, registry, champion alias, and the joblib bundle."""

from __future__ import annotations

import copy
from pathlib import Path

import joblib
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from churn.tracking import (
    CHAMPION,
    MODEL_NAME,
    decide_champion,
    export_bundle,
    list_versions,
    load_model,
    log_training_run,
    to_model_input,
)


def test_run_registry_alias_and_bundle(trained, mlflow_root: Path) -> None:  # type: ignore[no-untyped-def]
    run_id, version = log_training_run(trained, root=mlflow_root, data_fingerprint={"accounts": 1})
    assert str(mlflow_root / "mlflow.db") in mlflow.get_tracking_uri()
    run = MlflowClient().get_run(run_id)
    assert run.data.metrics["model_pr_auc"] > run.data.metrics["logistic_pr_auc"]
    assert "rule_lift_top10" in run.data.metrics
    assert run.data.params["split_kind"] == "time"
    artifacts = {a.path for a in MlflowClient().list_artifacts(run_id)}
    assert {"plots", "feature_catalogue.csv", "churn_definition.json", "data_fingerprint.json", "metrics.csv"} <= artifacts
    plots = {Path(a.path).name for a in MlflowClient().list_artifacts(run_id, "plots")}
    assert plots == {"roc.png", "precision_recall.png", "gains.png", "calibration.png", "importance.png"}

    decision = decide_champion(trained, version)
    assert decision.promoted and "first champion" in decision.reason

    # the registered model scores raw feature rows through pyfunc
    pyfunc = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{CHAMPION}")
    rows = to_model_input(trained.split.test.head(50), trained.model)
    p = np.asarray(pyfunc.predict(rows))
    assert p.shape == (50,) and ((p >= 0) & (p <= 1)).all()

    # the joblib bundle scores identically
    bundle = export_bundle(trained.model, mlflow_root / "models", version=version, run_id=run_id)
    from_bundle = joblib.load(bundle).predict_proba(trained.split.test.head(50))
    np.testing.assert_allclose(from_bundle, p)
    model, label = load_model(f"models:/{MODEL_NAME}@{CHAMPION}")
    assert "v1" in label and model.metadata["split_kind"] == "time"

    # a later model that beats the baselines but not the champion does not take the alias
    worse = copy.copy(trained)
    worse.metrics = trained.metrics.copy()
    worse.metrics.loc["model", "pr_auc"] = trained.metrics.loc["logistic", "pr_auc"] + 0.001
    _, v2 = log_training_run(worse, root=mlflow_root, data_fingerprint={})
    decision = decide_champion(worse, v2)
    assert not decision.promoted and "champion v1" in decision.reason
    assert str(MlflowClient().get_model_version_by_alias(MODEL_NAME, CHAMPION).version) == "1"
    versions = list_versions()
    assert versions.set_index("version").loc[1, "aliases"] == "champion"


def test_model_that_loses_to_baselines_is_not_promoted(trained, mlflow_root: Path) -> None:  # type: ignore[no-untyped-def]
    losing = copy.copy(trained)
    losing.metrics = trained.metrics.copy()
    losing.metrics.loc["model", "pr_auc"] = 0.0
    _, version = log_training_run(losing, root=mlflow_root, data_fingerprint={})
    decision = decide_champion(losing, version)
    assert not decision.promoted and "does not beat the baselines" in decision.reason


def test_unknown_model_reference_is_a_clear_error(mlflow_root: Path) -> None:
    with pytest.raises(ValueError, match="no model at"):
        load_model("nowhere.joblib")
    with pytest.raises(ValueError, match="cannot load model"):
        load_model("models:/churn@champion")
