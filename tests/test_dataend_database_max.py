"""``churn features --data DATABASE`` asks the database for ``MAX(occurred_at)`` once: the
guess that starts the early read (likely_data_end) and the end of the data's first step
(interactions_end_checked) are the same question at the same wall clock."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import churn.data.dataend as dataend
from churn.cli import app


@pytest.fixture(scope="module")
def duckdb_url(small_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    import duckdb

    path = tmp_path_factory.mktemp("db") / "business.duckdb"
    with duckdb.connect(str(path)) as con:
        for name in ("accounts", "interactions", "attribute_history"):
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{small_data_dir / f'{name}.parquet'}')")
    return f"duckdb:///{path}"


@pytest.mark.parametrize("as_of", [[], ["--as-of", "2024-03-01"]], ids=["end-of-data", "as-of"])
def test_the_latest_interaction_is_asked_for_once(duckdb_url: str, small_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_of: list[str]) -> None:
    asked: list[object] = []
    source_max = dataend.source_max

    def counting(*args):  # type: ignore[no-untyped-def]
        asked.append(args[-1])
        return source_max(*args)

    monkeypatch.setattr(dataend, "source_max", counting)
    settings = ["--config", str(small_data_dir / "churn.toml")]  # the export's own settings (its static attributes)
    result = CliRunner().invoke(app, ["features", "--data", duckdb_url, *settings, *as_of, "--out", str(tmp_path / "db.parquet")])
    assert result.exit_code == 0, result.output
    assert len(asked) == 1
    parquet = CliRunner().invoke(app, ["features", "--data", str(small_data_dir), *settings, *as_of, "--out", str(tmp_path / "folder.parquet")])
    assert parquet.exit_code == 0, parquet.output
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "db.parquet"), pd.read_parquet(tmp_path / "folder.parquet"))
