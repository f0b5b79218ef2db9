"""The same pipeline on Spark, for data that outgrows one machine.

The feature function is partitionable by account, so Spark only has to hand it the rows of
*some* accounts at a time: both tables get ``bucket = pmod(hash(account_id), N)`` and each
bucket — thousands of accounts, never one account per call — goes through
``cogroup(...).applyInPandas`` into the very functions the in-process engine uses
(:func:`churn.data.contract.validate`, then :func:`churn.features.build.build_features`), vectorised
inside. Results are identical to the in-process engine (a test checks it).

Scoring runs the model where the data is, with ``mapInPandas`` over the feature table and
the same pandas scorer; the ranking, outreach draw and reasons, which need the whole list,
then run on the driver on the scored table.

pyspark is an optional extra: ``pip install 'churn[spark]'``. Nothing here imports it at
module load, so the rest of the package works without it.

Imports: :mod:`churn.modeling`, :mod:`churn.features`, :mod:`churn.data`; a sibling of
:mod:`churn.outreach`. The jobs call it, and the CLI starts its sessions.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pandas as pd

from churn.config import DataSettings, FeatureConfig
from churn.data.attributes import AttributeDecision, plan_attributes
from churn.data.contract import validate
from churn.data.frames import codes_for
from churn.data.read import DataContractError, Location, find_table, is_parquet
from churn.data.rules import OPTIONAL_INTERACTION_COLUMNS
from churn.features.build import build_features, catalogue, unused_by_spec
from churn.features.labels import LABEL, build_training_table
from churn.features.spec import FeatureSpec

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame as SparkDataFrame
    from pyspark.sql import SparkSession

    from churn.config import ChurnDefinition
    from churn.modeling.model import ChurnModel

HISTORY_PREFIX = "__history__"

INSTALL_HINT = "the Spark engine needs pyspark: pip install 'churn[spark]' (and Java 17+)"
PANDAS3_NOTICE = "PySpark does not yet fully support pandas"


class SparkUnavailableError(ValueError):
    """pyspark is not installed."""


def require_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailableError(INSTALL_HINT) from None


def session(master: str | None = None, app_name: str = "churn", shuffle_partitions: int | None = None) -> "SparkSession":
    """A SparkSession: ``master``, else ``SPARK_MASTER``, else ``local[*]``; UTC and Arrow on.

    Any other setting comes from the usual Spark configuration (spark-defaults, SPARK_CONF_DIR).
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    master = master or os.environ.get("SPARK_MASTER", "local[*]")
    if master.startswith("local"):
        # local workers must run this interpreter (it has pandas and churn); clusters set PYSPARK_PYTHON
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        # every worker would repeat PySpark 4.3's pandas-3 notice; the results are tested instead
        os.environ.setdefault("PYTHONWARNINGS", f"ignore:{PANDAS3_NOTICE}:FutureWarning")
    builder = (
        SparkSession.builder.appName(app_name)
        .master(master)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.showConsoleProgress", "false")
    )
    if shuffle_partitions is None and master.startswith("local"):
        shuffle_partitions = 2 * (os.cpu_count() or 1)  # 200 tiny tasks only add overhead on one machine
    if shuffle_partitions:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("FATAL")  # failures reach the user as exceptions, not log lines
    return spark


def read_tables(spark: "SparkSession", data_dir: Location) -> tuple["SparkDataFrame", "SparkDataFrame | None"]:
    """The two event-side contract tables as Spark DataFrames (Parquet files or folders of parts)."""
    accounts, interactions, _ = read_all_tables(spark, data_dir)
    return accounts, interactions


