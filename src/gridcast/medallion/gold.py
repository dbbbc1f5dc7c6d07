"""Gold: the model-ready tables, built from silver.

`gold.historic_data`, key (zone, datetime): one row per hour of the zone's *hourly spine*, every
hour from its first to its last silver energy hour. A missing silver hour stays a row whose
energy columns are null. Each row has the silver energy columns, the newest observed weather
per location (`athens_temp`, ...), calendar features (UTC and local, public holidays), and
`lag_<col>_1h` / `rolling_avg_<col>_24h` for the `LAGGED_COLUMNS`.

Window definition (no leakage, consistent with the 1 h lag): at hour t both look only at the
hours before t. `lag_<col>_1h` is the value at t - 1 h. `rolling_avg_<col>_24h` is the mean of
the values present in the 24 clock hours [t - 24 h, t - 1 h]. Hour t itself is excluded. Both
are range windows over epoch seconds, so a missing hour contributes nothing: a null, never a
zero, and never the row before the gap. `rolling_count_carbon_intensity_24h` says how many of
those 24 hours had a carbon intensity.

`gold.weather_forecasts`, key (zone, ingested_hour_utc, datetime): the forecast rows of every
vintage (datetime > issued hour), pivoted per location, with `forecast_offset` in hours.

Incremental update (docs/decisions/0004-gold.md): every gold commit records in its Delta
`userMetadata` which silver versions it was built from. The next run diffs silver at those
versions against silver now. It uses time travel on the zone's rows and matches them on key and
a content fingerprint. It then recomputes exactly the affected rows and MERGEs them. For energy
that is each changed hour h and [h, h + 24 h], the rows whose lag or window covers h. For
observed weather it is the changed hour only. Hours that extend the spine are affected too. The
recomputation reads silver only over those hours and the 24 hours before them.

Pure transforms (`DataFrame -> DataFrame`) come first; the reads and the MERGE are at the end.
"""

from __future__ import annotations

import json
import operator
import re
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import reduce
from typing import Callable, Iterable, Sequence

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType, DoubleType, StringType, StructField, StructType, TimestampType,
)

from gridcast.config import Location, ZoneConfig
from gridcast.errors import GridcastError
from gridcast.medallion.calendar import add_calendar_features, holiday_calendar
from gridcast.medallion.upsert import session_conf
from gridcast.storage import TableStore
from gridcast.tables import (
    GOLD_HISTORIC, GOLD_WEATHER_FORECASTS, SILVER_ENERGY, SILVER_WEATHER, Table,
)

# Weather kept in gold, per location. Temperature and humidity drive heating and cooling demand.
# Cloud cover and solar radiation drive solar output and wind speed drives wind output.
# Precipitation goes with cloud and hydro. The other silver variables stay in silver.
WEATHER_VARIABLES = ("temp", "humidity", "cloudcover", "solarradiation", "windspeed", "precip")

# Silver energy columns that get `lag_<col>_1h` and `rolling_avg_<col>_24h`.
LAGGED_COLUMNS = (
    "carbon_intensity",
    "fossil_free_percentage",
    "renewable_percentage",
    "power_production_total",
    "power_consumption_total",
    "production_wind",
    "production_solar",
)
LOOKBACK_HOURS = 24
SECONDS_PER_HOUR = 3600
# Beyond this many disjoint hour ranges, one bounding range is read instead (a shorter predicate).
MAX_READ_RANGES = 64

REQUIRED_ENERGY_COLUMNS = ("zone", "datetime", *LAGGED_COLUMNS)
REQUIRED_WEATHER_COLUMNS = (
    "zone", "location", "issued_hour", "datetime", "is_observation", *WEATHER_VARIABLES,
)

# What gold reads of silver weather, for an empty frame while that table does not exist yet: gold
# then has its weather columns (all null) from the start instead of changing schema later.
_WEATHER_CONTRACT = StructType([
    StructField("zone", StringType()), StructField("location", StringType()),
    StructField("issued_hour", TimestampType()), StructField("datetime", TimestampType()),
    StructField("is_observation", BooleanType()),
    *[StructField(variable, DoubleType()) for variable in WEATHER_VARIABLES],
])

