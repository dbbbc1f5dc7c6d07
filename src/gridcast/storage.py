"""Where tables live: path-based Delta tables locally, Unity Catalog tables on Databricks.

Steps and transforms never ask which one they run on; they get a `TableStore` chosen by the
`storage` config group.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Mapping

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, DataFrameReader, DataFrameWriter, SparkSession

from gridcast.config import LOCAL_CHECKPOINT, MATERIALIZE_MODES, STAGING_TABLE, StorageConfig
from gridcast.tables import Table

_LOG_FILE = re.compile(r"^(\d{20})\.json$")
# Layer of the tables `materialize` stages frames in (not part of the medallion).
STAGING_LAYER = "staging"


class TableStore(ABC):
    """Reads and writes logical tables as Delta tables.

    `materialize_mode`: how `materialize` keeps a frame that is used several times
    (`StorageConfig.materialize`): `local_checkpoint` or `staging_table`.
    """

    materialize_mode: str = LOCAL_CHECKPOINT

    @abstractmethod
    def identifier(self, table: Table) -> str:
        """The table's path (local) or three-part name (Databricks)."""

    @abstractmethod
    def delta_table(self, spark: SparkSession, table: Table) -> DeltaTable: ...

    @abstractmethod
    def exists(self, spark: SparkSession, table: Table) -> bool: ...

    @abstractmethod
    def read(self, spark: SparkSession, table: Table, version: int | None = None) -> DataFrame: ...

    @abstractmethod
    def read_stream(self, spark: SparkSession, table: Table) -> DataFrame:
        """The table as a Delta streaming source (new commits, in version order)."""

    def read_changes(self, spark: SparkSession, table: Table, first: int, last: int) -> DataFrame:
        """The table's change data feed from version `first` to `last` (inclusive): the rows
        those commits inserted, updated (`update_preimage` / `update_postimage`) or deleted,
        with `_change_type`, `_commit_version` and `_commit_timestamp`.

        The table must have `delta.enableChangeDataFeed` set since before `first`; Delta refuses
        the read otherwise (an AnalysisException when it is planned or run).
        """
        reader = (spark.read.format("delta").option("readChangeFeed", "true")
                  .option("startingVersion", first).option("endingVersion", last))
        return self._load(reader, table)

    @abstractmethod
    def _load(self, reader: DataFrameReader, table: Table) -> DataFrame:
        """Run a configured Delta reader against the table."""

    @abstractmethod
    def _builder(self, spark: SparkSession, table: Table):  # noqa: ANN202 - DeltaTableBuilder
        ...

    @abstractmethod
    def _save(self, writer: DataFrameWriter, table: Table) -> None:
        """Run a configured Delta writer against the table."""

    def append(self, df: DataFrame, table: Table, options: Mapping[str, str] | None = None) -> None:
        """Append rows, creating the table (with its declared properties) on first write.

        `options` are Delta writer options for this one write (`txnAppId` / `txnVersion`,
        `userMetadata`, `mergeSchema`): per write, unlike session settings, which Spark Connect
        (serverless) may refuse.
        """
        # Table properties given as writer options are set when the append creates the table.
        writer = df.write.format("delta").mode("append").options(**table.properties)
        self._save(writer.options(**(options or {})), table)

    def replace(self, df: DataFrame, table: Table,
                options: Mapping[str, str] | None = None) -> None:
        """Replace the table's rows and schema with `df` (a new version; history kept);
        `options` as for `append`."""
        writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
        self._save(writer.options(**table.properties).options(**(options or {})), table)

    def replace_where(self, df: DataFrame, table: Table, predicate: str,
                      options: Mapping[str, str] | None = None) -> None:
        """Replace the table's rows matching the SQL `predicate` with `df`, in one commit.

        Every row of `df` must match `predicate` (Delta refuses the write otherwise); rows that
        do not match stay as they are. Unlike MERGE this is a writer, so per-write options such
        as `userMetadata` and `mergeSchema` apply (`options` as for `append`).
        """
        writer = df.write.format("delta").mode("overwrite").option("replaceWhere", predicate)
        self._save(writer.options(**(options or {})), table)

    def materialize(self, df: DataFrame, name: str) -> DataFrame:
        """`df` computed once, now, and kept for the reads that follow (one Spark job).

        `local_checkpoint`: kept by the executors (`DataFrame.localCheckpoint`), the cheapest.
        `staging_table`: written to the Delta table `staging.<name>` (replaced on every call) and
        read back at the version written, for sessions that cannot checkpoint or cache, such as
        Databricks serverless. A name serves one caller at a time: the next call replaces it.
        """
        if self.materialize_mode not in MATERIALIZE_MODES:
            raise ValueError(f"unknown materialize mode {self.materialize_mode!r}; "
                             f"one of {', '.join(MATERIALIZE_MODES)}")
        if self.materialize_mode == LOCAL_CHECKPOINT:
            return df.localCheckpoint()
        staging = Table(STAGING_LAYER, name)
        self.replace(df, staging)
        spark = df.sparkSession
        return self.read(spark, staging, self.version(spark, staging))

    def version(self, spark: SparkSession, table: Table) -> int | None:
        """The table's current Delta version, or None if it does not exist."""
        if not self.exists(spark, table):
            return None
        return self.delta_table(spark, table).history(1).collect()[0]["version"]

    def ensure(self, spark: SparkSession, table: Table) -> None:
        """Create the table with its declared schema and properties if it does not exist."""
        if table.schema is None:
            raise ValueError(f"{table} has no declared schema to create it from")
        builder = self._builder(spark, table).addColumns(table.schema)
        for key, value in table.properties.items():
            builder = builder.property(key, value)
        if table.description:
            builder = builder.comment(table.description)
        builder.execute()


