"""The masked summaries ``FeatureSpec.from_data`` learns from (event type counts, channels, the
first timestamp) read the accepted rows through a mask, without selecting a copy of the column:
the same answers as on the selected rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.data.frames import earliest, text_counts, text_values


@pytest.fixture
def column() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 2_000
    kinds = pd.Series(rng.choice(["login", "ticket", "invoice", None], n), dtype="category")
    stamps = pd.Series(pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 10**6, n), unit="s")).astype("datetime64[ns, UTC]")  # as the contract parses them
    stamps[rng.random(n) < 0.1] = pd.NaT
    return pd.DataFrame({"kind": kinds, "text": kinds.astype("str").where(kinds.notna()), "at": stamps})


@pytest.mark.parametrize("name", ["kind", "text"])
def test_counts_at_rows_are_the_counts_of_the_rows(column: pd.DataFrame, name: str) -> None:
    rows = np.random.default_rng(1).random(len(column)) < 0.3
    rows[column["kind"].eq("invoice").to_numpy(dtype=bool, na_value=False)] = False  # a category with no row left
    pd.testing.assert_series_equal(text_counts(column[name], rows), text_counts(column[name][rows]))
    assert text_values(column[name], rows) == text_values(column[name][rows])
    assert sorted(text_values(column[name], rows)) == ["login", "ticket"]
    pd.testing.assert_series_equal(text_counts(column[name], None), text_counts(column[name]))


def test_the_earliest_at_rows_skips_missing_and_unselected_stamps(column: pd.DataFrame) -> None:
    t = column["at"]
    first = int(t.idxmin())
    rows = np.ones(len(t), dtype=bool)
    rows[first] = False  # the overall earliest is not selected
    assert earliest(t, rows) == t[rows].min() > t.min()
    assert earliest(t) == t.min()
    only_missing = t.isna().to_numpy()
    assert earliest(t, only_missing) is pd.NaT and t[only_missing].min() is pd.NaT
    paris = t.dt.tz_convert("Europe/Paris")  # another zone or unit: read as before
    assert earliest(paris, rows) == paris[rows].min()
    assert earliest(t.astype("datetime64[us, UTC]"), rows) == t[rows].min()
    assert earliest(t, np.zeros(len(t), dtype=bool)) is pd.NaT  # no row selected
    assert earliest(t.where(t.isna())) is pd.NaT  # every stamp missing
