"""Arrow batches read from a database made what a Parquet read gives: typed the same way
(:func:`target`: decimals as floats, zone-aware timestamps in UTC, ids dictionary-encoded),
released from the driver's memory batch by batch (:func:`typed`), the interactions' mostly
empty number columns cut down as they come (:class:`churn.data.sparse.Batches`), and then a
DataFrame converted column by column (:func:`frame`). :mod:`churn.data.database` sends the SQL
and reads the batches; this is what it does with them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Container, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churn.data import pgpack
from churn.data.sparse import Batches


def booleans(arrow: pa.Table, schema: pa.Schema) -> pa.Table:
    """The boolean columns sent as small integers (:func:`churn.data.database._column`: 1, 0, and -1 for NULL) made
    nullable booleans again."""
    for i, field in enumerate(arrow.schema):
        if pa.types.is_int16(field.type) and schema.get_field_index(field.name) >= 0 and pa.types.is_boolean(schema.field(field.name).type):
            column = arrow.column(i)
            arrow = arrow.set_column(i, field.name, pc.if_else(pc.equal(column, -1), pa.scalar(None, pa.bool_()), pc.cast(column, pa.bool_())))
    return arrow


def target(field: pa.Field, categorical: Sequence[str]) -> pa.DataType:
    """The type a column is read as, the way a Parquet read types it: decimals as floats,
    zone-aware timestamps in UTC, the ``categorical`` text columns dictionary-encoded, every
    dictionary with int32 indices (a DuckDB ENUM's vary)."""
    kind = field.type
    if pa.types.is_decimal(kind):
        return pa.float64()
    if pa.types.is_timestamp(kind) and kind.tz is not None:
        return pa.timestamp(kind.unit, "UTC")
    if field.name in categorical and (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return pa.dictionary(pa.int32(), kind)
    if pa.types.is_dictionary(kind):
        return pa.dictionary(pa.int32(), kind.value_type)
    return kind


def typed(batch: pa.RecordBatch, schema: pa.Schema, pool: pa.MemoryPool, made: Container[str] = ()) -> pa.RecordBatch:
    """A batch cast to ``schema`` (:func:`target`) — batch by batch, so a 10M-row id column is
    never held as text whole. What it makes goes into ``pool`` (the pool the table is converted
    and released with), and the columns it leaves as they are are copied there too, so that
    nothing of the driver's batch is held after it and the driver's memory is freed batch by
    batch: pandas' str dtype keeps the Arrow array, and a text column left in the driver's
    batch memory kept that memory resident after the read (1.4M interactions: 420 → 361 MiB
    resident after the read, peak of `churn features` 0.54 → 0.44 GiB, below the Parquet path's
    0.47); the timestamps left there held every batch whole until the table was converted
    (6.9M interactions, the read alone, 4 runs each: peak 1268–1296 → 1230–1249 MiB, page
    faults 358–364k → 317–325k, the same CPU). The ``made`` columns are ours already
    (:func:`churn.data.pgpack.unpack` made them, typed): not copied."""
    columns = []
    for column, field in zip(batch.columns, schema):
        if field.name in made:
            pass
        elif column.type != field.type:
            if pa.types.is_dictionary(field.type) and not pa.types.is_dictionary(column.type):
                column = pc.dictionary_encode(column, memory_pool=pool)
            column = pc.cast(column, field.type, memory_pool=pool) if column.type != field.type else column
        else:
            column = pa.concat_arrays([column], memory_pool=pool)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def read_all(reader: pa.RecordBatchReader, categorical: Sequence[str], pool: pa.MemoryPool, packing: pgpack.Packing | None = None, sparse: Sequence[str] = ()) -> Batches:
    """Every batch of ``reader``, unpacked (``packing``) and typed (:func:`typed`) as it
    arrives, the mostly empty ``sparse`` columns cut down as they come (:class:`churn.data.sparse.Batches`)."""
    sent = pgpack.unpacked_schema(reader.schema, packing) if packing is not None else reader.schema
    schema = pa.schema([pa.field(f.name, target(f, categorical)) for f in sent])
    batches = (pgpack.unpack(batch, packing, pool) for batch in reader) if packing is not None else iter(reader)
    made = {c for c, _ in packing.packed} if packing is not None else set()
    gathered = Batches(schema, sparse)
    for batch in batches:
        gathered.add(typed(batch, schema, pool, made))
    return gathered


def frame(held: list[pa.Table], pool: pa.MemoryPool) -> pd.DataFrame:
    """The table taken out of ``held`` as a DataFrame, converted column by column, each Arrow
    column let go once converted and each NumPy column kept as it is (no block consolidation):
    the whole table and the whole frame are never both held. (A table converted at once added
    a second copy on top — 2.1M interactions: 116 MiB, the peak of `churn features`.)

    Two columns are converted at a time, in two threads (Arrow converts without holding the
    GIL): this runs after the last rows arrive, while the rest of `churn features` waits for
    it and the database is idle, so one thread left a core idle (a Parquet read's
    ``Table.to_pandas`` uses threads the same way). 6.9M interactions, 5 runs: the same CPU
    (0.26–0.53 s one by one, 0.31–0.36 s in two threads), the longer thread's share
    0.16–0.21 s — the wall time on an idle machine; a loaded one showed no gain."""
    table = held.pop()
    names = table.column_names
    columns = {name: table.column(i) for i, name in enumerate(names)}
    del table

    def convert(name: str) -> pd.Series:
        return to_pandas(columns.pop(name), pool)  # popped: the Arrow column let go once converted

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="churn-frame") as threads:
        frame = dict(zip(names, threads.map(convert, names)))
    return pd.DataFrame(frame, copy=False)


def to_pandas(column: pa.ChunkedArray, pool: pa.MemoryPool) -> pd.Series:
    """A column as pandas holds it: a boolean as a nullable boolean (a ChunkedArray given a
    mapper makes text objects first, 0.6 s / 7M rows: booleans only), timestamps in ns."""
    mapper = {pa.bool_(): pd.BooleanDtype()}.get if pa.types.is_boolean(column.type) else None
    return column.to_pandas(memory_pool=pool, coerce_temporal_nanoseconds=True, types_mapper=mapper)
