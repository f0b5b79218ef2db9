"""Duplicate rows of a time-ordered event log found within runs of equal stamps (no sort):
exactly pandas' ``duplicated``, whatever the runs' lengths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.data.frames import duplicated_rows


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
    np.testing.assert_array_equal(duplicated_rows(df), expected)
    np.testing.assert_array_equal(duplicated_rows(df.assign(account_id=df["account_id"].astype("str"))), expected)


def test_a_history_in_order_is_not_sorted_again_and_any_other_is() -> None:
    from churn.data.contract import _in_history_order, validate

    at = pd.to_datetime(["2024-01-01", "2024-02-01", "2024-02-10", "2024-01-15", "2024-03-01"], utc=True)
    ordered = pd.DataFrame({"account_id": ["a", "a", "a", "b", "b"], "valid_from": at, "mrr": [1.0, 2.0, 3.0, 4.0, 5.0]})
    assert _in_history_order(ordered)
    assert not _in_history_order(ordered.iloc[[1, 0, 2, 3, 4]])  # later before earlier within an account
    assert not _in_history_order(ordered.iloc[[3, 4, 0, 1, 2]])  # b before a
    assert not _in_history_order(ordered.assign(valid_from=at.where([True, False, True, True, True])))  # a missing time: sorted
    accounts = pd.DataFrame({"account_id": ["a", "b"], "signup_at": pd.to_datetime(["2023-01-01", "2023-01-01"], utc=True)})
    expected = validate(accounts, None, ordered).attribute_history
    assert expected is not None and expected["mrr"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    for shuffled in ([4, 2, 0, 3, 1], [1, 0, 2, 3, 4]):
        pd.testing.assert_frame_equal(validate(accounts, None, ordered.iloc[shuffled]).attribute_history, expected)
