"""Shared fixtures: tiny generated businesses, written to temporary folders."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from churn.generate import GeneratedData, generate, write

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")


@pytest.fixture(scope="session")
def small_business() -> GeneratedData:
    """1,500 accounts over 18 months: big enough for planted effects to show, fast to make."""
    return generate(1_500, start="2023-01-01", months=18, seed=3)


@pytest.fixture(scope="session")
def small_data_dir(tmp_path_factory: pytest.TempPathFactory, small_business: GeneratedData) -> Path:
    folder = tmp_path_factory.mktemp("raw")
    write(small_business, str(folder))
    return folder


def write_csv_folder(folder: Path, accounts: pd.DataFrame, interactions: pd.DataFrame | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    accounts.to_csv(folder / "accounts.csv", index=False)
    if interactions is not None:
        interactions.to_csv(folder / "interactions.csv", index=False)
    return folder


@pytest.fixture(scope="session")
def training_data():  # type: ignore[no-untyped-def]
    """8,000 accounts × 18 months, 9 monthly cutoffs: the smallest data on which the
    planted effects are learnable with a stable test slice (~140 churners)."""
    from churn.config import ChurnDefinition
    from churn.features import FeatureSpec
    from churn.labels import build_training_table, default_cutoffs, observed_until

    data = generate(8_000, start="2023-01-01", months=18, seed=0)
    spec = FeatureSpec.from_data(data.accounts, data.interactions, history=data.attribute_history)
    cutoffs = default_cutoffs(observed_until(data.accounts, data.interactions), ChurnDefinition(), 9)
    table = build_training_table(data.accounts, data.interactions, cutoffs=cutoffs, spec=spec, history=data.attribute_history)
    return data, spec, table


@pytest.fixture(scope="session")
def trained(training_data):  # type: ignore[no-untyped-def]
    """The deployed model and its evaluation (3 purged time folds) on ``training_data``."""
    from churn.config import ChurnDefinition
    from churn.train import train

    data, spec, table = training_data
    return train(table, spec=spec, definition=ChurnDefinition().resolved(data.accounts))


@pytest.fixture(scope="session")
def latest_features(training_data) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """The feature rows of the latest cutoff (labels dropped): a table to score."""
    from churn.labels import LABEL

    _, _, table = training_data
    return table[table["as_of"] == table["as_of"].max()].drop(columns=[LABEL]).reset_index(drop=True)


@pytest.fixture()
def mlflow_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh embedded MLflow store for one test."""
    from churn.tracking import configure

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    configure(tmp_path)
    return tmp_path