_COMMIT_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"
_METADATA_WRITER = "gridcast.gold"
_RECENT_COMMITS = 20

HourRange = tuple[int, int]  # inclusive (first, last) hours since the epoch
Progress = Callable[[str], None]


class SilverContractError(GridcastError, ValueError):
    """A silver frame lacks columns gold is built from."""


# --- pure transforms ---------------------------------------------------------------------------

def require_columns(df: DataFrame, columns: Iterable[str], table: Table) -> None:
    """Raise `SilverContractError` naming every column of `columns` missing from `df`."""
    missing = [column for column in columns if column not in df.columns]
    if missing:
        raise SilverContractError(f"{table} lacks column(s) gold needs: {', '.join(missing)}")


def location_prefix(name: str) -> str:
    """A location's column prefix: `Thessaloniki` -> `thessaloniki`, `São Paulo` -> `sao_paulo`."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")


def weather_columns(locations: Sequence[Location]) -> list[str]:
    """The pivoted weather columns, location by location in config order: `athens_temp`, ..."""
    return [
        f"{location_prefix(loc.name)}_{variable}"
        for loc in locations for variable in WEATHER_VARIABLES
    ]


def _hour(column: str) -> Column:
    """Whole hours since the epoch of a timestamp column."""
    return F.floor(F.unix_seconds(F.col(column)) / SECONDS_PER_HOUR)


def _is_observation() -> Column:
    return F.coalesce(F.col("is_observation"), F.lit(False))


def _is_forecast() -> Column:
    return (F.col("datetime") > F.col("issued_hour")) & ~_is_observation()


def newest_observations(weather: DataFrame) -> DataFrame:
    """The observed weather per (zone, location, datetime), taken from its newest vintage.

    Args:
        weather: silver weather rows (any vintages, observations and forecasts).

    Returns:
        `zone, location, datetime` and the `WEATHER_VARIABLES`, one row per key.
    """
    newest = F.max_by(F.struct(*WEATHER_VARIABLES), F.col("issued_hour"))
    return (
        weather.filter(_is_observation())
        .groupBy("zone", "location", "datetime")
        .agg(newest.alias("observed"))
        .select("zone", "location", "datetime", "observed.*")
    )


def pivot_locations(
    weather: DataFrame, locations: Sequence[Location], keys: Sequence[str],
) -> DataFrame:
    """One row per `keys`, one column per configured location and weather variable.

    Silver locations match config names case-insensitively; other locations are dropped. A
    location without data gives null columns, so the schema depends only on the config.

    Args:
        weather: rows unique per (`keys`, location) with the `WEATHER_VARIABLES`.
        locations: the zone's weather locations.
        keys: the grouping columns, e.g. `("zone", "datetime")`.
    """
    prefixes = [location_prefix(loc.name) for loc in locations]
    if len(set(prefixes)) != len(prefixes):
        names = [loc.name for loc in locations]
        raise ValueError(f"weather locations {names} share a column prefix")
    silver_name = F.lower(F.trim(F.col("location")))
    prefix = F.when(silver_name == locations[0].name.lower(), F.lit(prefixes[0]))
    for loc, name in zip(locations[1:], prefixes[1:]):
        prefix = prefix.when(silver_name == loc.name.lower(), F.lit(name))
    cells = [
        F.max(F.when(F.col("_prefix") == name, F.col(variable))).alias(f"{name}_{variable}")
        for name in prefixes for variable in WEATHER_VARIABLES
    ]
    return (
        weather.withColumn("_prefix", prefix)
        .filter(F.col("_prefix").isNotNull())
        .groupBy(*keys)
        .agg(*cells)
    )


def add_lag_and_rolling(timeline: DataFrame, columns: Sequence[str] = LAGGED_COLUMNS) -> DataFrame:
    """Add `lag_<col>_1h`, `rolling_avg_<col>_24h` and `rolling_count_carbon_intensity_24h`.

    The windows are ranges of clock time over epoch seconds, per zone. The lag is the value
    exactly 1 h earlier and the average covers [t - 24 h, t - 1 h]. Hour t is excluded and a
    missing hour counts as null. Rows need not be contiguous: gap rows do not change the result.
    """
    ordered = Window.partitionBy("zone").orderBy("_epoch")
    previous_hour = ordered.rangeBetween(-SECONDS_PER_HOUR, -SECONDS_PER_HOUR)
    previous_day = ordered.rangeBetween(-LOOKBACK_HOURS * SECONDS_PER_HOUR, -SECONDS_PER_HOUR)
    features: dict[str, Column] = {}
    for column in columns:
        features[f"lag_{column}_1h"] = F.first(column).over(previous_hour)
        features[f"rolling_avg_{column}_{LOOKBACK_HOURS}h"] = F.avg(column).over(previous_day)
    features[f"rolling_count_carbon_intensity_{LOOKBACK_HOURS}h"] = (
        F.count("carbon_intensity").over(previous_day).cast("int")
    )
    return (
        timeline.withColumn("_epoch", F.unix_seconds(F.col("datetime")))
        .withColumns(features)
        .drop("_epoch")
    )


def hourly_spine(spark: SparkSession, zone_id: str, ranges: Sequence[HourRange]) -> DataFrame:
    """Every hour of the given inclusive hour ranges, as `(zone, datetime)` rows."""
    rows = [(zone_id, hour_start(first), hour_start(last)) for first, last in ranges]
    bounds = spark.createDataFrame(rows, "zone string, first timestamp, last timestamp")
    hours = F.sequence(F.col("first"), F.col("last"), F.expr("INTERVAL 1 HOUR"))
    return bounds.select("zone", F.explode(hours).alias("datetime"))


def build_historic(
    spine: DataFrame, energy: DataFrame, weather: DataFrame, holidays: DataFrame,
    zone: ZoneConfig,
) -> DataFrame:
    """The `gold.historic_data` rows of the spine hours.

    Args:
        spine: `(zone, datetime)` hours to compute. Rows whose lookback reaches before the
            spine's start have incomplete windows; the caller keeps only the rows it needs.
        energy: silver energy rows covering the spine.
        weather: silver weather rows covering the spine (any vintages).
        holidays: `holiday_calendar(...)` of the zone's country for the spine's years.
        zone: the zone (id, time zone, locations).

    Returns:
        Keys, silver energy columns, `<location>_<variable>` observed weather, lag and rolling
        features, calendar features.
    """
    require_columns(energy, REQUIRED_ENERGY_COLUMNS, SILVER_ENERGY)
    require_columns(weather, REQUIRED_WEATHER_COLUMNS, SILVER_WEATHER)
    in_zone = F.col("zone") == zone.id
    observed = pivot_locations(
        newest_observations(weather.filter(in_zone)), zone.locations, ("zone", "datetime")
    )
    timeline = (
        spine.join(energy.filter(in_zone), ["zone", "datetime"], "left")
        .join(observed, ["zone", "datetime"], "left")
    )
    return add_calendar_features(add_lag_and_rolling(timeline), zone.timezone, holidays)


def build_weather_forecasts(weather: DataFrame, zone: ZoneConfig) -> DataFrame:
    """The `gold.weather_forecasts` rows: each vintage's future hours, pivoted per location.

    Args:
        weather: silver weather rows (any vintages; observations are dropped).
        zone: the zone (id, locations).

    Returns:
        `zone, ingested_hour_utc` (the silver issued hour), `datetime`, `forecast_offset` (whole
        hours from issue to target, >= 1) and `<location>_<variable>` columns.
    """
    require_columns(weather, REQUIRED_WEATHER_COLUMNS, SILVER_WEATHER)
    forecasts = weather.filter((F.col("zone") == zone.id) & _is_forecast())
    keys = ("zone", "ingested_hour_utc", "datetime")
    pivoted = pivot_locations(
        forecasts.withColumnRenamed("issued_hour", "ingested_hour_utc"), zone.locations, keys
    )
    seconds_ahead = F.unix_seconds(F.col("datetime")) - F.unix_seconds(F.col("ingested_hour_utc"))
    return pivoted.select(
        *keys, (seconds_ahead / SECONDS_PER_HOUR).cast("int").alias("forecast_offset"),
        *weather_columns(zone.locations),
    )


def changed_rows(previous: DataFrame | None, current: DataFrame, key: Sequence[str]) -> DataFrame:
    """Rows of `current` that are new or differ from `previous` (same key, other content).

    Rows are compared on a fingerprint of every column of `current`. A column that `previous`
    lacks (schema evolution) counts as null there, so a row changes only if it has a value in it.
    """
    if previous is None:
        return current
    aligned = previous.select(*[
        (F.col(f.name) if f.name in previous.columns else F.lit(None)).cast(f.dataType).alias(f.name)
        for f in current.schema.fields
    ])

    def fingerprinted(df: DataFrame) -> DataFrame:
        fingerprint = F.xxhash64(F.to_json(F.struct(*current.columns)))
        return df.withColumn("_fingerprint", fingerprint)

    known = fingerprinted(aligned).select(*key, "_fingerprint")
    return (
        fingerprinted(current)
        .join(known, [*key, "_fingerprint"], "left_anti")
        .drop("_fingerprint")
    )


# --- hour arithmetic (driver side) -------------------------------------------------------------

def hour_index(moment: datetime) -> int:
    """Whole hours since the epoch of a UTC instant (naive = UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp()) // SECONDS_PER_HOUR


