"""The sparse columns of a PostgreSQL read sent as one ``bytea`` field per row, and unpacked.

Why: the ADBC PostgreSQL driver decodes binary ``COPY`` field by field, and a field costs it
about as much as a row — a NULL more than a value. The optional interaction columns (channel,
case id, waits, scores, amounts) are empty on most rows (a login has none of them), so a year
of events spent most of its decoding on NULLs: 2.08M rows × 13 columns took 1.9 s of client
CPU, the 3 columns every row has 0.55 s. Sent instead as one field that is empty when all of
them are NULL, and otherwise a fixed-width head — the fixed-width values' binary forms
(``float8send``, ``boolsend``) and each text's length — then the texts' UTF-8 bytes, the same
rows decode in about a third of the time, and the server does less too (fewer send calls).
(Those figures are adbc-driver-postgresql 1.13's, a build without optimisation. With 1.8, the
release pyproject.toml holds to, the plain read costs about half as much and packing still
saves about a third of the read's client CPU — 2M rows, 11 columns: 0.46–0.58 → 0.29–0.39 s;
6.9M rows, the whole `churn features` on a loaded machine: 4.42 → 3.95 s, the server's 3.12 →
2.23 s.)

The values are unpacked here with NumPy and Arrow kernels straight into the columns a Parquet
read gives (a float NULL as NaN, a nullable boolean, a large string that pandas' str dtype
holds as it is, a dictionary for an id or channel), written into the read's Arrow pool: the
heads are cut out by one Arrow kernel and read as one NumPy record array, only the packed
rows' texts are gathered, and nothing is cast or copied after. (Unpacking with NumPy gathers
into the types the plain query gives, then casting, took 1.67 s of client CPU for 6.9M rows;
this takes 0.65 s, and pandas takes the columns without converting the texts.)

Only columns of these PostgreSQL types are packed (named by the driver's field metadata from
1.13, else by the catalogue: :func:`churn.data.database.server_typed`):
``float8``, ``float4``, ``bool``, ``text``, ``varchar``; any other column is sent as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
    #: The packed text columns read dictionary-encoded (ids, channels: few distinct values).
    dictionary: tuple[str, ...] = ()

    @property
    def texts(self) -> tuple[str, ...]:
        """The packed text columns, in packing order (after every fixed-width one)."""
        return tuple(c for c, k in self.packed if k in _TEXT)

    @property
    def head(self) -> np.dtype:
        """The fixed-width head of a packed value: each fixed-width column's bytes, then each
        text's length (-1: NULL) — every non-empty value starts with these, at fixed places."""
        fields = [(c, _FIXED[k][1]) for c, k in self.packed if k in _FIXED] + [(c, ">i4") for c in self.texts]
        return np.dtype([(f"{i}", kind) for i, (_, kind) in enumerate(fields)])


def pg_type(schema: pa.Schema, column: str) -> str | None:
    """The PostgreSQL type name the driver reports for ``column`` (None: not said)."""
    if schema.get_field_index(column) < 0:
        return None
    meta = schema.field(column).metadata or {}
    value = meta.get(b"POSTGRESQL:type")
    return value.decode() if value is not None else None


def with_types(schema: pa.Schema, types: dict[str, str]) -> pa.Schema:
    """``schema`` with each field of ``types`` carrying its PostgreSQL type name, as the driver
    reports it (for :func:`pg_type`)."""
    fields = [f.with_metadata({**(f.metadata or {}), b"POSTGRESQL:type": types[f.name].encode()}) if f.name in types else f for f in schema]
    return pa.schema(fields, metadata=schema.metadata)


def plan(columns: Sequence[str], candidates: Sequence[str], schema: pa.Schema, dictionary: Sequence[str] = ()) -> Packing | None:
    """The packing of ``candidates`` among ``columns`` (None: fewer than two can be packed,
    where one field for one column saves nothing); its ``dictionary`` text columns are read
    dictionary-encoded."""
    packable = [(c, t) for c in columns if c in candidates and (t := pg_type(schema, c)) is not None and (t in _FIXED or t in _TEXT)]
    if len(packable) < 2:
        return None
    fixed = [p for p in packable if p[1] in _FIXED]  # fixed widths first: their offsets are known without reading lengths
    texts = [p for p in packable if p[1] in _TEXT]
    return Packing(tuple(fixed + texts), tuple(columns), tuple(c for c, _ in texts if c in dictionary))


