"""Scoring scores customers only: lapsed accounts go to a win-back list; stale data is refused."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from churn.cli.commands import app
from churn.config import ChurnDefinition, ScoreConfig, TrainConfig
from churn.data.contract import load
from churn.data.dataend import StaleDataError
from churn.data.population import last_activity
from churn.data.synthetic import generate, write
from churn.features.labels import build_training_table, parse_cutoffs
from churn.features.spec import FeatureSpec
from churn.jobs.weekly import score_run
from churn.modeling.train import train

AS_OF = pd.Timestamp("2024-03-01", tz="UTC")


@pytest.fixture(scope="module")
def purchases(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A transactional business: no churned_at, and a model trained on inactivity churn."""
    business = generate(1_200, start="2023-01-01", months=15, seed=11)
    folder = tmp_path_factory.mktemp("tx") / "raw"
    write(business, str(folder))
    accounts = pd.read_parquet(folder / "accounts.parquet").drop(columns="churned_at")
    accounts.to_parquet(folder / "accounts.parquet")
    data = load(folder)
    definition = ChurnDefinition(horizon_days=30)
    spec = FeatureSpec.from_data(data.accounts, data.interactions, history=data.attribute_history)
    table = build_training_table(
        data.accounts, data.interactions, cutoffs=parse_cutoffs("2023-09-01:2024-01-01:1M"), definition=definition, spec=spec, history=data.attribute_history
    )
    model = train(table, spec=spec, definition=definition, config=TrainConfig(n_estimators=60)).model
    return folder, data, model


