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
