"""Stage 3 — the churn model: split, fit, calibrate, evaluate, judge and track.

Modules: ``splits`` (time folds and account folds), ``calibration``, ``baselines``, ``model``
(the :class:`~churn.modeling.model.ChurnModel` scoring needs and its bundle file), ``profile``
(the reference profile of features and scores a model carries for monitoring), ``results``
(evaluation records), ``leakage`` (the sentinels that stop a training run), ``train``,
``tune`` (optional Optuna search), ``evaluate`` (metrics and plots), ``gate`` (does the
challenger replace the champion) and ``tracking`` (MLflow runs, registry, champion alias).

Imports: :mod:`churn.config`, :mod:`churn.data` and :mod:`churn.features`.
"""
