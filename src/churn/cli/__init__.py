"""The ``churn`` command line: each command parses its options, calls a job of
:mod:`churn.jobs` (the simplest ones a stage function directly) and prints through
:mod:`churn.cli.render`.

Imports: anything below it; nothing imports the CLI.
"""

from churn.cli import serve as _serve  # noqa: F401  (registers `churn serve` on the app)
from churn.cli import simulate as _simulate  # noqa: F401  (registers `churn simulate` on the app)
from churn.cli import uplift as _uplift  # noqa: F401  (registers `churn uplift` on the app)
from churn.cli.commands import app, run

__all__ = ["app", "run"]