def test_a_lapsed_account_is_never_flagged(purchases, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder, data, model = purchases
    out = score_run(folder, as_of=AS_OF, model=model, model_label="test", out_dir=tmp_path / "s", config=ScoreConfig(capacity=100))
    last = last_activity(data.accounts, data.interactions, AS_OF, ChurnDefinition())
    recent = set(data.accounts["account_id"][(last >= AS_OF - pd.Timedelta(days=30)) & (data.accounts["signup_at"] < AS_OF)])
    assert set(out.risk["account_id"]) == recent  # customers only, all of them
    winback = pd.read_csv(out.paths["lapsed"])
    assert len(winback) > 0 and not set(winback["account_id"]) & set(out.risk["account_id"])
    assert (winback["days_lapsed"] >= 0).all() and winback["annual_value"].notna().all()
    assert out.record["lapsed"] == len(winback)


def test_scoring_after_the_end_of_the_data_is_refused(purchases, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder, _, model = purchases
    late = pd.Timestamp("2024-06-01", tz="UTC")  # the data ends 2024-04-01
    with pytest.raises(StaleDataError, match=r"after the end of the data \(2024-04-01\).*--allow-stale-data"):
        score_run(folder, as_of=late, model=model, model_label="test", out_dir=tmp_path / "s")
    # (two months late, every transactional customer would look lapsed: that is why it is refused)
    lagging = pd.Timestamp("2024-04-10", tz="UTC")
    stale = score_run(folder, as_of=lagging, model=model, model_label="test", out_dir=tmp_path / "s", allow_stale=True)
    assert stale.record["data_end"] == "2024-04-01" and stale.record["data_lag_days"] == 9.0
    assert "stale data" in str(stale.record["warning"])
    assert "stale data" in stale.paths["report"].read_text()


def test_cli_refuses_stale_scoring_and_train_past_the_data(purchases, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from churn.modeling.model import save_bundle

    folder, _, model = purchases
    save_bundle(model, tmp_path / "m.joblib")
    runner = CliRunner()
    result = runner.invoke(app, ["score", "--data", str(folder), "--as-of", "2024-06-01", "--model", str(tmp_path / "m.joblib"), "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and "after the end of the data" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["train", "--data", str(folder), "--as-of", "2025-01-01"])
    assert result.exit_code == 2 and "--as-of 2025-01-01 is after the end of the data (2024-04-01)" in result.output
    features = tmp_path / "f.parquet"
    result = runner.invoke(app, ["features", "--data", str(folder), "--as-of", "2024-06-01", "--out", str(features)])
    assert result.exit_code == 2 and "after the end of the data (2024-04-01)" in result.output and not features.exists()
    result = runner.invoke(app, ["features", "--data", str(folder), "--as-of", "2024-06-01", "--out", str(features), "--allow-stale-data"])
    assert result.exit_code == 0 and "stale data" in result.output and features.exists()
    assert "End of data: 2024-04-01 (the day after the latest date of an accepted interaction)" in result.output
    result = runner.invoke(app, ["validate", "--data", str(folder), "--data-end", "2024-03-15"])
    assert result.exit_code == 0 and "End of data: 2024-03-15 (given)" in result.output


def test_a_horizon_shorter_than_the_purchase_rhythm_is_warned_about(purchases, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Monthly buyers (gaps of 29–31 days) against a 30-day horizon: most accounts would be
    labelled churned between two purchases. Training says so and proposes a horizon."""
    from churn.data.population import horizon_misfit

    months = pd.date_range("2023-01-01", "2023-12-01", freq="MS", tz="UTC")
    ids = [str(i) for i in range(60)]
    monthly = pd.DataFrame(
        {"account_id": [i for i in ids for _ in months], "occurred_at": [t + pd.Timedelta(hours=int(i)) for i in ids for t in months], "event_type": "purchase"}
    )
    warning = horizon_misfit(monthly, ChurnDefinition(horizon_days=30, kind="inactivity"))
    assert warning is not None and "30-day horizon" in warning and "--horizon 35" in warning
    assert horizon_misfit(monthly, ChurnDefinition(horizon_days=35, kind="inactivity")) is None
    assert horizon_misfit(monthly, ChurnDefinition(horizon_days=30, kind="subscription")) is None
    assert horizon_misfit(monthly.iloc[:40], ChurnDefinition(horizon_days=30, kind="inactivity")) is None  # too few returns to judge
    # weekly buyers, each in its own six weeks, 90 days apart: only gaps between two accounts
    # exceed the horizon, and they are not returns
    weekly = pd.DataFrame(
        {
            "account_id": [str(k) for k in range(20) for _ in range(6)],
            "occurred_at": [pd.Timestamp("2023-01-01", tz="UTC") + pd.Timedelta(days=90 * k + 7 * w) for k in range(20) for w in range(6)],
            "event_type": "purchase",
        }
    )
    assert horizon_misfit(weekly, ChurnDefinition(horizon_days=30, kind="inactivity")) is None
    assert horizon_misfit(weekly.astype({"account_id": "category"}), ChurnDefinition(horizon_days=30, kind="inactivity")) is None
    _, data, _ = purchases  # frequent activity: the horizon fits
    assert horizon_misfit(data.interactions, ChurnDefinition(horizon_days=30, kind="inactivity")) is None

    folder = tmp_path / "monthly"
    folder.mkdir()
    pd.DataFrame({"account_id": ids, "signup_at": pd.Timestamp("2022-12-15", tz="UTC")}).to_parquet(folder / "accounts.parquet")
    monthly.to_parquet(folder / "interactions.parquet")
    result = CliRunner().invoke(app, ["dataset", "--data", str(folder), "--cutoffs", "2023-06-01", "--out", str(tmp_path / "t.parquet")])
    assert "Warning:" in result.output and "--horizon 35" in result.output, result.output


def test_every_data_command_takes_the_attribute_options(purchases, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """--static-attributes / --attributes-as-of on every command that reads a data folder, and
    each one acts on them: a past-dated score warns about attribute values from a later export,
    validate says which attributes training would use, retention --by says when a breakdown uses
    export values."""
    import shutil

    import typer

    from churn.modeling.model import save_bundle

    command = typer.main.get_command(app)
    readers = {name: {p.name for p in sub.params} for name, sub in command.commands.items() if "data_end" in {p.name for p in sub.params}}  # type: ignore[attr-defined]
    assert {"validate", "retention", "features", "dataset", "train", "backtest", "score"} <= set(readers)
    assert all({"static_attributes", "attributes_as_of", "date_format"} <= params for params in readers.values()), readers

    folder, _, model = purchases
    bare = tmp_path / "bare"
    shutil.copytree(folder, bare)
    (bare / "churn.toml").unlink()  # no declaration: plan, contract, segment, region are export values
    save_bundle(model, tmp_path / "m.joblib")
    runner = CliRunner()
    base = ["score", "--data", str(bare), "--as-of", "2024-03-01", "--model", str(tmp_path / "m.joblib")]
    past = runner.invoke(app, [*base, "--out", str(tmp_path / "s1")])
    assert past.exit_code == 0, past.output
    assert "Attribute not known at 2024-03-01" in past.output and "segment" in past.output
    declared = runner.invoke(app, [*base, "--out", str(tmp_path / "s2"), "--static-attributes", "plan,contract,segment,region"])
    assert declared.exit_code == 0 and "Attribute not known" not in declared.output, declared.output
    exported_then = runner.invoke(app, [*base, "--out", str(tmp_path / "s3"), "--attributes-as-of", "2024-02-15"])
    assert exported_then.exit_code == 0 and "Attribute not known" not in exported_then.output, exported_then.output

    checked = runner.invoke(app, ["validate", "--data", str(bare), "--rejects-dir", str(tmp_path / "rej")])
    assert checked.exit_code == 0 and "Attributes for training at the default cutoffs" in checked.output and "Attribute dropped: segment" in checked.output
    checked = runner.invoke(app, ["validate", "--data", str(bare), "--rejects-dir", str(tmp_path / "rej"), "--static-attributes", "segment"])
    assert "segment (static)" in checked.output and "Attribute dropped: segment" not in checked.output, checked.output

    by = ["retention", "--data", str(bare), "--by", "segment", "--out", str(tmp_path / "r")]
    assert "--by segment: counted by its export value" in runner.invoke(app, by).output
    assert "--by segment" not in runner.invoke(app, [*by, "--static-attributes", "segment"]).output
