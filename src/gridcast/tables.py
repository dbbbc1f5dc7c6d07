"""Every table's name, key and schema, in one place.

Locally a table lives at `<storage.root>/<layer>/<name>`; on Databricks at
`<catalog>.<layer>.<name>`. `gridcast.storage` maps these logical tables to either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql.types import (
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)


# eq=False: tables are singletons, hashed by identity (their schema and properties are not hashable).
@dataclass(frozen=True, eq=False)
class Table:
    layer: str
    name: str
    key: tuple[str, ...] = ()
    schema: StructType | None = None
    properties: dict[str, str] = field(default_factory=dict)
    description: str = ""

    @property
    def qualified_name(self) -> str:
        return f"{self.layer}.{self.name}"

    def __str__(self) -> str:
        return self.qualified_name


# Columns shared by every raw-response table: what was asked, what came back, when and by whom.
_RAW_RESPONSE_FIELDS = [
    StructField("endpoint", StringType(), False),
    StructField("request_params", StringType(), False),  # JSON, credentials removed
    StructField("http_status", IntegerType(), True),  # null: no response (transport failure)
    StructField("response_body", StringType(), True),
    StructField("error", StringType(), True),  # why the request failed, credentials removed
    StructField("attempts", IntegerType(), False),
    StructField("source", StringType(), False),  # replay | live
    StructField("ingested_at", TimestampType(), False),  # (simulated) time of the request, UTC
    StructField("ingest_run_id", StringType(), False),  # the MLflow run that fetched it
    StructField("payload_hash", StringType(), True),  # sha256 of response_body
]

_BRONZE_PROPERTIES = {"delta.appendOnly": "true"}

BRONZE_POWER = Table(
    "bronze", "power_data",
    schema=StructType([StructField("zone", StringType(), False), *_RAW_RESPONSE_FIELDS]),
    properties=_BRONZE_PROPERTIES,
    description="Raw Electricity Maps power-breakdown responses, append-only.",
)
BRONZE_CARBON = Table(
    "bronze", "carbon_data",
    schema=StructType([StructField("zone", StringType(), False), *_RAW_RESPONSE_FIELDS]),
    properties=_BRONZE_PROPERTIES,
    description="Raw Electricity Maps carbon-intensity responses, append-only.",
)
BRONZE_WEATHER = Table(
    "bronze", "weather_forecast_data",
    schema=StructType([
        StructField("zone", StringType(), False),
        StructField("location", StringType(), False),
        *_RAW_RESPONSE_FIELDS,
    ]),
    properties=_BRONZE_PROPERTIES,
    description="Raw Visual Crossing timeline CSV responses, append-only.",
)

BRONZE_TABLES = (BRONZE_POWER, BRONZE_CARBON, BRONZE_WEATHER)

# --- silver (schemas declared by gridcast.medallion.silver) ----------------------------------
SILVER_ENERGY = Table(
    "silver", "energy_data", key=("zone", "datetime"),
    description="Power breakdown joined with carbon intensity per zone and hour; newest revision wins.",
)
SILVER_WEATHER = Table(
    "silver", "weather_forecast_data", key=("location", "issued_hour", "datetime"),
    description="Hourly weather per location and forecast vintage, UTC; observations marked.",
)
SILVER_QUARANTINE = Table(
    "silver", "quarantine",
    description="Payloads and rows that failed parsing or quality checks, with the reason and a pointer to bronze.",
)

# --- gold (schemas declared by gridcast.medallion.gold) ----------------------------------------
GOLD_HISTORIC = Table(
    "gold", "historic_data", key=("zone", "datetime"),
    description="Energy + observed weather per location, calendar, lag and rolling features.",
)
GOLD_WEATHER_FORECASTS = Table(
    "gold", "weather_forecasts", key=("zone", "ingested_hour_utc", "datetime"),
    description="Weather forecasts pivoted per location, future hours only, with forecast_offset.",
)
