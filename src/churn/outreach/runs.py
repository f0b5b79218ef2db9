"""The run store: every scoring run of an output folder, safe to repeat and to overlap.

Public API (the service, the notebooks and the CLI read runs only through these)::

    list_runs(out_dir) -> DataFrame          one row per run (one per as_of), oldest first
    latest_run(out_dir) -> dict | None        the record of the run with the greatest as_of
    run_dir(out_dir, run_id) -> Path          the folder holding every file of that run
    load_risk_list(out_dir, run_id=None)      a run's risk list (None = the latest run)
    account_history(out_dir, account_id)      one account's score, band, rank and flags over all runs
    previous_run(out_dir, as_of)              the risk list of the latest run before as_of
    write_run(out_dir, risk, record)          publish a run that is its risk list alone

Writers use :func:`locked` (one writer per folder at a time) and :func:`publish_run`; a run's
id comes from :func:`make_run_id`.

Layout of a scoring folder ``DIR``::

    DIR/.lock                 lock file (flock); names the pid and job holding it
    DIR/runs.jsonl            append-only run log, one JSON record per published run
    DIR/runs/<run_id>/        every file one run wrote: risk_list.csv/.parquet, run.json, report.html, ...
    DIR/latest -> runs/<run_id>            the latest run (greatest as_of), switched atomically
    DIR/risk_list.csv -> latest/risk_list.csv   one top-level link per file of the latest run

Why this shape. A run writes its files into its own folder, then appends its record to the log:
the log line is the commit point, so a run is visible only once all its files exist, and
two runs can never overwrite each other's files. The top-level names are symbolic links
through ``latest``: replacing that one link (``os.replace``, atomic) switches every top-level
file at once, so the CSV, the Parquet file and the report always come from the same run.
Re-running a date appends a new record that ``supersedes`` the old one; readers see one run
per ``as_of`` (the last published), and the superseded folder stays on disk for audits.

The lock is ``fcntl.flock`` on ``DIR/.lock``: the kernel releases it when the holder dies, so
a killed run never leaves the folder locked. A second writer waits up to its timeout, then
stops with a message naming the folder and the holder. (POSIX only; on network file systems
flock may not be honoured — keep scoring folders on local or block storage.)
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from churn.data.io import write_table

LOG_FILE = "runs.jsonl"
RUNS_DIR = "runs"
LATEST = "latest"
LOCK_FILE = ".lock"
RISK_LIST = "risk_list"
#: The contact log of a scoring folder (``churn contacts``); it belongs to the folder, not to a run.
CONTACTS_FILE = "contacts.parquet"
#: The layout before the run store: history/runs.jsonl and history/<run_id>.parquet.
LEGACY_DIR = "history"
#: Names at the top of a scoring folder that are never links to a run's file.
RESERVED = frozenset({LOG_FILE, RUNS_DIR, LATEST, LOCK_FILE, LEGACY_DIR, CONTACTS_FILE})
HISTORY_COLUMNS = ["run_id", "as_of", "scored_at", "model"]
ACCOUNT_HISTORY_COLUMNS = ["as_of", "run_id", "churn_probability", "risk_band", "rank", "outreach", "control"]


class FolderLockedError(ValueError):
    """Another run holds the scoring folder's lock and did not release it in time."""


class NoRunError(ValueError):
    """The scoring folder holds no (such) run."""


# --------------------------------------------------------------------------- lock

_held = threading.local()  # folders this thread holds, so nested writers do not deadlock


@contextmanager
def locked(out_dir: str | os.PathLike[str], *, timeout: float = 900.0, holder: str = "", poll: float = 0.2) -> Iterator[None]:
    """Hold the folder's exclusive lock for the block; wait up to ``timeout`` seconds for it.

    Re-entrant within one thread (a scoring run that calls another writer keeps its lock);
    other threads and processes wait. Raises :class:`FolderLockedError` naming the holder.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    key = str(out.resolve())
    held: set[str] = getattr(_held, "folders", set())
    if key in held:
        yield
        return
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise FolderLockedError(_locked_message(out, timeout)) from None
                time.sleep(poll)
        since = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "holder": holder, "since": since}).encode(), 0)
        _held.folders = held | {key}
        try:
            yield
        finally:
            _held.folders = held
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _locked_message(out: Path, timeout: float) -> str:
    try:
        info = json.loads((out / LOCK_FILE).read_text(encoding="utf-8"))
        who = f"pid {info.get('pid')}, {info.get('holder') or 'unnamed job'}, since {info.get('since')}"
    except (OSError, ValueError):
        who = "holder unknown"
    return (
        f"scoring folder {out} is in use by another run ({who}); gave up after waiting {timeout:g} s. "
        f"Let it finish and try again, or write to another folder."
    )


# --------------------------------------------------------------------------- reading


def read_log(out_dir: str | os.PathLike[str]) -> list[dict]:
    """Every published record in log order, superseded ones included (an audit trail).

    A last line without its newline is a write that never completed and is ignored.
    """
    out = Path(out_dir)
    path = out / LOG_FILE
    if not path.exists():
        legacy = out / LEGACY_DIR / LOG_FILE
        if not legacy.exists():
            return []
        path = legacy
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")[:-1]  # the part after the last newline is incomplete (or empty)
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: line {number} is not a JSON run record ({exc.msg})") from None
    return records


def _effective(records: list[dict]) -> list[dict]:
    """One record per as_of: the last published."""
    by_date: dict[str, dict] = {}
    for record in records:
        by_date.pop(str(record["as_of"]), None)
        by_date[str(record["as_of"])] = record
    return list(by_date.values())


def list_runs(out_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per run, oldest ``as_of`` first: ``run_id``, ``as_of`` (UTC), ``scored_at``,
    ``model`` and every other field of the run record."""
    records = _effective(read_log(out_dir))
    if not records:
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    frame = pd.DataFrame(records)
    for col in HISTORY_COLUMNS:
        if col not in frame.columns:
            frame[col] = None
    frame["as_of"] = pd.to_datetime(frame["as_of"], utc=True)
    return frame.sort_values("as_of", kind="stable").reset_index(drop=True)


