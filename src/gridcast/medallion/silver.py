"""Silver: bronze API responses parsed, typed, checked and merged into the silver tables.

- `silver.energy_data` (zone, datetime): the power-breakdown and carbon-intensity histories
  flattened and joined per hour. Each side (power, carbon) is revised on its own: a MERGE keeps
  that side's newest revision (its `updatedAt`, then the later fetch), so an older revision
  arriving late never overwrites a newer one and an hour whose other side has not arrived yet
  still lands, to be completed later.
- `silver.weather_forecast_data` (zone, location, fetched_at, datetime): Visual Crossing's hourly
  CSV, UTC, every forecast vintage kept by its exact fetch time (two fetches in one hour are two
  vintages); hours at or before the fetch are observations.
- `silver.quarantine`: every payload or row that failed to parse or failed an expectation
  (`gridcast.medallion.quality`), with all its reasons and a pointer to its bronze row.

The transforms are pure (DataFrame -> DataFrame). Parsed frames carry plumbing columns starting
with `_`: the bronze pointer (`_source_table`, `_payload_hash`, `_ingest_run_id`,
`_ingested_at`), the offending text for quarantine (`_record`) and parse failures (`FAILURES`).
`refresh_silver` at the end wires them to the bronze tables, reading only what is new.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta
from functools import reduce
from typing import Callable, Sequence

from pyspark.sql import Column, DataFrame, Row, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, MapType, StringType, StructField, StructType
from pyspark.util import inheritable_thread_target

from gridcast.hours import HOUR_S
from gridcast.medallion.quality import (
    ENERGY,
    FAILURES,
    FAILURES_TYPE,
    WEATHER,
    conform,
    evaluate,
    failure,
    passed,
)
from gridcast.medallion.sql import column_name_sql, sql_name, sql_text
from gridcast.medallion.upsert import (
    MERGE_MATERIALIZE_SOURCE,
    SOURCE_COLUMN,
    Batch,
    IncrementalRun,
    MergeMetrics,
    RevisionGroup,
    append_into_empty,
    append_once,
    appended_rows,
    known_empty,
    latest_per_key,
    merge_revisions,
    process_new_rows,
    session_conf,
)
from gridcast.storage import TableStore
from gridcast.tables import (
    BRONZE_CARBON,
    BRONZE_POWER,
    BRONZE_WEATHER,
    BACKFILL_ORIGINS,
    SILVER_ENERGY,
    SILVER_ENERGY_REVISIONS,
    SILVER_QUARANTINE,
    SILVER_WEATHER,
    WEATHER_VARIABLES,
    Table,
)

Progress = Callable[[str], None]

POWER_SOURCES = tuple(
    f.name.removeprefix("production_") for f in SILVER_ENERGY.schema.fields if f.name.startswith("production_")
)
_WEATHER_NAMES = SILVER_WEATHER.schema.names

# request_params key a Visual Crossing backfill sets on a `forecastBasisDate` request: the ISO
# time the archived forecast was issued, which is its vintage (not the simulated fetch time).
FORECAST_BASIS = "forecast_basis"
USER_CSV = "user-csv"  # bronze weather endpoint (and silver origin) of a user's weather CSV

ENERGY_KEY = SILVER_ENERGY.key
WEATHER_KEY = SILVER_WEATHER.key
EXCERPT_CHARS = 500

# Each side of an energy row is revised as a whole, ordered by its updatedAt, then its fetch time.
POWER_GROUP = RevisionGroup(
    "power", order=("power_updated_at", "power_ingested_at"),
    columns=("fossil_free_percentage", "renewable_percentage"),
    prefixes=("power_", "production_", "consumption_", "import_", "export_"),
)
CARBON_GROUP = RevisionGroup(
    "carbon", order=("carbon_updated_at", "carbon_ingested_at"),
    columns=("emission_factor_type",), prefixes=("carbon_",),
)
# first/last fetch that carried the hour: combined on every match, whichever side is newer.
SEEN = {
    "first_ingested_at": "least(t.first_ingested_at, s.first_ingested_at)",
    "last_ingested_at": "greatest(t.last_ingested_at, s.last_ingested_at)",
}
# A weather vintage is replaced only by a later fetch of the same issue hour.
WEATHER_GROUP = RevisionGroup(
    "vintage", order=("ingested_at",),
    columns=tuple(c for c in _WEATHER_NAMES if c not in WEATHER_KEY),
)


# --- shared parsing helpers ----------------------------------------------------------------------

def _excerpt(text: Column) -> Column:
    return F.substring(text, 1, EXCERPT_CHARS)


def _response_ok() -> Column:
    return (F.col("http_status") == 200) & (F.trim(F.coalesce(F.col("response_body"), F.lit(""))) != "")


def _response_failures() -> list[Column]:
    """Failures of the HTTP exchange itself: no response, an error status, an empty body."""
    status, body, error = F.col("http_status"), F.col("response_body"), F.col("error")
    return [
        F.when(status.isNull(), failure("http_status", F.concat(
            F.lit("no response: "), F.coalesce(error, F.lit("unknown transport failure"))))),
        F.when(status.isNotNull() & (status != 200), failure("http_status", F.concat(
            F.lit("HTTP "), status.cast("string"), F.lit(": "),
            F.coalesce(_excerpt(body), error, F.lit("(no body)"))))),
        F.when((status == 200) & ~_response_ok(), failure("payload", "empty response body")),
    ]


def _with_pointer(bronze: DataFrame, table: Table) -> DataFrame:
    """The bronze columns and the bronze pointer as plumbing columns (replacing any plumbing)."""
    return bronze.select(
        *[c for c in bronze.columns if not c.startswith("_")],
        F.lit(table.qualified_name).alias("_source_table"),
        F.col("payload_hash").alias("_payload_hash"),
        F.col("ingest_run_id").alias("_ingest_run_id"),
        F.col("ingested_at").alias("_ingested_at"),
    )


def _one_row_per_failed_payload(items: Column, item_type: DataType | str) -> Column:
    """The items of a good payload; a single null item for a failed one (so it is kept, once)."""
    return F.when(F.size(FAILURES) > 0, F.array(F.lit(None).cast(item_type))).otherwise(items)


# --- Electricity Maps ----------------------------------------------------------------------------

_TEXT = StringType()
_BREAKDOWN = MapType(StringType(), StringType())
# Everything as text: values are typed (and type failures reported) by the quality gate.
_EM_ENTRY = StructType(
    [StructField(name, _TEXT) for name in (
        "zone", "datetime", "updatedAt", "createdAt", "carbonIntensity", "emissionFactorType",
        "isEstimated", "estimationMethod", "fossilFreePercentage", "renewablePercentage",
        "powerConsumptionTotal", "powerProductionTotal", "powerImportTotal", "powerExportTotal",
    )]
    + [StructField(name, _BREAKDOWN) for name in (
        "powerConsumptionBreakdown", "powerProductionBreakdown", "powerImportBreakdown", "powerExportBreakdown",
    )]
)
# history (history/latest endpoints) or data (past-range); entries kept as their JSON text.
_EM_RESPONSE = StructType([
    StructField("zone", _TEXT),
    StructField("history", ArrayType(_TEXT)),
    StructField("data", ArrayType(_TEXT)),
    StructField("_corrupt_record", _TEXT),
])


def _em_entries(bronze: DataFrame, table: Table) -> DataFrame:
    """One row per history entry (`_record` = its JSON, `_entry` = parsed); one row per failed payload."""
    body = F.col("response_body")
    response = F.from_json(body, _EM_RESPONSE, {"columnNameOfCorruptRecord": "_corrupt_record"})
    entries = F.coalesce(F.col("_response.history"), F.col("_response.data"))
    payload_failures = [
        *_response_failures(),
        F.when(_response_ok() & F.col("_response._corrupt_record").isNotNull(),
               failure("json", F.concat(F.lit("malformed JSON: "), _excerpt(body)))),
        F.when(_response_ok() & F.col("_response._corrupt_record").isNull() & entries.isNull(),
               failure("payload", F.concat(F.lit("no history in response: "), _excerpt(body)))),
    ]
    return (
        _with_pointer(bronze, table)
        .withColumn("_response", response)
        .withColumn(FAILURES, F.array_compact(F.array(*payload_failures)))
        .withColumn("_entry_json", F.explode(_one_row_per_failed_payload(entries, _TEXT)))
        .withColumn("_entry", F.from_json("_entry_json", _EM_ENTRY))
        .withColumn("_record", F.coalesce(F.col("_entry_json"), _excerpt(body), F.col("error")))
    )


PORTAL_CSV = "portal-csv"  # bronze carbon endpoint of data-portal rows (built by the backfill step)
DEFAULT_PUBLICATION_DELAY = timedelta(hours=2)


def _origin(bronze: DataFrame) -> str:
    """SQL: where an energy response came from (`ORIGINS`), from its endpoint, else the bronze
    `origin` column (null or absent: a scheduled history fetch)."""
    stated = "origin" if "origin" in bronze.columns else "NULL"
    return (f"CASE WHEN endpoint = {sql_text(PORTAL_CSV)} THEN 'portal' "
            f"WHEN endpoint LIKE '%past-range' THEN 'past-range' ELSE coalesce({stated}, 'history') END")


def _plumbing() -> list[str]:
    return ["_source_table", "_payload_hash", "_ingest_run_id", "_ingested_at", "_record", FAILURES]


def parse_carbon_history(bronze: DataFrame) -> DataFrame:
    """Carbon-intensity responses (bronze rows) -> one row per (zone, hour) entry, values as text.

    `history` and `past-range` responses and data-portal rows (endpoint `portal-csv`, in the
    past-range shape, `updatedAt` null) alike; `carbon_origin` says which.

    Args:
        bronze: rows of `bronze.carbon_data`.

    Returns:
        zone, datetime and the carbon_* columns of `silver.energy_data` (still text), plus
        plumbing; a failed payload is one row with its `FAILURES`.
    """
    return _em_entries(bronze, BRONZE_CARBON).selectExpr(
        "zone",
        "_entry.datetime AS datetime",
        "_entry.carbonIntensity AS carbon_intensity",
        # As served: the entry says which factor; older responses only say it in the request.
        "coalesce(_entry.emissionFactorType, get_json_object(request_params, '$.emissionFactorType'), "
        "'lifecycle') AS emission_factor_type",
        "_entry.isEstimated AS carbon_is_estimated",
        "_entry.estimationMethod AS carbon_estimation_method",
        "_entry.updatedAt AS carbon_updated_at",
        "ingested_at AS carbon_ingested_at",
        f"{_origin(bronze)} AS carbon_origin",
        *_plumbing(),
    )


# A wire key as a column-name part: `hydro discharge` -> `hydro_discharge`, `IT-SO` -> `it_so`.
_KEY_AS_COLUMN_NAME = f"(k, v) -> {column_name_sql('k')}"


def parse_power_history(bronze: DataFrame) -> DataFrame:
    """Power-breakdown responses (bronze rows) -> one row per (zone, hour) entry, values as text.

    The four breakdowns stay maps, keys normalised as column-name parts (`hydro discharge` ->
    `hydro_discharge`, `IT-SO` -> `it_so`): `_production`, `_consumption`, `_imports`,
    `_exports`, until `flatten_power_breakdown`.
    """
    def normalised(breakdown: str, alias: str) -> str:
        return f"transform_keys(_entry.{breakdown}, {_KEY_AS_COLUMN_NAME}) AS {alias}"

    return _em_entries(bronze, BRONZE_POWER).selectExpr(
        "zone",
        "_entry.datetime AS datetime",
        normalised("powerProductionBreakdown", "_production"),
        normalised("powerConsumptionBreakdown", "_consumption"),
        normalised("powerImportBreakdown", "_imports"),
        normalised("powerExportBreakdown", "_exports"),
        "_entry.powerProductionTotal AS power_production_total",
        "_entry.powerConsumptionTotal AS power_consumption_total",
        "_entry.powerImportTotal AS power_import_total",
        "_entry.powerExportTotal AS power_export_total",
        "_entry.fossilFreePercentage AS fossil_free_percentage",
        "_entry.renewablePercentage AS renewable_percentage",
        "_entry.isEstimated AS power_is_estimated",
        "_entry.estimationMethod AS power_estimation_method",
        "_entry.updatedAt AS power_updated_at",
        "ingested_at AS power_ingested_at",
        f"{_origin(bronze)} AS power_origin",
        *_plumbing(),
    )


def neighbour_keys(parsed_power: DataFrame) -> list[str]:
    """Every neighbour zone key (normalised) in the import or export breakdowns: one Spark job."""
    keys = "explode(array_union(coalesce(map_keys(_imports), array()), coalesce(map_keys(_exports), array())))"
    rows = parsed_power.selectExpr(f"{keys} AS key").distinct().collect()
    return sorted(row["key"] for row in rows if row["key"])


def flatten_power_breakdown(parsed_power: DataFrame, neighbours: Sequence[str] | None = None) -> DataFrame:
    """Breakdown maps -> columns: production_<source> and consumption_<source> for the 12 sources,
    import_<zone> and export_<zone> for every neighbour.

    Args:
        parsed_power: the output of `parse_power_history`.
        neighbours: the normalised neighbour keys to make columns for; None: every key present
            (one Spark job, see `neighbour_keys`).

    Returns:
        `parsed_power` without the maps, with those columns (text; null = no such source/flow).
    """
    neighbours = neighbour_keys(parsed_power) if neighbours is None else sorted(neighbours)
    flows = [
        *[f"try_element_at(_production, {sql_text(s)}) AS {sql_name('production_' + s)}" for s in POWER_SOURCES],
        *[f"try_element_at(_consumption, {sql_text(s)}) AS {sql_name('consumption_' + s)}" for s in POWER_SOURCES],
        *[f"try_element_at(_imports, {sql_text(k)}) AS {sql_name('import_' + k)}" for k in neighbours],
        *[f"try_element_at(_exports, {sql_text(k)}) AS {sql_name('export_' + k)}" for k in neighbours],
    ]
    scalars = [c for c in parsed_power.columns if not c.startswith("_") and c not in ENERGY_KEY]
    return parsed_power.selectExpr(*ENERGY_KEY, *flows, *scalars, *_plumbing())


# --- Visual Crossing ----------------------------------------------------------------------------

# A line's fields (RFC 4180: a field in double quotes may hold commas, a quote inside it is
# doubled; an empty field is null). A line without quotes is a plain split; one with quotes
# splits at the commas outside them. `from_csv` did the same 6x slower (measured on a year of
# backfilled weather, 80 000 lines: 41 s against 6.5 s), which made it the medallion's biggest cost.
# The commas outside quotes are those with an even number of quotes after them. With an even
# number of quotes on the line that is an even number before them, so the fields are matched
# left to right in one pass (a field starts at the line's start or after a comma; plain
# characters and whole quoted runs); a lookahead counting the quotes after every comma cost
# 20 s of the year's weather parse (every Visual Crossing line quotes its `name`). A line with
# an odd number of quotes (a truncated field: quarantined) keeps the lookahead split.
_CSV_FIELDS_OF_LINE = (
    "transform(CASE WHEN instr(l, '\"') = 0 THEN split(l, ',', -1)"
    "  WHEN (length(l) - length(replace(l, '\"', ''))) % 2 = 0"
    "    THEN regexp_extract_all(l, '(?<![^,])(?:[^,\"]|\"[^\"]*\")*', 0)"
    "  ELSE split(l, ',(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)', -1) END,"
    "  f -> nullif(CASE WHEN length(f) >= 2 AND startswith(f, '\"') AND endswith(f, '\"')"
    "    THEN replace(substr(f, 2, length(f) - 2), '\"\"', '\"') ELSE f END, ''))"
)
# Each data line parsed once, its fields kept as one array: struct<line, values>.
_CSV_LINES = (
    "transform(filter(slice(_lines, 2, greatest(size(_lines) - 1, 0)), l -> trim(l) != ''),"
    f"  l -> named_struct('line', l, 'values', {_CSV_FIELDS_OF_LINE}))"
)
_LINE_TYPE = "struct<line: string, values: array<string>>"
_BOM = "^\ufeff"
_HAS_ZONE = r"(Z|[+-]\d\d:?\d\d)$"  # an ISO time that already says its offset


def _header_positions(names: Sequence[str]) -> Column:
    """Per payload, before its lines are exploded: each name's 1-based position in `_header`
    (0 when absent). Searching the header for every line and column made the per-line
    projection too large for the JIT to compile: it ran interpreted (decision 0031)."""
    return F.struct(*[F.array_position("_header", name).cast("int").alias(name) for name in names])


def _csv_value(name: str) -> str:
    """SQL: the field of the current line under header `name` (null when the header lacks it);
    needs `_header_positions` as `_pos`."""
    position = f"_pos.{sql_name(name)}"
    return f"CASE WHEN {position} > 0 THEN try_element_at(_line.values, {position}) END"


def parse_weather_csv(bronze: DataFrame) -> DataFrame:
    """Visual Crossing hourly CSV responses (bronze rows) -> one row per CSV data line.

    Columns are found by header name, quoted fields may hold commas, an empty field is null.
    Times are UTC: the request asked for `timezone=Z` (a payload that did not is refused, its
    wall-clock times being ambiguous at daylight-saving changes), so `datetime` gets a `Z`.

    Args:
        bronze: rows of `bronze.weather_forecast_data`.

    Returns:
        zone, location, fetched_at (the exact fetch time; for an archived forecast the
        `forecast_basis` its request names), datetime, origin (`user-csv` or null) and the
        weather variables (text), ingested_at, plus plumbing. A failed payload is one row; a
        truncated or malformed line is a row with its `FAILURES`.
    """
    body = F.col("response_body")
    has_datetime = F.array_contains(F.col("_header"), "datetime")
    in_utc = F.coalesce(F.get_json_object("request_params", "$.timezone") == "Z", F.lit(False))
    payload_failures = [
        *_response_failures(),
        F.when(_response_ok() & ~has_datetime, failure("csv_header", F.concat(
            F.lit("no CSV header with a datetime column: "), _excerpt(body)))),
        F.when(_response_ok() & has_datetime & ~in_utc, failure("timezone", (
            "not requested with timezone=Z: local wall-clock times are ambiguous at daylight-saving changes"))),
    ]
    line = F.col("_line.line")
    # From the fields already split, not a second pass over the line: an odd number of quotes is
    # an unterminated field, and otherwise the fields are those the commas outside quotes part
    # (both checked equal to removing the quoted runs and splitting the rest, on every line of
    # up to 8 characters of `a`, `,` and `"`).
    quotes = F.length(line) - F.length(F.replace(line, F.lit('"'), F.lit("")))
    field_count = F.size("_line.values")
    # At most one of the two (a `when` chain, not `array_compact`: a lambda there would keep the
    # per-line projection below, the parse's largest, from generated code; see `evaluate`).
    line_failures = (
        F.when(quotes % 2 == 1,
               F.array(failure("csv_row", "unterminated quoted field (truncated line?)")))
        .when(field_count != F.size("_header"), F.array(failure("csv_row", F.concat(
            F.lit("line has "), field_count.cast("string"), F.lit(" fields, the header "),
            F.size("_header").cast("string"), F.lit(" (truncated or malformed)")))))
        .otherwise(F.array().cast(FAILURES_TYPE))
    )
    raw_datetime = _csv_value("datetime")
    return (
        _with_pointer(bronze, BRONZE_WEATHER)
        .withColumn("_lines", F.split(F.coalesce(body, F.lit("")), r"\r?\n"))
        .withColumn("_header", F.expr(
            f"transform(split(regexp_replace(_lines[0], {sql_text(_BOM)}, ''), ','), h -> trim(replace(h, '\"', '')))"))
        .withColumn("_pos", _header_positions(["datetime", *WEATHER_VARIABLES]))
        .withColumn(FAILURES, F.array_compact(F.array(*payload_failures)))
        .withColumn("_line", F.explode(_one_row_per_failed_payload(F.expr(_CSV_LINES), _LINE_TYPE)))
        .withColumn(FAILURES, F.when(line.isNull(), F.col(FAILURES))
                    .otherwise(line_failures))
        .withColumn("_record", F.coalesce(line, _excerpt(body), F.col("error")))
        .selectExpr(
            "zone", "location",
            f"coalesce(try_cast(get_json_object(request_params, '$.{FORECAST_BASIS}') AS TIMESTAMP), "
            "ingested_at) AS fetched_at",
            f"CASE WHEN {raw_datetime} RLIKE {sql_text(_HAS_ZONE)} THEN {raw_datetime} "
            f"ELSE concat({raw_datetime}, 'Z') END AS datetime",
            *[f"{_csv_value(name)} AS {name}" for name in WEATHER_VARIABLES],
            "ingested_at",
            f"CASE WHEN endpoint = {sql_text(USER_CSV)} THEN {sql_text(USER_CSV)} END AS origin",
            *_plumbing(),
        )
    )


def add_forecast_offset(weather: DataFrame) -> DataFrame:
    """forecast_offset_h (hours from fetched_at to datetime, rounded up: the next hour after a
    fetch at 10:13 is 1 ahead), is_observation (datetime at or before fetched_at) and origin
    (`user-csv` kept, else observation / forecast), on typed rows."""
    seconds = F.unix_seconds("datetime") - F.unix_seconds("fetched_at")
    observed = F.col("datetime") <= F.col("fetched_at")
    return weather.withColumns({
        "forecast_offset_h": F.ceil(seconds / HOUR_S).cast("int"),
        "is_observation": observed,
        "origin": F.coalesce(F.col("origin"), F.when(observed, "observation").otherwise("forecast")),
    })


# --- from checked rows to MERGE sources and quarantine records -----------------------------------

def _newest_side(rows: DataFrame, side: str) -> DataFrame:
    """One row per hour for one side: its newest revision, with the side's first and last fetch."""
    hour = Window.partitionBy(*ENERGY_KEY)
    seen = rows.withColumn("_first", F.min("_ingested_at").over(hour)).withColumn("_last", F.max("_ingested_at").over(hour))
    newest = latest_per_key(seen, ENERGY_KEY, (f"{side}_updated_at", f"{side}_ingested_at", "_payload_hash"))
    columns = [c for c in rows.columns if not c.startswith("_")]
    return newest.select(*columns, F.col("_first").alias(f"_{side}_first"), F.col("_last").alias(f"_{side}_last"))


