"""churn: churn-risk prediction for subscription businesses.

One package per stage, imports running one way: data → features → modeling → outreach (and
spark) → monitoring → jobs (and serve) → cli; config sits below them all. Each package's
docstring says what it holds. ARCHITECTURE.md in the repository is the map.
"""

__version__ = "0.2.0"
