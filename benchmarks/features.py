"""Benchmark point-in-time features against the SQL a data engineer would write instead.

    python benchmarks/features.py                 # 100,000 accounts × 24 months (~12M events)
    python benchmarks/features.py --data DIR      # an existing data folder

Prints, for one cutoff: seconds, rows/second and peak RSS of loading + ``build_features``;
then, on the same in-memory data, the time of a hand-written DuckDB query computing the
same windowed aggregates (counts per event type and channel over 30/90/365 days, recency,
trends, long waits, transfers, wait mean/p90/max, handle time, survey means and spend);
then a 12-cutoff training table. The data is generated in a child process so that its
memory does not count towards the peak reported here.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from churn.config import FeatureConfig, to_utc
from churn.contract import OPTIONAL_INTERACTION_COLUMNS, load
from churn.features import FeatureSpec, build_features
from churn.labels import build_training_table, parse_cutoffs


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def duckdb_features(interactions: pd.DataFrame, accounts: pd.DataFrame, as_of: pd.Timestamp, spec: FeatureSpec) -> pd.DataFrame:
    """The peer: one GROUP BY with conditional aggregates, as hand-written SQL."""
    import duckdb

    cols = []
    for et in spec.event_types:
        for w in (30, 90, 365):
            cols.append(f"count(*) FILTER (WHERE event_type = '{et}' AND age < {w}) AS n_{et}_{w}d")
        cols.append(f"min(age) FILTER (WHERE event_type = '{et}') AS days_since_last_{et}")
        cols.append(
            f"(count(*) FILTER (WHERE event_type = '{et}' AND age < 30) + 1.0) / "
            f"(count(*) FILTER (WHERE event_type = '{et}' AND age >= 30 AND age < 120) / 3.0 + 1.0) AS trend_{et}"
        )
    for ch in spec.channels:
        for w in (30, 90, 365):
            cols.append(f"count(*) FILTER (WHERE channel = '{ch}' AND age < {w}) AS n_channel_{ch}_{w}d")
    live = "channel NOT IN ('email', 'social')"
    for w in (30, 90):
        cols.append(
            f"count(*) FILTER (WHERE age < {w} AND ((wait_seconds > 600 AND {live}) OR (wait_seconds > 86400 AND NOT {live}))) AS long_waits_{w}d"
        )
        cols.append(f"count(*) FILTER (WHERE age < {w} AND transferred) AS transfers_{w}d")
    cols += [
        f"avg(wait_seconds) FILTER (WHERE age < 90 AND {live}) AS wait_mean_90d",
        f"quantile_cont(wait_seconds, 0.9) FILTER (WHERE age < 90 AND {live}) AS wait_p90_90d",
        f"max(wait_seconds) FILTER (WHERE age < 90 AND {live}) AS wait_max_90d",
        "avg(handle_seconds) FILTER (WHERE age < 90) AS handle_mean_90d",
        "count(DISTINCT channel) FILTER (WHERE age < 90) AS distinct_channels_90d",
        "avg(ces) AS ces_mean_365d",
        "avg(csat) AS csat_mean_365d",
        "avg(nps) AS nps_mean_365d",
        "arg_max(nps, occurred_at) FILTER (WHERE nps IS NOT NULL) AS nps_latest",
        "sum(amount) FILTER (WHERE age < 30) AS amount_30d",
        "sum(amount) FILTER (WHERE age < 90) AS amount_90d",
        "sum(amount) AS amount_365d",
    ]
    since = as_of - pd.Timedelta(days=365)
    con = duckdb.connect()
    con.register("interactions", interactions)
    con.register("accounts", accounts)
    sql = f"""
        WITH ev AS (
            SELECT *, epoch(TIMESTAMPTZ '{as_of.isoformat()}' - occurred_at) / 86400.0 AS age
            FROM interactions
            WHERE occurred_at < TIMESTAMPTZ '{as_of.isoformat()}' AND occurred_at >= TIMESTAMPTZ '{since.isoformat()}'
        ),
        active AS (
            SELECT account_id FROM accounts
            WHERE signup_at < TIMESTAMPTZ '{as_of.isoformat()}'
              AND (churned_at IS NULL OR churned_at > TIMESTAMPTZ '{as_of.isoformat()}')
        )
        SELECT a.account_id, {", ".join(cols)}
        FROM active a LEFT JOIN ev USING (account_id)
        GROUP BY a.account_id
    """
    return con.execute(sql).df()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="data folder (default: generate one)")
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--as-of", default="2024-12-01")
    parser.add_argument("--cutoffs", default="2024-01-01:2024-12-01:1M")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data
        if data_dir is None:
            data_dir = Path(tmp) / "raw"
            t = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "churn", "generate", "--accounts", str(args.accounts), "--months", str(args.months), "--out", str(data_dir)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            print(f"generated {args.accounts:,} accounts × {args.months} months in {time.perf_counter() - t:.1f} s (child process)")

        config = FeatureConfig()
        as_of = to_utc(args.as_of)
        t0 = time.perf_counter()
        data = load(
            data_dir,
            interaction_columns=OPTIONAL_INTERACTION_COLUMNS,
            since=as_of - pd.Timedelta(days=config.lookback_days),
            until=as_of,
        )
        t_load = time.perf_counter() - t0
        spec = FeatureSpec.from_data(data.accounts, data.interactions, config)
        t1 = time.perf_counter()
        features = build_features(data.accounts, data.interactions, as_of=as_of, spec=spec, config=config)
        t_feat = time.perf_counter() - t1
        n_events = len(data.interactions)
        print(f"events in lookback   {n_events:,} (of the 365 days before {as_of:%Y-%m-%d})")
        print(f"load + validate      {t_load:.1f} s")
        print(f"build_features       {t_feat:.2f} s  ({n_events / t_feat:,.0f} events/s, {len(features) / t_feat:,.0f} accounts/s)")
        print(f"output               {len(features):,} accounts × {features.shape[1] - 2} features")
        print(f"peak RSS so far      {peak_gib():.2f} GiB (load + validate + features)")

        try:
            t2 = time.perf_counter()
            peer = duckdb_features(data.interactions, data.accounts, as_of, spec)
            t_sql = time.perf_counter() - t2
            print(f"DuckDB SQL peer      {t_sql:.2f} s  ({peer.shape[1] - 1} aggregates; ours/SQL = {t_feat / t_sql:.2f}×)")
        except ImportError:
            print("DuckDB SQL peer      skipped (pip install duckdb)")

        cutoffs = parse_cutoffs(args.cutoffs)
        full = load(data_dir, interaction_columns=OPTIONAL_INTERACTION_COLUMNS)
        t3 = time.perf_counter()
        table = build_training_table(full.accounts, full.interactions, cutoffs=cutoffs, config=config)
        t_table = time.perf_counter() - t3
        print(f"training table       {len(cutoffs)} cutoffs, {len(table):,} rows in {t_table:.1f} s")
        print(f"peak RSS             {peak_gib():.2f} GiB")


if __name__ == "__main__":
    main()
