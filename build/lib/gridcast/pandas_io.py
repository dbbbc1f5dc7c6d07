"""Where a small frame leaves Spark for pandas (scikit-learn, plots) and comes back as a Delta
MERGE: the one place that converts timestamps, so no caller meets a naive local datetime.

PySpark hands TimestampType values to Python as naive datetimes in the Python process's (or the
session's) local zone. Here timestamps cross the boundary as epoch microseconds instead and
become tz-aware UTC on the other side, whatever the machine's clock says.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType, TimestampType

from gridcast.medallion.sql import sql_name
from gridcast.storage import TableStore
from gridcast.tables import Table


def to_pandas(df: DataFrame) -> pd.DataFrame:
    """`df.toPandas()` with every timestamp column as `datetime64[ns, UTC]`.

    One Spark action. Column order and names are kept.
    """
    timestamps = [f.name for f in df.schema.fields if isinstance(f.dataType, TimestampType)]
    selected = df.select(*[
        F.unix_micros(df[name]).alias(name) if name in timestamps else df[name]
        for name in df.columns
    ])
    frame = selected.toPandas()
    for name in timestamps:
        frame[name] = pd.to_datetime(frame[name], unit="us", utc=True)
    return frame


def read_table(spark: SparkSession, store: TableStore, table: Table, *,
               where: Column | None = None, columns: list[str] | None = None,
               version: int | None = None) -> pd.DataFrame:
    """A table (or the rows `where` selects, at `version`) as pandas, timestamps UTC-aware."""
    df = store.read(spark, table, version)
    if where is not None:
        df = df.where(where)
    if columns is not None:
        df = df.select(*[df[c] for c in columns])
    return to_pandas(df)


def to_spark(spark: SparkSession, frame: pd.DataFrame, schema: StructType | None = None) -> DataFrame:
    """A pandas frame as a Spark DataFrame; tz-aware (or naive-UTC) datetime columns become
    TimestampType through epoch microseconds, never through the local zone."""
    frame = frame.copy()
    datetimes = [c for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])]
    for name in datetimes:
        values = frame[name]
        if values.dt.tz is None:
            values = values.dt.tz_localize("UTC")
        # pandas keeps s/ms/us resolutions too: epoch microseconds from a fixed ns resolution.
        nanos = values.dt.tz_convert("UTC").astype("datetime64[ns, UTC]").astype("int64")
        frame[name] = nanos.floordiv(1000).where(values.notna())
        frame[name] = frame[name].astype("Int64")
    df = spark.createDataFrame(frame) if len(frame) else _empty(spark, frame, schema)
    df = df.select(*[
        F.timestamp_micros(df[c]).alias(c) if c in datetimes else df[c] for c in frame.columns
    ])
    if schema is not None:
        df = df.select(*[df[f.name].cast(f.dataType).alias(f.name) if f.name in df.columns
                         else F.lit(None).cast(f.dataType).alias(f.name) for f in schema.fields])
    return df


def _empty(spark: SparkSession, frame: pd.DataFrame, schema: StructType | None) -> DataFrame:
    if schema is None:
        raise ValueError("an empty frame needs a schema to become a Spark DataFrame")
    from pyspark.sql.types import LongType, StructField
    fields = [StructField(c, LongType()) if c not in schema.fieldNames() else schema[c]
              for c in frame.columns]
    return spark.createDataFrame([], StructType(fields))


@dataclass(frozen=True)
class MergeOutcome:
    """What `merge_frame` did: rows inserted and updated, and the table's version after it
    (`committed` is False when every row was already there as it is)."""

    inserted: int
    updated: int
    version: int | None
    committed: bool


def merge_frame(spark: SparkSession, store: TableStore, table: Table, frame: pd.DataFrame) -> MergeOutcome:
    """Upsert `frame` into `table` by its key: new keys inserted, changed rows updated, identical
    rows left alone. A frame that changes nothing commits nothing (no new Delta version), so a
    rerun is idempotent in content and in history. The first write creates the table (with its
    declared schema, if any); new columns are added (schema evolution).

    Raises:
        ValueError: the frame lacks a key column or has duplicate keys.
    """
    missing = [k for k in table.key if k not in frame.columns]
    if missing:
        raise ValueError(f"{table}: the frame lacks key column(s) {', '.join(missing)}")
    if frame.duplicated(list(table.key)).any():
        raise ValueError(f"{table}: the frame has duplicate keys {list(table.key)}")
    rows = to_spark(spark, frame, table.schema)
    if not store.exists(spark, table):
        if frame.empty:
            return MergeOutcome(0, 0, None, committed=False)
        store.append(rows, table)
        return MergeOutcome(len(frame), 0, store.version(spark, table), committed=True)
    target = store.read(spark, table)
    compared = [c for c in rows.columns if c in target.columns]
    # Rows whose every shared column already equals the target's (null-safe): nothing to write.
    unchanged = " AND ".join(f"t.{sql_name(c)} <=> s.{sql_name(c)}" for c in compared)
    new_columns = [c for c in rows.columns if c not in target.columns]
    changed = rows.alias("s").join(target.alias("t"), F.expr(unchanged), "left_anti")
    if not new_columns and changed.limit(1).count() == 0:
        return MergeOutcome(0, 0, store.version(spark, table), committed=False)
    on = " AND ".join(f"t.{sql_name(k)} <=> s.{sql_name(k)}" for k in table.key)
    metrics = (
        store.delta_table(spark, table).alias("t").merge(rows.alias("s"), on)
        .withSchemaEvolution()
        .whenMatchedUpdateAll(condition=f"NOT ({unchanged})" if not new_columns else None)
        .whenNotMatchedInsertAll()
        .execute().collect()[0]
    )
    return MergeOutcome(int(metrics["num_inserted_rows"]), int(metrics["num_updated_rows"]),
                        store.version(spark, table), committed=True)
