"""Where people see the uplift model's estimates (issue 25): the account page's sentence on
what a call would do, the list's expected saved value and the API's fields — on a scoring folder
whose risk list got the uplift columns (``uplift``, ``churn_if_called``, ``expected_saved_value``)
by hand."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from churn.outreach.runs import latest_run, run_dir
from churn.serve.app import create_app
from churn.serve.settings import ServeSettings
from tests.serve_support import ServeData, serve_data


@pytest.fixture(scope="module")
def sd(tmp_path_factory, training_data, trained) -> ServeData:  # type: ignore[no-untyped-def]
    return serve_data(tmp_path_factory, training_data, trained)


@pytest.fixture(scope="module")
def uplift_folder(sd: ServeData, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A copy of the scoring folder whose latest risk list has the uplift model's columns:
    every other account without an estimate (NaN)."""
    folder = tmp_path_factory.mktemp("uplift") / "scores"
    shutil.copytree(sd.scores_dir, folder, symlinks=True)
    path = run_dir(folder, str(latest_run(folder)["run_id"])) / "risk_list.parquet"
    risk = pd.read_parquet(path)
    known = np.arange(len(risk)) % 2 == 0
    effect = np.where(known, 0.45 * risk["churn_probability"], np.nan)
    risk = risk.assign(uplift=effect, churn_if_called=risk["churn_probability"] - effect, expected_saved_value=effect * risk["annual_value"].fillna(0) - 25.0)
    risk.to_parquet(path, index=False)
    return folder, risk


def client_for(folder: Path) -> TestClient:
    return TestClient(create_app(ServeSettings(scores_dir=folder, model_ref=None, reload_check_seconds=0, background_reload=False)))


def test_the_account_page_says_what_a_call_would_do(uplift_folder: tuple[Path, pd.DataFrame]) -> None:
    folder, risk = uplift_folder
    client = client_for(folder)
    known = risk[risk["uplift"].notna() & (risk["churn_probability"] > 0.05)].iloc[0]
    page = client.get(f"/app/accounts/{known['account_id']}").text
    sentence = f"A call is expected to cut this account's churn from {100 * known['churn_probability']:.0f} % to {100 * known['churn_if_called']:.0f} %."
    assert sentence in page and 'id="saved-value"' in page, page[page.find('id="call-effect"') :][:800]
    unknown = risk[risk["uplift"].isna()].iloc[0]
    page = client.get(f"/app/accounts/{unknown['account_id']}").text
    assert "There is not yet enough experiment evidence to estimate what a call would do." in page and 'id="effect"' not in page

    detail = client.get(f"/accounts/{known['account_id']}").json()
    assert detail["uplift"] == pytest.approx(known["uplift"]) and detail["churn_if_called"] == pytest.approx(known["churn_if_called"])
    assert detail["expected_saved_value"] == pytest.approx(known["expected_saved_value"])
    nothing = client.get(f"/accounts/{unknown['account_id']}").json()
    assert nothing["uplift"] is None and nothing["churn_if_called"] is None  # NaN is "no estimate", never a number
    listed = client.get("/accounts", params={"limit": 4}).json()["items"]
    assert all("expected_saved_value" in item for item in listed)

    table = client.get("/app").text
    assert 'id="saved-value-head"' in table and table.count('class="num saved-value"') == min(50, len(risk))


def test_without_uplift_columns_the_page_says_there_is_no_evidence_yet(sd: ServeData) -> None:
    client = client_for(sd.scores_dir)
    account = sd.latest()["account_id"].iloc[0]
    assert "There is not yet enough experiment evidence" in client.get(f"/app/accounts/{account}").text
    assert client.get(f"/accounts/{account}").json()["uplift"] is None
    assert 'id="saved-value-head"' not in client.get("/app").text


