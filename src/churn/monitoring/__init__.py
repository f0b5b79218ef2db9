"""Stage 5 — can this week's list be trusted?

Modules: ``settings`` (thresholds), ``drift`` (feature and prediction drift against the
model's reference profile), ``quality`` (data-quality checks on the scored data),
``performance`` (realized performance of lists whose horizon has passed), ``alerts`` (risk
jumps since the previous run), ``verdict`` (one verdict from all of them) and ``run`` (the
shell that reads a scoring folder, writes monitoring.json / alerts.csv and logs to MLflow).

Imports: everything below it — :mod:`churn.outreach` (the run store), :mod:`churn.modeling`,
:mod:`churn.features`, :mod:`churn.data`, :mod:`churn.config`.
"""
