"""Every table's name, key and schema, in one place.

Locally a table lives at `<storage.root>/<layer>/<name>`; on Databricks at
`<catalog>.<layer>.<name>`. `gridcast.storage` maps these logical tables to either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)


# A field's metadata key holding a Delta generated column's SQL expression.
GENERATION_EXPRESSION = "delta.generationExpression"


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

    @property
    def generated_columns(self) -> tuple[str, ...]:
        """The declared columns Delta computes on every write (`_generated`), in schema order."""
        return tuple(f.name for f in (self.schema or ()) if GENERATION_EXPRESSION in f.metadata)

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
    # BRONZE_ORIGINS: which path wrote the row. Nullable and last: tables written before it
    # existed gain it on their next append (schema evolution); a null there means `history`.
    StructField("origin", StringType(), True),
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

# --- silver -------------------------------------------------------------------------------------
# Electricity Maps' 12 power sources, wire keys lowercased with `_` for spaces.
_POWER_SOURCES = ("nuclear", "geothermal", "biomass", "coal", "wind", "solar", "hydro", "gas",
                  "oil", "unknown", "hydro_discharge", "battery_discharge")


def _generated(name: str, data_type, expression: str) -> StructField:  # noqa: ANN001
    """A Delta generated column: Delta computes it on every write, MERGE included."""
    return StructField(name, data_type, True, {GENERATION_EXPRESSION: expression})


# The silver tables gold builds from keep a change data feed: gold's incremental update reads
# the rows each MERGE changed instead of diffing two whole versions (decision 0027).
_SILVER_GOLD_READS = {"delta.enableChangeDataFeed": "true"}

SILVER_ENERGY = Table(
    "silver", "energy_data", key=("zone", "datetime"),
    schema=StructType([
        StructField("zone", StringType(), False),
        StructField("datetime", TimestampType(), False),  # UTC hour start
        # carbon side (carbon-intensity history), revised as a whole
        StructField("carbon_intensity", IntegerType()),  # gCO2eq/kWh as served (lifecycle by default)
        StructField("emission_factor_type", StringType()),
        StructField("carbon_is_estimated", BooleanType()),
        StructField("carbon_estimation_method", StringType()),
        StructField("carbon_updated_at", TimestampType()),
        StructField("carbon_ingested_at", TimestampType()),  # when the kept revision was fetched
        StructField("carbon_origin", StringType()),  # ORIGINS: where the kept revision came from
        # power side (power-breakdown history), revised as a whole; MW, null = no such source
        *[StructField(f"{flow}_{source}", DoubleType()) for flow in ("production", "consumption") for source in _POWER_SOURCES],
        StructField("power_production_total", DoubleType()),
        StructField("power_consumption_total", DoubleType()),
        StructField("power_import_total", DoubleType()),
        StructField("power_export_total", DoubleType()),
        StructField("fossil_free_percentage", DoubleType()),
        StructField("renewable_percentage", DoubleType()),
        StructField("power_is_estimated", BooleanType()),
        StructField("power_estimation_method", StringType()),
        StructField("power_updated_at", TimestampType()),
        StructField("power_ingested_at", TimestampType()),
        StructField("power_origin", StringType()),
        # both sides
        _generated("is_estimated", BooleanType(), "coalesce(power_is_estimated, false) OR coalesce(carbon_is_estimated, false)"),
        _generated("updated_at", TimestampType(), "greatest(power_updated_at, carbon_updated_at)"),
        StructField("first_ingested_at", TimestampType()),  # first fetch that carried this hour
        StructField("last_ingested_at", TimestampType()),  # last fetch that carried this hour
        # import_<zone> / export_<zone> (double, MW) are added as neighbours appear (MERGE schema evolution)
    ]),
    properties=_SILVER_GOLD_READS,
    description="Power breakdown joined with carbon intensity per zone and hour; newest revision wins.",
)
# Visual Crossing's hourly variables, metric units, in its CSV order: silver keeps them all.
WEATHER_VARIABLES = (
    "temp", "feelslike", "dew", "humidity", "precip", "precipprob", "preciptype", "snow",
    "snowdepth", "windgust", "windspeed", "winddir", "sealevelpressure", "cloudcover",
    "visibility", "solarradiation", "solarenergy", "uvindex", "severerisk", "conditions",
    "icon", "stations",
)
_WEATHER_TEXT = ("preciptype", "conditions", "icon", "stations")
# The ones gold keeps per location. Temperature and humidity drive heating and cooling demand,
# cloud cover and solar radiation solar output, wind speed wind output; precipitation goes with
# cloud and hydro.
GOLD_WEATHER_VARIABLES = ("temp", "humidity", "cloudcover", "solarradiation", "windspeed", "precip")

# Where a row came from: a scheduled API fetch, Electricity Maps' paid backfill, a data-portal CSV.
ORIGINS = ("history", "past-range", "portal")
BACKFILL_ORIGINS = ("past-range", "portal")
# Bronze rows: the scheduled ingest (`history`), or a backfill: Electricity Maps past-range, a
# data-portal CSV, Visual Crossing history over explicit dates, an archived forecast
# (`forecastBasisDate`), a user's weather CSV.
SCHEDULED_ORIGIN = "history"
BRONZE_ORIGINS = (SCHEDULED_ORIGIN, "past-range", "portal", "weather-history", "archived-forecast",
                  "user-csv")

SILVER_ENERGY_REVISIONS = Table(
    "silver", "energy_revisions", key=("zone", "datetime", "side", "updated_at"),
    schema=StructType([
        StructField("zone", StringType(), False),
        StructField("datetime", TimestampType(), False),  # UTC hour start
        # carbon (carbon-intensity endpoint) or power (power-breakdown endpoint): each has its own
        # updatedAt, so a revision is one side's; the other side's columns are null
        StructField("side", StringType(), False),
        # the side's updatedAt; a portal row has none: datetime + publication delay
        StructField("updated_at", TimestampType(), False),
        StructField("first_seen_at", TimestampType(), False),  # ingested_at of the first fetch with it
        # when the value could have been known: first_seen_at for a scheduled fetch; for a backfill
        # the source's publication time (updated_at)
        StructField("available_at", TimestampType(), False),
        StructField("origin", StringType(), False),  # ORIGINS, of the first fetch with it
        StructField("carbon_intensity", IntegerType()),
        StructField("emission_factor_type", StringType()),
        StructField("is_estimated", BooleanType()),
        StructField("estimation_method", StringType()),
        StructField("renewable_percentage", DoubleType()),
        StructField("fossil_free_percentage", DoubleType()),
        StructField("power_production_total", DoubleType()),
        StructField("power_consumption_total", DoubleType()),
        *[StructField(f"production_{source}", DoubleType()) for source in _POWER_SOURCES],
    ]),
    description="Every revision of every energy hour and side as it came through bronze, with when it was known.",
)

SILVER_WEATHER = Table(
    "silver", "weather_forecast_data", key=("zone", "location", "fetched_at", "datetime"),
    schema=StructType([
        StructField("zone", StringType(), False),
        StructField("location", StringType(), False),
        # the vintage: the exact fetch time (bronze ingested_at), or for an archived forecast
        # (Visual Crossing `histfcst`) the basis time its backfill request names (`forecast_basis`)
        StructField("fetched_at", TimestampType(), False),
        StructField("datetime", TimestampType(), False),  # UTC hour start
        StructField("forecast_offset_h", IntegerType()),  # hours from fetched_at to datetime, rounded up
        StructField("is_observation", BooleanType()),  # datetime <= fetched_at
        StructField("origin", StringType()),  # observation | forecast | user-csv
        *[StructField(name, StringType() if name in _WEATHER_TEXT else DoubleType())
          for name in WEATHER_VARIABLES],
        StructField("ingested_at", TimestampType(), False),  # when this vintage was fetched
    ]),
    properties=_SILVER_GOLD_READS,
    description="Hourly weather per location and forecast vintage, UTC; observations marked.",
)
SILVER_QUARANTINE = Table(
    "silver", "quarantine", key=("quarantine_id",),
    schema=StructType([
        StructField("quarantine_id", StringType(), False),  # hash of the bronze pointer and record
        StructField("source_table", StringType(), False),  # the bronze table it came from
        StructField("target_table", StringType(), False),  # the silver table it was meant for
        StructField("zone", StringType()),
        StructField("location", StringType()),
        StructField("reason", StringType(), False),  # every failure, "; "-joined
        StructField("failed_checks", ArrayType(StringType()), False),
        StructField("record", StringType()),  # the offending row, or an excerpt of the payload
        # pointer to the bronze row: source_table + these
        StructField("payload_hash", StringType()),
        StructField("ingest_run_id", StringType()),
        StructField("ingested_at", TimestampType()),
        StructField("quarantined_at", TimestampType(), False),
        StructField("medallion_run_id", StringType()),
    ]),
    description="Payloads and rows that failed parsing or quality checks, with the reason and a pointer to bronze.",
)

# --- gold (columns built by gridcast.medallion.gold) --------------------------------------------
# No declared schema: the columns follow each zone's weather locations (`athens_temp`) and
# silver's neighbour columns, and MERGE adds them as they appear.
GOLD_HISTORIC = Table(
    "gold", "historic_data", key=("zone", "datetime"),
    description="One row per zone hour from its first to last silver hour (a gap is a row of nulls): "
                "energy, newest observed weather per location, UTC/local calendar and holidays, "
                "lag_1h and 24 h rolling features over the hours before.",
)
GOLD_WEATHER_FORECASTS = Table(
    "gold", "weather_forecasts", key=("zone", "fetched_at", "datetime"),
    description="Weather forecast vintages pivoted per location, future hours only, with forecast_offset in hours.",
)

# --- gold: model outputs (pandas frames MERGEd by gridcast.pandas_io.merge_frame) ----------------
_UTC_TS = TimestampType()

GOLD_PREDICTIONS = Table(
    # The model's name as well as its version: versions restart per registered model, so
    # gridcast_GR_48h v1 and gridcast_GR_72h v1 are different forecasts of one hour.
    "gold", "carbon_intensity_predictions",
    key=("zone", "issued_at", "datetime", "model_name", "model_version"),
    schema=StructType([
        StructField("zone", StringType(), False),
        StructField("issued_at", _UTC_TS, False),  # the issue hour T
        StructField("datetime", _UTC_TS, False),  # the target hour T + h
        StructField("horizon", IntegerType(), False),
        StructField("prediction", DoubleType()),
        StructField("p10", DoubleType()),
        StructField("p90", DoubleType()),
        # the seasonal-naive forecast of the same row, as known at T (monitoring compares)
        StructField("baseline_seasonal_naive", DoubleType()),
        StructField("weather_missing", BooleanType()),
        StructField("weather_is_fallback", BooleanType()),
        StructField("model_name", StringType(), False),
        StructField("model_version", StringType(), False),
        StructField("run_id", StringType(), False),  # the model's training run
        StructField("scored_at", _UTC_TS, False),
    ]),
    description="Batch forecasts of the champion: point forecast and p10/p90 per issue hour and target hour.",
)
GOLD_MONITORING = Table(
    "gold", "forecast_monitoring", key=("zone", "window_kind", "window_start", "horizon"),
    description="Forecast error against actuals per UTC day and rolling 7 days, per horizon (0 = all), "
                "with the seasonal-naive baseline, interval coverage and a status.",
)
GOLD_BACKTEST = Table(
    "gold", "backtest_results", key=("zone", "model_config", "fold", "issued_at", "datetime"),
    schema=StructType([
        StructField("zone", StringType(), False),
        # `<kind>-<target>-<hash>` of everything that shapes the numbers (gridcast.backtest)
        StructField("model_config", StringType(), False),
        StructField("fold", IntegerType(), False),
        StructField("issued_at", _UTC_TS, False),
        StructField("datetime", _UTC_TS, False),
        StructField("horizon", IntegerType(), False),
        StructField("prediction", DoubleType()),
        StructField("p10", DoubleType()),
        StructField("p90", DoubleType()),
        StructField("actual", DoubleType()),
        # each naive forecast of the same row, as known at T
        StructField("baseline_persistence", DoubleType()),
        StructField("baseline_seasonal_naive", DoubleType()),
        StructField("baseline_weekly_naive", DoubleType()),
        StructField("baseline_same_hour_mean_7d", DoubleType()),
        StructField("hour_local", IntegerType()),
        # forecast (a vintage fetched by T) | observed (observation used as a forecast) | none
        StructField("weather_source", StringType(), False),
        # the fold's in-sample 24 h seasonal-naive MAE (MASE denominator)
        StructField("mase_scale", DoubleType()),
        StructField("fold_origin", _UTC_TS, False),
        StructField("train_first_issued_at", _UTC_TS),
        StructField("train_last_target", _UTC_TS),
        StructField("calibration_last_target", _UTC_TS),
        StructField("run_id", StringType(), False),  # the backtest run that wrote the fold
    ]),
    description="Walk-forward backtest forecasts with their actuals, per fold and model configuration.",
)
GOLD_GREEN_WINDOWS = Table(
    "gold", "green_windows", key=("zone", "generated_at", "duration_h", "start"),
    description="Recommended windows to run flexible work, ranked by forecast mean intensity.",
)
