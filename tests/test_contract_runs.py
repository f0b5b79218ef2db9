"""Duplicate rows of a time-ordered event log found within runs of equal stamps (no sort):
exactly pandas' ``duplicated``, whatever the runs' lengths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.data.contract import _duplicated_rows


def _log(seed: int, n: int, seconds: int) -> pd.DataFrame:
    """``n`` events in time order over ``seconds`` distinct stamps (few: long runs of equal
    stamps), three accounts and two event types, so that equal rows sit anywhere in a run."""
    rng = np.random.default_rng(seed)
    stamps = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.sort(rng.integers(0, seconds, n)), unit="s")
    return pd.DataFrame(
        {
            "account_id": pd.Categorical(rng.choice(["a", "b", "c"], n)),
            "occurred_at": stamps,
            "event_type": rng.choice(["login", "survey"], n),
            "nps": np.where(rng.random(n) < 0.5, np.nan, rng.integers(0, 2, n)),
        }
    )


@pytest.mark.parametrize("seconds", [200, 40, 3])  # runs of up to 10 equal stamps (compared lag by lag), 28 and hundreds (sorted)
def test_duplicates_in_runs_of_equal_stamps_are_exactly_pandas(seconds: int) -> None:
    df = _log(11, 600, seconds)
    expected = df.duplicated(keep="first").to_numpy()
    assert expected.sum() > 5
    np.testing.assert_array_equal(_duplicated_rows(df), expected)
    np.testing.assert_array_equal(_duplicated_rows(df.assign(account_id=df["account_id"].astype("str"))), expected)
