"""The Spark engine (local[2], small data) gives the same features, table and scores as in-process."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churn.cli.commands import app
from churn.config import ChurnDefinition, ScoreConfig
from churn.data.contract import load
from churn.data.synthetic import generate, write
from churn.features.build import build_features
from churn.features.labels import build_training_table, parse_cutoffs
from churn.features.spec import FeatureSpec
from tests.needs import missing

AS_OF = pd.Timestamp("2024-03-01", tz="UTC")


@pytest.fixture(scope="session", autouse=True)
def spark_installed() -> None:
    """PySpark and a Java runtime, or every test here is skipped (failed under CI=true) —
    session-scoped so that it is judged before the session's trained model is built."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        missing("PySpark", "pip install -e '.[test]' installs it")
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        missing("A Java runtime (for Spark)", "apt-get install default-jre-headless; .ci/run installs it")


@pytest.fixture(scope="module")
def spark():  # type: ignore[no-untyped-def]
    from churn.spark import session

    s = session("local[2]", app_name="churn-tests", shuffle_partitions=4)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spark") / "raw"
    write(generate(1_200, start="2023-01-01", months=15, seed=9), str(path))
    return path


@pytest.fixture(scope="module")
def local(folder: Path):  # type: ignore[no-untyped-def]
    data = load(folder)
    return data, FeatureSpec.from_data(data.accounts, data.interactions, history=data.attribute_history)


def test_spec_from_spark_summaries_matches(spark, folder, local) -> None:  # type: ignore[no-untyped-def]
    from churn.spark import spark_spec

    spec, accounts, _ = spark_spec(spark, folder)
    assert spec == local[1] and "mrr" in spec.history_attributes
    assert len(accounts) == len(local[0].accounts)


def test_spark_features_equal_in_process(spark, folder, local) -> None:  # type: ignore[no-untyped-def]
    from churn.spark import spark_features, to_pandas_features

    data, spec = local
    expected = build_features(data.accounts, data.interactions, as_of=AS_OF, spec=spec, history=data.attribute_history)
    got = to_pandas_features(spark_features(spark, folder, as_of=AS_OF, spec=spec, buckets=7), spec)
    pd.testing.assert_frame_equal(expected, got, check_exact=False, rtol=1e-9)


def test_spark_training_table_equals_in_process(spark, folder, local) -> None:  # type: ignore[no-untyped-def]
    from churn.spark import spark_training_table, to_pandas_features

    data, spec = local
    cutoffs = parse_cutoffs("2023-12-01:2024-02-01:1M")
    key = ["as_of", "account_id"]
    expected = build_training_table(data.accounts, data.interactions, cutoffs=cutoffs, spec=spec, history=data.attribute_history)
    expected = expected.sort_values(key).reset_index(drop=True)
    got = to_pandas_features(spark_training_table(spark, folder, cutoffs=cutoffs, spec=spec, definition=ChurnDefinition(), buckets=5), spec)
    got = got.sort_values(key).reset_index(drop=True)
    got["churned"] = got["churned"].astype("int8")
    pd.testing.assert_frame_equal(expected, got, check_exact=False, rtol=1e-9)


def test_spark_scores_equal_in_process(spark, folder, local, trained, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from churn.jobs.weekly import score_run

    model = trained.model  # trained on another generated business with the same schema
    config = ScoreConfig(capacity=50)
    on_spark = score_run(folder, as_of=AS_OF, model=model, model_label="test", out_dir=tmp_path / "s", config=config, spark=spark).risk
    in_process = score_run(folder, as_of=AS_OF, model=model, model_label="test", out_dir=tmp_path / "l", config=config).risk
    assert on_spark["account_id"].tolist() == in_process["account_id"].tolist()
    np.testing.assert_allclose(on_spark["churn_probability"], in_process["churn_probability"], rtol=1e-9)
    assert on_spark["reason_features"].tolist() == in_process["reason_features"].tolist()
    assert on_spark["control"].tolist() == in_process["control"].tolist()


def test_without_pyspark_the_cli_says_how_to_install(monkeypatch: pytest.MonkeyPatch, folder: Path, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark → ImportError
    result = CliRunner().invoke(app, ["features", "--data", str(folder), "--as-of", "2024-03-01", "--engine", "spark", "--out", str(tmp_path / "f")])
    assert result.exit_code == 2
    assert "pip install 'churn[spark]'" in result.output


def test_cli_features_and_dataset_on_spark(spark, folder, local, tmp_path) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    args = ["--engine", "spark", "--spark-master", "local[2]"]
    feats = runner.invoke(app, ["features", "--data", str(folder), "--as-of", "2024-03-01", "--out", str(tmp_path / "f"), *args])
    assert feats.exit_code == 0, feats.output
    assert len(pd.read_parquet(tmp_path / "f")) == len(build_features(local[0].accounts, local[0].interactions, as_of=AS_OF, spec=local[1], definition=ChurnDefinition()))
    table = runner.invoke(app, ["dataset", "--data", str(folder), "--cutoffs", "2024-01-01,2024-02-01", "--out", str(tmp_path / "t"), *args])
    assert table.exit_code == 0, table.output
    assert sorted(pd.read_parquet(tmp_path / "t")["as_of"].dt.strftime("%Y-%m-%d").unique()) == ["2024-01-01", "2024-02-01"]
    late = runner.invoke(app, ["dataset", "--data", str(folder), "--cutoffs", "2024-03-20", "--out", str(tmp_path / "t2"), *args])
    assert late.exit_code == 2 and "runs past the end of the data" in late.output


def test_spark_attribute_decisions_equal_in_process(spark, folder, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Both engines report an attribute that cannot be a feature (here one value for every
    account, declared static) as dropped, with the same reason."""
    from churn.config import DataSettings
    from churn.features.build import learn_spec
    from churn.spark import spark_spec

    messy = tmp_path / "raw"
    messy.mkdir()
    for file in folder.iterdir():
        (messy / file.name).write_bytes(file.read_bytes())
    accounts = pd.read_parquet(messy / "accounts.parquet").assign(export_batch="2024-05")
    accounts.to_parquet(messy / "accounts.parquet")
    settings = DataSettings(static_attributes=("plan", "contract", "segment", "region", "export_batch"))
    cutoffs, end = parse_cutoffs("2024-01-01"), pd.Timestamp("2024-04-01", tz="UTC")
    local_spec, local_decisions = learn_spec(load(messy), cutoffs=cutoffs, data_end=end, settings=settings)
    spec, _, decisions = spark_spec(spark, messy, cutoffs=cutoffs, data_end=end, settings=settings)
    assert spec == local_spec and decisions == local_decisions
    dropped = {d.name: d.reason for d in decisions if not d.used}
    assert dropped["export_batch"] == "one value for every account (static values)"


def test_spark_reads_a_file_url(spark, folder, local) -> None:  # type: ignore[no-untyped-def]
    """--data file:///… on Spark: the tables are found through fsspec and the URL goes to
    spark.read as given; the spec and the features equal the in-process engine's."""
    from churn.spark import spark_features, spark_spec, to_pandas_features

    data, spec = local
    url = folder.resolve().as_uri()
    assert url.startswith("file:///")
    assert spark_spec(spark, url)[0] == spec
    got = to_pandas_features(spark_features(spark, url, as_of=AS_OF, spec=spec, buckets=3), spec)
    expected = build_features(data.accounts, data.interactions, as_of=AS_OF, spec=spec, history=data.attribute_history)
    pd.testing.assert_frame_equal(expected, got, check_exact=False, rtol=1e-9)
