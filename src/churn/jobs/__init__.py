"""Stage 6 — the jobs a command runs, start to finish.

Each module is the body of one or more ``churn`` commands, as plain functions a notebook can
call too: ``weekly`` (``churn score``: load → features → risk list → history → outcomes →
monitoring → report, under the scoring folder's lock; and ``churn monitor``), ``training``
(``churn train`` / ``backtest`` / ``dataset``: the training table, the model and its MLflow
run), ``tables`` (``churn features``, and ``churn dataset`` on Spark), ``outcomes``
(``churn retention`` and ``churn contacts``).

Imports: every stage below — :mod:`churn.monitoring`, :mod:`churn.outreach`,
:mod:`churn.spark`, :mod:`churn.modeling`, :mod:`churn.features`, :mod:`churn.data`.
"""
