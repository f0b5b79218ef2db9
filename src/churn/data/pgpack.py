"""The sparse columns of a PostgreSQL read sent as one ``bytea`` field per row, and unpacked.

Why: the ADBC PostgreSQL driver decodes binary ``COPY`` field by field, and a field costs it
about as much as a row — a NULL more than a value. The optional interaction columns (channel,
case id, waits, scores, amounts) are empty on most rows (a login has none of them), so a year
of events spent most of its decoding on NULLs: 2.08M rows × 13 columns took 1.9 s of client
CPU, the 3 columns every row has 0.55 s. Sent instead as one field that is NULL when all of
them are, and otherwise their values' binary forms end to end (``float8send``, ``boolsend``, a
text's length and UTF-8 bytes), the same rows decode in about a third of the time, and the
server does less too (fewer send calls). The values are unpacked here with NumPy into the very
columns the plain query gives (a float NULL as NaN, a boolean as 1, 0 or -1 for NULL — what
:func:`churn.data.database.select_sql` sends otherwise), so nothing after the read changes.

Only columns of these PostgreSQL types are packed (the driver's field metadata names the type):
``float8``, ``float4``, ``bool``, ``text``, ``varchar``; any other column is sent as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa

#: The field the packed columns travel in (not a column a source may have: it is ours).
PACKED = "churn_packed__"

#: Bytes of each fixed-width kind, its NumPy big-endian type and the SQL making its bytes.
_FIXED = {"float8": (8, ">f8"), "float4": (4, ">f4"), "bool": (1, "u1")}
_TEXT = ("text", "varchar")


@dataclass(frozen=True)
class Packing:
    """Which columns of a SELECT travel packed, in packing order, and where the others go."""

    #: (column, PostgreSQL type) in the order their bytes follow each other.
    packed: tuple[tuple[str, str], ...]
    #: Every column of the SELECT in the order the caller asked for them.
    columns: tuple[str, ...]


def pg_type(schema: pa.Schema, column: str) -> str | None:
    """The PostgreSQL type name the driver reports for ``column`` (None: not said)."""
    if schema.get_field_index(column) < 0:
        return None
    meta = schema.field(column).metadata or {}
    value = meta.get(b"POSTGRESQL:type")
    return value.decode() if value is not None else None


def plan(columns: Sequence[str], candidates: Sequence[str], schema: pa.Schema) -> Packing | None:
    """The packing of ``candidates`` among ``columns`` (None: fewer than two can be packed,
    where one field for one column saves nothing)."""
    packable = [(c, t) for c in columns if c in candidates and (t := pg_type(schema, c)) is not None and (t in _FIXED or t in _TEXT)]
    if len(packable) < 2:
        return None
    fixed = [p for p in packable if p[1] in _FIXED]  # fixed widths first: their offsets are known without reading lengths
    return Packing(tuple(fixed + [p for p in packable if p[1] in _TEXT]), tuple(columns))


def packed_sql(packing: Packing, quote: Callable[[str], str]) -> str:
    """The SELECT item of the packed field: empty when every packed column is NULL (an empty
    value decodes faster than a NULL), else their binary forms end to end (a NULL float as
    NaN, a NULL boolean as byte 255, a NULL text as length -1)."""
    parts = []
    for column, kind in packing.packed:
        name = quote(column)
        if kind in ("float8", "float4"):
            parts.append(f"{kind}send(COALESCE({name}, 'NaN'))")
        elif kind == "bool":
            parts.append(f"COALESCE(boolsend({name}), '\\xff'::bytea)")
        else:
            text = f"convert_to({name}, 'UTF8')"
            parts.append(f"COALESCE(int4send(octet_length({text})) || {text}, '\\xffffffff'::bytea)")
    names = ", ".join(quote(c) for c, _ in packing.packed)
    return f"CASE WHEN num_nonnulls({names}) > 0 THEN {' || '.join(parts)} ELSE '\\x'::bytea END AS {quote(PACKED)}"


def select_items(packing: Packing, item: Callable[[str], str], quote: Callable[[str], str]) -> list[str]:
    """The SELECT list: every unpacked column as ``item`` makes it, then the packed field."""
    packed = {c for c, _ in packing.packed}
    return [item(c) for c in packing.columns if c not in packed] + [packed_sql(packing, quote)]


def _gather(data: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """``width`` bytes at each of ``starts`` as rows of a (len(starts), width) array."""
    return data[starts[:, None] + np.arange(width)]


def _text(data: np.ndarray, starts: np.ndarray, rows: np.ndarray, n: int) -> tuple[pa.Array, np.ndarray]:
    """A text column of ``n`` rows from its length-prefixed values at ``starts`` (one per
    packed row; ``rows`` their row numbers), and the offsets just past each value."""
    length = _gather(data, starts, 4).view(">i4").ravel().astype(np.int64)
    size = np.maximum(length, 0)
    begin = starts + 4
    full = np.zeros(n, dtype=np.int64)
    full[rows] = size
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(full, out=offsets[1:])
    if offsets[-1] > np.iinfo(np.int32).max:
        raise ValueError("a packed text column over 2 GiB in one batch")
    within = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1][rows], size)
    values = data[np.repeat(begin, size) + within]
    present = np.zeros(n, dtype=bool)
    present[rows] = length >= 0
    validity = pa.array(present).buffers()[1]
    array = pa.StringArray.from_buffers(n, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(values.tobytes()), validity, n - int(present.sum()))
    array.validate(full=True)  # valid UTF-8 and offsets, or an error here rather than later
    return array, begin + size


def unpack(batch: pa.RecordBatch, packing: Packing) -> pa.RecordBatch:
    """``batch`` with its packed field replaced by the packed columns, typed as the plain query
    types them (float8 → double, float4 → float, bool → int16 1/0/-1, text → string), in the
    caller's column order."""
    blob = batch.column(PACKED)
    n = len(blob)
    if n == 0:
        schema = unpacked_schema(batch.schema, packing)
        return pa.RecordBatch.from_arrays([pa.array([], type=f.type) if f.name in dict(packing.packed) else batch.column(f.name) for f in schema], schema=schema)
    buffers = blob.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32, count=n + 1, offset=blob.offset * 4).astype(np.int64)
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None and len(buffers[2]) else np.zeros(0, np.uint8)
    rows = np.flatnonzero(np.diff(offsets) > 0)  # empty: every packed column NULL (a NULL field: the same, if ever sent)
    if blob.null_count:
        rows = rows[blob.is_valid().to_numpy(zero_copy_only=False)[rows]]
    starts = offsets[:-1][rows]
    fixed = [(c, k) for c, k in packing.packed if k in _FIXED]
    head = _gather(data, starts, sum(_FIXED[k][0] for _, k in fixed))  # the fixed-width values of a row, one gather
    out: dict[str, pa.Array] = {}
    at = 0
    for column, kind in fixed:
        width, dtype = _FIXED[kind]
        raw = np.ascontiguousarray(head[:, at : at + width]).view(dtype).ravel()
        if kind == "bool":
            full = np.full(n, -1, dtype=np.int16)
            full[rows] = raw.astype(np.int8)  # 255 (NULL) → -1
        else:
            full = np.full(n, np.nan, dtype=np.float64 if kind == "float8" else np.float32)
            full[rows] = raw
        out[column] = pa.array(full)
        at += width
    starts = starts + at
    for column, kind in packing.packed[len(fixed) :]:
        out[column], starts = _text(data, starts, rows, n)
    arrays = [out[c] if c in out else batch.column(c) for c in packing.columns]
    return pa.RecordBatch.from_arrays(arrays, names=list(packing.columns))


def unpacked_schema(schema: pa.Schema, packing: Packing) -> pa.Schema:
    """The schema of :func:`unpack`'s batches, from the packed query's ``schema``."""
    kinds = dict(packing.packed)
    fields = []
    for c in packing.columns:
        kind = kinds.get(c)
        if kind is None:
            fields.append(schema.field(c))
        else:
            fields.append(pa.field(c, {"float8": pa.float64(), "float4": pa.float32(), "bool": pa.int16()}.get(kind, pa.string())))
    return pa.schema(fields)