def latest_run(out_dir: str | os.PathLike[str]) -> dict | None:
    """The record of the run with the greatest ``as_of`` (the last published among equals)."""
    records = _effective(read_log(out_dir))
    if not records:
        return None
    return max(enumerate(records), key=lambda item: (pd.Timestamp(item[1]["as_of"]), item[0]))[1]


def run_dir(out_dir: str | os.PathLike[str], run_id: str) -> Path:
    """The folder of one run (not checked for existence)."""
    return Path(out_dir) / RUNS_DIR / str(run_id)


def _risk_list_path(out_dir: str | os.PathLike[str], run_id: str) -> Path:
    path = run_dir(out_dir, run_id) / f"{RISK_LIST}.parquet"
    legacy = Path(out_dir) / LEGACY_DIR / f"{run_id}.parquet"
    return legacy if not path.exists() and legacy.exists() else path


def load_risk_list(out_dir: str | os.PathLike[str], run_id: str | None = None, columns: list[str] | None = None) -> pd.DataFrame:
    """A run's risk list (``run_id`` None: the latest run). ``columns`` picks a subset; names a
    run does not have (e.g. columns added by a later version) are skipped."""
    if run_id is None:
        latest = latest_run(out_dir)
        if latest is None:
            raise NoRunError(f"{out_dir} holds no scoring run")
        run_id = str(latest["run_id"])
    path = _risk_list_path(out_dir, run_id)
    if not path.exists():
        raise NoRunError(f"{out_dir} has no run {run_id!r} (no {path})")
    if columns is not None:
        present = set(pq.read_schema(path).names)
        columns = [c for c in columns if c in present]
    return pd.read_parquet(path, columns=columns)


def account_history(out_dir: str | os.PathLike[str], account_id: str) -> pd.DataFrame:
    """One account over every run: as_of, run_id, churn_probability, risk_band, rank,
    outreach, control (and assigned_as_of where recorded), oldest first."""
    wanted = ["account_id", *ACCOUNT_HISTORY_COLUMNS[2:], "assigned_as_of"]
    frames = []
    for run in list_runs(out_dir).itertuples(index=False):
        path = _risk_list_path(out_dir, run.run_id)
        present = set(pq.read_schema(path).names)
        rows = pd.read_parquet(path, columns=[c for c in wanted if c in present], filters=[("account_id", "==", str(account_id))])
        if len(rows):
            frames.append(rows.drop(columns="account_id").assign(as_of=run.as_of, run_id=run.run_id))
    if not frames:
        return pd.DataFrame(columns=ACCOUNT_HISTORY_COLUMNS)
    frame = pd.concat(frames, ignore_index=True)
    rest = [c for c in frame.columns if c not in ACCOUNT_HISTORY_COLUMNS]
    return frame[ACCOUNT_HISTORY_COLUMNS + rest]


def previous_record(out_dir: str | os.PathLike[str], as_of: pd.Timestamp) -> dict | None:
    """The record of the latest run before ``as_of``."""
    earlier = [r for r in _effective(read_log(out_dir)) if pd.Timestamp(r["as_of"], tz="UTC") < as_of]
    if not earlier:
        return None
    return max(enumerate(earlier), key=lambda item: (pd.Timestamp(item[1]["as_of"]), item[0]))[1]


# --------------------------------------------------------------------------- writing (hold the lock)


def write_risk_list(folder: Path, risk: pd.DataFrame) -> dict[str, Path]:
    """The risk list as CSV (for people) and Parquet (for programs), each atomically."""
    return {"csv": write_table(risk, folder / RISK_LIST, "csv"), "parquet": write_table(risk, folder / RISK_LIST, "parquet")}


