"""Shared by the ``test_serve*`` modules: one scoring folder with two monthly runs, built
once per session from the suite's trained model, plus helpers to call the service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churn.data.synthetic import GeneratedData, write
from churn.modeling.model import ChurnModel
from churn.serve.model import ServingModel

#: Owner names with characters HTML must escape, and some accounts without an owner.
OWNERS = np.array(["Ana Lima", "Ben Ortiz", "Chloé <Dupont>", "Dev & Co", None], dtype=object)
AS_OFS = ("2024-05-01", "2024-06-01")
API_KEY = "test-key-7f3a"


@dataclass(frozen=True)
class ServeData:
    data_dir: Path
    scores_dir: Path
    bundle: Path
    model: ChurnModel
    accounts: pd.DataFrame
    interactions: pd.DataFrame

    def serving(self) -> ServingModel:
        return ServingModel.wrap(self.model, "test model")

    def latest(self) -> pd.DataFrame:
        return pd.read_parquet(self.scores_dir / "risk_list.parquet")


_BUILT: dict[str, ServeData] = {}


def serve_data(tmp_path_factory: pytest.TempPathFactory, training_data, trained) -> ServeData:  # type: ignore[no-untyped-def]
    """The generated business with an ``owner`` column, scored at two month starts."""
    if "data" not in _BUILT:
        from churn.jobs.weekly import score_run
        from churn.modeling.model import save_bundle

        data, _, _ = training_data
        root = tmp_path_factory.mktemp("serve")
        accounts = data.accounts.assign(owner=OWNERS[np.arange(len(data.accounts)) % len(OWNERS)])
        write(GeneratedData(accounts, data.interactions, data.attribute_history), str(root / "raw"))
        for as_of in AS_OFS:
            score_run(root / "raw", as_of=pd.Timestamp(as_of, tz="UTC"), model=trained.model, model_label="test model", out_dir=root / "scores")
        bundle = root / "model.joblib"
        save_bundle(trained.model, bundle)
        _BUILT["data"] = ServeData(root / "raw", root / "scores", bundle, trained.model, accounts, data.interactions)
    return _BUILT["data"]


def score_request(data: ServeData, account_ids: list[str], as_of: str, *, days: int = 365) -> dict[str, object]:
    """A POST /score body: the accounts' rows and their interactions in the ``days`` before
    ``as_of``, as a CRM would send them (timestamps as ISO text, missing values as null)."""
    cutoff = pd.Timestamp(as_of, tz="UTC")
    accounts = data.accounts[data.accounts["account_id"].isin(account_ids)]
    t = data.interactions["occurred_at"]
    interactions = data.interactions[data.interactions["account_id"].isin(account_ids) & (t < cutoff) & (t >= cutoff - pd.Timedelta(days=days))]
    return {"as_of": as_of, "accounts": _records(accounts), "interactions": _records(interactions)}


def _records(frame: pd.DataFrame) -> list[dict[str, object]]:
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return out.astype(object).where(out.notna(), None).to_dict("records")


def crm_rows(
    data: ServeData, account_ids: list[str], as_of: str, *, quiet: Sequence[str] = (), quiet_days: int = 45, quiet_types: tuple[str, ...] = (), days: int = 365
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows a CRM exports for live accounts: ``churned_at`` empty for every account, the
    interactions of the ``days`` before ``as_of``; the ``quiet`` accounts have no events (of
    ``quiet_types``; empty: of any type) in the last ``quiet_days`` days — the risky ones."""
    cutoff = pd.Timestamp(as_of, tz="UTC")
    accounts = data.accounts[data.accounts["account_id"].isin(account_ids)].reset_index(drop=True)
    accounts["churned_at"] = pd.Series(pd.NaT, index=accounts.index, dtype="datetime64[ns, UTC]")
    t = data.interactions["occurred_at"]
    rows = data.interactions[data.interactions["account_id"].isin(account_ids) & (t < cutoff) & (t >= cutoff - pd.Timedelta(days=days))]
    silenced = rows["account_id"].isin(quiet) & (rows["occurred_at"] >= cutoff - pd.Timedelta(days=quiet_days))
    if quiet_types:
        silenced &= rows["event_type"].isin(quiet_types)
    return accounts, rows[~silenced].reset_index(drop=True)


def request_body(accounts: pd.DataFrame, interactions: pd.DataFrame, as_of: str) -> dict[str, object]:
    return {"as_of": as_of, "accounts": _records(accounts), "interactions": _records(interactions)}


def batch_probabilities(folder: Path, model: ChurnModel, accounts: pd.DataFrame, interactions: pd.DataFrame, as_of: str) -> pd.Series:
    """``churn score`` (the weekly job) on a data folder holding exactly these rows: its risk
    list's probability per account (only the customers it scores)."""
    from churn.jobs.weekly import score_run

    (folder / "raw").mkdir(parents=True)
    accounts.to_parquet(folder / "raw" / "accounts.parquet")
    interactions.to_parquet(folder / "raw" / "interactions.parquet")
    out = score_run(folder / "raw", as_of=pd.Timestamp(as_of, tz="UTC"), model=model, model_label="batch", out_dir=folder / "scores", allow_stale=True)
    return out.risk.set_index("account_id")["churn_probability"]