class LocalTableStore(TableStore):
    """Path-based Delta tables under `<root>/<layer>/<name>`, readable by any Delta reader."""

    def __init__(self, root: Path, materialize: str = LOCAL_CHECKPOINT):
        self.root = Path(root)
        self.materialize_mode = materialize

    def identifier(self, table: Table) -> str:
        return str(self.root / table.layer / table.name)

    def delta_table(self, spark: SparkSession, table: Table) -> DeltaTable:
        return DeltaTable.forPath(spark, self.identifier(table))

    def exists(self, spark: SparkSession, table: Table) -> bool:
        return (Path(self.identifier(table)) / "_delta_log").is_dir()

    def version(self, spark: SparkSession, table: Table) -> int | None:
        # The newest commit file names the version: no Spark job needed.
        log_dir = Path(self.identifier(table)) / "_delta_log"
        if not log_dir.is_dir():
            return None
        versions = [int(m.group(1)) for p in log_dir.iterdir() if (m := _LOG_FILE.match(p.name))]
        return max(versions) if versions else None

    def read(self, spark: SparkSession, table: Table, version: int | None = None) -> DataFrame:
        reader = spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(self.identifier(table))

    def read_stream(self, spark: SparkSession, table: Table) -> DataFrame:
        return spark.readStream.format("delta").load(self.identifier(table))

    def _load(self, reader: DataFrameReader, table: Table) -> DataFrame:
        return reader.load(self.identifier(table))

    def _builder(self, spark: SparkSession, table: Table):  # noqa: ANN202
        return DeltaTable.createIfNotExists(spark).location(self.identifier(table))

    def _save(self, writer: DataFrameWriter, table: Table) -> None:
        writer.save(self.identifier(table))


class UnityCatalogTableStore(TableStore):
    """Managed tables `<catalog>.<schema>.<layer>_<name>` (Databricks).

    One schema holds every layer, so one grant and one `storage.schema` per deployment; the
    layer stays in the table name because the bare names collide across layers
    (`bronze.weather_forecast_data`, `silver.weather_forecast_data`).
    """

    def __init__(self, catalog: str, schema: str, materialize: str = STAGING_TABLE):
        self.catalog, self.schema = catalog, schema
        self.materialize_mode = materialize

    def identifier(self, table: Table) -> str:
        return f"{self.catalog}.{self.schema}.{table.layer}_{table.name}"

    def delta_table(self, spark: SparkSession, table: Table) -> DeltaTable:
        return DeltaTable.forName(spark, self.identifier(table))

    def exists(self, spark: SparkSession, table: Table) -> bool:
        return spark.catalog.tableExists(self.identifier(table))

    def read(self, spark: SparkSession, table: Table, version: int | None = None) -> DataFrame:
        reader = spark.read
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.table(self.identifier(table))

    def read_stream(self, spark: SparkSession, table: Table) -> DataFrame:
        # By name: a catalog table refuses path-style `delta.`<path>`` streaming.
        return spark.readStream.format("delta").table(self.identifier(table))

    def _load(self, reader: DataFrameReader, table: Table) -> DataFrame:
        return reader.table(self.identifier(table))

    def _builder(self, spark: SparkSession, table: Table):  # noqa: ANN202
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {self.catalog}.{self.schema}")
        return DeltaTable.createIfNotExists(spark).tableName(self.identifier(table))

    def _save(self, writer: DataFrameWriter, table: Table) -> None:
        writer.saveAsTable(self.identifier(table))


def table_store(config: StorageConfig) -> TableStore:
    """The store the `storage` config group chose."""
    if config.kind == "local":
        assert config.root is not None  # validated by load_config
        return LocalTableStore(config.root, config.materialize)
    if config.kind == "databricks":
        assert config.catalog is not None and config.schema is not None  # validated by load_config
        return UnityCatalogTableStore(config.catalog, config.schema, config.materialize)
    raise ValueError(f"unknown storage kind {config.kind!r}")
