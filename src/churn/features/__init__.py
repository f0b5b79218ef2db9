"""Stage 2 — point-in-time features and labels.

Modules: ``spec`` (which event types, channels and attributes exist), ``events`` (integer-coded
event arrays the computations share), ``registry`` (every feature declared once), ``build``
(one row per customer at T from events strictly before T) and ``labels`` (churned within
[T, T + horizon), the cutoff schedule and the training table over cutoffs).

Imports: :mod:`churn.config` and :mod:`churn.data`.
"""
