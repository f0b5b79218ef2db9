"""churn: churn-risk prediction for subscription businesses.

Stages (one module each, pure functions on DataFrames): contract → features → labels
→ train → evaluate → tracking → score → report. See DESIGN.md in the team's shared folder.
"""

__version__ = "0.2.0"