def hour_start(index: int) -> datetime:
    return datetime.fromtimestamp(index * SECONDS_PER_HOUR, tz=timezone.utc)


def merge_ranges(ranges: Iterable[HourRange]) -> list[HourRange]:
    """Sorted, disjoint ranges covering the same hours (overlapping or adjacent ones joined)."""
    merged: list[HourRange] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def affected_hours(
    changed_energy: Iterable[int],
    changed_weather: Iterable[int],
    previous_span: HourRange | None,
    span: HourRange,
) -> list[HourRange]:
    """The gold hours to recompute after silver changed.

    Args:
        changed_energy: hours whose silver energy row is new or revised. Each affects its own
            row and the next 24, whose lag or rolling window covers it.
        changed_weather: hours whose observed weather is new or revised (their own row only).
        previous_span: the zone's spine (first, last hour) in gold before this update.
        span: the spine after it. Hours it gains are new rows, gap rows included.

    Returns:
        Disjoint inclusive hour ranges within `span`.
    """
    ranges = [(hour, hour + LOOKBACK_HOURS) for hour in changed_energy]
    ranges += [(hour, hour) for hour in changed_weather]
    first, last = span
    if previous_span is None:
        ranges.append(span)
    else:
        if first < previous_span[0]:
            ranges.append((first, previous_span[0] - 1))
        if last > previous_span[1]:
            ranges.append((previous_span[1] + 1, last))
    return merge_ranges((max(a, first), min(b, last)) for a, b in ranges if b >= first and a <= last)


