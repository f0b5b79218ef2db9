"""churn: churn-risk prediction for subscription businesses.

One package per stage. The pipeline runs data → features → modeling → outreach → monitoring,
and imports run the other way: each stage may import the stages before it, never one after it
(cli imports jobs, jobs imports monitoring, …, data imports config; serve sits beside
monitoring and spark beside outreach). Each package's docstring says what it holds.
ARCHITECTURE.md in the repository is the map.
"""

__version__ = "0.2.0"
