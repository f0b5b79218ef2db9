"""A planted experiment's rows in the shape the uplift learner reads (shared by the uplift tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn.features.labels import LABEL
from churn.modeling.uplift import PROPENSITY, TREATED


def experiment_rows(rng: np.random.Generator, x: np.ndarray, treated: np.ndarray, propensity: np.ndarray | float, churned: np.ndarray) -> pd.DataFrame:
    """One row per account at one cutoff: the feature ``x``, a ``noise`` column the learner
    should not need (drawn from ``rng`` last), whether it was called, with what probability,
    and whether it churned."""
    n = len(x)
    return pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(n)],
            "as_of": pd.Timestamp("2024-01-01", tz="UTC"),
            "x": x,
            "noise": rng.normal(size=n),
            TREATED: treated,
            PROPENSITY: propensity,
            LABEL: churned.astype("int8"),
        }
    )