def read_ranges(affected: Sequence[HourRange], span: HourRange) -> list[HourRange]:
    """The silver hours needed to recompute `affected`: each range and the 24 hours before it."""
    ranges = merge_ranges((max(first - LOOKBACK_HOURS, span[0]), last) for first, last in affected)
    if len(ranges) > MAX_READ_RANGES:
        ranges = [(ranges[0][0], ranges[-1][1])]
    return ranges


def _within(column: str, ranges: Sequence[HourRange]) -> Column:
    return reduce(operator.or_, [
        F.col(column).between(F.lit(hour_start(first)), F.lit(hour_start(last)))
        for first, last in ranges
    ])


def _between_sql(column: str, first: int, last: int) -> str:
    return (f"{column} BETWEEN timestamp_seconds({first * SECONDS_PER_HOUR}) "
            f"AND timestamp_seconds({last * SECONDS_PER_HOUR})")


def _years(ranges: Sequence[HourRange]) -> set[int]:
    """Calendar years of the ranges' hours, padded a day either side for local time."""
    day = timedelta(days=1)
    return {
        year for first, last in ranges
        for year in range((hour_start(first) - day).year, (hour_start(last) + day).year + 1)
    }


# --- I/O: read silver, MERGE gold --------------------------------------------------------------

@dataclass(frozen=True)
class GoldUpdate:
    """What one gold table's update did."""

    table: Table
    mode: str  # full | incremental | unchanged | no-data
    rows: int = 0  # rows recomputed and written
    version: int | None = None  # the table's version afterwards
    detail: str = ""

    @property
    def written(self) -> bool:
        return self.mode in ("full", "incremental")


