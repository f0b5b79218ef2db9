"""Benchmark ``churn features`` against the SQL a data engineer would write instead.

    python benchmarks/features.py                  # 100,000 accounts × 24 months (~12M events)
    python benchmarks/features.py --data DIR       # an existing data folder
    python benchmarks/features.py --runs 5 --compare-with old.parquet

Both sides are timed as whole commands, the way a user runs them, on the same Parquet files
in the same run: ``churn features --data DIR --as-of DATE --out F.parquet`` (Python start-up,
imports, reading, validating, computing, writing) against ``benchmarks/features_duckdb.py``,
a hand-written DuckDB SQL build of the same features (start-up, import, read, compute,
write). After one untimed run of each (bytecode compiled and kept, as an installed package
has it; the files in the page cache) the runs alternate (ours, peer, peer, ours, …); the
report gives the median, min and max seconds per side, the median CPU seconds (user + system:
what the command costs, whatever else the machine runs), the ratios of the medians, and the
peak RSS of each command (its own, from ``wait4``). Then it checks the outputs: which of our
columns the peer computes, and whether the values agree. The data is generated once, in a
child process.

With ``--in-process`` it also prints the stages inside one process (load + validate,
``build_features``) and a 12-cutoff training table.
"""

from __future__ import annotations

import argparse
import atexit
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def child_env(cache: Path) -> dict[str, str]:
    """The environment of a timed command: compiled bytecode kept in ``cache``, as an installed
    package has it (``PYTHONDONTWRITEBYTECODE``, set in some shells and CI, would make every
    run compile churn's modules again — a tenth of a second of the small sizes)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(cache)}


#: The timed commands' parent: a small Python process of its own. On Linux a child's peak RSS
#: (``ru_maxrss``) starts from the high-water mark of the address space it was forked from — it
#: survives the exec — so a command started by a benchmark that has loaded 12M rows itself
#: reports the benchmark's peak (1.41 GiB for all three commands of benchmarks/database.py)
#: whenever its own is lower. The runner's address space is its own, small (the mark passes
#: one fork, not two), so its children report their own peaks.
_RUNNER_CODE = r"""
import json, os, subprocess, sys, time
for line in sys.stdin:
    job = json.loads(line)
    t = time.perf_counter()
    try:
        proc = subprocess.Popen(job["cmd"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=job["env"])
    except OSError as exc:  # cannot start (no such program): say so, keep serving
        print(json.dumps({"seconds": 0.0, "cpu": 0.0, "kib": 0, "code": 127, "err": str(exc)}), flush=True)
        continue
    err = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    out = {"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime, "kib": usage.ru_maxrss, "code": os.waitstatus_to_exitcode(status), "err": err}
    print(json.dumps(out), flush=True)
"""

_runner: subprocess.Popen[str] | None = None


def start_runner() -> None:
    """Start the process that runs and measures the timed commands (:data:`_RUNNER_CODE`).
    A no-op once started."""
    global _runner
    if _runner is None:
        _runner = subprocess.Popen([sys.executable, "-c", _RUNNER_CODE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        atexit.register(_stop_runner)


def _stop_runner() -> None:
    """End the runner at exit: its input closed, it ends its loop; waited for, not left behind."""
    if _runner is not None and _runner.stdin is not None:
        _runner.stdin.close()
        _runner.wait(timeout=10)


def run_command(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """Run ``cmd`` to completion: (wall seconds, CPU seconds, peak RSS in GiB) of that command alone."""
    import json

    start_runner()
    assert _runner is not None and _runner.stdin is not None and _runner.stdout is not None
    _runner.stdin.write(json.dumps({"cmd": cmd, "env": dict(os.environ) if env is None else env}) + "\n")
    _runner.stdin.flush()
    done = json.loads(_runner.stdout.readline())
    if done["code"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done['code']}):\n{done['err']}")
    return done["seconds"], done["cpu"], done["kib"] / 1024**2


def business(data: Path | None, accounts: int, months: int, out: Path) -> Path:
    """The data folder to time on: ``data``, else a business of ``accounts`` × ``months``
    generated once into ``out/raw`` (in a child process, so its memory is not ours)."""
    if data is not None:
        return data
    target = out / "raw"
    seconds, _, gib = run_command([sys.executable, "-m", "churn", "generate", "--accounts", str(accounts), "--months", str(months), "--out", str(target)])
    print(f"generated {accounts:,} accounts × {months} months in {seconds:.0f} s (child process, {gib:.1f} GiB)")
    return target


def business_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a benchmark timed on one business: which (or what to generate) and how often."""
    parser.add_argument("--data", type=Path, help="data folder (default: generate one)")
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--as-of", default="2024-12-01")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per side (median reported)")


def interaction_count(data_dir: Path) -> int:
    """Rows of the interactions table (every row, before the time window and the contract)."""
    import pyarrow.dataset as ds

    return int(ds.dataset(data_dir / "interactions.parquet", format="parquet").count_rows())


def alternate(commands: dict[str, list[str]], runs: int, env: dict[str, str]) -> dict[str, list[tuple[float, float, float]]]:
    """Time each command ``runs`` times, in turn, rotating who goes first, after one untimed
    run of each (it fills the bytecode and file caches); print every run and the load average.
    Returns (wall s, CPU s, peak RSS GiB) per run per command."""
    for cmd in commands.values():
        run_command(cmd, env)
    timed: dict[str, list[tuple[float, float, float]]] = {name: [] for name in commands}
    print(f"load average before: {load_average()} ({os.cpu_count()} cores)")
    order = list(commands.items())
    for i in range(runs):
        for name, cmd in order[i % len(order) :] + order[: i % len(order)]:
            timed[name].append(run_command(cmd, env))
            seconds, cpu_seconds, gib = timed[name][-1]
            print(f"  run {i + 1}: {name:10s} {seconds:6.2f} s  (CPU {cpu_seconds:6.2f} s)  {gib:.2f} GiB")
    print(f"load average after:  {load_average()}")
    return timed


def medians(timed: dict[str, list[tuple[float, float, float]]]) -> tuple[dict[str, float], dict[str, float]]:
    """Print per command: median, min and max wall time, median CPU time, peak RSS; return the
    median wall and CPU seconds per command."""
    wall, cpu = {}, {}
    for name, runs in timed.items():
        s = [r[0] for r in runs]
        wall[name], cpu[name] = statistics.median(s), statistics.median(r[1] for r in runs)
        print(
            f"{name:10s}  median {wall[name]:6.2f} s  (min {min(s):.2f}, max {max(s):.2f}, {len(s)} runs)  "
            f"CPU {cpu[name]:6.2f} s  peak RSS {peak(runs):.2f} GiB"
        )
    return wall, cpu


def peak(runs: list[tuple[float, float, float]]) -> float:
    """The highest peak RSS (GiB) over a command's runs."""
    return max(r[2] for r in runs)


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def peer_arguments(data_dir: Path, as_of: pd.Timestamp) -> tuple[list[str], int, int]:
    """What the hand-written query spells out (event types, channels, attributes), learned
    by our own spec so both sides build the same columns; the events in the lookback, and
    how many of them the data contract rejects."""
    from churn.config import FeatureConfig, load_settings
    from churn.data.contract import load
    from churn.data.dataend import data_end_of
    from churn.data.rules import OPTIONAL_INTERACTION_COLUMNS
    from churn.features.build import learn_spec

    config, settings = FeatureConfig(), load_settings(data_dir)
    data = load(data_dir, interaction_columns=OPTIONAL_INTERACTION_COLUMNS, since=as_of - pd.Timedelta(days=config.lookback_days), until=as_of)
    spec, _ = learn_spec(data, cutoffs=[as_of], data_end=data_end_of(data_dir, settings), settings=settings, config=config)
    static = [c for c, _ in spec.categorical_attributes] + [c for c in spec.numeric_attributes if c not in spec.history_attributes]
    args = [
        "--event-types", ",".join(spec.event_types),
        "--channels", ",".join(spec.channels),
        "--attributes", ",".join(static),
        "--history-attributes", ",".join(spec.history_attributes),
    ]
    return args, data.reports[1].rows_read, data.reports[1].rejected_total


def compare(ours: pd.DataFrame, peer: pd.DataFrame, label: str) -> None:
    """Print which of our columns ``peer`` has, and how many values differ (NaN = NaN)."""
    ours, peer = ours.set_index("account_id"), peer.set_index("account_id")
    columns = [c for c in ours.columns if c != "as_of"]
    covered = [c for c in columns if c in peer.columns]
    print(f"{label}: {len(covered)} of our {len(columns)} columns; accounts {len(ours):,} vs {len(peer):,}"
          + ("" if ours.index.equals(peer.index.sort_values()) else " (different accounts)"))
    peer = peer.reindex(ours.index)
    differ: dict[str, int] = {}
    rows = np.zeros(len(ours), dtype=bool)
    for col in covered:
        a, b = ours[col], peer[col]
        if pd.api.types.is_numeric_dtype(a.dtype) and pd.api.types.is_numeric_dtype(b.dtype):
            x, y = a.to_numpy(dtype=float, na_value=np.nan), b.to_numpy(dtype=float, na_value=np.nan)
            same = np.isclose(x, y, rtol=1e-9, atol=1e-9) | (np.isnan(x) & np.isnan(y))
        else:
            same = (a.astype("str").fillna("") == b.astype("str").fillna("")).to_numpy()
        if not same.all():
            differ[col] = int((~same).sum())
            rows |= ~same
    if differ:
        print(f"  values agree in {len(covered) - len(differ)} columns; {len(differ)} differ on {int(rows.sum()):,} accounts:")
        print("  " + ", ".join(f"{c} ({n})" for c, n in differ.items()))
    else:
        print(f"  values agree in all {len(covered)} columns")


def in_process(data_dir: Path, as_of: pd.Timestamp, cutoffs: str) -> None:
    """The stages inside one process, and a training table over many cutoffs."""
    from churn.config import FeatureConfig
    from churn.data.contract import load
    from churn.data.rules import OPTIONAL_INTERACTION_COLUMNS
    from churn.features.build import build_features
    from churn.features.labels import build_training_table, parse_cutoffs
    from churn.features.spec import FeatureSpec

    config = FeatureConfig()
    t = time.perf_counter()
    data = load(data_dir, interaction_columns=OPTIONAL_INTERACTION_COLUMNS, since=as_of - pd.Timedelta(days=config.lookback_days), until=as_of)
    t_load = time.perf_counter() - t
    read, accepted = data.interactions_read, data.interactions_accepted  # as `churn features`: no copy to drop rejects
    # every attribute: `churn features` leaves out those its attribute plan finds unknown at the
    # cutoff (none on generated data, whose history table dates every change)
    spec = FeatureSpec.from_data(data.accounts, read, config, history=data.attribute_history, rows=accepted)
    t = time.perf_counter()
    features = build_features(data.accounts, read, as_of=as_of, spec=spec, config=config, history=data.attribute_history, rows=accepted)
    t_feat = time.perf_counter() - t
    n = len(read) if accepted is None else int(accepted.sum())
    print(f"in process: load + validate {t_load:.1f} s; build_features {t_feat:.2f} s ({n / t_feat:,.0f} events/s, {len(features):,} accounts)")
    points = parse_cutoffs(cutoffs)
    full = load(data_dir, interaction_columns=OPTIONAL_INTERACTION_COLUMNS)
    t = time.perf_counter()  # includes copying the accepted rows once, if any were rejected
    table = build_training_table(full.accounts, full.interactions, cutoffs=points, config=config, history=full.attribute_history)
    print(f"in process: training table, {len(points)} cutoffs, {len(table):,} rows in {time.perf_counter() - t:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    business_arguments(parser)
    parser.add_argument("--compare-with", type=Path, help="an earlier version's output of the same command, to check ours is unchanged")
    parser.add_argument("--in-process", action="store_true", help="also time the stages in one process and a 12-cutoff training table")
    parser.add_argument("--cutoffs", default="2024-01-01:2024-12-01:1M")
    args = parser.parse_args()
    as_of = pd.Timestamp(args.as_of, tz="UTC")

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        data_dir = business(args.data, args.accounts, args.months, out)
        peer_args, events, rejected = peer_arguments(data_dir, as_of)
        total = sum(f.stat().st_size for f in data_dir.glob("*.parquet"))
        print(f"data: {data_dir} ({total / 1024**2:,.0f} MiB of Parquet, {interaction_count(data_dir):,} interactions)")
        print(f"events read: {events:,} in the 365 days before {as_of:%Y-%m-%d} ({rejected:,} rejected by our data contract, kept by the peer)")

        ours_cmd = [sys.executable, "-m", "churn", "features", "--data", str(data_dir), "--as-of", args.as_of, "--out", str(out / "ours.parquet")]
        peer_cmd = [sys.executable, str(HERE / "features_duckdb.py"), "--data", str(data_dir), "--as-of", args.as_of, "--out", str(out / "peer.parquet"), *peer_args]
        timed = alternate({"ours": ours_cmd, "duckdb": peer_cmd}, args.runs, child_env(out / "pycache"))
        wall, cpu = medians(timed)
        print(f"ratio ours / DuckDB (medians): wall {wall['ours'] / wall['duckdb']:.2f}×  (target ≤ 0.60×), CPU {cpu['ours'] / cpu['duckdb']:.2f}×")

        ours = pd.read_parquet(out / "ours.parquet")
        print(f"output: {len(ours):,} rows × {ours.shape[1]} columns ({ours.shape[1] - 2} features)")
        compare(ours, pd.read_parquet(out / "peer.parquet"), "DuckDB peer computes")
        if args.compare_with:
            compare(ours, pd.read_parquet(args.compare_with), f"{args.compare_with} has")
        if args.in_process:
            in_process(data_dir, as_of, args.cutoffs)


if __name__ == "__main__":
    main()