def energy_updates(power: DataFrame | None, carbon: DataFrame | None) -> DataFrame:
    """The MERGE source for `silver.energy_data`: one row per (zone, datetime).

    Args:
        power, carbon: typed rows that passed the quality gate (either may be None: that side
            has nothing new).

    Returns:
        The newest revision of each side per hour, joined (a side absent from the batch is
        null), with first_ingested_at / last_ingested_at over every fetch of either side.
    """
    sides = [(name, _newest_side(rows, name)) for name, rows in (("power", power), ("carbon", carbon)) if rows is not None]
    if not sides:
        raise ValueError("energy_updates needs power or carbon rows")
    joined = reduce(lambda a, b: a.join(b, list(ENERGY_KEY), "full_outer"), [frame for _, frame in sides])
    firsts = [F.col(f"_{name}_first") for name, _ in sides]
    lasts = [F.col(f"_{name}_last") for name, _ in sides]
    return joined.select(
        *[c for c in joined.columns if not c.startswith("_")],
        (F.least(*firsts) if len(sides) > 1 else firsts[0]).alias("first_ingested_at"),
        (F.greatest(*lasts) if len(sides) > 1 else lasts[0]).alias("last_ingested_at"),
    )


def with_publication_time(rows: DataFrame, side: str, publication_delay: timedelta) -> DataFrame:
    """Typed rows of one side with `<side>_updated_at` filled where the source gave none (a
    data-portal row): the hour plus `publication_delay`, the assumed time it was published.

    Args:
        rows: conformed power or carbon rows.
        side: `power` or `carbon`.
        publication_delay: how long after its hour a backfilled value is taken to be known.
    """
    column = f"{side}_updated_at"
    published = F.timestamp_seconds(F.unix_seconds("datetime") + int(publication_delay.total_seconds()))
    return rows.withColumn(column, F.coalesce(F.col(column), published))


