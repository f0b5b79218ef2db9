"""The run store: one folder per run, an append-only log, `latest`, the lock, concurrency."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from churn.outreach import runs
from churn.outreach.runs import list_runs, load_risk_list, previous_run, write_run


def risk_list(as_of: str, n: int = 5, p: float = 0.1) -> pd.DataFrame:
    t = pd.Timestamp(as_of, tz="UTC")
    return pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in range(n)],
            "as_of": pd.Series([t] * n, dtype="datetime64[ns, UTC]"),
            "rank": range(1, n + 1),
            "churn_probability": [p * (n - i) for i in range(n)],
            "risk_band": ["high"] + ["low"] * (n - 1),
            "outreach": [True, False] + [False] * (n - 2),
            "control": [False, True] + [False] * (n - 2),
        }
    )


def record(run_id: str, as_of: str, **extra: object) -> dict:
    return {"run_id": run_id, "as_of": as_of, "scored_at": f"{as_of} 06:00:00 UTC", "model": "m", "churn": {"horizon_days": 30, "kind": "auto"}, **extra}


def test_runs_are_folders_with_a_log_and_a_latest_link(tmp_path: Path) -> None:
    write_run(tmp_path, risk_list("2024-03-04"), record("r1", "2024-03-04"))
    write_run(tmp_path, risk_list("2024-03-11", p=0.2), record("r2", "2024-03-11"))
    history = runs.list_runs(tmp_path)
    assert history["run_id"].tolist() == ["r1", "r2"]
    assert history["as_of"].tolist() == [pd.Timestamp("2024-03-04", tz="UTC"), pd.Timestamp("2024-03-11", tz="UTC")]
    assert {"scored_at", "model", "churn", "supersedes", "files"} <= set(history.columns)
    assert runs.latest_run(tmp_path)["run_id"] == "r2"
    assert runs.run_dir(tmp_path, "r1") == tmp_path / "runs" / "r1"
    assert sorted(p.name for p in runs.run_dir(tmp_path, "r1").iterdir()) == ["risk_list.csv", "risk_list.parquet"]
    # top-level names are links through `latest` to the latest run's files
    assert os.readlink(tmp_path / "latest") == "runs/r2"
    assert os.readlink(tmp_path / "risk_list.csv") == "latest/risk_list.csv"
    assert pd.read_csv(tmp_path / "risk_list.csv")["churn_probability"].iloc[0] == pytest.approx(1.0)
    pd.testing.assert_frame_equal(runs.load_risk_list(tmp_path), load_risk_list(tmp_path, "r2"))
    assert runs.load_risk_list(tmp_path, "r1", columns=["account_id", "nope"]).columns.tolist() == ["account_id"]
    assert previous_run(tmp_path, pd.Timestamp("2024-03-11", tz="UTC"))["as_of"].iloc[0] == pd.Timestamp("2024-03-04", tz="UTC")
    history_a1 = runs.account_history(tmp_path, "a1")
    assert history_a1.columns.tolist()[:7] == runs.ACCOUNT_HISTORY_COLUMNS
    assert history_a1[["run_id", "churn_probability", "control"]].values.tolist() == [["r1", pytest.approx(0.4), True], ["r2", pytest.approx(0.8), True]]
    assert runs.account_history(tmp_path, "nobody").empty
    assert not list(tmp_path.rglob(".*.tmp"))
    with pytest.raises(runs.NoRunError, match="no run 'r9'"):
        runs.load_risk_list(tmp_path, "r9")
    assert runs.latest_run(tmp_path / "empty") is None and list_runs(tmp_path / "empty").columns.tolist() == runs.HISTORY_COLUMNS


def test_rerunning_a_date_replaces_it_and_an_old_date_does_not_move_latest(tmp_path: Path) -> None:
    write_run(tmp_path, risk_list("2024-03-04"), record("r1", "2024-03-04"))
    write_run(tmp_path, risk_list("2024-03-11"), record("r2", "2024-03-11"))
    write_run(tmp_path, risk_list("2024-03-04", p=0.05), record("r1b", "2024-03-04"))
    assert list_runs(tmp_path)["run_id"].tolist() == ["r1b", "r2"]  # one run per as_of
    log = runs.read_log(tmp_path)
    assert [r["run_id"] for r in log] == ["r1", "r2", "r1b"] and log[-1]["supersedes"] == "r1"
    assert runs.latest_run(tmp_path)["run_id"] == "r2" and os.readlink(tmp_path / "latest") == "runs/r2"
    assert runs.account_history(tmp_path, "a0")["run_id"].tolist() == ["r1b", "r2"]
    write_run(tmp_path, risk_list("2024-03-11"), record("r2b", "2024-03-11"))
    assert os.readlink(tmp_path / "latest") == "runs/r2b"


def test_top_level_links_follow_the_latest_runs_files_and_spare_other_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "notes.txt").write_text("mine")
    with runs.locked(tmp_path):
        folder = runs.run_dir(tmp_path, "r1")
        runs.write_risk_list(folder, risk_list("2024-03-04"))
        (folder / "monitoring.json").write_text("{}")
        published = runs.publish_run(tmp_path, record("r1", "2024-03-04"))
    assert published["files"] == ["monitoring.json", "risk_list.csv", "risk_list.parquet"]
    assert (tmp_path / "monitoring.json").read_text() == "{}"
    write_run(tmp_path, risk_list("2024-03-11"), record("r2", "2024-03-11"))  # writes no monitoring.json
    assert not (tmp_path / "monitoring.json").exists() and not (tmp_path / "monitoring.json").is_symlink()
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_torn_last_line_is_ignored_then_cut_and_a_corrupt_line_is_named(tmp_path: Path) -> None:
    write_run(tmp_path, risk_list("2024-03-04"), record("r1", "2024-03-04"))
    with open(tmp_path / runs.LOG_FILE, "a", encoding="utf-8") as f:
        f.write('{"run_id": "r2", "as_of": "2024-03')  # a writer died mid-line
    assert [r["run_id"] for r in runs.read_log(tmp_path)] == ["r1"]
    write_run(tmp_path, risk_list("2024-03-11"), record("r3", "2024-03-11"))
    assert [r["run_id"] for r in runs.read_log(tmp_path)] == ["r1", "r3"]
    (tmp_path / runs.LOG_FILE).write_text('{"run_id": "r1", "as_of": "2024-03-04"}\nnot json\n')
    with pytest.raises(ValueError, match=r"runs.jsonl: line 2 is not a JSON run record"):
        runs.read_log(tmp_path)


def test_a_second_writer_waits_then_stops_naming_the_holder(tmp_path: Path) -> None:
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with runs.locked(tmp_path, holder="churn score as of 2024-03-04"):
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        holding.wait(30)
        with pytest.raises(runs.FolderLockedError) as err:
            with runs.locked(tmp_path, timeout=0.3):
                pass
        message = str(err.value)
        assert str(tmp_path) in message and f"pid {os.getpid()}" in message and "churn score as of 2024-03-04" in message
        assert "gave up after waiting 0.3 s" in message
    finally:
        release.set()
        thread.join()
    with runs.locked(tmp_path, timeout=0):  # released: free at once
        with runs.locked(tmp_path, timeout=0):  # and re-entrant in one thread
            pass


def test_the_lock_dies_with_its_holder(tmp_path: Path) -> None:
    code = "import sys, time; from churn.outreach.runs import locked\nwith locked(sys.argv[1], holder='doomed'):\n    print('held', flush=True); time.sleep(60)"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(runs.FolderLockedError, match="doomed"):
            with runs.locked(tmp_path, timeout=0):
                pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    with runs.locked(tmp_path, timeout=5):  # a killed run never leaves the folder locked
        pass


def _write_many(folder: str, worker: int, count: int) -> None:
    for k in range(count):
        day = pd.Timestamp("2024-01-01") + pd.Timedelta(days=worker * count + k)
        write_run(Path(folder), risk_list(f"{day:%Y-%m-%d}", n=200), record(f"w{worker}-{k}", f"{day:%Y-%m-%d}"))


def test_concurrent_writers_lose_no_record(tmp_path: Path) -> None:
    workers, count = 2, 6
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_write_many, args=(str(tmp_path), w, count)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * workers
    log = runs.read_log(tmp_path)
    assert len(log) == workers * count and len({r["run_id"] for r in log}) == workers * count
    history = runs.list_runs(tmp_path)
    assert len(history) == workers * count and history["as_of"].is_monotonic_increasing
    for run_id in history["run_id"]:
        assert len(runs.load_risk_list(tmp_path, run_id)) == 200
    assert os.readlink(tmp_path / "latest") == f"runs/{history['run_id'].iloc[-1]}"
    assert (tmp_path / runs.LOG_FILE).read_text().count("\n") == workers * count


def test_a_folder_from_before_the_run_store_is_moved_in(tmp_path: Path) -> None:
    (tmp_path / "history").mkdir()
    for run_id, as_of in (("old1", "2024-02-01"), ("old2", "2024-03-01")):
        risk_list(as_of).to_parquet(tmp_path / "history" / f"{run_id}.parquet")
    (tmp_path / "history" / "runs.jsonl").write_text("".join(json.dumps(record(r, a)) + "\n" for r, a in (("old1", "2024-02-01"), ("old2", "2024-03-01"))))
    risk_list("2024-03-01").to_csv(tmp_path / "risk_list.csv", index=False)
    (tmp_path / "report.html").write_text("<html>old2</html>")
    assert runs.list_runs(tmp_path)["run_id"].tolist() == ["old1", "old2"]  # readable before moving
    assert len(runs.load_risk_list(tmp_path, "old1")) == 5
    write_run(tmp_path, risk_list("2024-04-01"), record("new", "2024-04-01"))
    assert not (tmp_path / "history").exists()
    assert runs.list_runs(tmp_path)["run_id"].tolist() == ["old1", "old2", "new"]
    assert (runs.run_dir(tmp_path, "old2") / "report.html").read_text() == "<html>old2</html>"
    assert len(runs.load_risk_list(tmp_path, "old1")) == 5
    assert os.readlink(tmp_path / "risk_list.csv") == "latest/risk_list.csv" and os.readlink(tmp_path / "latest") == "runs/new"
    assert not (tmp_path / "report.html").exists()  # the new run has no report: no top-level one
