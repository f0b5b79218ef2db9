"""Stage 4 — the outreach list and what it achieved.

Modules: ``score`` (the risk list: probabilities, bands, ranking, outreach and control),
``reasons`` (plain-language reasons per account), ``playbook`` (driver family → suggested
action), ``experiment`` (the persistent random control group and the uplift statistics),
``runs`` (the scoring folder: lock, run log, one folder per run), ``history`` (what
earlier lists did: running assignments, cohorts, the contact log, outcomes), ``retention`` (actual
retention (E − N) / S and the outcomes of past lists) and ``report`` (the HTML report).

Imports: :mod:`churn.config`, :mod:`churn.data`, :mod:`churn.features`, :mod:`churn.modeling`.
"""