@dataclass(frozen=True)
class SilverChanges:
    """What changed in a zone's silver between two versions, as hours since the epoch."""

    energy_hours: frozenset[int]  # hours whose energy row is new or revised
    observed_hours: frozenset[int]  # hours with a new or revised observation
    forecast_vintages: frozenset[int]  # issued hours with a new or revised forecast row


def _changed_hours(table: Table, changed: DataFrame) -> DataFrame:
    """`(table, kind, hour)` for changed silver rows: kind `energy` (its datetime), `observed`
    (an observation's datetime) or `vintage` (a forecast's issued hour)."""
    if table is SILVER_ENERGY:
        kind, hour = F.lit("energy"), _hour("datetime")
    else:
        kind = F.when(_is_observation(), F.lit("observed")).when(_is_forecast(), F.lit("vintage"))
        hour = F.when(_is_observation(), _hour("datetime")).otherwise(_hour("issued_hour"))
    return (
        changed.select(F.lit(table.qualified_name).alias("table"), kind.alias("kind"), hour.alias("hour"))
        .filter(F.col("kind").isNotNull())
    )


def silver_versions(spark: SparkSession, store: TableStore) -> dict[Table, int | None]:
    """The current version of each silver table gold reads (None: it does not exist)."""
    return {table: store.version(spark, table) for table in (SILVER_ENERGY, SILVER_WEATHER)}


class _RebuildNeeded(Exception):
    """The incremental path cannot tell what changed; rebuild the zone instead."""


def _reason(error: Exception) -> str:
    """The first line of a Spark error, from the JVM exception when Python has only a wrapper."""
    text = str(error.java_exception) if isinstance(error, Py4JJavaError) else str(error)
    return text.strip().splitlines()[0][:300]


@dataclass
class SilverSnapshot:
    """Silver for one zone at pinned versions, and what changed since earlier versions."""

    spark: SparkSession
    store: TableStore
    zone_id: str
    versions: dict[Table, int | None]
    _changed: dict[tuple[Table, int | None], list[tuple[str, int]]] = field(
        default_factory=dict, init=False, repr=False,
    )

    def read(self, table: Table, version: int | None = None) -> DataFrame | None:
        """The zone's rows of a silver table at `version` (default: the pinned one)."""
        version = self.versions[table] if version is None else version
        if version is None:
            return None
        return self.store.read(self.spark, table, version).filter(F.col("zone") == self.zone_id)

    def weather(self) -> DataFrame:
        """The zone's silver weather, empty if that table does not exist yet."""
        frame = self.read(SILVER_WEATHER)
        return frame if frame is not None else self.spark.createDataFrame([], _WEATHER_CONTRACT)

    def changes(self, since: dict[Table, int | None]) -> SilverChanges:
        """What is new or revised in the zone's silver since the given versions of its tables
        (None: the table did not exist then, so every row is new). Tables left out are not diffed.

        The tables not diffed yet are diffed in one Spark job; results are kept for reuse.

        Raises:
            _RebuildNeeded: an earlier version is newer than the pinned one, or unreadable.
        """
        pending = {
            table: version for table, version in since.items()
            if (table, version) not in self._changed
            and self.versions[table] is not None and version != self.versions[table]
        }
        if pending:
            try:
                found = reduce(DataFrame.unionByName, [
                    _changed_hours(table, changed_rows(
                        self._previous(table, version), self.read(table), table.key,
                    ))
                    for table, version in pending.items()
                ]).distinct().collect()
            except (PySparkException, Py4JJavaError) as error:
                # Vacuumed files (Py4JJavaError: FAILED_READ_FILE) or a cleaned-up log.
                versions = ", ".join(f"{table} v{version}" for table, version in pending.items())
                raise _RebuildNeeded(f"cannot diff against {versions}: {_reason(error)}") from error
            for table, version in pending.items():
                self._changed[(table, version)] = [
                    (row.kind, row.hour) for row in found if row.table == table.qualified_name
                ]
        hours: dict[str, set[int]] = {"energy": set(), "observed": set(), "vintage": set()}
        for table, version in since.items():
            for kind, hour in self._changed.get((table, version), []):
                hours[kind].add(hour)
        return SilverChanges(
            frozenset(hours["energy"]), frozenset(hours["observed"]), frozenset(hours["vintage"]),
        )

    def _previous(self, table: Table, since: int | None) -> DataFrame | None:
        """The zone's rows of `table` at the earlier version `since` (None: no such version)."""
        if since is None:
            return None
        current = self.versions[table]
        if current is None or since > current:
            raise _RebuildNeeded(f"{table} is at v{current}, before v{since} that gold was built from")
        return self.read(table, since)


