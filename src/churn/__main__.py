"""``churn`` on the command line (the console script and ``python -m churn``).

The command line is imported here with the garbage collector off, and the modules' objects are
then frozen out of every later collection's way: importing pandas, typer and rich makes objects
and hardly any garbage, and the ~180 collections that ran meanwhile were a fifth of the start-up.
Here, not in ``churn.cli``: a notebook or a test that imports ``churn.cli`` keeps its own
collector's state and has none of its objects frozen."""

from __future__ import annotations

import gc
import sys
from typing import Callable


def load_cli() -> Callable[[], None]:
    """Import the command line without collecting garbage meanwhile; its entry point."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        from churn.cli import run
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
    return run


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep the memory a command frees for its next arrays, instead of
    handing large blocks back to the kernel (``mmap``/``munmap``, trimming the heap): every
    page it asks the kernel for again is a page fault that zeroes it — and, on a virtual
    machine, sometimes one on the host as well. A batch command frees and allocates arrays of
    the same sizes step after step: `churn features` on 6.9M interactions then faults in
    35,000 small and 120 huge pages fewer (about 380 MB), with the same peak memory. A freed
    block is not handed back, so a command holds its highest memory to the end, and where freed
    blocks do not fit the next ones its peak can rise a little. Not for `churn serve`, which
    runs for days.
    Returns whether it applied: glibc only (``mallopt``); elsewhere nothing changes."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (macOS, Windows)
        return False
    no_mmap, trim_threshold = -4, -1  # M_MMAP_MAX, M_TRIM_THRESHOLD (malloc.h)
    return bool(mallopt(no_mmap, 0) == 1 and mallopt(trim_threshold, 2**31 - 1) == 1)


def main() -> None:
    """Console entry point."""
    if sys.argv[1:2] != ["serve"]:
        keep_freed_memory()
    load_cli()()


if __name__ == "__main__":
    main()
