"""Shared fixtures: tiny generated businesses, written to temporary folders."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from churn.data.synthetic import GeneratedData, generate, write

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")


def _pin_xdist_worker_to_one_core() -> None:
    """`make test` runs one pytest-xdist worker per core. Each worker (and what it starts) keeps to
    its own core, so LightGBM's OpenMP threads (one per available core) never outnumber the cores
    and spin against the other worker's."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) > 1:
        os.sched_setaffinity(0, {cores[int(worker[2:]) % len(cores)]})


_pin_xdist_worker_to_one_core()


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


def make_training_data(seed: int):  # type: ignore[no-untyped-def]
    """8,000 accounts × 18 months, 9 monthly cutoffs: the smallest data on which the
    planted effects are learnable with a stable test slice (~140 churners)."""
    from churn.config import ChurnDefinition
    from churn.data.dataend import observed_until
    from churn.features.labels import build_training_table, default_cutoffs
    from churn.features.spec import FeatureSpec

    data = generate(8_000, start="2023-01-01", months=18, seed=seed)
    spec = FeatureSpec.from_data(data.accounts, data.interactions, history=data.attribute_history)
    cutoffs = default_cutoffs(observed_until(data.accounts, data.interactions), ChurnDefinition(), 9)
    table = build_training_table(data.accounts, data.interactions, cutoffs=cutoffs, spec=spec, history=data.attribute_history)
    return data, spec, table


def train_default(data, spec, table):  # type: ignore[no-untyped-def]
    from churn.config import ChurnDefinition
    from churn.modeling.train import train

    return train(table, spec=spec, definition=ChurnDefinition().resolved(data.accounts))


@pytest.fixture(scope="session")
def training_data():  # type: ignore[no-untyped-def]
    """:func:`make_training_data` of seed 0."""
    return make_training_data(0)


@pytest.fixture(scope="session")
def trained(training_data):  # type: ignore[no-untyped-def]
    """The deployed model and its evaluation (3 purged time folds) on ``training_data``."""
    return train_default(*training_data)


@pytest.fixture(scope="session")
def trained_by_seed(trained) -> dict:  # type: ignore[no-untyped-def]
    """The same procedure on the businesses of seeds 0, 1 and 2: a claim about model quality
    must hold across draws of the data, not on one lucky one."""
    return {0: trained, **{seed: train_default(*make_training_data(seed)) for seed in (1, 2)}}


@pytest.fixture(scope="session")
def latest_features(training_data) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """The feature rows of the latest cutoff (labels dropped): a table to score."""
    from churn.features.labels import LABEL

    _, _, table = training_data
    return table[table["as_of"] == table["as_of"].max()].drop(columns=[LABEL]).reset_index(drop=True)


@pytest.fixture()
def mlflow_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh embedded MLflow store for one test."""
    from churn.modeling.tracking import configure

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    configure(tmp_path)
    return tmp_path
