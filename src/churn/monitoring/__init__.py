"""Stage 5 — can this week's list be trusted?

Five families of checks, each a pure function on DataFrames and JSON-friendly summaries:

* **Feature drift** of every model feature against the *reference profile* stored with the
  model at training time (:func:`churn.modeling.profile.reference_profile`: bin edges, shares and percentiles —
  never raw rows): the population stability index (PSI) on the reference's decile bins plus
  a bin for missing values; for numbers the two-sample Kolmogorov–Smirnov test and the
  *shift* (how far values moved, in reference spreads); chi-square on the bins for all.
* **Prediction drift**: the score distribution and the share per risk band, the same way,
  against the deployed model's own out-of-fold scores of its latest training cutoff
  (:func:`churn.modeling.train.monitoring_reference`).
* **Data quality** of the scoring window: events per day and type in the last days against
  the preceding weeks (a broken feed is a sudden drop), missing values, categories the model
  has never seen, rejected rows, freshness.
* **Realized performance** of every past list whose horizon has passed — ROC-AUC, PR-AUC,
  precision at capacity, calibration per band, with 95 % intervals — next to the training
  evaluation, each list judged on its own cohort (its own controls, the accounts nobody
  called); and before that, the label-free expected churn among the flagged accounts.
* **Account alerts**: accounts whose risk jumped since the previous run.

They end in a verdict — ``ok``, ``warn`` or ``alert`` — and ``retrain_recommended``.

Modules: ``settings`` (thresholds), ``drift`` (feature and prediction drift against the
model's reference profile), ``quality`` (data-quality checks on the scored data),
``performance`` (realized performance of lists whose horizon has passed), ``alerts`` (risk
jumps since the previous run), ``verdict`` (one verdict from all of them) and ``run`` (the
shell that reads a scoring folder, writes monitoring.json / alerts.csv and logs to MLflow).

Imports: everything below it — :mod:`churn.outreach` (the run store), :mod:`churn.modeling`,
:mod:`churn.features`, :mod:`churn.data`, :mod:`churn.config`.
"""