def read_all_tables(spark: "SparkSession", data_dir: Location) -> tuple["SparkDataFrame", "SparkDataFrame | None", "SparkDataFrame | None"]:
    """accounts, interactions (or None) and attribute_history (or None) as Spark DataFrames.

    The tables are found through fsspec (a local folder or a URL), then read by Spark from
    the same location: a URL goes to ``spark.read`` as given (``s3a://``, ``gs://`` and
    ``file://`` are Spark's own filesystems; ``memory://`` is not one)."""
    accounts_path = find_table(data_dir, "accounts")
    if accounts_path is None:
        raise DataContractError(f"{data_dir}: no accounts table (expected accounts.parquet)")
    paths = {"accounts": accounts_path, "interactions": find_table(data_dir, "interactions"), "attribute_history": find_table(data_dir, "attribute_history")}
    for name, path in paths.items():
        if path is not None and not is_parquet(path):
            raise DataContractError(f"{path}: the Spark engine reads Parquet; convert the {name} table first")
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import AnalysisException

    try:
        frames = {name: spark.read.parquet(str(path)) if path is not None else None for name, path in paths.items()}
    except Py4JJavaError as exc:  # e.g. no Hadoop filesystem for the URL's scheme (memory://)
        raise DataContractError(f"{data_dir}: Spark cannot read the tables: {exc.java_exception}") from None
    except AnalysisException as exc:
        if "TIMESTAMP(NANOS" in str(exc):
            raise DataContractError(
                f"{data_dir}: timestamps are stored in nanoseconds, which Spark cannot read; "
                "rewrite the files with microsecond timestamps (pandas: to_parquet(..., coerce_timestamps='us'))"
            ) from None
        raise DataContractError(f"{data_dir}: Spark cannot read the tables: {exc}") from None
    return frames["accounts"], frames["interactions"], frames["attribute_history"]  # type: ignore[return-value]


def _with_bucket(frame: "SparkDataFrame", buckets: int) -> "SparkDataFrame":
    from pyspark.sql import functions as F

    return frame.withColumn("_bucket", F.pmod(F.hash(F.col("account_id").cast("string")), F.lit(buckets)))


def _to_spark_frame(features: pd.DataFrame) -> pd.DataFrame:
    """Text as plain Python objects: Spark has no categorical type (categories are restored on
    the way back), and PySpark 4.3 cannot convert pandas 3's Arrow-backed strings once they
    are chunked (e.g. after a concat)."""
    out = features.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(out[col].dtype):
            out[col] = out[col].astype("str").where(out[col].notna(), None).astype(object)
    return out


def feature_schema(spec: FeatureSpec, config: FeatureConfig) -> "object":
    """Spark schema of the feature table for this spec, from the catalogue's column order."""
    from pyspark.sql import types as T

    text = {"account_id", *(c for c, _ in spec.categorical_attributes)}
    fields = [T.StructField("account_id", T.StringType()), T.StructField("as_of", T.TimestampType())]
    for info in catalogue(spec, config):
        fields.append(T.StructField(info.name, T.StringType() if info.name in text else T.DoubleType()))
    return T.StructType(fields)


def _by_bucket(
    spark: "SparkSession",
    data_dir: Location,
    *,
    since: pd.Timestamp,
    until: pd.Timestamp,
    schema: "object",
    compute: "Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame | None], pd.DataFrame]",
    buckets: int,
) -> "SparkDataFrame":
    """Run ``compute(accounts, interactions, attribute_history)`` on each bucket of accounts
    with their events in [since, until) and their attribute history. Each bucket's rows are
    first validated with the data contract (unusable rows are dropped, as in-process;
    ``churn validate`` writes them out with reasons).

    Spark's cogroup takes two sides, so an account's history rows ride on the accounts side
    (a left join, prefixed columns) and are split off again inside the bucket."""
    from pyspark.sql import functions as F

    accounts, interactions, history = read_all_tables(spark, data_dir)
    if interactions is None:
        interactions = spark.createDataFrame([], "account_id string, occurred_at timestamp, event_type string")
    wanted = ["account_id", "occurred_at", "event_type", *[c for c in OPTIONAL_INTERACTION_COLUMNS if c in interactions.columns]]
    events = interactions.select(*wanted).where(
        (F.col("occurred_at") >= F.lit(since.to_pydatetime())) & (F.col("occurred_at") < F.lit(until.to_pydatetime()))
    )
    account_columns = list(accounts.columns)
    history_columns = list(history.columns) if history is not None else []
    if history is not None:
        renamed = history.select(*[F.col(c).alias(HISTORY_PREFIX + c) for c in history_columns])
        accounts = accounts.join(renamed, accounts["account_id"].cast("string") == renamed[HISTORY_PREFIX + "account_id"].cast("string"), "left")

    def run(acc: pd.DataFrame, ev: pd.DataFrame) -> pd.DataFrame:
        if acc.empty:
            return pd.DataFrame({f.name: pd.Series(dtype=object) for f in schema.fields})  # type: ignore[attr-defined]
        hist = None
        if history_columns:
            hist = acc[[HISTORY_PREFIX + c for c in history_columns]].set_axis(history_columns, axis=1)
            hist = hist[hist["account_id"].notna()].reset_index(drop=True)
            acc = acc[account_columns + ["_bucket"]].drop_duplicates("account_id").reset_index(drop=True)
        data = validate(acc.drop(columns="_bucket"), ev.drop(columns="_bucket") if len(ev.columns) else None, hist)
        return _to_spark_frame(compute(data.accounts, data.interactions, data.attribute_history))

    return (
        _with_bucket(accounts, buckets)
        .groupBy("_bucket")
        .cogroup(_with_bucket(events, buckets).groupBy("_bucket"))
        .applyInPandas(run, schema=schema)  # type: ignore[arg-type]
    )


