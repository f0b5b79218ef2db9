"""A business in a database gives what the same business in Parquet gives: a real PostgreSQL
(tests/pg_support.py), a DuckDB file and a SQLite file, each read through ``--data <url>``.

One tiny generated business, a few bad rows planted in it (so the rejects are compared too),
written as a Parquet folder and loaded into each database. From every source: the training
table ``churn train`` fits on (``churn dataset``, the same function), the rejects, and a
score with one shared model. Then ``churn train`` itself from Parquet, PostgreSQL and DuckDB,
each source scored with the model trained from it.
"""

from __future__ import annotations

import io
import json
import re
import socket
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from churn.cli import app
from churn.data.synthetic import generate, write
from tests.pg_support import PASSWORD, Cluster, postgres  # noqa: F401 - the session fixture

AS_OF = "2023-11-01"
CUTOFFS = ["--cutoffs", "2023-06-01:2023-09-01:1M"]


def _arrow(frame: pd.DataFrame) -> pa.Table:
    """A frame as plain Arrow columns (no dictionaries: every driver ingests those)."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)  # pandas' own conversion (pa.Table.from_pandas warns on zone-aware times)
    table = pq.read_table(buffer)
    return table.cast(pa.schema([pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type) for f in table.schema]))


def _business() -> dict[str, pd.DataFrame]:
    """A tiny business with planted bad rows: an account churned before it signed up, an
    event of an unknown account, a repeated event, an event dated in the future."""
    data = generate(500, start="2023-01-01", months=10, seed=5)
    accounts = data.accounts.copy()
    bad = accounts.iloc[[0]].assign(account_id="BAD-1", churned_at=pd.Timestamp("2022-01-01", tz="UTC"), signup_at=pd.Timestamp("2023-02-01", tz="UTC"))
    events = data.interactions.astype({c: "str" for c in ("account_id", "event_type", "channel")}).replace({"nan": None})
    late = events.iloc[-1]["occurred_at"]
    planted = pd.concat(
        [
            events.iloc[[-1]].assign(account_id="NOBODY", occurred_at=late - pd.Timedelta(days=3)),
            events.iloc[[-2]],
            events.iloc[[-3]].assign(occurred_at=pd.Timestamp("2031-01-01", tz="UTC")),
        ]
    )
    return {
        "accounts": pd.concat([accounts, bad], ignore_index=True),
        "interactions": pd.concat([events, planted], ignore_index=True).sort_values("occurred_at", kind="stable").reset_index(drop=True),
        "attribute_history": data.attribute_history,
        "static": data,  # type: ignore[dict-item]
    }


def _load_postgres(cluster: Cluster, tables: dict[str, pd.DataFrame]) -> str:
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(cluster.url(), autocommit=True) as con, con.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS crm")
        cur.execute("CREATE DATABASE crm")
    with pg.connect(cluster.url("crm"), autocommit=True) as con, con.cursor() as cur:
        cur.execute("CREATE SCHEMA sales")
        for name in ("accounts", "interactions", "attribute_history"):
            cur.adbc_ingest(name, _arrow(tables[name]), mode="create", db_schema_name="sales")
    return cluster.url("crm")


def _load_duckdb(path: Path, tables: dict[str, pd.DataFrame]) -> str:
    import duckdb

    with duckdb.connect(str(path)) as con:
        for name, target in (("accounts", "customers"), ("interactions", "events"), ("attribute_history", "attribute_history")):
            arrow = _arrow(tables[name])  # noqa: F841 - read by DuckDB's replacement scan
            con.execute(f"CREATE TABLE {target} AS SELECT * FROM arrow")
    return f"duckdb:///{path}"


def _load_sqlite(path: Path, tables: dict[str, pd.DataFrame]) -> str:
    import adbc_driver_sqlite.dbapi as sqlite

    with sqlite.connect(str(path)) as con:
        with con.cursor() as cur:
            for name in ("accounts", "interactions", "attribute_history"):
                cur.adbc_ingest(name, _arrow(tables[name]), mode="create")
        con.commit()
    return f"sqlite:///{path}"


def _config(root: Path, name: str, static: str, source: str = "") -> Path:
    path = root / f"{name}.toml"
    path.write_text(static + ("\n[source]\n" + source if source else ""), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory, postgres: Cluster) -> dict[str, tuple[str, Path]]:  # noqa: F811
    """Each source of the business: its ``--data`` and its settings file."""
    root = tmp_path_factory.mktemp("db")
    tables = _business()
    data = tables.pop("static")
    write(data, str(root / "raw"))
    for name in ("accounts", "interactions"):  # the planted rows, in the Parquet folder too
        tables[name].to_parquet(root / "raw" / f"{name}.parquet", index=False)
    static = (root / "raw" / "churn.toml").read_text(encoding="utf-8")
    (root / "raw" / "churn.toml").unlink()  # every source gets its settings from --config
    return {
        "parquet": (str(root / "raw"), _config(root, "parquet", static)),
        "postgresql": (_load_postgres(postgres, tables), _config(root, "postgresql", static, 'schema = "sales"\n')),
        "duckdb": (_load_duckdb(root / "biz.duckdb", tables), _config(root, "duckdb", static, 'accounts = "SELECT * FROM customers"\ninteractions = "events"\n')),
        "sqlite": (_load_sqlite(root / "biz.db", tables), _config(root, "sqlite", static)),
    }


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def runs(sources, postgres: Cluster, trained, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:  # type: ignore[no-untyped-def] # noqa: F811
    """From every source: the training table (``churn dataset``: what ``churn train`` fits on,
    built by the same function), the rejects (``churn validate``) and a score with one model
    (the suite's shared one, exported as a bundle); the SQL the PostgreSQL score sent. The
    PostgreSQL score runs twice for one date, writing back with ``--out-table``."""
    from churn.modeling.tracking import export_bundle

    root = tmp_path_factory.mktemp("runs")
    model = str(export_bundle(trained.model, root / "models", version="1", run_id="test-database"))
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    out: dict[str, object] = {"root": root, "out_table": postgres.url("crm") + "#sales.churn_risk"}
    try:
        for name, (data, config) in sources.items():
            _invoke("dataset", "--data", data, "--config", str(config), *CUTOFFS, "--out", f"training_{name}.parquet")
            _invoke("validate", "--data", data, "--config", str(config), "--rejects-dir", f"rejects_{name}")
            log_from = len(postgres.statements())
            again = ["--out-table", str(out["out_table"])] if name == "postgresql" else []
            out[f"output_{name}"] = _invoke("score", "--data", data, "--config", str(config), "--as-of", AS_OF, "--model", model, "--out", f"scores_{name}", *again)
            if name == "postgresql":
                out["sql"] = postgres.statements()[log_from:]
                _invoke("score", "--data", data, "--config", str(config), "--as-of", AS_OF, "--model", model, "--out", f"scores_{name}", *again)
        yield out
    finally:
        mp.undo()


def _risk_list(root: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(root / f"scores_{name}" / "risk_list.parquet").sort_values("account_id").reset_index(drop=True)


def _rejects(root: Path, name: str) -> pd.DataFrame:
    """Every rejected row of a source: table, account and reasons, in one order."""
    frames = [
        pd.read_csv(path, dtype=str)[["account_id", "reject_reason"]].assign(table=path.stem)
        for path in sorted((root / f"rejects_{name}").glob("*_rejects.csv"))
    ]
    return pd.concat(frames).sort_values(["table", "account_id", "reject_reason"]).reset_index(drop=True)


@pytest.mark.parametrize("name", ["postgresql", "duckdb", "sqlite"])
def test_a_database_gives_what_parquet_gives(runs, name: str) -> None:  # type: ignore[no-untyped-def]
    """Same training table (what churn train fits on), same probabilities and ranks, same rejects."""
    root = runs["root"]
    key = ["as_of", "account_id"]
    training = pd.read_parquet(root / f"training_{name}.parquet").sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(training, pd.read_parquet(root / "training_parquet.parquet").sort_values(key).reset_index(drop=True))
    risk, expected = _risk_list(root, name), _risk_list(root, "parquet")
    assert len(risk) > 100
    pd.testing.assert_series_equal(risk["churn_probability"], expected["churn_probability"], rtol=0, atol=1e-12)
    pd.testing.assert_series_equal(risk["rank"], expected["rank"])
    pd.testing.assert_frame_equal(_rejects(root, name), _rejects(root, "parquet"))


def test_the_planted_bad_rows_are_rejected_with_reasons(runs) -> None:  # type: ignore[no-untyped-def]
    rejects = _rejects(runs["root"], "postgresql")
    reasons = " | ".join(rejects["reject_reason"])
    assert "BAD-1" in set(rejects["account_id"]) and "churned_at before signup_at" in reasons
    assert "unknown account_id" in reasons and "duplicate row" in reasons and "in the future" in reasons


def test_a_weekly_score_sends_only_its_columns_and_time_range(runs) -> None:  # type: ignore[no-untyped-def]
    """The SQL PostgreSQL received (its own statement log): the interactions are read with a
    column list and a time-range predicate (the lookback in halves, read at once, that meet
    exactly); no table is read whole with SELECT *."""
    statements = re.findall(r"(?:statement|execute [^:]*): (.*)", str(runs["sql"]))
    reads = [s for s in statements if '"interactions"' in s and "WHERE 1 = 0" not in s and "MAX(" not in s and "pg_catalog" not in s]
    assert reads, statements
    for sql in reads:  # the end-of-data check reads its last day, the score its 365-day lookback
        assert "SELECT *" not in sql and '"account_id", "occurred_at", "event_type"' in sql, sql
        assert re.search(r'WHERE "occurred_at" >= TIMESTAMP WITH TIME ZONE \'[0-9-]+ ', sql), sql
    stamp = r"TIMESTAMP WITH TIME ZONE '([0-9: .-]+)\+00:00'"
    ranges = sorted(m.groups() for sql in reads if (m := re.search(rf'"occurred_at" >= {stamp} AND "occurred_at" < {stamp}', sql)))
    window = [r for r in ranges if r[0] >= "2022-11-01"]  # the score's lookback, read in halves one after the other
    assert window[0][0] == "2022-11-01 00:00:00.000000" and window[-1][1] == "2023-11-01 00:00:00.000000", reads
    assert all(a[1] == b[0] for a, b in zip(window, window[1:])), ranges
    assert not [s for s in statements if "SELECT * FROM" in s and "WHERE 1 = 0" not in s]
    end = [s for s in statements if "MAX(" in s]
    assert end and all('FROM "sales"."interactions" WHERE "occurred_at" <=' in s for s in end)


def test_out_table_rerun_replaces_never_duplicates(runs, postgres: Cluster) -> None:  # noqa: F811 # type: ignore[no-untyped-def]
    import adbc_driver_postgresql.dbapi as pg

    risk = _risk_list(runs["root"], "postgresql")
    with pg.connect(postgres.url("crm")) as con, con.cursor() as cur:
        cur.execute("SELECT count(*), count(DISTINCT account_id), count(DISTINCT run_id), min(as_of_date) FROM sales.churn_risk")
        rows, accounts, run_ids, day = cur.fetchone()
        cur.execute("SELECT count(*), max(run_id) FROM sales.churn_risk_runs")
        run_rows, latest = cur.fetchone()
        cur.execute("SELECT run_id FROM sales.churn_risk LIMIT 1")
        listed = cur.fetchone()[0]
    assert (rows, accounts, run_ids, day) == (len(risk), len(risk), 1, AS_OF)
    assert run_rows == 1 and listed == latest
    assert "Risk list written to postgresql://churn:***@" in str(runs["output_postgresql"]) and PASSWORD not in str(runs["output_postgresql"])


def _one_sentence(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    return " ".join(result.output.split())


def test_a_wrong_password_or_host_is_one_masked_sentence(postgres: Cluster, tmp_path: Path) -> None:  # noqa: F811
    wrong = postgres.url("crm", password="Not-The-Pw-123")
    message = _one_sentence("validate", "--data", wrong, "--rejects-dir", str(tmp_path))
    assert f"127.0.0.1:{postgres.port}" in message and "database crm" in message and "password was refused" in message, message
    assert "Not-The-Pw-123" not in message
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    message = _one_sentence("features", "--data", f"postgresql://churn:Not-The-Pw-123@127.0.0.1:{closed}/crm", "--out", str(tmp_path / "f.parquet"))
    assert f"127.0.0.1:{closed}" in message and "cannot be reached" in message and "Not-The-Pw-123" not in message, message


def test_mask_url_hides_every_password() -> None:
    from churn.data.database import mask_url

    text = "postgresql://ann:p%40ss:w0rd@db:5432/crm and mysql+pymysql://bob:hunter2@h/x?password=xyz&sslmode=require"
    masked = mask_url(text)
    assert "p%40ss" not in masked and "hunter2" not in masked and "xyz" not in masked
    assert "postgresql://ann:***@db:5432/crm" in masked and "sslmode=require" in masked


def test_source_table_of_churn_toml(tmp_path: Path) -> None:
    from churn.config import SettingsError, SourceTables, load_settings

    (tmp_path / "churn.toml").write_text('[source]\nschema = "crm"\ninteractions = "SELECT * FROM crm.tickets"\n', encoding="utf-8")
    source = load_settings(cwd=tmp_path).source
    assert source == SourceTables(interactions="SELECT * FROM crm.tickets", schema="crm")
    assert source.is_query("interactions") and not source.is_query("accounts")
    (tmp_path / "churn.toml").write_text('[source]\nevents = "tickets"\n', encoding="utf-8")
    with pytest.raises(SettingsError, match="unknown key.*events.*in \\[source\\]"):
        load_settings(cwd=tmp_path)


def test_postgresql_sends_a_null_float_as_nan_and_nothing_else_changes() -> None:
    """A float column goes out as ``COALESCE(x, 'NaN') AS x`` (a boolean as 1, 0, -1) on PostgreSQL only (ADBC decodes
    NULL-heavy floats slower; NaN and NULL are one missing value once read); other columns and
    other databases are named as they are."""
    from churn.config import SourceTables
    from churn.data.database import Connection, _quote, select_sql
    from churn.data.dbtypes import booleans

    schema = pa.schema([("account_id", pa.string()), ("nps", pa.float64()), ("ces", pa.float32()), ("n", pa.int64()), ("resolved", pa.bool_())])
    cols = ["account_id", "nps", "ces", "n", "resolved"]
    pg = Connection(lambda sql: None, lambda: None, _quote, "pg", nan_for_null=True)  # type: ignore[arg-type,return-value]
    other = Connection(lambda sql: None, lambda: None, _quote, "duck")  # type: ignore[arg-type,return-value]
    sql = select_sql(pg, SourceTables(), "interactions", cols, schema)
    assert sql.startswith('SELECT "account_id", COALESCE("nps", \'NaN\') AS "nps", COALESCE("ces", \'NaN\') AS "ces", "n", CAST(COALESCE(CAST("resolved"'), sql
    assert select_sql(other, SourceTables(), "interactions", cols, schema).startswith('SELECT "account_id", "nps", "ces", "n", "resolved" FROM')
    sent = pa.table({"account_id": ["a", "b", "c"], "resolved": pa.array([1, 0, -1], pa.int16())})
    assert booleans(sent, schema).column("resolved").to_pylist() == [True, False, None]


@pytest.mark.parametrize("command", ["train", "score", "features"])
def test_help_shows_the_settings_tables_it_names(command: str) -> None:
    """Rich reads ``[source]`` in a help text as markup and drops it: the help would say
    "tables in  of churn.toml". The brackets must be escaped to reach the user."""
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "[source] of churn.toml" in result.output
    assert "[tool.churn] in ./pyproject.toml" in result.output


@pytest.fixture(scope="module")
def trained_per_source(sources, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """``churn train`` from the Parquet folder, from PostgreSQL and from the DuckDB file, into
    one MLflow store (versions 1, 2, 3 of one registered model), then ``churn score`` of each
    source with the model trained from it."""
    from churn.modeling.model import save_bundle
    from churn.modeling.tracking import load_model

    root = tmp_path_factory.mktemp("trained")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    out: dict[str, str] = {}
    try:
        for version, name in enumerate(("parquet", "postgresql", "duckdb"), start=1):
            data, config = sources[name]
            out[name] = _invoke("train", "--data", data, "--config", str(config), *CUTOFFS, "--as-of", AS_OF, "--models-dir", f"models_{name}")
            save_bundle(load_model(f"models:/churn/{version}")[0], root / f"{name}.joblib")
            _invoke("score", "--data", data, "--config", str(config), "--as-of", AS_OF, "--model", f"{name}.joblib", "--out", f"scores_{name}")
        yield root, out
    finally:
        mp.undo()


def _evaluation(output: str) -> list[str]:
    """What ``churn train`` printed about its table and evaluation, up to the MLflow run
    (the registry version and the champion decision differ from one training to the next)."""
    lines = [line for line in output.splitlines() if "--data" not in line]
    return lines[: next(i for i, line in enumerate(lines) if "egistered model" in line or line.startswith(("Created version", "MLflow run")))]


@pytest.mark.parametrize("name", ["postgresql", "duckdb"])
def test_train_and_score_from_a_database_equal_parquet(trained_per_source, name: str) -> None:  # type: ignore[no-untyped-def]
    """The whole of ``churn train`` from the database: the same evaluation printed, and a model
    that gives the same probabilities and ranks, on the same accepted rows, as the one trained
    from Parquet."""
    root, printed = trained_per_source
    expected = _evaluation(printed["parquet"])
    assert len(expected) > 5 and _evaluation(printed[name]) == expected
    risk, parquet = _risk_list(root, name), _risk_list(root, "parquet")
    assert len(risk) > 100
    pd.testing.assert_series_equal(risk["churn_probability"], parquet["churn_probability"], rtol=0, atol=1e-12)
    pd.testing.assert_series_equal(risk["rank"], parquet["rank"])
    accepted = [json.loads((root / f"scores_{n}" / "run.json").read_text(encoding="utf-8"))["record"]["data_fingerprint"] for n in (name, "parquet")]
    assert accepted[0] == accepted[1]  # the same rows accepted (the rejects themselves: test_a_database_gives_what_parquet_gives)
