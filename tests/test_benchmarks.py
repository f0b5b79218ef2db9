"""Every script in benchmarks/ runs at toy size, so none rots as the code moves.

Each is run as a user runs it (``python benchmarks/NAME.py``, a fresh process) with sizes
small enough for seconds; the figures it prints are not judged here (tests never assert on
wall-clock time), only that it runs to the end and prints its closing figures.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.needs import missing
from tests.pg_support import pg_bin

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

#: script → (toy arguments, a line its last part prints)
TOY_RUNS: dict[str, tuple[list[str], str]] = {
    "generate.py": (["--accounts", "200", "--months", "3"], "peak RSS"),
    "features.py": (["--accounts", "250", "--months", "24", "--runs", "1"], "values agree in all"),
    "score.py": (["--accounts", "300", "--rows", "500", "--exact", "50"], "3. full risk list"),
    "monitor.py": (["--accounts", "300", "--rows", "500", "--repeats", "1"], "monitoring adds"),
    "reasons.py": (["--seeds", "1", "--accounts", "300", "--months", "12", "--capacity", "20"], "dominant_family"),
    "serve.py": (["--accounts", "300", "--rows", "500", "--runs", "2", "--requests", "8", "--score-requests", "4", "--load-seconds", "1"], "server peak RSS"),
    "quality.py": (["--part", "all", "--splits", "1", "--seeds", "1", "--accounts", "400"], "after: weekly cutoffs"),
    "spark.py": (["--accounts", "150", "--buckets", "2"], "same result                True"),
    "survival.py": (["--seeds", "1", "--accounts", "300", "--months", "30", "--split", "time"], "model − planted truth, on average"),
    "database.py": (["--accounts", "200", "--months", "24", "--runs", "1"], "PostgreSQL output equals the Parquet output: True"),
    "uplift.py": (["--accounts", "600", "--cycles", "3", "--capacity", "20", "--seeds", "1", "--informed"], "Qini of the learned uplift model"),
    "uplift_groups.py": (["--accounts", "600", "--dates", "2", "--top", "20", "--folds", "2"], "true group × value"),
    "uplift_offline.py": (["--accounts", "600", "--capacity", "20", "--cycles", "8", "--dates", "2", "--learners", "shift,t,x"], "evidence for a split"),
    "attack.py": (
        ["--accounts", "300", "--train-accounts", "300", "--body-mb", "4", "--events", "20", "--string-mb", "0.25", "--logins", "20", "--max-interactions", "50", "--max-body-mb", "1"],
        "server peak RSS",
    ),
}


def test_every_benchmark_has_a_toy_run() -> None:
    scripts = {p.name for p in BENCHMARKS.glob("*.py")} - {"features_duckdb.py"}  # the peer features.py runs
    assert scripts == set(TOY_RUNS), "add the new benchmark to TOY_RUNS"


@pytest.mark.parametrize("script", sorted(TOY_RUNS))
def test_benchmark_runs_at_toy_size(script: str, tmp_path: Path) -> None:
    args, closing = TOY_RUNS[script]
    if script == "database.py" and pg_bin() is None:  # it starts its own throw-away cluster
        missing("PostgreSQL (initdb, pg_ctl)", "apt-get install postgresql")
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True, cwd=tmp_path, timeout=600
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert closing in result.stdout, result.stdout[-3000:]


def test_a_timed_command_reports_its_own_peak_memory_not_the_benchmarks() -> None:
    """On Linux a child's ``ru_maxrss`` starts from the high-water mark of the process it was
    forked from; the benchmarks time their commands from a small runner process, so a benchmark
    holding 400 MB itself still reports a small command as small."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import features, numpy as np; "
        "held = np.ones(50_000_000); print(features.run_command([sys.executable, '-c', 'pass'])[2], held.sum() > 0)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(BENCHMARKS)], capture_output=True, text=True, check=True).stdout.split()
    assert float(out[0]) < 0.2 and out[1] == "True"


def test_a_command_that_cannot_start_is_reported_and_the_runner_goes_on() -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import features\n"
        "try:\n    features.run_command(['/no/such/program'])\nexcept SystemExit as exc:\n    print('refused:', str(exc)[:60])\n"
        "print(features.run_command([sys.executable, '-c', 'pass'])[0] >= 0)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(BENCHMARKS)], capture_output=True, text=True, check=True).stdout
    assert "refused: /no/such/program failed (127)" in out and out.strip().endswith("True")