_REVISION_VALUES = {
    "carbon": {
        "carbon_intensity": "carbon_intensity", "emission_factor_type": "emission_factor_type",
        "is_estimated": "carbon_is_estimated", "estimation_method": "carbon_estimation_method",
    },
    "power": {
        "is_estimated": "power_is_estimated", "estimation_method": "power_estimation_method",
        "renewable_percentage": "renewable_percentage", "fossil_free_percentage": "fossil_free_percentage",
        "power_production_total": "power_production_total",
        "power_consumption_total": "power_consumption_total",
        **{f"production_{s}": f"production_{s}" for s in POWER_SOURCES},
    },
}


def energy_revisions(power: DataFrame | None, carbon: DataFrame | None) -> DataFrame:
    """The MERGE source for `silver.energy_revisions`: one row per (zone, datetime, side,
    updated_at), from the first fetch that carried that revision.

    Args:
        power, carbon: typed rows that passed the quality gate, updated_at filled
            (`with_publication_time`); either may be None.

    Returns:
        Rows in the table's schema: `first_seen_at` = that fetch's ingested_at, `origin` its
        origin, `available_at` = first_seen_at for a scheduled fetch, else the source's
        publication time (updated_at).
    """
    schema = SILVER_ENERGY_REVISIONS.schema
    sides = []
    for side, rows in (("power", power), ("carbon", carbon)):
        if rows is None:
            continue
        values = _REVISION_VALUES[side]
        sides.append(rows.select(
            "zone", "datetime", F.lit(side).alias("side"), F.col(f"{side}_updated_at").alias("updated_at"),
            F.col("_ingested_at").alias("first_seen_at"), F.col(f"{side}_origin").alias("origin"),
            *[(F.col(values[f.name]) if f.name in values else F.lit(None)).cast(f.dataType).alias(f.name)
              for f in schema.fields[7:]],
            "_payload_hash",
        ))
    if not sides:
        raise ValueError("energy_revisions needs power or carbon rows")
    key = list(SILVER_ENERGY_REVISIONS.key)
    first = Window.partitionBy(*key).orderBy("first_seen_at", "_payload_hash")
    earliest = (reduce(DataFrame.unionByName, sides)
                .withColumn("_rank", F.row_number().over(first)).filter("_rank = 1"))
    available = F.when(F.col("origin").isin(*BACKFILL_ORIGINS), F.col("updated_at")).otherwise(F.col("first_seen_at"))
    return earliest.withColumn("available_at", available).select(*schema.names)


