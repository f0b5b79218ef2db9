"""Mostly empty number columns held sparse (churn.data.sparse): the same numbers, read, checked
and turned into features exactly as at full length."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from churn.cli.commands import app
from churn.data.contract import load, validate
from churn.data.read import read_table
from churn.data.sparse import SPARSE_SHARE, Batches, FloatColumn, dense, filled, is_sparse, values_at
from churn.data.synthetic import GeneratedData
from churn.features.build import build_features

AS_OF = pd.Timestamp("2024-03-01", tz="UTC")
NUMBER_COLUMNS = ["wait_seconds", "handle_seconds", "ces", "csat", "nps", "amount"]


def _full_length(column: pa.ChunkedArray) -> np.ndarray:
    return column.to_pandas().to_numpy(dtype=float, na_value=np.nan)


# ----------------------------------------------------------------------------- the rule


def gather(column: pa.ChunkedArray) -> pd.arrays.SparseArray | np.ndarray:
    """A float column batch by batch, as a reader gathers it."""
    gathered = FloatColumn()
    for chunk in column.chunks:
        gathered.add(chunk)
    return gathered.finish()


def test_a_float_column_is_sparse_only_when_more_than_half_is_missing() -> None:
    half = gather(pa.chunked_array([pa.array([1.0, None, 2.0, None])]))
    assert isinstance(half, np.ndarray) and half.dtype == np.float64  # exactly half: full length
    np.testing.assert_array_equal(half, [1.0, np.nan, 2.0, np.nan])
    held = gather(pa.chunked_array([pa.array([1.0, None, None, None])]))
    assert held.dtype == pd.SparseDtype(np.float64, np.nan)
    assert SPARSE_SHARE == 0.5


def test_nan_counts_as_missing_as_a_null_does() -> None:
    """PostgreSQL sends a NULL float as NaN: a column of NaNs is as empty as one of nulls."""
    held = gather(pa.chunked_array([pa.array([np.nan, np.nan, 3.0])]))  # NaN values, no null
    assert isinstance(held, pd.arrays.SparseArray)
    np.testing.assert_array_equal(held.sp_values, [3.0])  # only numbers are stored
    np.testing.assert_array_equal(held.to_numpy(), [np.nan, np.nan, 3.0])


def test_a_column_sparse_overall_from_a_mostly_filled_batch_and_the_reverse() -> None:
    """Each batch is cut down (or kept) by its own share; the column by the share of all."""
    sparse = gather(pa.chunked_array([pa.array([1.0, 2.0]), pa.array([None] * 6, pa.float64())]))
    dense_one = gather(pa.chunked_array([pa.array([None, None, None, 4.0]), pa.array([1.0, 2.0, 3.0, 5.0])]))
    assert isinstance(sparse, pd.arrays.SparseArray) and isinstance(dense_one, np.ndarray)
    np.testing.assert_array_equal(sparse.to_numpy(), [1.0, 2.0] + [np.nan] * 6)
    np.testing.assert_array_equal(dense_one, [np.nan, np.nan, np.nan, 4.0, 1.0, 2.0, 3.0, 5.0])


def test_only_float_columns_are_gathered_apart() -> None:
    batch = pa.record_batch({"s": pa.array(["a", None, None]), "i": pa.array([1, None, None]), "b": pa.array([True, None, None]), "f": pa.array([None, None, 0.5])})
    gathered = Batches(batch.schema, ["s", "i", "b", "f"])  # only a float column can be held sparse
    gathered.add(batch)
    gathered.add(batch)
    frame = gathered.with_floats(gathered.table().to_pandas())
    assert list(frame.columns) == ["s", "i", "b", "f"] and is_sparse(frame["f"]) and not any(is_sparse(frame[c]) for c in "sib")
    np.testing.assert_array_equal(frame["f"].to_numpy(), [np.nan, np.nan, 0.5] * 2)


def test_a_table_of_float_columns_only_and_an_empty_one() -> None:
    schema = pa.schema([("f", pa.float64())])
    gathered = Batches(schema, ["f"])
    gathered.add(pa.record_batch({"f": pa.array([None, None, 0.5])}))
    frame = gathered.with_floats(gathered.table().to_pandas())
    assert len(frame) == 3 and is_sparse(frame["f"])
    empty = Batches(schema, ["f"])
    assert len(empty.with_floats(empty.table().to_pandas())) == 0


def test_float32_and_sliced_chunks() -> None:
    sliced = pa.array([9.0, None, None, None, None, 4.0, None, np.nan, None, None], pa.float64()).slice(1)
    column = pa.chunked_array([pa.array([None, 1.5, None], pa.float32()).cast(pa.float64()), sliced])
    held = gather(column)
    assert isinstance(held, pd.arrays.SparseArray)
    np.testing.assert_array_equal(held.to_numpy(), _full_length(column))
    assert gather(pa.chunked_array([pa.array([None, None, 0.25], pa.float32())])).to_numpy().tolist()[2] == 0.25


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(st.none(), st.just(float("nan")), st.floats(allow_nan=False, allow_infinity=True, width=64)), max_size=40),
        min_size=1,
        max_size=4,
    ),
    st.integers(0, 3),
)
def test_property_gathered_reads_as_the_full_column(chunks: list[list[float | None]], cut: int) -> None:
    arrays = [pa.array(chunk, pa.float64()) for chunk in chunks]
    arrays[0] = arrays[0].slice(min(cut, len(arrays[0])))  # an offset into a buffer, as a filtered read gives
    column = pa.chunked_array(arrays, pa.float64())
    expected = _full_length(column)
    held = gather(column)
    np.testing.assert_array_equal(np.asarray(held), expected)
    assert isinstance(held, pd.arrays.SparseArray) == (np.isnan(expected).sum() > SPARSE_SHARE * len(expected))
    at, numbers = filled(pd.Series(held))
    at_dense, numbers_dense = filled(pd.Series(expected))
    np.testing.assert_array_equal(at, at_dense)
    np.testing.assert_array_equal(numbers, numbers_dense)
    if isinstance(held, pd.arrays.SparseArray):
        assert len(held.sp_values) == (~np.isnan(expected)).sum()  # never a stored NaN


def test_dense_gives_plain_floats_for_writing() -> None:
    held = gather(pa.chunked_array([pa.array([None, None, 2.0])]))
    frame = pd.DataFrame({"ces": pd.Series(held), "n": [1, 2, 3]})
    out = dense(frame)
    assert out["ces"].dtype == np.float64 and out["n"].dtype == frame["n"].dtype
    assert is_sparse(frame["ces"]) and dense(out) is out


# ----------------------------------------------------------------------------- read, contract, features


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, small_business: GeneratedData) -> Path:
    """The small business as Parquet, with a CES of 99 (out of range) on a survey row."""
    out = tmp_path_factory.mktemp("sparse")
    interactions = small_business.interactions.copy()
    survey = interactions.index[interactions["ces"].notna()][3]
    interactions.loc[survey, "ces"] = 99.0
    small_business.accounts.to_parquet(out / "accounts.parquet", index=False)
    interactions.to_parquet(out / "interactions.parquet", index=False)
    small_business.attribute_history.to_parquet(out / "attribute_history.parquet", index=False)
    return out


def test_a_parquet_read_holds_the_mostly_empty_columns_sparse(folder: Path) -> None:
    read = read_table(folder / "interactions.parquet", sparse=NUMBER_COLUMNS)
    assert not any(is_sparse(c) for _, c in read_table(folder / "interactions.parquet").items())  # only the columns named
    whole = pq.read_table(folder / "interactions.parquet").to_pandas()
    for column in NUMBER_COLUMNS:
        assert is_sparse(read[column]), column
        np.testing.assert_array_equal(read[column].to_numpy(dtype=float), whole[column].to_numpy(dtype=float))
    assert list(read.columns) == list(whole.columns)


def test_the_contract_rejects_the_same_rows_sparse_or_not(folder: Path) -> None:
    sparse = load(folder)
    assert is_sparse(sparse.interactions_read["ces"])
    raw = read_table(folder / "interactions.parquet")
    full = validate(read_table(folder / "accounts.parquet"), dense(raw), read_table(folder / "attribute_history.parquet"))
    assert not is_sparse(full.interactions_read["ces"])
    rejects, rejects_full = sparse.rejects["interactions"], full.rejects["interactions"]
    assert (rejects["reject_reason"] == "ces out of range 1–7").sum() == 1
    pd.testing.assert_frame_equal(rejects, rejects_full)
    assert rejects["ces"].dtype == np.float64  # written out as plain floats
    np.testing.assert_array_equal(sparse.interactions_accepted, full.interactions_accepted)


def test_the_accepted_interactions_a_notebook_gets_are_plain_and_editable(folder: Path) -> None:
    """``ContractData.interactions`` is what users edit: full-length columns, not sparse ones."""
    data = load(folder)
    interactions = data.interactions
    assert not any(is_sparse(interactions[c]) for c in interactions.columns)
    interactions.loc[interactions["wait_seconds"].notna(), "wait_seconds"] *= 3  # a sparse column refuses item assignment
    assert (interactions["ces"] == 99.0).sum() == 0  # the rejected row is gone


def test_features_are_the_same_sparse_or_not(folder: Path) -> None:
    data = load(folder)
    read, accepted = data.interactions_read, data.interactions_accepted
    assert accepted is not None and not accepted.all()  # the CES of 99: events are picked among the rows
    full = dense(read)
    for parts in (1, 2):
        got = build_features(data.accounts, read, as_of=AS_OF, history=data.attribute_history, rows=accepted, parts=parts)
        want = build_features(data.accounts, full, as_of=AS_OF, history=data.attribute_history, rows=accepted, parts=parts)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        assert got.filter(like="ces").notna().any().any() and got.filter(like="spend").notna().any().any()


def test_validate_writes_the_rejects_of_a_sparse_column(folder: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["validate", "--data", str(folder), "--rejects-dir", str(tmp_path)])
    assert "ces out of range" in result.output, result.output
    written = pd.read_csv(tmp_path / "interactions_rejects.csv")
    assert written["ces"].dtype == np.float64 and (written["ces"] == 99.0).sum() == 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)), min_size=1, max_size=30), st.data())
def test_property_values_at_positions_as_at_full_length(values: list[float | None], data: st.DataObject) -> None:
    full = pd.Series(np.array([np.nan if v is None else v for v in values]))
    gathered = gather(pa.chunked_array([pa.array(values, pa.float64())]))
    held = pd.Series(gathered)
    positions = np.array(data.draw(st.lists(st.integers(0, len(values) - 1), max_size=20)), dtype=np.int64)
    np.testing.assert_array_equal(values_at(held, positions), full.to_numpy()[positions])
    np.testing.assert_array_equal(values_at(full, positions), full.to_numpy()[positions])


def test_dense_rows_equal_the_rows_of_the_dense_frame() -> None:
    held = gather(pa.chunked_array([pa.array([None, 1.0, None, None, 2.0, None])]))
    frame = pd.DataFrame({"id": list("abcdef"), "ces": pd.Series(held), "n": range(6)})
    rows = np.array([4, 0, 1, 1])
    pd.testing.assert_frame_equal(dense(frame, rows), dense(frame).iloc[rows])
    only = frame[["ces"]]
    pd.testing.assert_frame_equal(dense(only, rows), dense(only).iloc[rows])


def test_values_at_few_and_many_positions_of_a_long_column() -> None:
    """Both ways of looking up a sparse column: a binary search for a few rows, spreading the
    column out for many."""
    rng = np.random.default_rng(5)
    full = np.where(rng.random(10_000) < 0.05, rng.normal(size=10_000), np.nan)
    held = pd.Series(gather(pa.chunked_array([pa.array(full, from_pandas=True)])))
    assert is_sparse(held)
    for size in (3, 900, 5_000, 20_000):
        positions = rng.integers(0, len(full), size)
        np.testing.assert_array_equal(values_at(held, positions), full[positions])


def test_only_the_interactions_number_columns_are_held_sparse(tmp_path: Path, small_business: GeneratedData) -> None:
    """Accounts and attribute history stay plain — a notebook edits and writes them, and the
    history's carry-forward (groupby ffill) refuses a sparse column — and so do an export's
    extra float columns (a hundred of them: no column-by-column frame)."""
    accounts = small_business.accounts.assign(mrr=lambda a: a["mrr"].where(a.index % 5 == 0))  # 80 % empty
    history = small_business.attribute_history.assign(seats=lambda h: np.where(h.index % 5 == 0, 3.0, np.nan))
    extra = pd.DataFrame({f"x{i}": np.where(np.arange(len(small_business.interactions)) % 4 == 0, 1.0, np.nan) for i in range(110)})
    interactions = pd.concat([small_business.interactions.reset_index(drop=True), extra], axis=1)
    accounts.to_parquet(tmp_path / "accounts.parquet", index=False)
    interactions.to_parquet(tmp_path / "interactions.parquet", index=False)
    history.to_parquet(tmp_path / "attribute_history.parquet", index=False)
    data = load(tmp_path)
    assert not is_sparse(data.accounts["mrr"]) and not is_sparse(data.attribute_history["seats"])  # type: ignore[index]
    assert is_sparse(data.interactions_read["ces"]) and not is_sparse(data.interactions_read["x0"])
    result = CliRunner().invoke(app, ["features", "--data", str(tmp_path), "--as-of", "2024-03-01", "--out", str(tmp_path / "f.parquet")])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("index", ["fidx", "name"])
def test_a_stored_pandas_index_is_the_index_as_before(tmp_path: Path, index: str) -> None:
    """pandas writes a named index into the file's metadata; it comes back as the index (then
    dropped by read_table), never as a column — a float one included."""
    frame = pd.DataFrame({"account_id": ["a", "b", "c"], "ces": [None, None, 4.0], "fidx": [0.5, 1.5, 2.5], "name": ["x", "y", "z"]})
    frame.set_index(index).to_parquet(tmp_path / "t.parquet")
    read = read_table(tmp_path / "t.parquet", sparse=["ces"])
    assert list(read.columns) == [c for c in frame.columns if c != index]
    assert is_sparse(read["ces"])


def test_batches_extend_keeps_the_rows_in_order() -> None:
    """A database window read in two halves: the second half's rows follow the first's."""
    schema = pa.schema([("id", pa.string()), ("ces", pa.float64())])
    first, second = Batches(schema, ["ces"]), Batches(schema, ["ces"])
    first.add(pa.record_batch({"id": ["a", "b", "c"], "ces": [None, None, 1.0]}, schema=schema))
    second.add(pa.record_batch({"id": ["d", "e"], "ces": [2.0, None]}, schema=schema))
    second.add(pa.record_batch({"id": ["f"], "ces": [None]}, schema=schema))
    first.extend(second)
    frame = first.with_floats(first.table().to_pandas())
    assert frame["id"].tolist() == list("abcdef") and is_sparse(frame["ces"])
    np.testing.assert_array_equal(frame["ces"].to_numpy(), [np.nan, np.nan, 1.0, 2.0, np.nan, np.nan])


def test_events_take_a_sparse_columns_values_at_their_own_rows(folder: Path) -> None:
    """Events.numbers maps the events' positions to the input's rows (the events are a subset:
    a window, the accepted rows) before looking the values up."""
    from churn.config import FeatureConfig
    from churn.features.events import Events
    from churn.features.spec import FeatureSpec

    data = load(folder)
    read, accepted = data.interactions_read, data.interactions_accepted
    config = FeatureConfig()
    spec = FeatureSpec.from_data(data.accounts, read, config, rows=accepted)
    events = Events(read, data.accounts, AS_OF, spec, config, rows=accepted)
    in_window = (read["occurred_at"] < AS_OF) & (read["occurred_at"] >= AS_OF - pd.Timedelta(days=config.lookback_days))
    input_rows = np.flatnonzero(in_window.to_numpy() & accepted)  # type: ignore[operator]
    assert len(events) == len(input_rows) < len(read)
    picked = np.arange(0, len(events), 7)
    np.testing.assert_array_equal(events.numbers("wait_seconds", picked), dense(read)["wait_seconds"].to_numpy()[input_rows[picked]])


@pytest.mark.skipif(not isinstance(pd.Series(["x"]).array, pd.arrays.ArrowStringArray), reason="pandas 2 makes text Python objects: nothing to join")
def test_batches_join_a_text_column_and_leave_the_others_in_pieces() -> None:
    """A text column in one piece — a 32-bit ``string`` as ``large_string``, whose offsets
    cannot overflow at 2 GiB, as pandas holds it anyway —; other columns as they came."""
    batch = pa.record_batch({"s": pa.array(["a", None, "b"], pa.large_string()), "t": pa.array(["x", "y", None]), "i": pa.array([1, 2, 3])})
    gathered = Batches(batch.schema)
    for _ in range(3):
        gathered.add(batch)
    table = gathered.table()
    assert table.column("s").num_chunks == 1 and table.column("t").num_chunks == 1 and table.column("i").num_chunks == 3
    assert table.schema.field("t").type == pa.large_string() and table.schema.field("s").type == pa.large_string()
    assert table.column("s").to_pylist() == ["a", None, "b"] * 3 and table.column("t").to_pylist() == ["x", "y", None] * 3
    frame = table.to_pandas()
    assert frame["t"].tolist()[:2] == ["x", "y"] and frame["t"].isna().sum() == 3
