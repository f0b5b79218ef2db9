"""The ``churn`` command line: each command parses its options, calls one function of a
stage (mostly :mod:`churn.jobs`) and prints through :mod:`churn.cli.render`.

Imports: anything below it; nothing imports the CLI.
"""

from churn.cli.commands import app, run

__all__ = ["app", "run"]
