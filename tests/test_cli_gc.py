"""The command line spends no time in garbage collections that find nothing: none while it
imports (the modules' objects are frozen after), and ``churn features`` none at exit — and a
plain ``import churn.cli`` (a notebook, a test) leaves the collector as it found it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from churn.cli import app, commands


def _python(code: str) -> list[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()


def test_the_command_line_imports_without_collecting_garbage_and_then_freezes_them() -> None:
    """Importing pandas, typer and rich runs ~180 collections that find nothing to free: the
    entry point imports the command line with the collector off, then freezes the modules'
    objects (out of every later collection's way) and turns it back on."""
    assert _python("import gc\nfrom churn.__main__ import load_cli\nload_cli()\nprint(gc.isenabled(), gc.get_freeze_count() > 10_000)") == ["True", "True"]


def test_importing_the_cli_module_leaves_the_collector_alone() -> None:
    """Only the entry point freezes: a caller's collector stays off if it was off, and none of
    its objects are frozen (they could never be collected again)."""
    assert _python("import gc\ngc.disable()\nimport churn.cli\nprint(gc.isenabled(), gc.get_freeze_count())") == ["False", "0"]


def test_the_console_script_runs_through_the_entry_point() -> None:
    out = subprocess.run([sys.executable, "-m", "churn", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "features" in out.stdout, out.stderr


def test_the_final_garbage_collection_is_left_out_at_exit(small_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At exit Python's last collections pass over every object left (~0.1 s after a 10M-event
    run): ``churn features`` freezes them in an exit hook instead — one hook, however often the
    command runs in one process."""
    import gc

    hooks: list[object] = []
    fake = SimpleNamespace(register=hooks.append, unregister=lambda f: hooks.remove(f) if f in hooks else None)
    monkeypatch.setattr(commands, "atexit", fake)  # only the command's view of atexit, not the process's
    for _ in range(2):
        result = CliRunner().invoke(app, ["features", "--data", str(small_data_dir), "--as-of", "2024-03-01", "--out", str(tmp_path / "f.parquet")])
        assert result.exit_code == 0, result.output
    assert hooks == [gc.freeze]


_MAPPED_BYTES = """
import ctypes
import numpy as np
from churn.__main__ import keep_freed_memory
class Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Mallinfo2
applied = {apply} and keep_freed_memory()
block = np.ones(8 * 2**20)  # 64 MiB: glibc maps a block this large on its own, unless told not to
print(applied, libc.mallinfo2().hblkhd >= block.nbytes)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_a_batch_command_keeps_large_blocks_in_the_heap() -> None:
    """glibc's malloc gives a large block its own mapping, unmapped when freed, and the next
    one faults in fresh zeroed pages: a batch command keeps them in the heap for reuse."""
    assert _python(_MAPPED_BYTES.format(apply=False)) == ["False", "True"]
    assert _python(_MAPPED_BYTES.format(apply=True)) == ["True", "False"]


@pytest.mark.parametrize(("argv", "kept"), [(["churn", "features", "--data", "d"], True), (["churn", "serve"], False)])
def test_every_command_but_the_server_keeps_freed_memory(monkeypatch: pytest.MonkeyPatch, argv: list[str], kept: bool) -> None:
    import churn.__main__ as entry

    calls: list[str] = []
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(entry, "keep_freed_memory", lambda: calls.append("kept") or True)
    monkeypatch.setattr(entry, "load_cli", lambda: lambda: calls.append("ran"))
    entry.main()
    assert calls == (["kept", "ran"] if kept else ["ran"])
