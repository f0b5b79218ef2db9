"""MLflow tracking and registry: runs, one registered model per business (``churn`` unless its
settings name another: ``model_name``), its ``champion`` alias, and a joblib bundle of the
champion for environments without MLflow.

A business's runs go to the experiment of its model's name, and its champion's bundle to
``NAME_champion.joblib``: one store and one models folder hold several businesses without one's
champion standing in for another's.

By default everything lives in the project folder — ``mlflow.db`` (SQLite) and
``mlartifacts/`` — with absolute paths so every command and notebook sees the same registry.
``MLFLOW_TRACKING_URI`` (a tracking server, a remote workspace) overrides it unchanged.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import joblib
import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from churn.config import DEFAULT_MODEL_NAME, ProfitConfig
from churn.data.io import atomic_path, csv_text
from churn.modeling.evaluate import evaluation_plots
from churn.modeling.gate import DECISION_METRIC, ChampionView, Decision, judge
from churn.modeling.model import ChurnModel, IncompatibleBundleError, load_bundle, save_bundle
from churn.modeling.train import TrainResult

MODEL_NAME = DEFAULT_MODEL_NAME
CHAMPION = "champion"
DEFAULT_STORE = "mlflow.db"
DEFAULT_ARTIFACTS = "mlartifacts"
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


def champion_uri(model_name: str = MODEL_NAME) -> str:
    """``models:/NAME@champion``: what ``churn score`` and ``churn serve`` load by default."""
    return f"models:/{model_name}@{CHAMPION}"


def bundle_path(out_dir: Path, model_name: str = MODEL_NAME) -> Path:
    """Where a business's champion bundle is exported (``models/churn_champion.joblib`` for the
    default name): each name its own file, so one business's promotion never overwrites another's."""
    return Path(out_dir) / f"{model_name}_champion.joblib"


def _experiment_id(root: Path, model_name: str) -> str:
    """The experiment of a business's runs, named after its registered model."""
    found = mlflow.get_experiment_by_name(model_name)
    if found is not None:
        return found.experiment_id
    location = None
    if mlflow.get_tracking_uri().startswith("sqlite:"):
        location = (root.resolve() / DEFAULT_ARTIFACTS).as_uri()
    return mlflow.create_experiment(model_name, artifact_location=location)


class ChurnPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow wrapper: raw feature rows in, one column P(churn) out.

    One column (not ``predict_proba``'s two) works everywhere: pyfunc, ``mlflow models
    serve`` and ``spark_udf(..., result_type='double')``.
    """

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.model: ChurnModel = load_bundle(context.artifacts["bundle"])

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


def _metric_dict(result: TrainResult) -> dict[str, float]:
    out = {}
    for name, row in result.metrics.iterrows():
        for metric, value in row.items():
            if np.isfinite(value):
                out[f"{name}_{metric}"] = float(value)
    if result.survival is not None:  # time to churn: survival_model_c_index, survival_cox_ibs, …
        for name, row in result.survival.metrics.iterrows():
            out.update({f"survival_{name}_{metric}": float(value) for metric, value in row.items() if np.isfinite(value)})
    return out


def log_training_run(
    result: TrainResult,
    *,
    root: Path,
    data_fingerprint: dict[str, object],
    run_name: str | None = None,
    model_name: str = MODEL_NAME,
) -> tuple[str, str]:
    """Log params, metrics (headline and per fold), the leakage sentinel, the attributes used,
    plots, catalogue and the deployed model; register it as ``model_name``. Returns (run_id, version)."""
    model = result.model
    main = result.evaluation.main
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        evaluation_plots(main.y, main.scores, model.importance(), tmp_path / "plots")
        bundle = tmp_path / "bundle.joblib"
        save_bundle(model, bundle)
        example = to_model_input(result.example, model)
        with mlflow.start_run(experiment_id=_experiment_id(root, model_name), run_name=run_name) as run:
            mlflow.log_params({k: str(v)[:500] for k, v in result.params.items()})
            mlflow.log_metrics(_metric_dict(result))
            for _, row in result.evaluation.fold_metrics().iterrows():
                for metric in ("pr_auc", "roc_auc", DECISION_METRIC, "emp"):
                    if np.isfinite(row[metric]):
                        mlflow.log_metric(f"fold_{row['model']}_{metric}", float(row[metric]), step=int(row["fold"]))
            mlflow.set_tags(
                {"evaluation": result.evaluation.description[:5000], "churn.kind": str(model.definition["kind"]), "churn.model_name": model_name}
            )
            mlflow.log_dict(model.definition, "churn_definition.json")
            mlflow.log_dict(data_fingerprint, "data_fingerprint.json")
            mlflow.log_dict(
                {
                    "deployed_model": {k: model.metadata[k] for k in ("cutoffs", "train_rows", "train_accounts", "n_estimators", "best_iteration")},
                    "evaluation": result.evaluation.description,
                    "evaluation_test_cutoffs": model.metadata.get("evaluation_test_cutoffs", []),
                },
                "cutoffs.json",
            )
            mlflow.log_dict({"attributes": model.metadata.get("attributes", [])}, "attributes.json")
            mlflow.log_dict(result.calibration_losses, "calibration_choice.json")
            mlflow.log_text(csv_text(result.leakage), "leakage_sentinel.csv")  # spreadsheet-safe: feature names are user columns
            mlflow.log_text(csv_text(result.evaluation.fold_metrics()), "evaluation_folds.csv")
            mlflow.log_text(csv_text(model.catalogue()), "feature_catalogue.csv")
            mlflow.log_text(csv_text(result.metrics, index=True), "metrics.csv")
            if result.survival is not None:
                mlflow.log_dict(result.survival.summary(), "survival_evaluation.json")
            mlflow.log_artifacts(str(tmp_path / "plots"), "plots")
            _log_trials(result.tuning)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=ChurnPyfunc(),
                artifacts={"bundle": str(bundle)},
                code_paths=[str(Path(__file__).parent)],
                signature=infer_signature(example, model.predict_proba(result.example)),
                input_example=example,
                pip_requirements=PIP_REQUIREMENTS,
                registered_model_name=model_name,
            )
    return run.info.run_id, str(info.registered_model_version)


def _log_trials(trials: pd.DataFrame) -> None:
    """Every hyperparameter trial of the deployed model's tuning, as a nested run."""
    if trials.empty:
        return
    mlflow.log_text(csv_text(trials), "tuning_trials.csv")
    for row in trials.itertuples(index=False):
        record = row._asdict()
        with mlflow.start_run(nested=True, run_name=f"trial {record['number']}"):
            mlflow.log_params({k.removeprefix("params_"): v for k, v in record.items() if k.startswith("params_")})
            if record.get("value") is not None and np.isfinite(record["value"]):
                mlflow.log_metric("validation_log_loss", float(record["value"]))


def log_leakage_stop(root: Path, leakage: str, data_fingerprint: dict[str, object], model_name: str = MODEL_NAME) -> str:
    """A training run the leakage sentinel stopped: recorded as a failed MLflow run."""
    with mlflow.start_run(experiment_id=_experiment_id(root, model_name), run_name="stopped: leakage") as run:
        mlflow.set_tags({"stopped": "leakage", "stop_reason": leakage[:5000]})
        mlflow.log_dict(data_fingerprint, "data_fingerprint.json")
        mlflow.log_text(leakage, "leakage_sentinel.txt")
    MlflowClient().set_terminated(run.info.run_id, status="FAILED")
    return run.info.run_id


def load_model(ref: str) -> tuple[ChurnModel, str]:
    """A model from ``models:/…``/``runs:/…`` (MLflow) or a bundle path. Returns (model, label)."""
    if ref.startswith(("models:/", "runs:/")):
        try:
            pyfunc = mlflow.pyfunc.load_model(ref)
        except IncompatibleBundleError as exc:
            raise ValueError(f"{ref}: {exc}") from None
        except MlflowException as exc:
            raise ValueError(
                f"cannot load model {ref!r} from {mlflow.get_tracking_uri()}: {exc.message} — "
                "train one (`churn train`) and, if the gate did not promote it, promote it (`churn promote VERSION`), "
                "name another business's model (--model-name, model_name in churn.toml), or pass --model PATH to a model bundle"
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
        raise ValueError(f"no model at {ref!r}: give {champion_uri()} (or another models:/NAME@champion) or a path to a .joblib bundle")
    model = load_bundle(path)
    return model, f"{path} ({model.metadata.get('registered_version', 'unregistered')})"


def current_champion(model_name: str = MODEL_NAME) -> tuple[str, ChurnModel] | None:
    """(version, model) of ``model_name``'s ``champion`` alias, or None when there is none yet."""
    try:
        current = MlflowClient().get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return None
    model, _ = load_model(f"models:/{model_name}/{current.version}")
    return str(current.version), model


def decide_champion(result: TrainResult, version: str, champion: ChampionView | None, *, capacity: int, model_name: str = MODEL_NAME) -> Decision:
    """Apply the champion gate (:mod:`churn.modeling.gate`) and move ``model_name``'s alias if the
    challenger wins. Records the decision and the decision metric on the model version."""
    client = MlflowClient()
    model = result.model
    profit = ProfitConfig(**model.metadata["profit"])  # type: ignore[arg-type]
    decision = judge(
        result.evaluation,
        version,
        champion,
        definition=model.definition,
        capacity=capacity,
        profit=profit,
        margin=float(model.metadata["train_config"]["promotion_margin"]),  # type: ignore[index]
        has_value=profit.value_column in model.feature_names,
    )
    if decision.promoted:
        client.set_registered_model_alias(model_name, CHAMPION, version)
    client.set_model_version_tag(model_name, version, "champion_decision", decision.reason[:4000])
    client.set_model_version_tag(model_name, version, DECISION_METRIC, f"{result.metrics.loc['model', DECISION_METRIC]:.4f}")
    if not decision.comparison.empty:
        client.log_text(client.get_model_version(model_name, version).run_id, csv_text(decision.comparison), "champion_comparison.csv")
    return decision


def promote(version: str, reason: str, model_name: str = MODEL_NAME) -> None:
    """Give ``version`` of ``model_name`` the champion alias by hand, recording why."""
    client = MlflowClient()
    try:
        client.get_model_version(model_name, version)
    except MlflowException:
        raise ValueError(f"no version {version} of model '{model_name}' in {mlflow.get_tracking_uri()}") from None
    client.set_registered_model_alias(model_name, CHAMPION, version)
    client.set_model_version_tag(model_name, version, "champion_decision", f"promoted by hand: {reason}"[:4000])


def export_bundle(model: ChurnModel, out_dir: Path, *, version: str, run_id: str, model_name: str = MODEL_NAME) -> Path:
    """Write the champion as one bundle file (model, features, catalogue, definition, metadata)
    at :func:`bundle_path`."""
    model.metadata.update({"registered_model": model_name, "registered_version": version, "run_id": run_id})
    target = bundle_path(out_dir, model_name)
    with atomic_path(target) as tmp:
        save_bundle(model, tmp)
    return target


def promote_and_export(version: str, reason: str, out_dir: Path, model_name: str = MODEL_NAME) -> Path:
    """``churn promote``: make ``version`` the champion by hand and export its bundle to
    ``out_dir``, as an automatic promotion would. Returns the bundle's path."""
    promote(version, reason, model_name)
    model, _ = load_model(f"models:/{model_name}/{version}")
    return export_bundle(model, out_dir, version=version, run_id=str(model.metadata.get("run_id", "")), model_name=model_name)


def list_versions(model_name: str = MODEL_NAME) -> pd.DataFrame:
    """Registered versions of ``model_name`` with their decision metric, aliases and champion decision."""
    client = MlflowClient()
    try:
        versions = client.search_model_versions(f"name='{model_name}'")
        # search results do not carry aliases; the registered model does
        aliases = client.get_registered_model(model_name).aliases
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
                "precision_at_capacity": v.tags.get(DECISION_METRIC, v.tags.get("pr_auc", "")),
                "decision": v.tags.get("champion_decision", ""),
                "run_id": v.run_id,
            }
        )
    return pd.DataFrame(rows, columns=["version", "created", "aliases", "precision_at_capacity", "decision", "run_id"]).sort_values("version", ascending=False)


