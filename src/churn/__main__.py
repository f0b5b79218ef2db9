"""``churn`` on the command line (the console script and ``python -m churn``).

The command line is imported here with the garbage collector off, and the modules' objects are
then frozen out of every later collection's way: importing pandas, typer and rich makes objects
and hardly any garbage, and the ~180 collections that ran meanwhile were a fifth of the start-up.
Here, not in ``churn.cli``: a notebook or a test that imports ``churn.cli`` keeps its own
collector's state and has none of its objects frozen."""

from __future__ import annotations

import gc
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


def main() -> None:
    """Console entry point."""
    load_cli()()


if __name__ == "__main__":
    main()
