"""Gold's incremental bookkeeping: which gold rows silver's changes affect, and their rewrite.


Every gold commit records in its Delta `userMetadata` the silver versions it was built from and
a fingerprint of gold's definition (`definition_fingerprint`). The next run reads the zone's
rows that silver's commits since those versions inserted or updated (silver's change data feed;
where the feed does not cover them, a diff of silver at those versions against silver now,
matched on key and a content fingerprint), recomputes exactly the affected rows with
`gridcast.medallion.gold` and replaces them in one commit (`replaceWhere` on those hours or
vintages: a writer, so the record is a writer option; decision 0026). For energy that is each
changed hour h and [h, h + 24 h], the rows whose lag or window covers h; for observed weather the
changed hour only; hours that extend the spine too. The recomputation reads silver only over
those hours and the 24 hours before them. A changed definition, a missing record or an
unreadable old version rebuilds the zone (docs/decisions/0004-gold.md). No session setting is
used, so serverless runs it as it is.
"""


from __future__ import annotations


import hashlib
import importlib.metadata
import inspect
import json
import operator
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import reduce
from typing import Callable, Iterable, Sequence


from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F


from gridcast.config import ZoneConfig
from gridcast.hours import HOUR_S
from gridcast.medallion import calendar, gold
from gridcast.medallion.calendar import holiday_calendar
from gridcast.medallion.gold import (
    LAGGED_COLUMNS, LOOKBACK_HOURS, WEATHER_CONTRACT, build_historic, build_weather_forecasts, hour_of, is_forecast,
    is_observation,
)
from gridcast.medallion.sql import sql_name, sql_text
from gridcast.storage import TableStore
from gridcast.tables import GOLD_WEATHER_VARIABLES, GOLD_HISTORIC, GOLD_WEATHER_FORECASTS, SILVER_ENERGY, SILVER_WEATHER, Table


# Beyond this many disjoint hour ranges, one bounding range is read instead (a shorter predicate).
MAX_READ_RANGES = 64


_METADATA_WRITER = "gridcast.gold"
_RECENT_COMMITS = 20
# The transforms' source as imported: the code that runs, whatever happens to the files later.
_TRANSFORM_SOURCE = [inspect.getsource(module) for module in (gold, calendar)]


HourRange = tuple[int, int]  # inclusive (first, last) hours since the epoch
Progress = Callable[[str], None]


def hourly_spine(spark: SparkSession, zone_id: str, ranges: Sequence[HourRange]) -> DataFrame:
    """Every hour of the given inclusive hour ranges, as `(zone, datetime)` rows."""
    rows = [(zone_id, hour_start(first), hour_start(last)) for first, last in ranges]
    bounds = spark.createDataFrame(rows, "zone string, first timestamp, last timestamp")
    hours = F.sequence(F.col("first"), F.col("last"), F.expr("INTERVAL 1 HOUR"))
    return bounds.select("zone", F.explode(hours).alias("datetime"))


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


def hour_index(moment: datetime) -> int:
    """Whole hours since the epoch of a UTC instant (naive = UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp()) // HOUR_S


def hour_start(index: int) -> datetime:
    return datetime.fromtimestamp(index * HOUR_S, tz=timezone.utc)


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
    return (f"{column} BETWEEN timestamp_seconds({first * HOUR_S}) "
            f"AND timestamp_seconds({last * HOUR_S})")


def _years(ranges: Sequence[HourRange]) -> set[int]:
    """Calendar years of the ranges' hours, padded a day either side for local time."""
    day = timedelta(days=1)
    return {
        year for first, last in ranges
        for year in range((hour_start(first) - day).year, (hour_start(last) + day).year + 1)
    }


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
    """What changed in a zone's silver between two versions: hours since the epoch, and
    vintages as epoch seconds (a vintage is an exact fetch time)."""

    energy_hours: frozenset[int]  # hours whose energy row is new or revised
    observed_hours: frozenset[int]  # hours with a new or revised observation
    forecast_vintages: frozenset[int]  # fetched_at (epoch s) with a new or revised forecast row