def publish_run(out_dir: str | os.PathLike[str], record: dict) -> dict:
    """Commit a run whose files are complete in ``run_dir(out_dir, record["run_id"])``.

    Appends the record (with ``supersedes``: the run it replaces for the same ``as_of``, and
    ``files``: what the folder holds) to the log, then points ``latest`` and the top-level
    links at the latest run. The caller holds :func:`locked`.
    """
    out = Path(out_dir)
    folder = run_dir(out, str(record["run_id"]))
    if not (folder / f"{RISK_LIST}.parquet").exists():
        raise ValueError(f"{folder} has no {RISK_LIST}.parquet: nothing to publish")
    same_date = [r for r in _effective(read_log(out)) if str(r["as_of"]) == str(record["as_of"]) and r["run_id"] != record["run_id"]]
    record = {**record, "supersedes": same_date[-1]["run_id"] if same_date else None, "files": _run_files(folder)}
    _append(out / LOG_FILE, json.dumps(record, default=str) + "\n")
    refresh_links(out)
    return record


def _run_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _append(path: Path, line: str) -> None:
    """One write(2) on an O_APPEND descriptor: the line lands whole after every earlier one.
    A torn line left by a crash is cut first (it was never committed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            text = os.pread(fd, size, 0)
            os.ftruncate(fd, text.rfind(b"\n") + 1)
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_link(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` atomically (a new link renamed over the old name)."""
    if link.is_symlink() and os.readlink(link) == target:
        return
    tmp = link.with_name(f".{link.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def refresh_links(out_dir: str | os.PathLike[str]) -> None:
    """Point ``latest`` at the latest run, add a top-level link for each of its files and drop
    links to files it does not have. Only links into ``latest/`` are ever removed."""
    out = Path(out_dir)
    record = latest_run(out)
    if record is None:
        return
    folder = run_dir(out, str(record["run_id"]))
    if not folder.is_dir():
        return
    _replace_link(out / LATEST, f"{RUNS_DIR}/{record['run_id']}")
    names = set(_run_files(folder)) - RESERVED
    for name in sorted(names):
        path = out / name
        if path.is_dir() and not path.is_symlink():
            continue  # never replace a folder someone keeps there
        _replace_link(path, f"{LATEST}/{name}")
    for path in out.iterdir():
        if path.is_symlink() and path.name not in names and os.readlink(path).startswith(f"{LATEST}/"):
            path.unlink()


def migrate_legacy(out_dir: str | os.PathLike[str]) -> bool:
    """Move a folder written before the run store (``history/``) into this layout.

    Each ``history/<run_id>.parquet`` becomes ``runs/<run_id>/risk_list.parquet``; the
    top-level files (the last run's) move into the last run's folder; the old log becomes
    ``runs.jsonl``. The caller holds :func:`locked`. Returns whether anything was moved.
    """
    out = Path(out_dir)
    legacy_log = out / LEGACY_DIR / LOG_FILE
    if (out / LOG_FILE).exists() or not legacy_log.exists():
        return False
    records = read_log(out)
    for record in records:
        source = out / LEGACY_DIR / f"{record['run_id']}.parquet"
        folder = run_dir(out, str(record["run_id"]))
        folder.mkdir(parents=True, exist_ok=True)
        if source.exists():
            os.replace(source, folder / f"{RISK_LIST}.parquet")
    if records:
        last = run_dir(out, str(records[-1]["run_id"]))
        for path in out.iterdir():
            if path.is_file() and not path.is_symlink() and path.name not in RESERVED and not path.name.startswith("."):
                os.replace(path, last / path.name)
    lines = [json.dumps({**r, "files": _run_files(run_dir(out, str(r["run_id"])))}, default=str) + "\n" for r in records]
    _append(out / LOG_FILE, "".join(lines))  # one write: the new log appears whole
    shutil.rmtree(out / LEGACY_DIR)
    refresh_links(out)
    return True


def upgrade(out_dir: str | os.PathLike[str], *, timeout: float = 900.0) -> None:
    """Move a folder from before the run store into this layout (taking the lock only then)."""
    if (Path(out_dir) / LEGACY_DIR / LOG_FILE).exists():
        with locked(out_dir, timeout=timeout, holder="moving history/ into runs/"):
            migrate_legacy(out_dir)


def make_run_id(as_of: pd.Timestamp, now: pd.Timestamp) -> str:
    """A run's id: its date, then when it was scored (so two runs of one date never collide)."""
    return f"{as_of:%Y%m%d}-{now:%Y%m%dT%H%M%S%f}"


def previous_run(out_dir: Path, as_of: pd.Timestamp) -> pd.DataFrame | None:
    """The risk list of the latest earlier run (by as_of)."""
    record = previous_record(out_dir, as_of)
    return None if record is None else load_risk_list(out_dir, str(record["run_id"]))


def write_run(out_dir: Path, risk: pd.DataFrame, record: dict[str, object], *, timeout: float = 900.0) -> dict[str, Path]:
    """Publish a run that consists of its risk list alone, under the folder's lock.

    ``churn score`` writes more per run (report, monitoring, outcomes: see
    :func:`churn.jobs.weekly.score_run`); this is for building a scoring history from lists
    made elsewhere — the benchmarks and tests use it."""
    with locked(out_dir, timeout=timeout, holder=f"write run {record['run_id']}"):
        migrate_legacy(out_dir)
        paths = write_risk_list(run_dir(out_dir, str(record["run_id"])), risk)
        publish_run(out_dir, record)
    return paths
