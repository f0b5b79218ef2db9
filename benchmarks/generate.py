"""Benchmark the synthetic generator: seconds and peak memory for N accounts × M months.

    python benchmarks/generate.py --accounts 100000 --months 24
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

from churn.data.synthetic import generate, write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    t0 = time.perf_counter()
    data = generate(args.accounts, months=args.months, seed=args.seed)
    t_gen = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        write(data, tmp)
        t_write = time.perf_counter() - t1
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    n_events = len(data.interactions)
    print(f"accounts            {args.accounts:,} × {args.months} months")
    print(f"interactions        {n_events:,}")
    print(f"generate            {t_gen:.1f} s  ({n_events / t_gen:,.0f} events/s)")
    print(f"write parquet       {t_write:.1f} s")
    print(f"peak RSS            {peak_gib:.2f} GiB")


if __name__ == "__main__":
    main()
