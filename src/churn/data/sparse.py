"""Mostly empty number columns, held without their empty rows.

An event log carries a few columns that only some kinds of event fill: survey answers (under
1 % of the rows of a typical export), amounts (purchases and invoices), wait and handle times
(support contacts). Held at full length, each is eight bytes a row — on 7M interactions, six
such columns are 340 MB of NaN the features never read, written when the table is read and
copied again at each step that takes rows. Held sparse (pandas' ``Sparse[float64, nan]``: the
filled rows' positions and values), they cost what they hold.

The rule is one, for every reader (a Parquet file or a database; each gathers its Arrow
batches through :class:`Batches`): of the columns a reader names — the interactions' number
columns, nothing of the accounts or the attribute history — a float column with no number
(null or NaN) in more than half of its rows arrives sparse, and a batch's mostly empty ones are
cut down to their filled rows as the batch arrives, so their empty rows are never all held.
What they hold is unchanged — pandas reads a sparse column as the full one (``isna``,
comparisons, ``iloc``, ``to_numpy``) — so a step that has no fast way for them still gets the
right numbers; the steps on the hot path (the data contract's checks, the event features) read
the filled rows only. A sparse column refuses assignment in place: the frame users edit,
``ContractData.interactions``, and the rejects get plain columns (:func:`dense`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Collection

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow

#: A float column missing in more than this share of its rows is held sparse.
SPARSE_SHARE = 0.5

SPARSE_FLOAT = pd.SparseDtype(np.float64, np.nan)


def is_text(arrow_type: "pyarrow.DataType") -> bool:
    """An Arrow text type (string, large string or string view)."""
    import pyarrow.types as pat

    is_view = getattr(pat, "is_string_view", lambda _: False)  # pyarrow ≥ 16
    return bool(pat.is_string(arrow_type) or pat.is_large_string(arrow_type) or is_view(arrow_type))


def is_sparse(values: pd.Series | pd.api.extensions.ExtensionArray) -> bool:
    return isinstance(values.dtype, pd.SparseDtype)


def sparse_floats(values: np.ndarray, positions: np.ndarray, length: int) -> pd.arrays.SparseArray:
    """A ``Sparse[float64, nan]`` array of ``length`` rows holding ``values`` at ``positions``
    (strictly increasing); NaN elsewhere."""
    values = np.asarray(values, dtype=np.float64)
    positions = np.asarray(positions, dtype=np.int32)  # pandas' sparse index holds int32
    if hasattr(pd.arrays.SparseArray, "from_indices"):  # pandas ≥ 3.1
        return pd.arrays.SparseArray.from_indices(values, positions, length, fill_value=np.nan, dtype=np.float64)
    from pandas._libs.sparse import IntIndex  # pandas < 3.1: the constructor's own index type

    return pd.arrays.SparseArray._simple_new(values, IntIndex(length, positions), SPARSE_FLOAT)


def filled(values: pd.Series | pd.api.extensions.ExtensionArray) -> tuple[np.ndarray, np.ndarray]:
    """(positions, values) of the rows of a float column that hold a number (not NaN), in row
    order — from a sparse column without reading its empty rows."""
    array = values.array if isinstance(values, pd.Series) else values
    if isinstance(array, pd.arrays.SparseArray):
        positions, numbers = array.sp_index.indices, array.sp_values
        keep = ~np.isnan(numbers)  # a NaN may also be stored (not only implied)
        return (positions, numbers) if keep.all() else (positions[keep], numbers[keep])
    numbers = np.asarray(array.to_numpy(dtype=float, na_value=np.nan), dtype=np.float64)
    positions = np.flatnonzero(~np.isnan(numbers))
    return positions, numbers[positions]


def values_at(values: pd.Series, positions: np.ndarray) -> np.ndarray:
    """A float column's values at ``positions`` (NaN where it has none), as float64; a sparse
    column's by a binary search of its filled rows (pandas' own ``take`` looks each up alone)."""
    array = values.array
    if not isinstance(array, pd.arrays.SparseArray):
        return np.asarray(array.take(positions).to_numpy(dtype=float, na_value=np.nan), dtype=np.float64)
    at, numbers = array.sp_index.indices, array.sp_values
    if len(positions) > len(array) // 8:  # many rows: spread the column out once, then take
        full = np.full(len(array), np.nan)
        full[at] = numbers
        return full[positions]
    out = np.full(len(positions), np.nan)
    if len(at):
        found = np.minimum(np.searchsorted(at, positions), len(at) - 1)
        hit = at[found] == positions
        out[hit] = numbers[found[hit]]
    return out


def _held_sparse(rows: int, numbers: int) -> bool:
    """The rule: more than :data:`SPARSE_SHARE` of the rows without a number (and few enough
    rows for pandas' sparse index, which holds int32 positions)."""
    return rows - numbers > SPARSE_SHARE * rows and rows < 2**31


class FloatColumn:
    """A float column gathered batch by batch, each batch's Arrow array let go as it comes: a
    mostly empty one is kept as its filled rows (positions and values), so its empty rows are
    never held at full length twice (Arrow's, then pandas'), nor all of its batches at once.
    :meth:`finish` makes it sparse or plain, by the rule of :data:`SPARSE_SHARE`."""

    def __init__(self) -> None:
        self.rows = 0
        self.numbers = 0  # rows holding a number, counted as each batch is added
        #: Per batch, in order: (first row, Arrow array) for a mostly filled batch, kept as it
        #: is; (first row, (positions, values)) for a mostly empty one.
        self._pieces: list[tuple[int, "pyarrow.Array | tuple[np.ndarray, np.ndarray]"]] = []

    def add(self, chunk: "pyarrow.Array") -> None:
        """The next rows (a float Arrow array: a NaN is as missing as a null — PostgreSQL
        sends a NULL as NaN)."""
        numbers = None if chunk.null_count > SPARSE_SHARE * len(chunk) else _count_numbers(chunk)
        if numbers is None or len(chunk) - numbers > SPARSE_SHARE * len(chunk):  # mostly empty: its filled rows only
            at, values = _filled_rows(chunk)
            self._pieces.append((self.rows, (at, values)))
            numbers = len(at)
        else:
            self._pieces.append((self.rows, chunk))
        self.rows += len(chunk)
        self.numbers += numbers

    def extend(self, other: "FloatColumn") -> None:
        """``other``'s rows after these."""
        self._pieces += [(start + self.rows, piece) for start, piece in other._pieces]
        self.rows += other.rows
        self.numbers += other.numbers

    def finish(self) -> "pd.arrays.SparseArray | np.ndarray":
        """A ``Sparse[float64, nan]`` array when more than :data:`SPARSE_SHARE` of the rows hold
        no number (null or NaN), else a float64 array with NaN for them."""
        if _held_sparse(self.rows, self.numbers):
            pieces = [(start, piece if isinstance(piece, tuple) else _filled_rows(piece)) for start, piece in self._pieces]
            at = np.concatenate([piece[0] + start for start, piece in pieces])
            numbers = np.concatenate([piece[1] for _, piece in pieces])
            return sparse_floats(numbers, at, self.rows)
        out = np.full(self.rows, np.nan)
        for start, piece in self._pieces:
            if isinstance(piece, tuple):
                out[piece[0] + start] = piece[1]
            else:
                out[start : start + len(piece)] = piece.to_numpy(zero_copy_only=False)  # a null: NaN
        return out


def _count_numbers(chunk: "pyarrow.Array") -> int:
    """Rows of a float Arrow array holding a number: neither null nor NaN."""
    import pyarrow.compute as pc

    return len(chunk) - chunk.null_count - int(pc.sum(pc.is_nan(chunk)).as_py() or 0)  # is_nan of a null: null, not counted


def _numbers(chunk: "pyarrow.Array") -> np.ndarray:
    """The value buffer of a float Arrow array as float64 (a view when it is float64)."""
    import pyarrow as pa

    if chunk.type != pa.float64():
        chunk = chunk.cast(pa.float64())
    return np.frombuffer(chunk.buffers()[1], np.float64, count=chunk.offset + len(chunk))[chunk.offset :]


def _filled_rows(chunk: "pyarrow.Array") -> tuple[np.ndarray, np.ndarray]:
    """(positions, values) of the rows of a float Arrow array holding a number (neither null
    nor NaN), read off its validity bitmap and value buffer (a fifth of the time of Arrow's
    ``is_valid``, ``to_numpy`` and ``drop_null``)."""
    n = len(chunk)
    if n == 0 or chunk.null_count == n:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    numbers = _numbers(chunk)
    validity = chunk.buffers()[0]
    if validity is None or chunk.null_count == 0:
        at = np.flatnonzero(~np.isnan(numbers))
    else:
        bits = np.unpackbits(np.frombuffer(validity, np.uint8), bitorder="little", count=chunk.offset + n)[chunk.offset :].view(bool)
        at = np.flatnonzero(bits)
        at = at[~np.isnan(numbers[at])]
    return at, numbers[at]


def dense(df: pd.DataFrame, rows: np.ndarray | None = None) -> pd.DataFrame:
    """``df`` — or its rows at positions ``rows`` — with its sparse columns at full length: for
    writing rows out (file formats and schema checks know plain floats) and for the frame a
    user edits. A sparse column's rows are looked up among its filled ones (:func:`values_at`;
    pandas' own ``take`` of a sparse column looks each row up alone)."""
    sparse = [c for c in df.columns if is_sparse(df[c])]
    if not sparse:
        return df if rows is None else df.iloc[rows]
    plain = df.drop(columns=sparse)
    plain = plain if rows is None else plain.iloc[rows]
    plain = plain.copy(deep=False) if len(plain.columns) else pd.DataFrame(index=df.index if rows is None else df.index[rows])
    for c in sparse:
        plain[c] = df[c].sparse.to_dense().to_numpy() if rows is None else values_at(df[c], rows)
    return plain[list(df.columns)]


def _arrow_backed_text() -> bool:
    """Whether pandas holds text read from Arrow as Arrow (pandas 3's ``str``), not as Python
    objects (pandas 2, or the ``python`` string storage)."""
    return isinstance(pd.Series(["x"]).array, pd.arrays.ArrowStringArray)


class Batches:
    """Arrow record batches of one table gathered for pandas: the float columns among ``sparse``
    each a :class:`FloatColumn` (taken out of every batch as it comes), the others kept as
    batches — :meth:`table`, made a DataFrame as usual, then completed by :meth:`with_floats`.
    ``sparse`` empty (the default): the batches as they are, nothing held sparse."""

    def __init__(self, schema: "pyarrow.Schema", sparse: Collection[str] = ()) -> None:
        import pyarrow as pa

        self.names = list(schema.names)
        self._floats = {f.name: FloatColumn() for f in schema if f.name in sparse and pa.types.is_floating(f.type)}
        # the schema's metadata kept: a stored pandas index is restored as the index
        self._schema = pa.schema([f for f in schema if f.name not in self._floats], metadata=schema.metadata)
        self._batches: list["pyarrow.RecordBatch"] = []

    def add(self, batch: "pyarrow.RecordBatch") -> None:
        import pyarrow as pa

        for name, column in self._floats.items():
            column.add(batch.column(name))
        if self._schema.names:
            self._batches.append(pa.RecordBatch.from_arrays([batch.column(name) for name in self._schema.names], schema=self._schema))

    def extend(self, other: "Batches") -> None:
        """``other``'s rows after these (the same columns)."""
        for name, column in self._floats.items():
            column.extend(other._floats[name])
        self._batches += other._batches

    def table(self) -> "pyarrow.Table":
        """The columns other than the float ones, a text column in one piece; the batches are
        let go (called once).

        pandas 3 keeps a text column as Arrow holds it, in the batches' pieces, and Arrow's
        ``take`` of rows from a column in pieces first joins the pieces — each time: on 7M
        interactions, a 55 MB copy of ``case_id`` at every step that takes some rows (the
        duplicate check, the rejects, each slice of the event features), 0.01–0.1 s each
        with this machine's fresh memory. Joined once here, each of those takes only its rows.
        Joined as ``large_string`` (what pandas makes of text anyway), whose offsets do not
        overflow at 2 GiB; not joined where pandas makes text Python objects (pandas 2)."""
        import pyarrow as pa

        table = pa.Table.from_batches(self._batches, schema=self._schema)
        self._batches = []  # the pieces of a joined column are not held beside it
        if not _arrow_backed_text():
            return table
        for i, field in enumerate(table.schema):
            column = table.column(i)
            if is_text(field.type) and column.num_chunks > 1:
                joined = (column.cast(pa.large_string()) if pa.types.is_string(field.type) else column).combine_chunks()
                table = table.set_column(i, pa.field(field.name, joined.type, field.nullable, field.metadata), pa.chunked_array([joined]))
        return table

    def with_floats(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (:meth:`table` made a DataFrame) with the float columns, each sparse or
        plain (:meth:`FloatColumn.finish`), in the table's order."""
        if not self._floats:
            return frame
        floats = {name: column.finish() for name, column in self._floats.items()}
        if not len(frame.columns):  # only float columns: the rows are theirs
            frame = pd.DataFrame(index=pd.RangeIndex(len(next(iter(floats.values())))))
        for name, values in floats.items():
            frame[name] = values
        return frame[[name for name in self.names if name in frame.columns]]