def merge_energy_revisions(spark: SparkSession, store: TableStore, revisions: DataFrame) -> int:
    """Insert the revisions `silver.energy_revisions` lacks; for one it has, keep the earliest
    sighting (first_seen_at, available_at and origin of the first fetch). Idempotent.

    Returns:
        Revisions inserted.
    """
    if known_empty(spark, store, SILVER_ENERGY_REVISIONS):
        return append_into_empty(spark, store, SILVER_ENERGY_REVISIONS, revisions)
    condition = " AND ".join(f"t.{sql_name(c)} = s.{sql_name(c)}" for c in SILVER_ENERGY_REVISIONS.key)
    earlier = "s.first_seen_at < t.first_seen_at"
    with session_conf(spark, MERGE_MATERIALIZE_SOURCE, "none", optional=True):
        result = (
            store.delta_table(spark, SILVER_ENERGY_REVISIONS).alias("t").merge(revisions.alias("s"), condition)
            .whenMatchedUpdate(condition=f"{earlier} OR s.available_at < t.available_at", set={
                "first_seen_at": "least(t.first_seen_at, s.first_seen_at)",
                "available_at": "least(t.available_at, s.available_at)",
                "origin": f"CASE WHEN {earlier} THEN s.origin ELSE t.origin END",
            })
            .whenNotMatchedInsertAll()
            .execute().collect()[0]
        )
    return result["num_inserted_rows"]


