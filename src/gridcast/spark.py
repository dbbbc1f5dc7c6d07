"""The one SparkSession factory: the session Databricks already has, or local Spark with Delta."""

from __future__ import annotations

import os
from pathlib import Path

from pyspark.sql import SparkSession

from gridcast.config import SparkConfig
from gridcast.jars import DeltaJarsError, cached_jars, fetch_delta_jars

_LOG4J = Path(__file__).with_name("log4j2.properties")


def get_spark(settings: SparkConfig | None = None, app_name: str = "gridcast") -> SparkSession:
    """Return the active session if there is one (Databricks, tests), else start local Spark.

    The local session has Delta's SQL extension and catalog, few shuffle partitions, adaptive
    execution as configured, no UI and quiet logs: tuned for laptop-sized data.

    Raises:
        DeltaJarsError: Delta's JARs are not cached and cannot be fetched.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if settings is None:
        # The defaults live in conf/config.yaml (`spark:`), nowhere else.
        from gridcast.config import load_config

        settings = load_config([]).spark
    jars = cached_jars()
    if jars is None:
        jars = fetch_delta_jars()
    # Binding to loopback avoids a hostname warning and keeps the driver off the network.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    java_options = f"-Dlog4j2.configurationFile={_LOG4J.as_uri()} {settings.driver_java_options}".strip()
    builder = (
        SparkSession.builder.master(settings.master)
        .appName(app_name)
        .config("spark.jars", ",".join(jars))
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.driver.memory", settings.driver_memory)
        .config("spark.driver.extraJavaOptions", java_options)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        .config("spark.default.parallelism", str(settings.shuffle_partitions))
        .config("spark.sql.adaptive.enabled", str(settings.adaptive_execution).lower())
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # Delta reconstructs table state with 50 partitions by default: far too many for small tables.
        .config("spark.databricks.delta.snapshotPartitions", str(settings.shuffle_partitions))
        .config("spark.databricks.delta.schema.autoMerge.enabled", "false")
    )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


__all__ = ["DeltaJarsError", "get_spark"]
