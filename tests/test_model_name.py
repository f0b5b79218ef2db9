"""One MLflow store, two businesses: each keeps its own champion under its own registered-model
name (``model_name`` in churn.toml, ``--model-name``), and ``churn score`` refuses a model whose
inputs the data lacks — another business's champion — unless ``--allow-model-mismatch``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from churn.cli.commands import app
from churn.config import DataSettings, TrainConfig, load_settings
from churn.data.dataend import data_end_and_source
from churn.data.synthetic import generate, write
from churn.jobs.training import train_and_track, training_table
from churn.modeling.model import MISMATCH_GAIN_SHARE, input_mismatch, load_bundle
from churn.modeling.tracking import CHAMPION, bundle_path, champion_uri, load_model

CUTOFFS = "2023-05-01:2023-08-01:1M"
AS_OF = "2023-09-01"


def _purchase_business(seed: int):  # type: ignore[no-untyped-def]
    """A shop: no subscriptions (no churned_at: inactivity churn) and one event type, purchase."""
    data = generate(300, start="2023-01-01", months=9, seed=seed)
    bought = data.interactions[data.interactions["event_type"].isin(["feature_use", "invoice"])].assign(event_type="purchase")
    return replace(data, accounts=data.accounts.drop(columns="churned_at"), interactions=bought.reset_index(drop=True))


def _train(folder: Path, root: Path, settings: DataSettings):  # type: ignore[no-untyped-def]
    """``churn train`` for the business in ``folder``, small enough for a test (one thread, few trees)."""
    built = training_table(folder, settings, export_date=data_end_and_source(folder, settings)[0], cutoffs=CUTOFFS)
    config = TrainConfig(n_estimators=40, n_jobs=1, calibration_folds=2, evaluation_folds=2)
    return train_and_track(built, config, capacity=30, models_dir=root / "models", root=root, model_name=settings.model_name)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A social app (subscription churn, five event types; its churn.toml names its model) and a
    shop (inactivity churn, purchases only; named on the command line), trained into one store."""
    root = tmp_path_factory.mktemp("two_businesses")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'registry.db'}")
    write(generate(300, start="2023-01-01", months=9, seed=1), str(root / "social"))
    with open(root / "social" / "churn.toml", "a", encoding="utf-8") as f:
        f.write('model_name = "social"\n')
    write(_purchase_business(2), str(root / "shop"))
    runs = {
        "social": _train(root / "social", root, load_settings(root / "social")),
        "shop": _train(root / "shop", root, load_settings(root / "shop").with_overrides(model_name="shop")),
    }
    runner = CliRunner()
    for name in runs:  # whatever the gate decided on these tiny businesses, version 1 is each one's champion
        result = runner.invoke(app, ["promote", "1", "--model-name", name, "--reason", "first model of this business"])
        assert result.exit_code == 0, result.output
    yield root, runs
    mp.undo()


def _score(root: Path, *args: str) -> tuple[int, str, Path]:
    out = root / f"scores_{abs(hash(args))}"
    result = CliRunner().invoke(app, ["score", "--as-of", AS_OF, "--capacity", "20", "--out", str(out), *args])
    return result.exit_code, result.output, out


def test_each_business_keeps_its_own_champion_and_scores_with_it(store) -> None:  # type: ignore[no-untyped-def]
    root, runs = store
    assert {name: run.model_name for name, run in runs.items()} == {"social": "social", "shop": "shop"}
    assert {name: run.version for name, run in runs.items()} == {"social": "1", "shop": "1"}  # two registered models, not v1 and v2 of one
    assert champion_uri() == "models:/churn@champion" and bundle_path(Path("models")) == Path("models/churn_champion.joblib")  # the default unchanged
    for name in runs:
        model, label = load_model(f"models:/{name}@{CHAMPION}")
        assert label.startswith(f"{name} v1")
        bundle = load_bundle(root / "models" / f"{name}_champion.joblib")  # one bundle per business: neither overwrote the other
        assert bundle.metadata["registered_model"] == name and bundle.spec.event_types == model.spec.event_types
        listed = CliRunner().invoke(app, ["models", "--model-name", name])
        assert listed.exit_code == 0 and f"Registered model '{name}'" in listed.output and "champion" in listed.output
    assert load_bundle(root / "models" / "shop_champion.joblib").spec.event_types == ("purchase",)

    code, output, out = _score(root, "--data", str(root / "social"))  # the name from social/churn.toml
    assert code == 0, output
    assert "with social v1 (models:/social@champion)" in output and "does not fit" not in output
    code, output, out = _score(root, "--data", str(root / "shop"), "--model-name", "shop")
    assert code == 0, output
    assert "with shop v1 (models:/shop@champion)" in output and "does not fit" not in output
    record = json.loads((out / "runs.jsonl").read_text().splitlines()[-1])
    assert record["model"] == "shop v1 (models:/shop@champion)" and "model_mismatch" not in record