def weather_updates(weather: DataFrame) -> DataFrame:
    """The MERGE source for `silver.weather_forecast_data`: the latest fetch per key, in schema order."""
    newest = latest_per_key(add_forecast_offset(weather), WEATHER_KEY, ("ingested_at", "_payload_hash"))
    return newest.select(*_WEATHER_NAMES)


def quarantine_records(failed: DataFrame, target: Table, run_id: str) -> DataFrame:
    """Rows that failed (parse or quality) -> `silver.quarantine` rows.

    Args:
        failed: rows with a non-empty `FAILURES` and the plumbing columns.
        target: the silver table they were meant for.
        run_id: the medallion run quarantining them.
    """
    location = F.col("location") if "location" in failed.columns else F.lit(None).cast("string")
    identity = F.concat_ws(
        "\u0001", F.col("_source_table"), F.coalesce(F.col("_payload_hash"), F.lit("")),
        F.coalesce(F.col("_ingest_run_id"), F.lit("")), F.unix_micros("_ingested_at").cast("string"),
        F.coalesce(location, F.lit("")), F.coalesce(F.col("_record"), F.lit("")),
    )
    return failed.select(
        F.sha2(identity, 256).alias("quarantine_id"),
        F.col("_source_table").alias("source_table"),
        F.lit(target.qualified_name).alias("target_table"),
        F.col("zone").cast("string").alias("zone"),
        location.alias("location"),
        F.array_join(F.transform(FAILURES, lambda f: f["message"]), "; ").alias("reason"),
        F.transform(FAILURES, lambda f: f["check"]).alias("failed_checks"),
        F.col("_record").alias("record"),
        F.col("_payload_hash").alias("payload_hash"),
        F.col("_ingest_run_id").alias("ingest_run_id"),
        F.col("_ingested_at").alias("ingested_at"),
        F.current_timestamp().alias("quarantined_at"),
        F.lit(run_id).alias("medallion_run_id"),
    )