@dataclass(frozen=True)
class BuildRecord:
    """What a gold commit records about the zone's rows it wrote, in its `userMetadata`."""

    zone: str
    sources: dict[str, int | None]  # silver table -> the version the rows were built from
    span: HourRange | None = None  # historic only: the zone's spine (first, last hour) afterwards

    def as_json(self) -> str:
        span = list(self.span) if self.span else None
        return json.dumps({"writer": _METADATA_WRITER, "zone": self.zone, "sources": self.sources,
                           "span": span}, sort_keys=True)


def last_build(
    spark: SparkSession, store: TableStore, table: Table, zone_id: str,
) -> BuildRecord | None:
    """The record of the newest commit that wrote the zone's rows of `table` (None: never)."""
    if not store.exists(spark, table):
        return None
    # The recent commits usually hold it; the whole history only if other zones wrote since.
    for limit in (_RECENT_COMMITS, None):
        history = store.delta_table(spark, table).history(limit).select("version", "userMetadata")
        commits = history.collect()
        for commit in sorted(commits, key=lambda c: c.version, reverse=True):
            try:
                metadata = json.loads(commit.userMetadata or "")
            except ValueError:
                continue
            if (isinstance(metadata, dict) and metadata.get("writer") == _METADATA_WRITER
                    and metadata.get("zone") == zone_id):
                span = metadata.get("span")
                return BuildRecord(zone_id, metadata["sources"], tuple(span) if span else None)
        if len(commits) < _RECENT_COMMITS:
            break
    return None


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _merge(
    spark: SparkSession, store: TableStore, table: Table, rows: DataFrame, record: BuildRecord,
    *, target_filter: str | None = None, replace_zone: bool = False,
) -> tuple[int, int]:
    """Upsert the zone's `rows` into a gold table by its key, with `record` in the commit.

    The first write creates the table. `target_filter` (SQL on alias `t`) prunes the target
    files MERGE reads. `replace_zone` also deletes the zone's rows that `rows` lacks (a full
    rebuild). New columns are added (schema evolution).

    Returns:
        Rows written (inserted or updated) and the table's version.
    """
    # The silver versions this build read travel with the commit, for the next incremental run.
    with session_conf(spark, _COMMIT_METADATA_CONF, record.as_json()):
        if not store.exists(spark, table):
            store.append(rows, table)
            commit = store.delta_table(spark, table).history(1).collect()[0]
            return int((commit.operationMetrics or {}).get("numOutputRows", 0)), commit.version
        zone_rows = f"t.zone = {_sql_string(record.zone)}"
        condition = " AND ".join([
            zone_rows, *(f"t.`{k}` = s.`{k}`" for k in table.key),
            *([target_filter] if target_filter else []),
        ])
        merge = (
            store.delta_table(spark, table).alias("t").merge(rows.alias("s"), condition)
            .withSchemaEvolution().whenMatchedUpdateAll().whenNotMatchedInsertAll()
        )
        if replace_zone:
            merge = merge.whenNotMatchedBySourceDelete(zone_rows)
        metrics = merge.execute().collect()[0]
    return metrics["num_updated_rows"] + metrics["num_inserted_rows"], store.version(spark, table)


