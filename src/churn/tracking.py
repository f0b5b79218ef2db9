"""MLflow tracking and registry: runs, the ``churn`` registered model, the ``champion`` alias,
and a joblib bundle of the champion for environments without MLflow.

By default everything lives in the project folder — ``mlflow.db`` (SQLite) and
``mlartifacts/`` — with absolute paths so every command and notebook sees the same registry.
``MLFLOW_TRACKING_URI`` (a tracking server, a remote workspace) overrides it unchanged.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import joblib
import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from churn.evaluate import classification_metrics, evaluation_plots
from churn.io import write_atomic
from churn.train import ChurnModel, MissingFeaturesError, TrainResult

MODEL_NAME = "churn"
CHAMPION = "champion"
EXPERIMENT = "churn"
DEFAULT_STORE = "mlflow.db"
DEFAULT_ARTIFACTS = "mlartifacts"
BUNDLE_NAME = "churn_champion.joblib"
#: Explicit requirements: inferring them costs 10–15 s per run.
PIP_REQUIREMENTS = [
    f"lightgbm=={__import__('lightgbm').__version__}",
    f"scikit-learn=={__import__('sklearn').__version__}",
    f"pandas=={pd.__version__}",
    f"numpy=={np.__version__}",
    f"joblib=={joblib.__version__}",
    f"mlflow=={mlflow.__version__}",
]


def configure(root: Path | None = None) -> str:
    """Point MLflow at ``MLFLOW_TRACKING_URI`` or the embedded SQLite store under ``root``."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    root = (root or Path.cwd()).resolve()
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / DEFAULT_STORE}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def _experiment_id(root: Path) -> str:
    found = mlflow.get_experiment_by_name(EXPERIMENT)
    if found is not None:
        return found.experiment_id
    location = None
    if mlflow.get_tracking_uri().startswith("sqlite:"):
        location = (root.resolve() / DEFAULT_ARTIFACTS).as_uri()
    return mlflow.create_experiment(EXPERIMENT, artifact_location=location)


class ChurnPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow wrapper: raw feature rows in, one column P(churn) out.

    One column (not ``predict_proba``'s two) works everywhere: pyfunc, ``mlflow models
    serve`` and ``spark_udf(..., result_type='double')``.
    """

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.model: ChurnModel = joblib.load(context.artifacts["bundle"])

    def predict(self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:  # type: ignore[override]
        return self.model.predict_proba(model_input)


def to_model_input(features: pd.DataFrame, model: ChurnModel) -> pd.DataFrame:
    """The model's columns with categories as plain text (what the MLflow signature holds)."""
    frame = features[model.feature_names].copy()
    for c in model.categories:
        frame[c] = frame[c].astype("str").where(frame[c].notna(), None).astype(object)
    return frame


def fingerprint(accounts: pd.DataFrame, interactions: pd.DataFrame) -> dict[str, object]:
    """Row counts, date range and a content hash of the data a run used."""
    h = int(pd.util.hash_pandas_object(accounts[["account_id", "signup_at"]].astype("str"), index=False).sum())
    if len(interactions):
        h ^= int(pd.util.hash_pandas_object(interactions[["occurred_at"]], index=False).sum())
    return {
        "accounts": len(accounts),
        "interactions": len(interactions),
        "first_event": str(interactions["occurred_at"].min()) if len(interactions) else None,
        "last_event": str(interactions["occurred_at"].max()) if len(interactions) else None,
        "hash": f"{h & (2**64 - 1):016x}",
    }


@dataclass
class Decision:
    promoted: bool
    reason: str
    version: str
    previous_champion: str | None = None


def _metric_dict(result: TrainResult) -> dict[str, float]:
    out = {}
    for name, row in result.metrics.iterrows():
        for metric, value in row.items():
            if np.isfinite(value):
                out[f"{name}_{metric}"] = float(value)
    return out


def log_training_run(
    result: TrainResult,
    *,
    root: Path,
    data_fingerprint: dict[str, object],
    run_name: str | None = None,
) -> tuple[str, str]:
    """Log params, metrics, plots, catalogue and the model; register it. Returns (run_id, version)."""
    model = result.model
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        evaluation_plots(result.y_test, result.test_scores, model.importance(), tmp_path / "plots")
        bundle = tmp_path / "bundle.joblib"
        joblib.dump(model, bundle)
        example = to_model_input(result.split.test.head(5), model)
        signature = infer_signature(example, model.predict_proba(result.split.test.head(5)))
        with mlflow.start_run(experiment_id=_experiment_id(root), run_name=run_name) as run:
            mlflow.log_params({k: str(v)[:500] for k, v in result.params.items()})
            mlflow.log_metrics(_metric_dict(result))
            mlflow.set_tags({"split": result.split.description, "churn.kind": model.definition["kind"]})
            mlflow.log_dict(model.definition, "churn_definition.json")
            mlflow.log_dict(data_fingerprint, "data_fingerprint.json")
            mlflow.log_dict({"cutoffs": model.metadata["cutoffs"], "split": result.split.description}, "cutoffs.json")
            mlflow.log_dict(result.calibration_losses, "calibration_choice.json")
            mlflow.log_text(model.catalogue().to_csv(index=False), "feature_catalogue.csv")
            mlflow.log_text(result.metrics.to_csv(), "metrics.csv")
            mlflow.log_artifacts(str(tmp_path / "plots"), "plots")
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=ChurnPyfunc(),
                artifacts={"bundle": str(bundle)},
                code_paths=[str(Path(__file__).parent)],
                signature=signature,
                input_example=example,
                pip_requirements=PIP_REQUIREMENTS,
                registered_model_name=MODEL_NAME,
            )
    return run.info.run_id, str(info.registered_model_version)