def _changed_hours(table: Table, changed: DataFrame) -> DataFrame:
    """`(table, kind, hour)` for changed silver rows: kind `energy` (its datetime's hour),
    `observed` (an observation's datetime's hour) or `vintage` (a forecast's fetched_at, in epoch
    seconds)."""
    if table is SILVER_ENERGY:
        kind, hour = F.lit("energy"), hour_of("datetime")
    else:
        kind = F.when(is_observation(), F.lit("observed")).when(is_forecast(), F.lit("vintage"))
        hour = F.when(is_observation(), hour_of("datetime")).otherwise(F.unix_seconds("fetched_at"))
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
        return frame if frame is not None else self.spark.createDataFrame([], WEATHER_CONTRACT)

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
            for table, version in pending.items():
                self._check_since(table, version)
            try:
                found = self._collect_changes(pending, self._fed_rows)
            except (PySparkException, Py4JJavaError):
                # No change data feed over these versions (a table created before gold read
                # one, or its change files vacuumed): diff the two versions instead.
                found = None
            if found is None:
                try:
                    found = self._collect_changes(pending, self._diffed_rows)
                except (PySparkException, Py4JJavaError) as error:
                    # Vacuumed files (Py4JJavaError: FAILED_READ_FILE) or a cleaned-up log.
                    versions = ", ".join(f"{t} v{v}" for t, v in pending.items())
                    raise _RebuildNeeded(
                        f"cannot diff against {versions}: {_reason(error)}") from error
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

    @staticmethod
    def _collect_changes(
        pending: dict[Table, int | None], changed: Callable[[Table, int | None], DataFrame],
    ) -> list:
        """`(table, kind, hour)` rows of every pending table's changed rows, in one Spark job."""
        return reduce(DataFrame.unionByName, [
            _changed_hours(table, changed(table, version)) for table, version in pending.items()
        ]).distinct().collect()

    def _fed_rows(self, table: Table, since: int | None) -> DataFrame:
        """The zone's rows of `table` inserted or updated after version `since`, from its change
        data feed: only what the commits wrote, not two whole versions. A row updated to the
        content it had (silver's MERGE never does: its revision order only grows) would count as
        changed: more hours recomputed, the same gold rows."""
        if since is None:
            return self.read(table)
        changes = self.store.read_changes(self.spark, table, since + 1, self.versions[table])
        changed = F.col("_change_type").isin("insert", "update_postimage")
        return changes.filter(changed & (F.col("zone") == self.zone_id))

    def _diffed_rows(self, table: Table, since: int | None) -> DataFrame:
        """The zone's rows of `table` that are new or differ from version `since` (a diff of
        the two versions, `changed_rows`)."""
        previous = None if since is None else self.read(table, since)
        return changed_rows(previous, self.read(table), table.key)

    def _check_since(self, table: Table, since: int | None) -> None:
        """Raise `_RebuildNeeded` if `since` is newer than the pinned version of `table`."""
        current = self.versions[table]
        if since is not None and (current is None or since > current):
            raise _RebuildNeeded(f"{table} is at v{current}, before v{since} that gold was built from")


@dataclass(frozen=True)
class BuildRecord:
    """What a gold commit records about the zone's rows it wrote, in its `userMetadata`."""

    zone: str
    sources: dict[str, int | None]  # silver table -> the version the rows were built from
    span: HourRange | None = None  # historic only: the zone's spine (first, last hour) afterwards
    definition: str | None = None  # `definition_fingerprint` of the code and settings used

    def as_json(self) -> str:
        span = list(self.span) if self.span else None
        return json.dumps({"writer": _METADATA_WRITER, "zone": self.zone, "sources": self.sources,
                           "span": span, "definition": self.definition}, sort_keys=True)


