"""``--data`` as a URL: a ``file://`` URL and an fsspec in-memory folder (``memory://``, no
network) give what the local path gives — validate, dataset, train, score; CSV separators are
sniffed (a semicolon export with decimal commas reads as the comma one); ``churn validate``
reads the interactions once."""

from __future__ import annotations

import gzip
import json
import re
import sys
import uuid
from pathlib import Path

import fsspec
import pandas as pd
import pytest
from typer.testing import CliRunner

import churn.data.read as read
from churn.cli.commands import app
from churn.cli.options import data_settings
from churn.data.contract import load
from churn.data.synthetic import generate, write

AS_OF = "2023-12-01"
CUTOFFS = "2023-06-01:2023-10-01:1M"


@pytest.fixture(scope="module")
def business():  # type: ignore[no-untyped-def]
    return generate(600, start="2023-01-01", months=12, seed=2)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, business) -> Path:  # type: ignore[no-untyped-def]
    """The generated export as Parquet files, with its churn.toml (static attributes)."""
    path = tmp_path_factory.mktemp("remote") / "raw"
    write(business, str(path))
    return path


@pytest.fixture(scope="module")
def memory_url(folder: Path):  # type: ignore[no-untyped-def]
    """The same export in fsspec's in-memory filesystem, the interactions as a folder of two
    Parquet parts (what Spark and most lakes write)."""
    fs = fsspec.filesystem("memory")
    root = f"/remote-{uuid.uuid4().hex[:8]}/raw"
    for file in folder.iterdir():
        if file.name != "interactions.parquet":
            fs.pipe(f"{root}/{file.name}", file.read_bytes())
    events = pd.read_parquet(folder / "interactions.parquet")
    half = len(events) // 2
    for i, part in enumerate((events.iloc[:half], events.iloc[half:])):
        with fs.open(f"{root}/interactions/part-{i}.parquet", "wb") as out:
            part.to_parquet(out, index=False, coerce_timestamps="us", allow_truncated_timestamps=True)
    yield f"memory://{root}"
    fs.rm(root, recursive=True)


@pytest.fixture(params=["file", "memory"])
def url(request: pytest.FixtureRequest, folder: Path, memory_url: str) -> str:
    return folder.resolve().as_uri() if request.param == "file" else memory_url


def contract_rows(output: str) -> dict[str, tuple[str, ...]]:
    """rows read, accepted and rejected per table, from ``churn validate``'s table."""
    rows = re.findall(r"│\s*(accounts|interactions|attribute_history)\s*│[^│]*│\s*([\d,]+)\s*│\s*([\d,]+)\s*│\s*([\d,]+)\s*│", output)
    return {table: counts for table, *counts in rows}  # type: ignore[misc]


def end_of_data(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("End of data:"))


def test_validate_through_a_url_equals_the_local_path(folder: Path, url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    local = runner.invoke(app, ["validate", "--data", str(folder), "--rejects-dir", str(tmp_path / "a")])
    remote = runner.invoke(app, ["validate", "--data", url, "--rejects-dir", str(tmp_path / "b")])
    assert local.exit_code == 0 and remote.exit_code == 0, remote.output
    assert contract_rows(remote.output) == contract_rows(local.output) and len(contract_rows(local.output)) == 3
    assert end_of_data(remote.output) == end_of_data(local.output)


def test_the_data_folders_settings_are_read_through_the_url(folder: Path, url: str) -> None:
    local = data_settings(str(folder), None)
    assert local.static_attributes  # churn generate writes them into the folder's churn.toml
    assert data_settings(url, None) == local


def test_dataset_through_a_url_equals_the_local_path(folder: Path, url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    for name, data in (("local", str(folder)), ("remote", url)):
        result = runner.invoke(app, ["dataset", "--data", data, "--cutoffs", CUTOFFS, "--out", str(tmp_path / f"{name}.parquet")])
        assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "remote.parquet"), pd.read_parquet(tmp_path / "local.parquet"))


