"""The operator's path through the CLI on generated data, and the report in a real browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from churn.cli.commands import app
from churn.data.synthetic import generate, write
from churn.outreach.runs import load_risk_list
from tests.browser_support import chromium_command, rendered_dom


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """generate → validate → train → score twice (a month apart) → closed loop."""
    root = tmp_path_factory.mktemp("e2e")
    runner = CliRunner()
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    write(generate(3_000, months=15, seed=4), str(root / "raw"))
    results = {
        "validate": runner.invoke(app, ["validate", "--data", "raw"]),
        "train": runner.invoke(app, ["train", "--data", "raw", "--as-of", "2024-02-01", "--cutoffs", "2023-06-01:2023-12-01:1M"]),
        "models": runner.invoke(app, ["models"]),
        "score1": runner.invoke(app, ["score", "--data", "raw", "--as-of", "2024-02-01", "--capacity", "100", "--out", "scores"]),
        "score2": runner.invoke(app, ["score", "--data", "raw", "--as-of", "2024-03-01", "--capacity", "100", "--model", "models/churn_champion.joblib", "--out", "scores"]),
        "loop": runner.invoke(app, ["retention", "--data", "raw", "--scores", "scores"]),
        "report": runner.invoke(app, ["report", "--scores", "scores"]),
    }
    yield root, results
    mp.undo()


def test_cli_path_succeeds(scored) -> None:  # type: ignore[no-untyped-def]
    root, results = scored
    for name, result in results.items():
        assert result.exit_code == 0, f"{name}: {result.output}"
    assert "time split" in results["train"].output and "logistic" in results["train"].output
    assert "champion" in results["models"].output
    assert "Report:" in results["score1"].output and (root / "mlflow.db").exists()
    risk = pd.read_parquet(root / "scores" / "risk_list.parquet")  # the latest run, through the `latest` link
    new_control = risk["control"] & (risk["assigned_as_of"] == risk["as_of"])
    assert risk["rank"].is_monotonic_increasing and risk["outreach"].sum() + new_control.sum() == 100
    assert set(risk["change"]) - {"first run"}  # the second run compared itself with the first
    # February's controls are still inside their 30-day horizon on March 1: held out, not called
    february = load_risk_list(root / "scores", run_id(root, "2024-02-01"))
    held = risk[risk["control"] & ~new_control]
    assert set(held["account_id"]) == set(february.loc[february["control"], "account_id"]) & set(risk["account_id"])
    assert (held["assigned_as_of"] == pd.Timestamp("2024-02-01", tz="UTC")).all()
    assert not risk.loc[risk["account_id"].isin(february.loc[february["control"], "account_id"]), "outreach"].any()
    # one folder per run, an append-only log, top-level files from the latest run
    assert (root / "scores" / "runs.jsonl").read_text().count("\n") == 2
    assert os.readlink(root / "scores" / "latest") == f"runs/{run_id(root, '2024-03-01')}"
    for as_of in ("2024-02-01", "2024-03-01"):
        assert {"risk_list.csv", "risk_list.parquet", "run.json", "report.html"} <= {p.name for p in (root / "scores" / "runs" / run_id(root, as_of)).iterdir()}
    # the February list's horizon has passed in the data: its outcomes are reported
    assert "Actual outcomes of past risk lists" in results["loop"].output
    assert "Effect of outreach, intention-to-treat" in results["loop"].output and "Power:" in results["loop"].output
    outcomes = pd.read_csv(root / "scores" / "outcomes.csv")
    assert set(outcomes["run_as_of"]) == {"2024-02-01", "2024-03-01"}  # data runs to 2024-04-01
    groups = outcomes[outcomes["dimension"] == "group"]
    own = {"outreach", "control", "held control", "not flagged"}
    assert own <= set(groups["group"]) <= own | {"contacted earlier"}  # the March list: some were called in February
    assert groups.groupby("run_as_of")["S"].sum().tolist() == [len(february), len(risk)]
    uplift = pd.read_csv(root / "scores" / "uplift.csv")
    assert uplift.columns[:10].tolist() == ["scope", "band", "outreach_n", "outreach_churn", "control_n", "control_churn", "difference", "ci_low", "ci_high", "p_value"]
    assert set(uplift["scope"]) == {run_id(root, "2024-02-01"), run_id(root, "2024-03-01"), "pooled"}
    pooled = uplift[(uplift["scope"] == "pooled") & (uplift["band"] == "all")].iloc[0]
    assert pooled["control_n"] == february["control"].sum() + new_control.sum()  # each run judged on its own new controls


def run_id(root: Path, as_of: str) -> str:
    from churn.outreach.runs import list_runs

    history = list_runs(root / "scores")
    return str(history[history["as_of"] == pd.Timestamp(as_of, tz="UTC")]["run_id"].iloc[0])


def test_scoring_data_without_a_column_the_model_needs(scored, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, _ = scored
    interactions = pd.read_parquet(root / "raw" / "interactions.parquet").drop(columns=["wait_seconds"])
    folder = tmp_path / "nowait"
    folder.mkdir()
    interactions.to_parquet(folder / "interactions.parquet")
    shutil.copy(root / "raw" / "accounts.parquet", folder / "accounts.parquet")
    result = CliRunner().invoke(
        app, ["score", "--data", str(folder), "--as-of", "2024-02-01", "--model", str(root / "models" / "churn_champion.joblib"), "--out", str(tmp_path / "s")]
    )
    assert result.exit_code == 2
    assert "interactions column 'wait_seconds'" in result.output and "long_waits" in result.output
    assert "Traceback" not in result.output


@pytest.mark.browser
def test_report_renders_in_headless_chromium(scored, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, _ = scored
    report = root / "scores" / "report.html"
    dom, console = rendered_dom(report, tmp_path / "profile")
    assert console == [], console
    for element in ("summary", "retention-chart", "risk-chart", "drivers-chart", "top-table", "metrics-table", "gains-chart", "calibration-chart", "outcomes-table"):
        assert f'id="{element}"' in dom, element
    assert len(re.findall(r'src="data:image/png;base64,', dom)) >= 5
    shot = tmp_path / "report.png"
    command = [*chromium_command(tmp_path / "profile"), "--window-size=1300,2400", f"--screenshot={shot}", report.resolve().as_uri()]
    subprocess.run(command, capture_output=True, timeout=120, check=True)
    assert shot.exists() and shot.stat().st_size > 50_000
    shutil.copy(shot, root / "report.png")
