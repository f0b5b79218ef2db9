"""A throw-away PostgreSQL cluster for the tests: ``initdb`` into a temporary folder and
``pg_ctl`` on a free local port (password login over TCP, its unix socket in the same folder),
stopped and removed after the session. No mocks: the tests talk to a real server.

As root (a container, a CI runner) the server cannot run as root, so initdb and pg_ctl run as
the ``postgres`` user (``runuser``), which the distribution's package creates. Debian keeps the
binaries in /usr/lib/postgresql/<version>/bin, off PATH: they are looked for there too. Every
statement the server receives is logged (``log_statement=all``) so a test can read what SQL
was sent. Missing PostgreSQL: skipped on a developer's machine, a failure under CI=true
(``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from tests.needs import missing

PASSWORD = "s3cret-Pw"


def pg_bin() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return versions[-1].parent if versions else None


@dataclass(frozen=True)
class Cluster:
    port: int
    user: str
    folder: Path

    def url(self, database: str = "postgres", password: str = PASSWORD) -> str:
        return f"postgresql://{self.user}:{password}@127.0.0.1:{self.port}/{database}"

    def statements(self) -> str:
        """The server's log: every statement sent so far."""
        return (self.folder / "server.log").read_text(encoding="utf-8", errors="replace")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(command: list[str]) -> list[str]:
    """``command`` as the ``postgres`` user when running as root (the server refuses root)."""
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser")
    return [runuser, "-u", "postgres", "--", *command] if runuser else ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(command)]


def start(bin_dir: Path) -> Cluster:
    folder = Path(tempfile.mkdtemp(prefix="churn-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    (folder / "pw").write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(folder / "pw", "postgres", "postgres")
    port = _free_port()
    run = lambda *args: subprocess.run(_as_server_user([str(a) for a in args]), check=True, capture_output=True, text=True, timeout=120)  # noqa: E731
    run(bin_dir / "initdb", "-D", folder / "data", "-U", "churn", "--auth=scram-sha-256", f"--pwfile={folder / 'pw'}", "-E", "UTF8", "--no-sync", "--no-instructions")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c log_statement=all -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    run(bin_dir / "pg_ctl", "-D", folder / "data", "-l", folder / "server.log", "-o", options, "-w", "-t", "60", "start")
    return Cluster(port, "churn", folder)


def stop(bin_dir: Path, cluster: Cluster) -> None:
    subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(cluster.folder / "data"), "-m", "immediate", "-w", "stop"]), capture_output=True, timeout=60)
    shutil.rmtree(cluster.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """A running PostgreSQL for the session (skipped, or failed under CI=true, without one)."""
    bin_dir = pg_bin()
    if bin_dir is None:
        missing("PostgreSQL (initdb, pg_ctl)", "apt-get install postgresql")
    try:
        import adbc_driver_postgresql  # noqa: F401
    except ImportError:
        missing("adbc-driver-postgresql", "pip install -e '.[test]'")
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            missing("the postgres user (PostgreSQL refuses to run as root)", "apt-get install postgresql creates it")
    try:
        cluster = start(bin_dir)  # type: ignore[arg-type]
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"could not start a PostgreSQL cluster: {exc.stderr or exc.stdout}", pytrace=False)
    try:
        yield cluster
    finally:
        stop(bin_dir, cluster)  # type: ignore[arg-type]
