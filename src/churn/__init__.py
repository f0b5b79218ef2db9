"""churn: churn-risk prediction for subscription businesses.

Stages (one module each, pure functions on DataFrames): contract → features → labels
→ train → evaluate → tracking → score → report. ARCHITECTURE.md in the repository is the map.
"""

__version__ = "0.2.0"