UPLIFT_METRICS = ("qini", "auuc", "uplift_at_capacity", "qini_risk", "qini_difference")


def log_uplift_evaluations(evaluations: list[dict[str, object]], *, root: Path, params: dict[str, object], run_name: str, model_name: str = MODEL_NAME) -> str:
    """One MLflow run in the experiment ``NAME-uplift``: each held-out evaluation of the uplift
    model (step = the cycle it was made at) — Qini, AUUC, uplift at capacity, the risk ranking's
    Qini and the difference, each with its interval bounds, and whether the gate passed — and
    the evaluations with their Qini curves as ``uplift_evaluations.json``. Returns the run id."""
    with mlflow.start_run(experiment_id=_experiment_id(root, f"{model_name}-uplift"), run_name=run_name) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        for e in evaluations:
            step = int(e["cycle"])  # type: ignore[call-overload]
            for name in UPLIFT_METRICS:
                for suffix in ("", "_low", "_high"):
                    value = float(e[f"{name}{suffix}"])  # type: ignore[arg-type]
                    if np.isfinite(value):
                        mlflow.log_metric(f"{name}{suffix}", value, step=step)
            mlflow.log_metric("gate_passed", float(bool(e["gate_passed"])), step=step)
        mlflow.log_dict({"evaluations": evaluations}, "uplift_evaluations.json")
    return run.info.run_id