def _span(rows: DataFrame) -> HourRange | None:
    """The first and last hour of `rows` (None if empty)."""
    hours = _hour("datetime")
    span = rows.agg(F.min(hours).alias("first"), F.max(hours).alias("last")).first()
    return None if span.first is None else (span.first, span.last)


def _build_historic_rows(
    silver: SilverSnapshot, zone: ZoneConfig, spine_ranges: Sequence[HourRange],
    emit: Sequence[HourRange] | None,
) -> DataFrame:
    """Historic rows for the hours of `emit` (None: every spine hour), computed over the spine
    ranges from the silver rows of those hours only."""
    spark = silver.spark
    energy, weather = silver.read(SILVER_ENERGY), silver.weather()
    if emit is not None:
        energy = energy.filter(_within("datetime", spine_ranges))
        weather = weather.filter(_within("datetime", spine_ranges))
    holidays = holiday_calendar(spark, zone.country, _years(spine_ranges))
    spine = hourly_spine(spark, zone.id, spine_ranges)
    rows = build_historic(spine, energy, weather, holidays, zone)
    if emit is not None:
        emitted = F.broadcast(hourly_spine(spark, zone.id, emit))
        rows = rows.join(emitted, ["zone", "datetime"], "left_semi")
    return rows


def _historic_increment(
    silver: SilverSnapshot, zone: ZoneConfig, previous: BuildRecord,
) -> tuple[list[HourRange], HourRange, str] | None:
    """The hours to recompute since the `previous` build and the spine afterwards (None: nothing
    changed for the zone). Raises `_RebuildNeeded` if that cannot be told."""
    energy_since = previous.sources.get(SILVER_ENERGY.qualified_name)
    if energy_since is None or previous.span is None:
        raise _RebuildNeeded(f"the last build recorded no {SILVER_ENERGY} version or spine")
    changes = silver.changes({
        SILVER_ENERGY: energy_since,
        SILVER_WEATHER: previous.sources.get(SILVER_WEATHER.qualified_name),
    })
    changed_energy, changed_weather = changes.energy_hours, changes.observed_hours
    if not changed_energy and not changed_weather:
        return None
    # Silver keeps every hour it once had (its MERGE never deletes), so the spine only grows.
    span = (min([previous.span[0], *changed_energy]), max([previous.span[1], *changed_energy]))
    affected = affected_hours(changed_energy, changed_weather, previous.span, span)
    if not affected:
        # Only observations outside the spine changed (an energy outage while weather kept
        # coming): no gold row covers them yet; the spine's growth will pick them up.
        return None
    detail = (
        f"{len(changed_energy)} energy hour(s) and {len(changed_weather)} observed hour(s) "
        f"changed; recomputed {sum(b - a + 1 for a, b in affected)} hour(s) "
        f"in {len(affected)} range(s)"
    )
    return affected, span, detail


