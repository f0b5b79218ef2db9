"""Benchmark ``churn features`` reading PostgreSQL against reading Parquet and against the
hand-written DuckDB SQL reference, on the same business in the same run.

    python benchmarks/database.py                       # 100,000 accounts × 24 months (~12M events)
    python benchmarks/database.py --accounts 20000 --runs 3
    python benchmarks/database.py --pg-url postgresql://me@localhost/bench   # an existing server (its tables are replaced)

The business is generated once as a Parquet folder, then loaded into PostgreSQL (ADBC bulk
ingest, an index on ``interactions.occurred_at`` as a CRM database would have, then VACUUM
ANALYZE so no autovacuum of the new rows runs during the timings). Without
``--pg-url`` a throw-away cluster is started (tests/pg_support.py: initdb + pg_ctl on a free
port) and removed after. Three whole commands, each run once untimed (bytecode, page cache),
then in turn, rotating who goes first, each timed with its own CPU time and peak RSS
(``wait4``): ``churn features --data DIR``, ``churn features --data postgresql://…`` and
``benchmarks/features_duckdb.py``. The PostgreSQL server's own memory is not in the client's
peak RSS (it is another process); its CPU per command is printed (a throw-away cluster's:
it shares the cores with the client). The PostgreSQL and Parquet outputs are then compared.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # features.py beside us; tests/pg_support.py for the cluster

from features import alternate, business, business_arguments, child_env, compare, interaction_count, medians, peak, peer_arguments  # noqa: E402


def load_postgres(url: str, data_dir: Path) -> float:
    """Copy the Parquet tables into PostgreSQL (replacing them), batch by batch; seconds taken."""
    import time

    import adbc_driver_postgresql.dbapi as pg
    import pyarrow.parquet as pq

    t = time.perf_counter()
    with pg.connect(url, autocommit=True) as con, con.cursor() as cur:
        for name in ("accounts", "interactions", "attribute_history"):
            path = data_dir / f"{name}.parquet"
            if not path.exists():
                continue
            cur.execute(f'DROP TABLE IF EXISTS "{name}"')
            cur.adbc_ingest(name, pq.ParquetFile(path).iter_batches(batch_size=1 << 18), mode="create")  # type: ignore[arg-type]
        cur.execute('CREATE INDEX ON "interactions" ("occurred_at")')
        # VACUUM as well: after a bulk load autovacuum would otherwise scan the 12M new rows in the
        # background (setting the visibility map) while the timed commands run, Parquet's included
        cur.execute("VACUUM ANALYZE")
    return time.perf_counter() - t


def server_cpu(folder: Path) -> float:
    """CPU seconds a throw-away cluster's server has used so far: its postmaster's own and its
    ended backends' (reaped children are counted in the postmaster's children time)."""
    pid = int((folder / "data" / "postmaster.pid").read_text().split()[0])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime, stime, cutime, cstime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    business_arguments(parser)
    parser.add_argument("--pg-url", help="an existing PostgreSQL database to load and read (default: a throw-away cluster)")
    args = parser.parse_args()
    as_of = pd.Timestamp(args.as_of, tz="UTC")
    cluster = bin_dir = None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        data_dir = business(args.data, args.accounts, args.months, out)
        print(f"interactions: {interaction_count(data_dir):,} in {data_dir}")
        url = args.pg_url
        try:
            if url is None:
                from tests.pg_support import pg_bin, start

                bin_dir = pg_bin()
                if bin_dir is None:
                    raise SystemExit("no PostgreSQL here (initdb, pg_ctl): install it, or give --pg-url")
                cluster = start(bin_dir)
                url = cluster.url()
            print(f"loaded into PostgreSQL in {load_postgres(url, data_dir):.0f} s (read with adbc-driver-postgresql {version('adbc-driver-postgresql')})")
            peer_args, events, rejected = peer_arguments(data_dir, as_of)
            print(f"events read: {events:,} in the 365 days before {as_of:%Y-%m-%d} ({rejected:,} rejected by our data contract)")
            settings = data_dir / "churn.toml"
            config = ["--config", str(settings)] if settings.exists() else []  # the folder's own settings, for the database too
            commands = {
                "parquet": [sys.executable, "-m", "churn", "features", "--data", str(data_dir), "--as-of", args.as_of, "--out", str(out / "parquet.parquet")],
                "postgresql": [sys.executable, "-m", "churn", "features", "--data", url, *config, "--as-of", args.as_of, "--out", str(out / "postgresql.parquet")],
                "duckdb": [sys.executable, str(HERE / "features_duckdb.py"), "--data", str(data_dir), "--as-of", args.as_of, "--out", str(out / "peer.parquet"), *peer_args],
            }
            before = server_cpu(cluster.folder) if cluster is not None else None
            timed = alternate(commands, args.runs, child_env(out / "pycache"))
            wall, cpu = medians(timed)
            if before is not None and cluster is not None:  # the untimed run and the timed ones: each reads the same
                print(f"PostgreSQL server CPU per `churn features` from PostgreSQL: {(server_cpu(cluster.folder) - before) / (args.runs + 1):.2f} s (mean; shares the cores with the client)")
            print(f"ratio Parquet / DuckDB (medians): wall {wall['parquet'] / wall['duckdb']:.2f}×  (target ≤ 0.60×), CPU {cpu['parquet'] / cpu['duckdb']:.2f}×")
            print(f"ratio PostgreSQL / Parquet (medians): wall {wall['postgresql'] / wall['parquet']:.2f}×  (target ≤ 2×), client CPU {cpu['postgresql'] / cpu['parquet']:.2f}×")
            ratio = peak(timed["postgresql"]) / peak(timed["parquet"])
            print(f"peak RSS PostgreSQL / Parquet: {ratio:.2f}×  (target ≤ 1.20×; the server's own memory not included)")
            ours = pd.read_parquet(out / "parquet.parquet")
            same = ours.equals(pd.read_parquet(out / "postgresql.parquet"))
            print(f"PostgreSQL output equals the Parquet output: {same}")
            compare(ours, pd.read_parquet(out / "peer.parquet"), "DuckDB peer computes")
        finally:
            if cluster is not None:
                from tests.pg_support import stop

                stop(bin_dir, cluster)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
