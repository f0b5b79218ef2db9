"""The in-process engine vs. the Spark engine on the same data (~10 million interactions).

    python benchmarks/spark.py                    # generates 100,000 accounts × 24 months
    python benchmarks/spark.py --data DIR --master local[2]

Prints the seconds for features as of one cutoff with each engine (Spark: start-up, then
the bucketed cogroup; results collected so both do the same total work) and checks that
both produce the same table.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from churn.config import FeatureConfig, to_utc
from churn.data.contract import load
from churn.data.rules import OPTIONAL_INTERACTION_COLUMNS
from churn.features.build import build_features
from churn.features.spec import FeatureSpec
from churn.spark import session, spark_features, spark_spec, to_pandas_features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--as-of", default="2024-12-01")
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--buckets", type=int, default=64)
    args = parser.parse_args()
    as_of = to_utc(args.as_of)
    config = FeatureConfig()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data
        if data_dir is None:
            data_dir = Path(tmp) / "raw"
            subprocess.run([sys.executable, "-m", "churn", "generate", "--accounts", str(args.accounts), "--out", str(data_dir)], check=True, stdout=subprocess.DEVNULL)

        t = time.perf_counter()
        data = load(data_dir, interaction_columns=OPTIONAL_INTERACTION_COLUMNS)
        spec = FeatureSpec.from_data(data.accounts, data.interactions, config)
        t_load = time.perf_counter() - t
        t = time.perf_counter()
        local = build_features(data.accounts, data.interactions, as_of=as_of, spec=spec, config=config)
        t_local = time.perf_counter() - t
        print(f"interactions               {len(data.interactions):,}")
        print(f"in-process: load+validate  {t_load:6.1f} s")
        print(f"in-process: features       {t_local:6.1f} s   ({len(local):,} accounts)")
        del data

        t = time.perf_counter()
        spark = session(args.master)
        t_start = time.perf_counter() - t
        t = time.perf_counter()
        spark_spec(spark, data_dir, config)
        t_spec = time.perf_counter() - t
        t = time.perf_counter()
        remote = to_pandas_features(spark_features(spark, data_dir, as_of=as_of, spec=spec, config=config, buckets=args.buckets), spec)
        t_spark = time.perf_counter() - t
        print(f"spark ({args.master}): start-up     {t_start:6.1f} s")
        print(f"spark: spec from summaries {t_spec:6.1f} s")
        print(f"spark: features + collect  {t_spark:6.1f} s   ({args.buckets} buckets; read, validate and featurise per bucket)")
        same = local.columns.equals(remote.columns) and len(local) == len(remote)
        numeric = [c for c in local.columns if local[c].dtype == np.float64]
        close = np.allclose(local[numeric].to_numpy(), remote[numeric].to_numpy(), rtol=1e-9, equal_nan=True)
        print(f"same result                {same and close}")
        spark.stop()


if __name__ == "__main__":
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    main()