def spark_features(
    spark: "SparkSession",
    data_dir: Location,
    *,
    as_of: pd.Timestamp,
    spec: FeatureSpec,
    config: FeatureConfig = FeatureConfig(),
    definition: "ChurnDefinition | None" = None,
    buckets: int = 64,
) -> "SparkDataFrame":
    """Features as of ``as_of`` for every customer, computed bucket by bucket on Spark.

    ``definition`` decides who is a customer; resolve it on all accounts first (a bucket
    without churned accounts would resolve "auto" differently)."""
    if definition is not None and definition.kind == "auto":
        accounts, _ = read_tables(spark, data_dir)
        definition = replace(definition, kind=_resolve_kind(accounts))  # type: ignore[arg-type]
    lookback = max(config.lookback_days, definition.horizon_days if definition is not None else 0)
    return _by_bucket(
        spark,
        data_dir,
        since=as_of - pd.Timedelta(days=lookback),
        until=as_of,
        schema=feature_schema(spec, config),
        compute=lambda accounts, events, history: build_features(
            accounts, events, as_of=as_of, spec=spec, config=config, definition=definition, history=history
        ),
        buckets=buckets,
    )


def spark_spec(
    spark: "SparkSession",
    data_dir: Location,
    config: FeatureConfig = FeatureConfig(),
    *,
    cutoffs: list[pd.Timestamp] | None = None,
    data_end: pd.Timestamp | None = None,
    settings: DataSettings = DataSettings(),
) -> tuple[FeatureSpec, pd.DataFrame, list[AttributeDecision]]:
    """The feature spec from Spark-side summaries, the (validated) accounts table, and the
    attribute decisions for ``cutoffs`` (as :func:`churn.features.build.learn_spec` in-process).

    Accounts and attribute history are collected to the driver; interactions never are.
    Without ``cutoffs`` every attribute is used as it is."""
    from pyspark.sql import functions as F

    accounts_sdf, interactions, history_sdf = read_all_tables(spark, data_dir)
    data = validate(accounts_sdf.toPandas(), None, history_sdf.toPandas() if history_sdf is not None else None, date_format=settings.date_format)
    accounts, history = data.accounts, data.attribute_history
    decisions = (
        plan_attributes(accounts, history, cutoffs=cutoffs, settings=settings, export_date=data_end or max(cutoffs))
        if cutoffs
        else []
    )
    attributes = [d.name for d in decisions if d.used] if cutoffs else None
    if cutoffs:  # as in-process (FeatureSpec.from_data(before=...)): nothing after the latest cutoff chooses columns
        before = max(cutoffs)
        accounts_seen = accounts[(accounts["signup_at"] < before).to_numpy(dtype=bool, na_value=False)]
        history_seen = history[(history["valid_from"] < before).to_numpy(dtype=bool, na_value=False)] if history is not None else None
        if interactions is not None:
            interactions = interactions.where(F.col("occurred_at") < F.lit(before.tz_convert("UTC").tz_localize(None).to_pydatetime()))
    else:
        accounts_seen, history_seen = accounts, history
    if interactions is None:
        spec = FeatureSpec.from_summary(accounts_seen, pd.Series(dtype=int), [], [], config, attributes=attributes, history=history_seen)
        return spec, accounts, unused_by_spec(decisions, spec, accounts, history)
    counts = interactions.groupBy("event_type").count().toPandas()
    event_counts = pd.Series(counts["count"].to_numpy(), index=counts["event_type"].astype("str"))
    channels: list[str] = []
    if "channel" in interactions.columns:
        channels = [r[0] for r in interactions.select("channel").where(F.col("channel").isNotNull()).distinct().collect()]
    start = interactions.agg(F.min("occurred_at")).first()[0]
    if start is not None:  # Spark hands back a naive datetime in the session time zone (UTC here)
        start = pd.Timestamp(start)
        start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    spec = FeatureSpec.from_summary(
        accounts_seen, event_counts, channels, interactions.columns, config, attributes=attributes, history=history_seen, history_start=start
    )
    return spec, accounts, unused_by_spec(decisions, spec, accounts, history)