def test_scoring_a_business_with_anothers_champion_is_refused(store) -> None:  # type: ignore[no-untyped-def]
    root, _ = store
    code, output, out = _score(root, "--data", str(root / "shop"), "--model-name", "social")
    assert code == 1, output
    flat = " ".join(output.split())
    assert "model social v1 (models:/social@champion) does not fit this data" in flat
    assert "none of its event types (feature_use, invoice, login, support_contact, survey) occurs in the data" in flat
    assert "days_since_last_" in flat and "--allow-model-mismatch" in flat and "Traceback" not in output
    assert not (out / "runs.jsonl").exists()  # refused before anything was written
    # the same model as a bundle file (as `churn score --model models/…joblib` in a scheduler)
    code, output, _ = _score(root, "--data", str(root / "shop"), "--model", str(root / "models" / "social_champion.joblib"))
    assert code == 1 and "does not fit this data" in output


def test_allow_model_mismatch_scores_with_a_warning(store) -> None:  # type: ignore[no-untyped-def]
    root, _ = store
    code, output, out = _score(root, "--data", str(root / "shop"), "--model-name", "social", "--allow-model-mismatch")
    assert code == 0, output
    flat = " ".join(output.split())
    assert "Warning: model social v1 (models:/social@champion) does not fit this data" in flat and "scored anyway (--allow-model-mismatch)" in flat
    record = json.loads((out / "runs.jsonl").read_text().splitlines()[-1])
    assert "none of its event types" in record["model_mismatch"]
    assert 'id="model-mismatch"' in (out / "report.html").read_text()


def test_the_mismatch_weighs_missing_features_by_gain_and_looks_for_event_types(store) -> None:  # type: ignore[no-untyped-def]
    """The rule on its own: the model's own kind of data passes; blanking the features holding
    most of its gain refuses it; so does hiding every one of its event types."""
    from churn.features.build import build_features

    root, _ = store
    model, _ = load_model(f"models:/social@{CHAMPION}")
    data = generate(300, start="2023-01-01", months=9, seed=5)
    features = build_features(data.accounts, data.interactions, as_of=pd.Timestamp(AS_OF, tz="UTC"), spec=model.spec, config=model.feature_config)
    own = input_mismatch(model, features)
    assert not own.refused and own.missing_gain_share <= MISMATCH_GAIN_SHARE
    assert own.seen_event_types == own.event_types == model.spec.event_types

    gain = model.importance()
    top = list(gain.index[: (gain.cumsum() / gain.sum() < 0.6).sum() + 1])  # the features holding over 60 % of the gain
    blank = input_mismatch(model, features.assign(**{f: float("nan") for f in top if f not in model.categories}).drop(columns=list(model.categories)))
    assert blank.refused and blank.missing_gain_share > MISMATCH_GAIN_SHARE
    assert list(blank.missing.index[:3]) == [f for f in gain.index if f in blank.missing.index][:3]  # largest gain first

    recency = [f"days_since_last_{t}" for t in model.spec.event_types]
    unseen = input_mismatch(model, features.assign(**{f: float("nan") for f in recency}))
    assert unseen.seen_event_types == () and unseen.refused
    assert "none of its event types" in unseen.describe("x") and "none of its event types" not in own.describe("x")


def test_a_model_name_that_cannot_name_a_model_is_refused(store) -> None:  # type: ignore[no-untyped-def]
    root, _ = store
    code, output, _ = _score(root, "--data", str(root / "shop"), "--model-name", "shop/../social")
    assert code == 2 and "model_name = 'shop/../social' is not a model name" in " ".join(output.split())


def test_serve_loads_the_champion_of_its_business_or_that_business_bundle(store, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import uvicorn

    root, _ = store
    served = []
    monkeypatch.setattr(uvicorn, "run", lambda api, **_: served.append(api.state.service))
    args = ["serve", "--scores", str(root / "no_scores_yet"), "--model-name", "shop"]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert served[-1].model.label.startswith("shop v1 (models:/shop@champion)") and served[-1].model_note is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'empty.db'}")  # a store without the champion: its exported bundle
    assert CliRunner().invoke(app, args).exit_code == 0
    assert str(Path("models") / "shop_champion.joblib") in served[-1].model.label and "serving the bundle" in served[-1].model_note
    assert served[-1].model.model.spec.event_types == ("purchase",)