def packed_sql(packing: Packing, quote: Callable[[str], str]) -> str:
    """The SELECT item of the packed field: empty when every packed column is NULL (an empty
    value decodes faster than a NULL), else the head (:attr:`Packing.head`: the fixed-width
    values' binary forms — a NULL float as NaN, a NULL boolean as byte 255 — and each text's
    length in bytes, -1 for NULL), then the texts' UTF-8 bytes end to end."""
    lengths, texts, parts = [], [], []
    for column, kind in packing.packed:
        name = quote(column)
        if kind in ("float8", "float4"):
            parts.append(f"{kind}send(COALESCE({name}, 'NaN'))")
        elif kind == "bool":
            parts.append(f"COALESCE(boolsend({name}), '\\xff'::bytea)")
        else:
            text = f"convert_to({name}, 'UTF8')"
            lengths.append(f"int4send(COALESCE(octet_length({text}), -1))")
            texts.append(f"COALESCE({text}, '\\x'::bytea)")
    names = ", ".join(quote(c) for c, _ in packing.packed)
    return f"CASE WHEN num_nonnulls({names}) > 0 THEN {' || '.join(parts + lengths + texts)} ELSE '\\x'::bytea END AS {quote(PACKED)}"


def select_items(packing: Packing, item: Callable[[str], str], quote: Callable[[str], str]) -> list[str]:
    """The SELECT list: every unpacked column as ``item`` makes it, then the packed field."""
    packed = {c for c, _ in packing.packed}
    return [item(c) for c in packing.columns if c not in packed] + [packed_sql(packing, quote)]


def _spread(values: np.ndarray, rows: np.ndarray, n: int, fill: object, pool: pa.MemoryPool | None) -> pa.Buffer:
    """A buffer of ``n`` values, made in ``pool``: ``values`` at ``rows``, ``fill`` elsewhere."""
    buffer = pa.allocate_buffer(n * values.dtype.itemsize, memory_pool=pool)
    full = np.frombuffer(buffer, dtype=values.dtype, count=n)
    full.fill(fill)
    full[rows] = values
    return buffer


def _bits(values: np.ndarray, rows: np.ndarray, n: int) -> tuple[pa.Buffer, int]:
    """A bitmap of ``n`` bits, set at the ``rows`` whose ``values`` are true; and how many are not."""
    full = np.zeros(n, dtype=bool)
    full[rows] = values
    return pa.py_buffer(np.packbits(full, bitorder="little")), n - int(np.count_nonzero(values))


def _text(data: np.ndarray, begin: np.ndarray, length: np.ndarray, rows: np.ndarray, n: int, dictionary: bool, pool: pa.MemoryPool | None) -> pa.Array:
    """A text column of ``n`` rows from the values at ``begin`` (``length`` bytes, -1: NULL) of
    the packed ``rows``: dictionary-encoded (its values encoded once, in order of appearance,
    as a whole column would be), else a large string (what pandas' str dtype holds as it is)."""
    size = np.maximum(length, 0)
    ends = np.cumsum(size)
    total = int(ends[-1]) if ends.size else 0
    values = pa.allocate_buffer(total, memory_pool=pool)
    if total:
        within = np.arange(total, dtype=np.int64) - np.repeat(ends - size, size)
        np.take(data, np.repeat(begin, size) + within, out=np.frombuffer(values, dtype=np.uint8, count=total))
    present = length >= 0
    validity, nulls = _bits(present, rows, n)
    if dictionary:
        if total > np.iinfo(np.int32).max:
            raise ValueError("a packed text column over 2 GiB in one batch")
        offsets = np.zeros(len(rows) + 1, dtype=np.int32)
        offsets[1:] = ends
        compact = pa.StringArray.from_buffers(len(rows), pa.py_buffer(offsets), values, pa.py_buffer(np.packbits(present, bitorder="little")), int((~present).sum()))
        compact.validate(full=True)  # valid UTF-8, or an error here rather than later
        encoded = pc.dictionary_encode(compact, memory_pool=pool)
        indices = _spread(pc.fill_null(encoded.indices, 0).to_numpy(), rows, n, 0, pool)
        return pa.DictionaryArray.from_arrays(pa.Array.from_buffers(pa.int32(), n, [validity, indices], nulls), encoded.dictionary)
    offsets = pa.allocate_buffer((n + 1) * 8, memory_pool=pool)
    view = np.frombuffer(offsets, dtype=np.int64, count=n + 1)
    view[0] = 0
    full = np.zeros(n, dtype=np.int64)
    full[rows] = size
    np.cumsum(full, out=view[1:])
    array = pa.LargeStringArray.from_buffers(n, offsets, values, validity, nulls)
    array.validate(full=True)
    return array