def checked_power(bronze: DataFrame, neighbours: Sequence[str] | None = None) -> DataFrame:
    """Power responses parsed, flattened and judged (`FAILURES`); values still text."""
    return evaluate(flatten_power_breakdown(parse_power_history(bronze), neighbours), ENERGY)


def checked_carbon(bronze: DataFrame) -> DataFrame:
    """Carbon responses parsed and judged (`FAILURES`); values still text."""
    return evaluate(parse_carbon_history(bronze), ENERGY)


def checked_weather(bronze: DataFrame) -> DataFrame:
    """Weather responses parsed and judged (`FAILURES`); values still text."""
    return evaluate(parse_weather_csv(bronze), WEATHER)


# --- I/O: bronze stream -> MERGE ----------------------------------------------------------------

SILVER_TABLES = (SILVER_ENERGY, SILVER_ENERGY_REVISIONS, SILVER_WEATHER, SILVER_QUARANTINE)
BRONZE_SOURCES = (BRONZE_POWER, BRONZE_CARBON, BRONZE_WEATHER)
STREAM_NAME = "silver_from_bronze"


@dataclass
class SilverSummary:
    """What one `refresh_silver` call did."""

    energy: MergeMetrics = field(default_factory=MergeMetrics)
    weather: MergeMetrics = field(default_factory=MergeMetrics)
    revisions: int = 0  # revisions new to silver.energy_revisions
    quarantined: dict[str, int] = field(default_factory=dict)  # rows, per bronze table
    batches: int = 0
    # Delta versions: bronze read up to, silver written (only tables that got a commit).
    reads: dict[Table, int] = field(default_factory=dict)
    writes: dict[Table, int] = field(default_factory=dict)
    missing: list[Table] = field(default_factory=list)  # bronze tables that do not exist
    seconds: float = 0.0
    job_group: str | None = None  # the stream's Spark job group (`IncrementalRun.job_group`)

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())