def definition_fingerprint(zone: ZoneConfig) -> str:
    """A hash of everything besides silver that decides the zone's gold rows: the lagged columns,
    the weather variables, the zone's locations, time zone and country, the lookback, the
    `holidays` package version and the source of the transform modules. A gold build whose
    record holds another fingerprint is stale and is rebuilt."""
    definition = {
        "lagged_columns": LAGGED_COLUMNS, "weather_variables": GOLD_WEATHER_VARIABLES,
        "lookback_hours": LOOKBACK_HOURS, "zone": zone.id, "timezone": zone.timezone,
        "country": zone.country, "locations": [(loc.name, loc.lat, loc.lon) for loc in zone.locations],
        "holidays": importlib.metadata.version("holidays"),
        "code": _TRANSFORM_SOURCE,
    }
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()


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
                return BuildRecord(zone_id, metadata["sources"], tuple(span) if span else None,
                                   metadata.get("definition"))
        if len(commits) < _RECENT_COMMITS:
            break
    return None


def _rebuild_zone(
    spark: SparkSession, store: TableStore, table: Table, rows: DataFrame, record: BuildRecord,
) -> tuple[int, int]:
    """Replace the zone's rows of a gold table with `rows`, with `record` in the commit.

    The table is rewritten (schema included) as `rows` plus the other zones' rows. A column that
    `rows` lacks survives only if another zone has a value in it, so a rebuild after a definition
    change (a location or lagged column removed) leaves no stale column behind.

    Returns:
        The zone's rows written and the table's version.
    """
    # The build record travels as the writer option `userMetadata` (per write; no session
    # setting). The rows are computed once, by the write, and counted afterwards: cheaper than
    # materialising them first, and possible on serverless, which has no `localCheckpoint`.
    options = {"userMetadata": record.as_json()}
    if not store.exists(spark, table):
        store.append(rows, table, options)
        commit = store.delta_table(spark, table).history(1).collect()[0]
        return int(commit.operationMetrics["numOutputRows"]), commit.version
    others = store.read(spark, table).filter(F.col("zone") != record.zone)
    extra = [c for c in others.columns if c not in rows.columns]
    if extra:
        filled = others.agg(*[F.count(F.col(sql_name(c))).alias(c) for c in extra]).first()
        extra = [c for c in extra if filled[c]]
    kept = [c for c in others.columns if c in rows.columns or c in extra]
    store.replace(rows.unionByName(others.select(*kept), allowMissingColumns=True), table, options)
    version = store.version(spark, table)
    written = store.read(spark, table, version).filter(F.col("zone") == record.zone).count()
    return written, version


def _replace_rows(
    spark: SparkSession, store: TableStore, table: Table, rows: DataFrame, record: BuildRecord,
    predicate: str,
) -> tuple[int, int]:
    """Replace the zone's gold rows that match `predicate` (SQL) with `rows`, with `record` in
    the commit.

    `rows` must be every row the predicate selects, recomputed: the hours or vintages the
    update affects (Delta refuses a row outside it). One commit, written by a DataFrameWriter
    (`replaceWhere`), so the build record travels as the writer option `userMetadata`: MERGE
    takes no writer options, and the session setting it would need is one that serverless
    refuses (decision 0026). New columns are added (`mergeSchema`).

    Returns:
        Rows written and the table's version.
    """
    store.replace_where(rows, table, f"zone = {sql_text(record.zone)} AND ({predicate})",
                        {"userMetadata": record.as_json(), "mergeSchema": "true"})
    commit = store.delta_table(spark, table).history(1).collect()[0]
    metrics = commit.operationMetrics or {}
    # numOutputRows counts the untouched rows of rewritten files too (numCopiedRows).
    written = int(metrics.get("numOutputRows", 0)) - int(metrics.get("numCopiedRows", 0))
    return written, commit.version


def _span(rows: DataFrame) -> HourRange | None:
    """The first and last hour of `rows` (None if empty)."""
    hours = hour_of("datetime")
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


def _stale(previous: BuildRecord | None, definition: str) -> str | None:
    """Why the zone's gold rows must be rebuilt whatever silver did (None: they need not be)."""
    if previous is None:
        return "no earlier gold build of this zone"
    if previous.definition != definition:
        return "gold's definition (columns, locations, lookback, holidays or transform code) changed"
    return None


