"""The point-in-time frame's inputs, read from the lake once per table, and the frames on them.

`load_frame_inputs` reads, pruned by zone and time range and pinned to one Delta version each:
`silver.energy_revisions` -> `revisions` (both sides' rows; the frame takes each column from the
newest revision that has it), `gold.weather_forecasts` -> `vintages`, and, only when
`FrameSettings.weather_fallback == "observations"`, `gold.historic_data`'s observed weather ->
`observations`. Timestamps arrive UTC-aware through `gridcast.pandas_io`. The versions read go
to the step's lineage.

`build_training_frame` and `build_scoring_frame` both call `gridcast.frame.build_frame`; they
differ only in which issue hours they ask for (see docs/decisions/0016-train-register-score.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from gridcast.config import ZoneConfig
from gridcast.errors import GridcastError
from gridcast.frame import (
    LAG_HOURS, ROLLING_HOURS, TARGET_HISTORY_HOURS, FrameSettings, build_frame,
)
from gridcast.medallion.gold import weather_columns
from gridcast.pandas_io import read_table
from gridcast.storage import TableStore
from gridcast.tables import GOLD_HISTORIC, GOLD_WEATHER_FORECASTS, SILVER_ENERGY_REVISIONS, Table

_HOUR = pd.Timedelta(hours=1)
REVISION_BASE_COLUMNS = ("datetime", "available_at", "updated_at", "carbon_intensity",
                         "is_estimated")


class NoFrameDataError(GridcastError):
    """The lake has no energy revisions for the zone (or range) a frame was asked for."""


@dataclass(frozen=True)
class FrameInputs:
    """The frame's inputs for one zone, and the Delta version each came from.

    Attributes:
        revisions: `silver.energy_revisions` rows (datetime, available_at, updated_at,
            carbon_intensity, is_estimated, mix columns).
        vintages: `gold.weather_forecasts` rows (fetched_at, datetime, `<location>_<var>`), or
            None when the table does not exist yet.
        observations: `gold.historic_data` observed weather (datetime, `<location>_<var>`), or
            None when the frame's weather fallback does not use it.
        versions: table -> Delta version read (for `StepRun.record_read`).
    """

    revisions: pd.DataFrame
    vintages: pd.DataFrame | None
    observations: pd.DataFrame | None
    versions: dict[Table, int] = field(default_factory=dict)


def lookback(settings: FrameSettings) -> pd.Timedelta:
    """How far before the first issue hour the frame looks: the rolling / weekly windows and the
    same-hour search, whichever reaches further, plus the newest lag."""
    hours = max(max(ROLLING_HOURS), max(TARGET_HISTORY_HOURS), max(LAG_HOURS),
                24 * settings.same_hour_search_days)
    return pd.Timedelta(hours=hours)


def latest_issue_hour(spark: SparkSession, store: TableStore, zone: ZoneConfig) -> pd.Timestamp:
    """The newest issue hour the lake can answer for: the newest `available_at` of the zone's
    revisions, floored to the hour (what was known then is what a forecast issued then uses).

    Raises:
        NoFrameDataError: no revisions for the zone.
    """
    if not store.exists(spark, SILVER_ENERGY_REVISIONS):
        raise _no_revisions(store, zone)
    newest = (
        store.read(spark, SILVER_ENERGY_REVISIONS).where(F.col("zone") == zone.id)
        .agg(F.unix_micros(F.max("available_at")).alias("newest")).collect()[0]["newest"]
    )
    if newest is None:
        raise _no_revisions(store, zone)
    return pd.Timestamp(newest, unit="us", tz="UTC").floor("h")


def _no_revisions(store: TableStore, zone: ZoneConfig) -> NoFrameDataError:
    return NoFrameDataError(
        f"no energy revisions for zone {zone.id} in {store.identifier(SILVER_ENERGY_REVISIONS)}; "
        "run ingest (or backfill), medallion and features first"
    )


def _between(column: str, start: pd.Timestamp | None, end: pd.Timestamp | None):
    condition = F.lit(True)
    if start is not None:
        condition &= F.col(column) >= F.lit(start.to_pydatetime())
    if end is not None:
        condition &= F.col(column) <= F.lit(end.to_pydatetime())
    return condition


def load_frame_inputs(
    spark: SparkSession,
    store: TableStore,
    zone: ZoneConfig,
    *,
    horizon: int,
    settings: FrameSettings,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> FrameInputs:
    """Read the frame's inputs for issue hours in [start, end] (None: unbounded), one Spark
    action per table, each at a pinned Delta version.

    Revisions are pruned to the hours [start - lookback, end + horizon] (targets and target-hour
    history need both ends); vintages and observations to target hours (start, end + horizon],
    vintages also to `fetched_at <= end`.

    Raises:
        NoFrameDataError: `silver.energy_revisions` is missing or has no rows for the zone.
    """
    if not store.exists(spark, SILVER_ENERGY_REVISIONS):
        raise _no_revisions(store, zone)
    first_hour = None if start is None else start - lookback(settings)
    last_target = None if end is None else end + horizon * _HOUR
    first_target = None if start is None else start + _HOUR
    in_zone = F.col("zone") == zone.id
    versions: dict[Table, int] = {}

    def read(table: Table, where, wanted: list[str]) -> pd.DataFrame:
        version = store.version(spark, table)
        assert version is not None
        versions[table] = version
        present = set(store.read(spark, table, version).columns)
        return read_table(spark, store, table, where=where, version=version,
                          columns=[c for c in wanted if c in present])

    revisions = read(
        SILVER_ENERGY_REVISIONS, in_zone & _between("datetime", first_hour, last_target),
        [*REVISION_BASE_COLUMNS, *settings.mix_columns],
    )
    if revisions.empty:
        raise NoFrameDataError(
            f"no energy revisions for zone {zone.id} between {first_hour or 'the start'} and "
            f"{last_target or 'the end'} in {store.identifier(SILVER_ENERGY_REVISIONS)}"
        )
    revisions["carbon_intensity"] = revisions["carbon_intensity"].astype("float64")
    weather = weather_columns(zone.locations)
    vintages = None
    if store.exists(spark, GOLD_WEATHER_FORECASTS):
        vintages = read(
            GOLD_WEATHER_FORECASTS,
            in_zone & _between("datetime", first_target, last_target)
            & _between("fetched_at", None, end),
            ["fetched_at", "datetime", *weather],
        )
    observations = None
    if settings.weather_fallback == "observations" and store.exists(spark, GOLD_HISTORIC):
        observations = read(
            GOLD_HISTORIC, in_zone & _between("datetime", first_target, last_target),
            ["datetime", *weather],
        )
    return FrameInputs(revisions, vintages, observations, versions)


def history_issue_hours(inputs: FrameInputs) -> pd.DatetimeIndex:
    """Every issue hour of the history: from the first hour anything was known (the earliest
    `available_at`, rounded up) to the newest (rounded down). Hours without a known target
    become unlabelled rows, which training drops."""
    available = inputs.revisions["available_at"]
    return pd.date_range(available.min().ceil("h"), available.max().floor("h"), freq="h")


def build_training_frame(
    inputs: FrameInputs, zone: ZoneConfig, horizon: int, settings: FrameSettings
) -> pd.DataFrame:
    """The frame over every issue hour of the history (`history_issue_hours`)."""
    return build_scoring_frame(inputs, zone, horizon, settings, history_issue_hours(inputs))


def build_scoring_frame(
    inputs: FrameInputs, zone: ZoneConfig, horizon: int, settings: FrameSettings,
    issue_hours: pd.DatetimeIndex,
) -> pd.DataFrame:
    """The frame rows for the given issue hours (the latest one, or a range to score history)."""
    return build_frame(
        inputs.revisions, zone=zone, issue_hours=issue_hours, horizon=horizon,
        vintages=inputs.vintages, observations=inputs.observations, settings=settings,
    )