def spark_training_table(
    spark: "SparkSession",
    data_dir: Location,
    *,
    cutoffs: list[pd.Timestamp],
    spec: FeatureSpec,
    definition: "ChurnDefinition",
    config: FeatureConfig = FeatureConfig(),
    buckets: int = 64,
) -> "SparkDataFrame":
    """Features + label at every cutoff, in one shuffle: each bucket of accounts gets all the
    events it needs (lookback of the first cutoff to the horizon of the last) and runs
    :func:`churn.features.labels.build_training_table` on them."""
    from pyspark.sql import types as T

    until = max(cutoffs) + definition.horizon  # the last outcome window is [T, T + horizon)
    if definition.kind == "auto":
        # decided on the whole data set, not per bucket (a bucket may hold no churned account)
        accounts, _ = read_tables(spark, data_dir)
        definition = replace(definition, kind=_resolve_kind(accounts))

    def compute(accounts: pd.DataFrame, events: pd.DataFrame, history: pd.DataFrame | None) -> pd.DataFrame:
        table = build_training_table(accounts, events, cutoffs=cutoffs, definition=definition, config=config, spec=spec, data_end=until, history=history)
        return table.astype({LABEL: "int32"})

    return _by_bucket(
        spark,
        data_dir,
        since=min(cutoffs) - pd.Timedelta(days=max(config.lookback_days, definition.horizon_days)),
        until=until,
        schema=T.StructType([*feature_schema(spec, config).fields, T.StructField(LABEL, T.IntegerType())]),  # type: ignore[attr-defined]
        compute=compute,
        buckets=buckets,
    )


def _resolve_kind(accounts: "SparkDataFrame") -> str:
    """Subscription churn if any account has churned_at, else inactivity (as in-process)."""
    from pyspark.sql import functions as F

    if "churned_at" not in accounts.columns:
        return "inactivity"
    return "subscription" if accounts.where(F.col("churned_at").isNotNull()).limit(1).count() else "inactivity"


def to_pandas_features(frame: "SparkDataFrame", spec: FeatureSpec) -> pd.DataFrame:
    """Collect a Spark feature table into the in-process engine's exact shape and dtypes."""
    out = frame.toPandas().sort_values("account_id", kind="stable").reset_index(drop=True)
    out["account_id"] = out["account_id"].astype("str")
    out["as_of"] = pd.to_datetime(out["as_of"], utc=True).astype("datetime64[ns, UTC]")
    out = restore_categories(out, spec)
    for col in out.columns:
        if col not in ("account_id", "as_of") and not isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype("float64")
    return out


def spark_score(frame: "SparkDataFrame", model: "ChurnModel") -> "SparkDataFrame":
    """``account_id`` and calibrated ``churn_probability`` for every row, on the executors."""
    from pyspark.sql import types as T

    spec = model.spec
    out_schema = T.StructType([T.StructField("account_id", T.StringType()), T.StructField("churn_probability", T.DoubleType())])

    def predict(batches):  # type: ignore[no-untyped-def]
        for batch in batches:
            features = restore_categories(batch, spec)
            yield pd.DataFrame({"account_id": batch["account_id"].astype("str"), "churn_probability": model.predict_proba(features)})

    return frame.mapInPandas(predict, schema=out_schema)


def restore_categories(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Text columns from Spark back to the spec's categorical attributes."""
    out = frame.copy()
    for col, cats in spec.categorical_attributes:
        if col in out.columns:
            out[col] = pd.Categorical.from_codes(codes_for(out[col], list(cats)), categories=list(cats))
    return out


def write_parquet(frame: "SparkDataFrame", path: str | Path) -> str:
    """Write a Spark DataFrame as a folder of Parquet parts (atomic per Spark's committer)."""
    frame.write.mode("overwrite").parquet(str(path))
    return str(path)
