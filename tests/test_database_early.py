"""``churn features`` from PostgreSQL starts reading its window before the end of the data is
found (a background read, as from a Parquet folder), takes that read, and writes the table
the same command writes from the Parquet folder of the same business.

A real PostgreSQL (tests/pg_support.py) and a tiny generated business, written as Parquet and
loaded into the server; the server's statement log says which SQL was sent, in what order.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from churn.cli import app
from churn.data.synthetic import generate, write
from tests.pg_support import Cluster, postgres  # noqa: F401 - the session fixture

AS_OF = "2023-05-01"


@pytest.fixture(scope="module")
def business(tmp_path_factory: pytest.TempPathFactory, postgres: Cluster) -> tuple[Path, str, Path]:  # noqa: F811
    """The Parquet folder, the database URL and the settings file of one tiny business."""
    import adbc_driver_postgresql.dbapi as pg
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path_factory.mktemp("early")
    write(generate(300, start="2022-09-01", months=9, seed=11), str(root / "raw"))
    config = root / "churn.toml"
    (root / "raw" / "churn.toml").rename(config)
    with pg.connect(postgres.url(), autocommit=True) as con, con.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS early")
        cur.execute("CREATE DATABASE early")
    with pg.connect(postgres.url("early"), autocommit=True) as con, con.cursor() as cur:
        for name in ("accounts", "interactions", "attribute_history"):
            table = pq.read_table(root / "raw" / f"{name}.parquet")
            plain = pa.schema([pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type) for f in table.schema])
            cur.adbc_ingest(name, table.cast(plain), mode="create")
    return root / "raw", postgres.url("early"), config


def _features(data: str, config: Path, out: Path, *as_of: str) -> pd.DataFrame:
    result = CliRunner().invoke(app, ["features", "--data", data, "--config", str(config), *as_of, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return pd.read_parquet(out)


def _window_reads(log: str) -> list[str]:
    """The interaction reads of a lookback (both ends given), in the order the server got them."""
    statements = re.findall(r"(?:statement|execute [^:]*): (.*)", log)
    return [s for s in statements if '"interactions"' in s and '"occurred_at" <' in s and "MAX(" not in s]


@pytest.mark.parametrize("as_of", [["--as-of", AS_OF], []], ids=["as-of", "end-of-data"])
def test_features_read_the_window_early_and_equal_parquet(business, postgres: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_of: list[str]) -> None:  # type: ignore[no-untyped-def] # noqa: F811
    """The window is read early and that read is taken by the load — not read again — and the
    table equals the Parquet folder's. Without --as-of the early read's date is the
    database's MAX(occurred_at), as the end of the data turns out to be."""
    from churn.data.read import Prefetch

    folder, url, config = business
    expected = _features(str(folder), config, tmp_path / "parquet.parquet", *as_of)
    taken: list[object] = []
    take = Prefetch.take
    monkeypatch.setattr(Prefetch, "take", lambda self, key: taken.append(take(self, key)) or taken[-1])
    start = len(postgres.statements())
    got = _features(url, config, tmp_path / "postgresql.parquet", *as_of)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert [type(t[0]) for t in taken] == [pd.DataFrame], taken  # the early read, taken
    windows = _window_reads(postgres.statements()[start:])
    assert len(windows) == 2, windows  # the lookback in two halves, each read once