def load_model(ref: str) -> tuple[ChurnModel, str]:
    """A model from ``models:/…``/``runs:/…`` (MLflow) or a joblib bundle path. Returns (model, label)."""
    if ref.startswith(("models:/", "runs:/")):
        try:
            pyfunc = mlflow.pyfunc.load_model(ref)
        except MlflowException as exc:
            raise ValueError(
                f"cannot load model {ref!r} from {mlflow.get_tracking_uri()}: {exc.message} — "
                "train one first (`churn train`), or pass --model models/churn_champion.joblib"
            ) from None
        meta = pyfunc.metadata
        label = ref
        if ref.startswith("models:/"):
            try:
                name, alias = ref[len("models:/") :].split("@", 1)
                label = f"{name} v{MlflowClient().get_model_version_by_alias(name, alias).version} ({ref})"
            except (ValueError, MlflowException):
                label = f"{ref} (run {meta.run_id})"
        return pyfunc.unwrap_python_model().model, label
    path = Path(ref)
    if not path.exists():
        raise ValueError(f"no model at {ref!r}: give models:/churn@champion or a path to a .joblib bundle")
    model = joblib.load(path)
    if not isinstance(model, ChurnModel):
        raise ValueError(f"{ref} is not a churn model bundle")
    return model, f"{path} ({model.metadata.get('registered_version', 'unregistered')})"


def decide_champion(result: TrainResult, version: str, *, metric: str = "pr_auc") -> Decision:
    """Move ``champion`` to ``version`` only if it beats both baselines and the current
    champion on the same test slice. Records the decision on the model version."""
    client = MlflowClient()
    ours = float(result.metrics.loc["model", metric])
    decision: Decision
    if not result.beats_baselines(metric):
        m = result.metrics[metric]
        decision = Decision(False, f"{metric} {ours:.4f} does not beat the baselines (logistic {m['logistic']:.4f}, rule {m['rule']:.4f})", version)
    else:
        try:
            current = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
        except MlflowException:
            current = None
        if current is None:
            decision = Decision(True, f"first champion: {metric} {ours:.4f} beats both baselines", version)
        else:
            champ, _ = load_model(f"models:/{MODEL_NAME}/{current.version}")
            try:
                theirs = classification_metrics(result.y_test, champ.predict_proba(result.split.test))[metric]
            except MissingFeaturesError as exc:
                theirs, why = float("nan"), f"the champion cannot score this feature table ({exc})"
            else:
                why = f"champion v{current.version} scores {theirs:.4f} on the same test slice"
            better = not np.isfinite(theirs) or ours > theirs
            verdict = "beats" if better else "does not beat"
            decision = Decision(better, f"{metric} {ours:.4f} {verdict} — {why}", version, current.version)
    if decision.promoted:
        client.set_registered_model_alias(MODEL_NAME, CHAMPION, version)
    client.set_model_version_tag(MODEL_NAME, version, "champion_decision", decision.reason[:4000])
    client.set_model_version_tag(MODEL_NAME, version, metric, f"{ours:.4f}")
    return decision


def export_bundle(model: ChurnModel, out_dir: Path, *, version: str, run_id: str) -> Path:
    """Write the champion as one joblib file (model, features, catalogue, definition, metadata)."""
    model.metadata.update({"registered_model": MODEL_NAME, "registered_version": version, "run_id": run_id})
    return write_atomic(out_dir / BUNDLE_NAME, lambda p: joblib.dump(model, p))


def list_versions() -> pd.DataFrame:
    """Registered versions with their test PR-AUC, aliases and champion decision."""
    client = MlflowClient()
    try:
        versions = client.search_model_versions(f"name='{MODEL_NAME}'")
        # search results do not carry aliases; the registered model does
        aliases = client.get_registered_model(MODEL_NAME).aliases
    except MlflowException:
        versions, aliases = [], {}
    by_version: dict[str, list[str]] = {}
    for alias, v in aliases.items():
        by_version.setdefault(str(v), []).append(alias)
    rows = []
    for v in versions:
        rows.append(
            {
                "version": int(v.version),
                "created": pd.Timestamp(v.creation_timestamp, unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M"),
                "aliases": ", ".join(sorted(by_version.get(str(v.version), []))),
                "pr_auc": v.tags.get("pr_auc", ""),
                "decision": v.tags.get("champion_decision", ""),
                "run_id": v.run_id,
            }
        )
    return pd.DataFrame(rows, columns=["version", "created", "aliases", "pr_auc", "decision", "run_id"]).sort_values("version", ascending=False)
