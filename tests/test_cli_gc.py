"""The command line spends no time in garbage collections that find nothing: none while it
imports (the modules' objects are frozen after), and ``churn features`` none at exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from churn.cli import app


def test_the_command_line_imports_without_collecting_garbage_and_then_freezes_them() -> None:
    """Importing pandas, typer and rich runs ~180 collections that find nothing to free:
    churn.cli imports with the collector off, then freezes the modules' objects (out of every
    later collection's way) and turns it back on."""
    code = "import gc, churn.cli\nprint(gc.isenabled(), gc.get_freeze_count() > 10_000)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]


def test_the_final_garbage_collection_is_left_out_at_exit(small_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At exit Python's last collections pass over every object left (~0.1 s after a 10M-event
    run): ``churn features`` freezes them at its last exit hook instead."""
    import atexit
    import gc

    hooks: list[object] = []
    monkeypatch.setattr(atexit, "register", hooks.append)
    result = CliRunner().invoke(app, ["features", "--data", str(small_data_dir), "--as-of", "2024-03-01", "--out", str(tmp_path / "f.parquet")])
    assert result.exit_code == 0, result.output
    assert gc.freeze in hooks