def update_historic(silver: SilverSnapshot, zone: ZoneConfig) -> GoldUpdate:
    """Bring the zone's `gold.historic_data` up to date with silver: incrementally if gold knows
    which silver versions it was built from, else by a full rebuild of the zone."""
    spark, store, table = silver.spark, silver.store, GOLD_HISTORIC
    sources = {t.qualified_name: v for t, v in silver.versions.items()}
    if silver.versions[SILVER_ENERGY] is None:
        return GoldUpdate(table, "no-data", detail=f"{SILVER_ENERGY} does not exist yet")
    previous = last_build(spark, store, table, zone.id)
    if previous is not None and previous.sources == sources:
        return GoldUpdate(table, "unchanged", version=store.version(spark, table),
                          detail="silver unchanged since the last build")

    reason = "no earlier gold build of this zone"
    if previous is not None:
        try:
            plan = _historic_increment(silver, zone, previous)
        except _RebuildNeeded as error:
            reason = str(error)
        else:
            if plan is None:
                return GoldUpdate(table, "unchanged", version=store.version(spark, table),
                                  detail=f"no gold hour of zone {zone.id} is affected by the silver changes")
            affected, span, detail = plan
            rows = _build_historic_rows(silver, zone, read_ranges(affected, span), affected)
            prune = _between_sql("t.datetime", affected[0][0], affected[-1][1])
            written, version = _merge(spark, store, table, rows, BuildRecord(zone.id, sources, span),
                                      target_filter=prune)
            return GoldUpdate(table, "incremental", written, version, detail)

    span = _span(silver.read(SILVER_ENERGY))
    if span is None:
        return GoldUpdate(table, "no-data", detail=f"{SILVER_ENERGY} has no rows for zone {zone.id}")
    rows = _build_historic_rows(silver, zone, [span], None)
    written, version = _merge(spark, store, table, rows, BuildRecord(zone.id, sources, span),
                              replace_zone=True)
    return GoldUpdate(table, "full", written, version, f"full rebuild: {reason}")


def update_weather_forecasts(silver: SilverSnapshot, zone: ZoneConfig) -> GoldUpdate:
    """Bring the zone's `gold.weather_forecasts` up to date: recompute the forecast vintages that
    are new or revised in silver, or rebuild the zone if gold does not know its silver version."""
    spark, store, table = silver.spark, silver.store, GOLD_WEATHER_FORECASTS
    weather_version = silver.versions[SILVER_WEATHER]
    if weather_version is None:
        return GoldUpdate(table, "no-data", detail=f"{SILVER_WEATHER} does not exist yet")
    record = BuildRecord(zone.id, {SILVER_WEATHER.qualified_name: weather_version})
    previous = last_build(spark, store, table, zone.id)
    if previous is not None and previous.sources == record.sources:
        return GoldUpdate(table, "unchanged", version=store.version(spark, table),
                          detail="silver unchanged since the last build")

    reason = "no earlier gold build of this zone"
    if previous is not None:
        try:
            since = previous.sources.get(SILVER_WEATHER.qualified_name)
            vintages = sorted(silver.changes({SILVER_WEATHER: since}).forecast_vintages)
        except _RebuildNeeded as error:
            reason = str(error)
        else:
            if not vintages:
                return GoldUpdate(table, "unchanged", version=store.version(spark, table),
                                  detail=f"no forecast of zone {zone.id} changed in silver")
            issued = F.col("issued_hour").isin([hour_start(vintage) for vintage in vintages])
            rows = build_weather_forecasts(silver.weather().filter(issued), zone)
            prune = _between_sql("t.ingested_hour_utc", vintages[0], vintages[-1])
            written, version = _merge(spark, store, table, rows, record, target_filter=prune)
            return GoldUpdate(table, "incremental", written, version,
                              f"{len(vintages)} forecast vintage(s) new or revised")

    weather = silver.weather()
    if weather.filter(_is_forecast()).isEmpty():
        return GoldUpdate(table, "no-data",
                          detail=f"{SILVER_WEATHER} has no forecast rows for zone {zone.id}")
    rows = build_weather_forecasts(weather, zone)
    written, version = _merge(spark, store, table, rows, record, replace_zone=True)
    return GoldUpdate(table, "full", written, version, f"full rebuild: {reason}")


def update_gold(
    spark: SparkSession, store: TableStore, zone: ZoneConfig,
    versions: dict[Table, int | None] | None = None, progress: Progress = print,
) -> list[GoldUpdate]:
    """Update both gold tables of a zone from silver at `versions` (default: the current ones)."""
    silver = SilverSnapshot(spark, store, zone.id, versions or silver_versions(spark, store))
    updates = []
    for update in (update_historic, update_weather_forecasts):
        started = time.monotonic()
        result = update(silver, zone)
        version = f" -> v{result.version}" if result.version is not None else ""
        progress(f"features {zone.id}: {result.table} {result.mode}, {result.rows} row(s) "
                 f"written{version}, {time.monotonic() - started:.1f} s: {result.detail}")
        updates.append(result)
    return updates