def update_historic(silver: SilverSnapshot, zone: ZoneConfig) -> GoldUpdate:
    """Bring the zone's `gold.historic_data` up to date with silver: incrementally if gold knows
    which silver versions it was built from, else by a full rebuild of the zone."""
    spark, store, table = silver.spark, silver.store, GOLD_HISTORIC
    sources = {t.qualified_name: v for t, v in silver.versions.items()}
    if silver.versions[SILVER_ENERGY] is None:
        return GoldUpdate(table, "no-data", detail=f"{SILVER_ENERGY} does not exist yet")
    definition = definition_fingerprint(zone)
    previous = last_build(spark, store, table, zone.id)
    reason = _stale(previous, definition)
    if reason is None and previous.sources == sources:
        return GoldUpdate(table, "unchanged", version=store.version(spark, table),
                          detail="silver unchanged since the last build")

    if reason is None:
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
            hours = " OR ".join(_between_sql("datetime", first, last) for first, last in affected)
            written, version = _replace_rows(spark, store, table, rows,
                                             BuildRecord(zone.id, sources, span, definition), hours)
            return GoldUpdate(table, "incremental", written, version, detail)

    span = _span(silver.read(SILVER_ENERGY))
    if span is None:
        return GoldUpdate(table, "no-data", detail=f"{SILVER_ENERGY} has no rows for zone {zone.id}")
    rows = _build_historic_rows(silver, zone, [span], None)
    written, version = _rebuild_zone(spark, store, table, rows,
                                     BuildRecord(zone.id, sources, span, definition))
    return GoldUpdate(table, "full", written, version, f"full rebuild: {reason}")


def update_weather_forecasts(silver: SilverSnapshot, zone: ZoneConfig) -> GoldUpdate:
    """Bring the zone's `gold.weather_forecasts` up to date: recompute the forecast vintages that
    are new or revised in silver, or rebuild the zone if gold does not know its silver version."""
    spark, store, table = silver.spark, silver.store, GOLD_WEATHER_FORECASTS
    weather_version = silver.versions[SILVER_WEATHER]
    if weather_version is None:
        return GoldUpdate(table, "no-data", detail=f"{SILVER_WEATHER} does not exist yet")
    record = BuildRecord(zone.id, {SILVER_WEATHER.qualified_name: weather_version},
                         definition=definition_fingerprint(zone))
    previous = last_build(spark, store, table, zone.id)
    reason = _stale(previous, record.definition)
    if reason is None and previous.sources == record.sources:
        return GoldUpdate(table, "unchanged", version=store.version(spark, table),
                          detail="silver unchanged since the last build")

    if reason is None:
        try:
            since = previous.sources.get(SILVER_WEATHER.qualified_name)
            vintages = sorted(silver.changes({SILVER_WEATHER: since}).forecast_vintages)
        except _RebuildNeeded as error:
            reason = str(error)
        else:
            if not vintages:
                return GoldUpdate(table, "unchanged", version=store.version(spark, table),
                                  detail=f"no forecast of zone {zone.id} changed in silver")
            fetched = F.unix_seconds("fetched_at").isin(vintages)
            rows = build_weather_forecasts(silver.weather().filter(fetched), zone)
            fetches = ", ".join(f"timestamp_seconds({vintage})" for vintage in vintages)
            written, version = _replace_rows(spark, store, table, rows, record,
                                             f"fetched_at IN ({fetches})")
            return GoldUpdate(table, "incremental", written, version,
                              f"{len(vintages)} forecast vintage(s) new or revised")

    weather = silver.weather()
    if weather.filter(is_forecast()).isEmpty():
        return GoldUpdate(table, "no-data",
                          detail=f"{SILVER_WEATHER} has no forecast rows for zone {zone.id}")
    rows = build_weather_forecasts(weather, zone)
    written, version = _rebuild_zone(spark, store, table, rows, record)
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