@pytest.fixture(scope="module")
def trained_and_scored(folder: Path, memory_url: str, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """``churn train`` from the local path and from memory:// (the file:// URL's training table
    is the local one: see the dataset test; a third training would only cost time), and
    ``churn score`` from all three, in one MLflow store; every location scores with the
    model trained from the local path."""
    from churn.modeling.model import save_bundle
    from churn.modeling.tracking import load_model

    root = tmp_path_factory.mktemp("trained")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    runner = CliRunner()
    locations = {"local": str(folder), "file": folder.resolve().as_uri(), "memory": memory_url}
    trained, scored = {}, {}
    for name, data in locations.items():
        if name != "file":
            trained[name] = runner.invoke(app, ["train", "--data", data, "--as-of", AS_OF, "--cutoffs", CUTOFFS, "--models-dir", f"models_{name}"])
        if name == "local":
            save_bundle(load_model("models:/churn/1")[0], root / "model.joblib")
        scored[name] = runner.invoke(app, ["score", "--data", data, "--as-of", AS_OF, "--model", "model.joblib", "--capacity", "50", "--out", f"scores_{name}"])
        scored[f"{name} monitor"] = runner.invoke(app, ["monitor", "--scores", f"scores_{name}", "--data", data])
    yield root, locations, trained, scored
    mp.undo()


def evaluation_lines(output: str, data: str) -> list[str]:
    """What ``churn train`` printed about the table and the evaluation: up to the MLflow run
    (registry versions and the champion decision differ from one run to the next)."""
    lines = output.replace(data, "DATA").splitlines()
    return lines[: next(i for i, line in enumerate(lines) if "egistered model" in line or line.startswith(("Created version", "MLflow run")))]


@pytest.mark.slow
def test_train_through_a_url_equals_the_local_path(trained_and_scored) -> None:  # type: ignore[no-untyped-def]
    _, locations, trained, _ = trained_and_scored
    assert trained["local"].exit_code == 0 and trained["memory"].exit_code == 0, trained["memory"].output
    expected = evaluation_lines(trained["local"].output, locations["local"])
    assert len(expected) > 10 and evaluation_lines(trained["memory"].output, locations["memory"]) == expected


@pytest.mark.slow
@pytest.mark.parametrize("name", ["file", "memory"])
def test_score_and_monitor_through_a_url_equal_the_local_path(trained_and_scored, name: str) -> None:  # type: ignore[no-untyped-def]
    root, _, _, scored = trained_and_scored
    assert scored["local"].exit_code == 0 and scored[name].exit_code == 0, scored[name].output
    local = pd.read_parquet(root / "scores_local" / "latest" / "risk_list.parquet")
    remote = pd.read_parquet(root / f"scores_{name}" / "latest" / "risk_list.parquet")
    assert len(local) > 100
    pd.testing.assert_frame_equal(remote.drop(columns="run_id", errors="ignore"), local.drop(columns="run_id", errors="ignore"))
    assert scored["local monitor"].exit_code == 0 and scored[f"{name} monitor"].exit_code == 0, scored[f"{name} monitor"].output
    quality = {folder: json.loads((root / folder / "latest" / "monitoring.json").read_text())["data_quality"] for folder in ("scores_local", f"scores_{name}")}
    assert quality["scores_local"] and quality[f"scores_{name}"] == quality["scores_local"]


def test_rejects_of_a_url_are_written_locally(business, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A remote export is read, never written to: its rejects go to ./rejects."""
    fs = fsspec.filesystem("memory")
    root = f"/remote-{uuid.uuid4().hex[:8]}/bad"
    accounts = business.accounts.copy()
    accounts.loc[0, "signup_at"] = None
    fs.pipe(f"{root}/accounts.csv", accounts.to_csv(index=False).encode())
    fs.pipe(f"{root}/interactions.csv.gz", gzip.compress(business.interactions.head(500).to_csv(index=False).encode()))
    monkeypatch.chdir(tmp_path)
    try:
        result = CliRunner().invoke(app, ["validate", "--data", f"memory://{root}"])
        assert result.exit_code == 0, result.output
        assert (tmp_path / "rejects" / "accounts_rejects.csv").is_file()
        assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(root, detail=False)) == ["accounts.csv", "interactions.csv.gz"]
        assert contract_rows(result.output)["interactions"][0] == "500"
    finally:
        fs.rm(root, recursive=True)


@pytest.mark.parametrize(
    ("data", "message"),
    [("s3a:/bucket/raw", "two slashes after s3a:"), ("nosuchfs://bucket/raw", "no filesystem reads nosuchfs:// URLs")],
)
def test_a_malformed_url_is_a_usage_error(data: str, message: str) -> None:
    result = CliRunner().invoke(app, ["validate", "--data", data])
    assert result.exit_code == 2 and message in " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split()), result.output


# --------------------------------------------------------------------------- CSV separators


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_a_csv_with_another_separator_reads_as_the_comma_one(business, tmp_path: Path, sep: str) -> None:
    """Spreadsheet exports in much of Europe separate with ';' and write 89,5 for 89.5."""
    comma, other = tmp_path / "comma", tmp_path / "other"
    write(business, str(comma), "csv")
    other.mkdir()
    for table in ("accounts", "interactions", "attribute_history"):
        frame = pd.read_csv(comma / f"{table}.csv", dtype=str, keep_default_na=False)
        if sep == ";":  # numbers written with a decimal comma, as such a spreadsheet does
            frame = frame.apply(lambda c: c.str.replace(".", ",", regex=False) if c.str.fullmatch(r"-?\d+\.\d+|-?\d*").all() else c)
        frame.to_csv(other / f"{table}.csv", sep=sep, index=False)
    if sep == ";":
        assert re.search(r";\d+,\d+\n", (other / "accounts.csv").read_text())  # mrr: 123,48
    runner = CliRunner()
    expected = runner.invoke(app, ["validate", "--data", str(comma)])
    got = runner.invoke(app, ["validate", "--data", str(other)])
    assert got.exit_code == 0, got.output
    assert contract_rows(got.output) == contract_rows(expected.output) and len(contract_rows(got.output)) == 3
    assert "-separated" in got.output and "-separated" not in expected.output
    pd.testing.assert_frame_equal(load(other).accounts, load(comma).accounts)
    pd.testing.assert_frame_equal(load(other).attribute_history, load(comma).attribute_history)


def test_decimal_commas_are_left_alone_where_a_column_is_not_all_numbers(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("account_id;mrr;note\nA1;89,5;x,y\nA2;1.234,5;plain\n")
    frame = read.read_table(tmp_path / "t.csv")
    assert frame["mrr"].tolist() == ["89,5", "1.234,5"] and frame["note"].tolist() == ["x,y", "plain"]
    (tmp_path / "u.csv").write_text("account_id;mrr\nA1;89,5\nA2;12\n")
    assert read.read_table(tmp_path / "u.csv")["mrr"].tolist() == ["89.5", "12"]


# --------------------------------------------------------------------------- reads


def test_validate_reads_the_interactions_once(business, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CSV has no statistics: the end of the data must come from the rows already read."""
    write(business, str(tmp_path / "raw"), "csv")
    reads: list[str] = []
    original = read.read_table

    def counting(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        reads.append(str(path))
        return original(path, *args, **kwargs)

    for name, module in list(sys.modules.items()):  # every module that imported read_table by name
        if name.startswith("churn") and getattr(module, "read_table", None) is original:
            monkeypatch.setattr(module, "read_table", counting)
    result = CliRunner().invoke(app, ["validate", "--data", str(tmp_path / "raw")])
    assert result.exit_code == 0, result.output
    assert sum("interactions" in path for path in reads) == 1, reads
    assert end_of_data(result.output) == "End of data: 2024-01-01 (the day after the latest date of an accepted interaction)"