def checkpoint_location(checkpoints: str) -> str:
    """Where the bronze -> silver stream keeps its progress (one Delta offset per bronze table)."""
    return f"{checkpoints.rstrip('/')}/silver/{STREAM_NAME}"


def _verdicts(frames: dict[str, DataFrame]) -> dict[tuple[str, bool], int]:
    """Rows passed/failed per frame, in one Spark job."""
    counted = reduce(DataFrame.unionByName, [
        frame.select(F.lit(name).alias("frame"), passed().alias("passed")) for name, frame in frames.items()
    ])
    return {(row["frame"], row["passed"]): row["count"] for row in counted.groupBy("frame", "passed").count().collect()}


def _materialised(store: TableStore, frames: dict[Table, DataFrame]) -> dict[Table, DataFrame]:
    """The frames computed in one Spark job and kept, the way the store is configured to
    (`TableStore.materialize`: `localCheckpoint` locally, a staging Delta table on serverless,
    decision 0026): what follows, MERGE's own jobs included, starts from these rows instead of
    re-planning the parse and the gate."""
    columns = {table: frame.columns for table, frame in frames.items()}
    together = store.materialize(
        reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames.values()),
        f"{STREAM_NAME}_batch")
    return {table: together.filter(F.col("_source_table") == table.qualified_name)
                   .select(*columns[table])
            for table in frames}


