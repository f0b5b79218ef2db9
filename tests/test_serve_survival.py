"""``POST /score`` returns the weekly list's time-to-churn columns when the model has a survival
part (``churn train --survival``): the same numbers as ``churn score`` for the same rows and
``as_of``; without one, the fields are null and nothing is computed for them."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from churn.modeling.survival import SURVIVAL_COLUMNS
from churn.serve.app import create_app
from churn.serve.model import ServingModel
from churn.serve.settings import ServeSettings
from tests.serve_support import AS_OFS, ServeData, crm_rows, request_body, serve_data


class StandInCurves:
    """A time-to-churn part whose curves depend on each row's features (so every account has its
    own): what is tested is that the service computes the list's columns as the batch does."""

    def curves(self, x: np.ndarray) -> np.ndarray:
        hazard = 0.01 + 0.2 / (1.0 + np.exp(-np.nan_to_num(x).mean(axis=1) / 50.0))
        return np.exp(-np.outer(hazard, np.arange(1, 25)))


@pytest.fixture(scope="module")
def sd(tmp_path_factory, training_data, trained) -> ServeData:  # type: ignore[no-untyped-def]
    return serve_data(tmp_path_factory, training_data, trained)


def test_score_carries_the_survival_columns_of_the_weekly_list(sd: ServeData, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from churn.jobs.weekly import score_run

    model = copy.copy(sd.model)
    model.survival = StandInCurves()  # type: ignore[assignment]
    ids = sd.latest()["account_id"].iloc[[0, 5, 30]].tolist()
    accounts, interactions = crm_rows(sd, ids, AS_OFS[-1])
    (tmp_path / "raw").mkdir()
    accounts.to_parquet(tmp_path / "raw" / "accounts.parquet")
    interactions.to_parquet(tmp_path / "raw" / "interactions.parquet")
    batch = score_run(tmp_path / "raw", as_of=pd.Timestamp(AS_OFS[-1], tz="UTC"), model=model, model_label="batch", out_dir=tmp_path / "scores", allow_stale=True).risk.set_index("account_id")

    settings = ServeSettings(scores_dir=tmp_path / "scores", model_ref=None, reload_check_seconds=0, background_reload=False)
    client = TestClient(create_app(settings, model=ServingModel.wrap(model, "with survival")))
    response = client.post("/score", json=request_body(accounts, interactions, AS_OFS[-1]))
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == len(ids)
    for r in results:
        assert r["churn_probability"] == batch.loc[r["account_id"], "churn_probability"]
        for column in SURVIVAL_COLUMNS:
            assert r[column] is not None and r[column] == batch.loc[r["account_id"], column], column  # exactly
    assert len({r["survival_12m"] for r in results}) == len(results)  # each account its own curve

    plain = TestClient(create_app(settings, model=ServingModel.wrap(sd.model, "without survival")))
    results = plain.post("/score", json=request_body(accounts, interactions, AS_OFS[-1])).json()["results"]
    assert all(r[column] is None for r in results for column in SURVIVAL_COLUMNS)
    schema = plain.get("/openapi.json").json()["components"]["schemas"]["ScoredAccount"]["properties"]
    assert set(SURVIVAL_COLUMNS) <= set(schema)
