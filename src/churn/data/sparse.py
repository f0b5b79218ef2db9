"""Mostly empty number columns, held without their empty rows.

An event log carries a few columns that only some kinds of event fill: survey answers (under
1 % of the rows of a typical export), amounts (purchases and invoices), wait and handle times
(support contacts). Held at full length, each is eight bytes a row — on 7M interactions, six
such columns are 340 MB of NaN the features never read, written when the table is read and
copied again at each step that takes rows. Held sparse (pandas' ``Sparse[float64, nan]``: the
filled rows' positions and values), they cost what they hold.

The rule is one, for every reader (a file or a database): a float column with no value in
more than half of its rows arrives sparse (:func:`to_pandas`). What they hold is unchanged —
pandas reads a sparse column as the full one (``isna``, comparisons, ``iloc``, ``to_numpy``) —
so a step that has no fast way for them still gets the right numbers; the steps on the hot
path (the data contract's checks, the event features) read the filled rows only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow

#: A float column missing in more than this share of its rows is held sparse.
SPARSE_SHARE = 0.5

SPARSE_FLOAT = pd.SparseDtype(np.float64, np.nan)


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


def to_pandas(column: "pyarrow.ChunkedArray | pyarrow.Array") -> pd.arrays.SparseArray | None:
    """A float Arrow column without a number (null or NaN: both read as missing) in more than
    :data:`SPARSE_SHARE` of its rows as a sparse pandas array, which stores its numbers only;
    None for any other column (convert it as usual)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_floating(column.type) or not 0 < len(column) < 2**31:  # pandas' sparse index: int32 positions
        return None
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    if column.null_count <= SPARSE_SHARE * len(column):  # a NaN (PostgreSQL sends NULL so) is missing too
        nans = sum(pc.sum(pc.is_nan(chunk)).as_py() or 0 for chunk in chunks)  # a null is no NaN (is_nan: null)
        if column.null_count + nans <= SPARSE_SHARE * len(column):
            return None
    positions, values, offset = [], [], 0
    for chunk in chunks:
        at, numbers = _filled_rows(chunk)
        positions.append(at + offset)
        values.append(numbers)
        offset += len(chunk)
    at = np.concatenate(positions) if positions else np.zeros(0, np.int64)
    numbers = np.concatenate(values) if values else np.zeros(0, np.float64)
    return sparse_floats(numbers, at, len(column))


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


def dense(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its sparse columns at full length (for writing a few rows out: file formats
    and schema checks know plain floats)."""
    sparse = [c for c in df.columns if is_sparse(df[c])]
    if not sparse:
        return df
    out = df.copy(deep=False)
    for c in sparse:
        out[c] = df[c].sparse.to_dense()
    return out
