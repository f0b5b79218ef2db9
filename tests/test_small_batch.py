"""The small-batch shortcuts behind ``POST /score`` give exactly what the general pandas path gives.

``codes_for`` codes a short text column by dict lookup, and ``assemble_frame`` writes a table's
float columns into one block: both must be indistinguishable from the pandas construction they
replace — same codes, same values, dtypes, column order and index.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from churn.data.frames import SMALL_ROWS, _small_codes, assemble_frame, codes_for

POOL = ["a", "b", "c d", "é", "", "zz", "A", " a", "1", "1.0", None, np.nan]


@pytest.mark.parametrize("seed", range(5))
def test_small_text_codes_equal_pandas(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(40):
        values = pd.Series([POOL[i] for i in rng.integers(0, len(POOL), int(rng.integers(0, 25)))], dtype="str")
        for categories in (["a", "b", "c d", "é", "", "1"], pd.Index(["b", "a"]), [], ["a", "a"]):
            if len(set(categories)) != len(categories):
                with pytest.raises(Exception):  # pandas refuses a repeated category; so does the shortcut
                    pd.Index(categories).get_indexer(pd.Index(values).astype("str"))
                with pytest.raises(Exception):
                    codes_for(values, categories)
                continue
            expected = pd.Index(categories).get_indexer(pd.Index(values).astype("str"))
            got = codes_for(values, categories)
            assert got.dtype == expected.dtype and np.array_equal(got, expected), (values.tolist(), categories)
            assert np.array_equal(_small_codes(values, categories), expected)


def test_only_short_text_takes_the_shortcut() -> None:
    long = pd.Series(["a", None] * (SMALL_ROWS // 2 + 1), dtype="str")
    assert np.array_equal(codes_for(long, ["a"]), np.tile([0, -1], SMALL_ROWS // 2 + 1))
    as_objects = np.array(["b", "a", None], dtype=object)  # not a str column: pandas path, same answer
    assert codes_for(as_objects, ["a", "b"]).tolist() == [1, 0, -1]


@pytest.mark.parametrize("rows", [0, 1, 7])
def test_assembled_frame_equals_the_dict_construction(rows: int) -> None:
    rng = np.random.default_rng(rows)
    cats = pd.CategoricalDtype(["x", "y"])
    columns: dict[str, object] = {
        "account_id": np.array([f"A{i}" for i in range(rows)], dtype=object),
        "as_of": pd.Series(pd.Timestamp("2024-01-01", tz="UTC"), index=range(rows)).astype("datetime64[ns, UTC]"),
        "f1": rng.normal(size=rows),
        "ints": np.arange(rows, dtype=np.int64),  # not float64: set, not written into the block
        "f2": np.where(rng.random(rows) < 0.5, np.nan, rng.normal(size=rows)),
        "plan": pd.Categorical.from_codes(rng.integers(-1, 2, rows), dtype=cats),
        "absent": np.nan,  # a scalar, broadcast
        "f3": rng.normal(size=rows).astype("float32"),
        "text": pd.Series([None if i % 3 == 0 else f"t{i}" for i in range(rows)], dtype="str"),
    }
    index = pd.RangeIndex(rows)
    expected = pd.DataFrame(columns, index=index)
    got = assemble_frame(columns, index)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert list(got.columns) == list(columns)


def test_the_matrix_kept_by_prepare_is_the_frames_bit_for_bit(trained, latest_features) -> None:  # type: ignore[no-untyped-def]
    """For a few rows ``prepare`` keeps the float matrix it made the frame of; it must be exactly
    what :meth:`ChurnModel.matrix` takes out of the frame (another object: no kept matrix)."""
    model = copy.copy(trained.model)
    few = latest_features.head(500)
    unseen = few.head(4).astype({"plan": "str"}).assign(plan=["a plan never seen", None, "a plan never seen", None])  # → missing
    for rows in (few, few.head(1), few.iloc[:0], few.astype({"plan": "str"}).head(3), unseen):
        prepared = model.prepare(rows)
        assert model.__dict__["_small_matrix"][0] is prepared  # the kept path is the one tested
        kept, again = model.matrix(prepared), model.matrix(prepared.copy())
        assert kept.shape == again.shape and np.array_equal(kept.view(np.int64), again.view(np.int64))
    many = pd.concat([latest_features] * (SMALL_ROWS // len(latest_features) + 1), ignore_index=True)
    assert model.__dict__["_small_matrix"][0] is not model.prepare(many)  # a large table: nothing kept