def unpack(batch: pa.RecordBatch, packing: Packing, pool: pa.MemoryPool | None = None) -> pa.RecordBatch:
    """``batch`` with its packed field replaced by the packed columns, typed as a Parquet read
    types them (float8 → double with NaN for NULL, float4 → float, bool → nullable bool, text
    → large string or, a :attr:`Packing.dictionary` one, dictionary), in the caller's order.
    The columns are made in ``pool`` (the read's): NumPy's own memory, made in a reading thread
    and held until the whole read is converted, stayed resident in that thread's malloc arena
    after it (peak RSS of `churn features`, 6.9M rows: +0.1–0.17 GiB)."""
    blob = batch.column(PACKED)
    n = len(blob)
    schema = unpacked_schema(batch.schema, packing)
    if n == 0:
        return pa.RecordBatch.from_arrays([pa.array([], type=f.type) if f.name in dict(packing.packed) else batch.column(f.name) for f in schema], schema=schema)
    buffers = blob.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32, count=n + 1, offset=blob.offset * 4).astype(np.int64)
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None and len(buffers[2]) else np.zeros(0, np.uint8)
    sizes = np.diff(offsets)
    nonempty = sizes > 0  # empty: every packed column NULL (a NULL field: the same, if ever sent)
    if blob.null_count:
        nonempty &= blob.is_valid().to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(nonempty)
    head_type = packing.head
    if len(rows) and int(sizes[rows].min()) < head_type.itemsize:
        raise ValueError(f"a packed value shorter than its {head_type.itemsize}-byte head")
    heads = pc.binary_slice(blob, 0, head_type.itemsize)  # the heads end to end: an empty or NULL value has none
    head = np.frombuffer(heads.buffers()[2], dtype=head_type, count=len(rows)) if len(rows) else np.zeros(0, head_type)
    out: dict[str, pa.Array] = {}
    fixed = [(c, k) for c, k in packing.packed if k in _FIXED]
    for i, (column, kind) in enumerate(fixed):
        raw = head[str(i)]
        if kind == "bool":
            validity, nulls = _bits(raw != 255, rows, n)
            out[column] = pa.Array.from_buffers(pa.bool_(), n, [validity, _bits(raw == 1, rows, n)[0]], nulls)
        else:
            values = raw.astype(np.float64 if kind == "float8" else np.float32)
            out[column] = pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), n, [None, _spread(values, rows, n, np.nan, pool)])
    begin = offsets[:-1][rows] + head_type.itemsize
    for j, column in enumerate(packing.texts):
        length = head[str(len(fixed) + j)].astype(np.int64)
        out[column] = _text(data, begin, length, rows, n, column in packing.dictionary, pool)
        begin = begin + np.maximum(length, 0)
    return pa.RecordBatch.from_arrays([out[c] if c in out else batch.column(c) for c in packing.columns], schema=schema)


def unpacked_schema(schema: pa.Schema, packing: Packing) -> pa.Schema:
    """The schema of :func:`unpack`'s batches, from the packed query's ``schema``."""
    kinds = dict(packing.packed)
    types = {"float8": pa.float64(), "float4": pa.float32(), "bool": pa.bool_()}
    fields = []
    for c in packing.columns:
        kind = kinds.get(c)
        if kind is None:
            fields.append(schema.field(c))
        elif kind in types:
            fields.append(pa.field(c, types[kind]))
        else:
            fields.append(pa.field(c, pa.dictionary(pa.int32(), pa.string()) if c in packing.dictionary else pa.large_string()))
    return pa.schema(fields)