def spread(payloads: DataFrame) -> DataFrame:
    """`payloads` hashed over the shuffle partitions, to be parsed evenly on every core.

    A bronze scan gives one task per file (or pack of files, by compressed bytes), and the work
    is per CSV line: in the first `main`, one task parsed 963 weather payloads while the other
    parsed 336 and then idled (decision 0032).
    """
    partitions = fixed_partitions(payloads.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    if partitions is None:  # adaptive execution sizes the partitions
        return payloads.repartition("payload_hash")
    # A number, not adaptive coalescing: that packed a year's payloads (22 MB) into one task.
    return payloads.repartition(partitions, "payload_hash")


def fixed_partitions(setting: str | None) -> int | None:
    """`spark.sql.shuffle.partitions` as a number; None when it is not one (`auto` on
    Databricks, or unset)."""
    try:
        partitions = int(setting or "")
    except ValueError:
        return None
    return partitions if partitions > 0 else None


def write_concurrently(spark: SparkSession, writes: Sequence[Callable[[], object]]) -> None:
    """Run the batch's writes (each to its own silver table) side by side, one thread each.

    Each is a few small Spark jobs with driver work (planning, Delta log, commit) between them;
    side by side, one write's jobs use the cores while another's driver work runs. Every write
    runs to its end; then the first failure (in the order given) is raised. A failed batch is
    retried whole: each write is idempotent (MERGE, or `append_once` by batch id). The threads
    inherit the caller's Spark job group, so the writes' jobs count in the step's `spark_jobs`.
    """
    if len(writes) <= 1:
        for write in writes:
            write()
        return
    with ThreadPoolExecutor(max_workers=len(writes), thread_name_prefix="silver-write") as pool:
        futures = [pool.submit(inheritable_thread_target(spark)(write)) for write in writes]
        wait(futures)
    for future in futures:
        future.result()


# The quarantine commit's `userMetadata` key: rows quarantined per bronze table in that batch.
_QUARANTINED = "quarantined"


class _SilverBatch:
    """The foreachBatch body: parse and judge every new bronze row, MERGE the good ones into
    energy and weather, append the rest to quarantine (one write per silver table).

    It keeps no results on itself (under Spark Connect it runs on a copy in another process):
    what it did is read back from the silver tables' Delta history (`_summarise`).
    """

    def __init__(self, store: TableStore, run_id: str, progress: Progress,
                 publication_delay: timedelta):
        self.store, self.run_id, self.publication_delay = store, run_id, publication_delay
        self.progress = progress

    def __call__(self, batch: Batch) -> None:
        started = time.monotonic()
        rows = batch.rows
        spark = rows.sparkSession
        source = F.col(SOURCE_COLUMN)
        parsed_power = parse_power_history(rows.filter(source == BRONZE_POWER.qualified_name))
        power = flatten_power_breakdown(parsed_power, neighbour_keys(parsed_power))
        checked = {
            BRONZE_POWER: evaluate(power, ENERGY),
            BRONZE_CARBON: checked_carbon(rows.filter(source == BRONZE_CARBON.qualified_name)),
            BRONZE_WEATHER: checked_weather(spread(rows.filter(source == BRONZE_WEATHER.qualified_name))),
        }
        checked = _materialised(self.store, checked)
        counts = _verdicts({t.qualified_name: frame for t, frame in checked.items()})
        ok = {t: counts.get((t.qualified_name, True), 0) for t in checked}
        failed = {t: counts.get((t.qualified_name, False), 0) for t in checked}

        writes: list[Callable[[], object]] = []
        if ok[BRONZE_POWER] or ok[BRONZE_CARBON]:
            good = [
                with_publication_time(conform(checked[t].filter(passed()), ENERGY), side, self.publication_delay)
                if ok[t] else None
                for t, side in ((BRONZE_POWER, "power"), (BRONZE_CARBON, "carbon"))
            ]
            writes.append(lambda: merge_energy_revisions(spark, self.store, energy_revisions(*good)))
            writes.append(lambda: merge_revisions(
                spark, self.store, SILVER_ENERGY, energy_updates(*good),
                groups=(POWER_GROUP, CARBON_GROUP), on_match=SEEN))
        if ok[BRONZE_WEATHER]:
            updates = weather_updates(conform(checked[BRONZE_WEATHER].filter(passed()), WEATHER))
            writes.append(lambda: merge_revisions(spark, self.store, SILVER_WEATHER, updates,
                                                  groups=(WEATHER_GROUP,)))
        records = [
            quarantine_records(checked[t].filter(~passed()), SILVER_WEATHER if t is BRONZE_WEATHER else SILVER_ENERGY,
                               self.run_id)
            for t in checked if failed[t]
        ]
        if records:
            quarantined = {t.qualified_name: count for t, count in failed.items() if count}
            writes.append(lambda: append_once(
                self.store, SILVER_QUARANTINE, reduce(DataFrame.unionByName, records),
                writer=batch.writer(SILVER_QUARANTINE), version=batch.id,
                options={"userMetadata": json.dumps({_QUARANTINED: quarantined})}))
        # MERGE's own setting, held for all the writes at once: they run side by side.
        with session_conf(spark, MERGE_MATERIALIZE_SOURCE, "none", optional=True):
            write_concurrently(spark, writes)
        self.progress(
            f"  batch {batch.id}: " + ", ".join(f"{t.name} {ok[t]} ok / {failed[t]} quarantined" for t in checked)
            + f", {time.monotonic() - started:.1f} s"
        )


def _commits_since(
    spark: SparkSession, store: TableStore, table: Table, version: int | None,
) -> list[Row]:
    """The table's commits after `version` (None: all), from its Delta history (no Spark job)."""
    current = store.version(spark, table)
    if current is None or (version is not None and current <= version):
        return []
    newer = current - (version if version is not None else -1)
    return store.delta_table(spark, table).history(newer).select(
        "version", "operation", "operationMetrics", "userMetadata").collect()


def _merged(commits: Sequence[Row]) -> MergeMetrics:
    """Rows inserted and updated by the MERGE commits among `commits`, and appended (inserted)
    by the appends that replace a MERGE into an empty table (`append_into_empty`)."""
    total = MergeMetrics()
    for commit in commits:
        total += MergeMetrics(appended_rows(commit))
        if commit.operation == "MERGE":
            metrics = commit.operationMetrics or {}
            total += MergeMetrics(int(metrics.get("numTargetRowsInserted", 0)),
                                  int(metrics.get("numTargetRowsUpdated", 0)))
    return total


def _summarise(spark: SparkSession, store: TableStore, summary: SilverSummary,
               before: dict[Table, int | None]) -> None:
    """Fill `summary` with what the batches committed to silver since the versions `before`
    (the batch function's own counters would be lost under Spark Connect)."""
    commits = {table: _commits_since(spark, store, table, before[table]) for table in SILVER_TABLES}
    summary.energy = _merged(commits[SILVER_ENERGY])
    summary.weather = _merged(commits[SILVER_WEATHER])
    summary.revisions = _merged(commits[SILVER_ENERGY_REVISIONS]).inserted
    for commit in commits[SILVER_QUARANTINE]:
        try:
            quarantined = json.loads(commit.userMetadata or "").get(_QUARANTINED, {})
        except (ValueError, AttributeError):
            continue
        for name, count in quarantined.items():
            summary.quarantined[name] = summary.quarantined.get(name, 0) + int(count)
    summary.writes = {table: store.version(spark, table) for table in SILVER_TABLES
                      if commits[table] or before[table] is None}


def refresh_silver(
    spark: SparkSession,
    store: TableStore,
    checkpoints: str,
    *,
    run_id: str,
    publication_delay: timedelta = DEFAULT_PUBLICATION_DELAY,
    progress: Progress = print,
) -> SilverSummary:
    """Bring the silver tables up to date with every bronze row not processed yet.

    The three bronze tables are read as one stream (`process_new_rows`), incrementally by Delta
    version, with its checkpoint under `<checkpoints>/silver/`. Each batch MERGEs into energy
    and weather and appends to quarantine. Nothing new: no batch runs and no silver table gets
    a new version.

    Args:
        checkpoints: the directory holding streaming checkpoints.
        run_id: the medallion run, stamped on quarantine rows.
        publication_delay: how long after its hour a backfilled value without a publication
            time (a data-portal row) is taken to be known (`available_at`, `updated_at`).

    Returns:
        Rows merged and quarantined, bronze versions read, silver versions written. When a
        bronze table does not exist (ingest creates all three), `missing` names it and nothing
        is done.
    """
    started = time.monotonic()
    summary = SilverSummary(missing=[t for t in BRONZE_SOURCES if not store.exists(spark, t)])
    if summary.missing:
        return summary
    # A table created here counts as written (version 0 is lineage too).
    before = {table: store.version(spark, table) for table in SILVER_TABLES}
    for table in SILVER_TABLES:
        if before[table] is None:
            store.ensure(spark, table)
    body = _SilverBatch(store, run_id, progress, publication_delay)
    run: IncrementalRun = process_new_rows(
        spark, store, BRONZE_SOURCES, checkpoint_location(checkpoints), body, name=STREAM_NAME)
    summary.batches, summary.reads, summary.job_group = run.batches, run.versions, run.job_group
    _summarise(spark, store, summary, before)
    summary.seconds = time.monotonic() - started
    return summary
