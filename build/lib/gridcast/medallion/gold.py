"""Gold's feature transforms: small pure DataFrame -> DataFrame functions, no I/O.


`gold.historic_data` rows (`build_historic`): one row per hour of the zone's hourly spine, the
silver energy columns, the newest observed weather per location (`athens_temp`, ...), calendar
features (UTC and local, public holidays), and `lag_<col>_1h` / `rolling_avg_<col>_24h` for the
`LAGGED_COLUMNS`.


Window definition (no leakage, consistent with the 1 h lag): at hour t both look only at the
hours before t. `lag_<col>_1h` is the value at t - 1 h. `rolling_avg_<col>_24h` is the mean of
the values present in the 24 clock hours [t - 24 h, t - 1 h]. Hour t itself is excluded. Both
are range windows over epoch seconds, so a missing hour contributes nothing: a null, never a
zero, and never the row before the gap. `rolling_count_carbon_intensity_24h` says how many of
those 24 hours had a carbon intensity.


`gold.weather_forecasts` rows (`build_weather_forecasts`): the forecast rows of every vintage
(datetime > issue time), pivoted per location, with `forecast_offset` in hours.


Which rows to compute and how they reach the tables is `gridcast.medallion.gold_update`.
"""


from __future__ import annotations


from typing import Iterable, Sequence


from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, DoubleType, StringType, StructField, StructType, TimestampType


from gridcast.config import Location, ZoneConfig
from gridcast.errors import GridcastError
from gridcast.hours import HOUR_S
from gridcast.medallion.calendar import add_calendar_features
from gridcast.medallion.sql import column_name
from gridcast.tables import GOLD_WEATHER_VARIABLES, SILVER_ENERGY, SILVER_WEATHER, Table


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


REQUIRED_ENERGY_COLUMNS = ("zone", "datetime", *LAGGED_COLUMNS)
REQUIRED_WEATHER_COLUMNS = (
    "zone", "location", "fetched_at", "datetime", "is_observation", *GOLD_WEATHER_VARIABLES,
)


# What gold reads of silver weather, for an empty frame while that table does not exist yet: gold
# then has its weather columns (all null) from the start instead of changing schema later.
WEATHER_CONTRACT = StructType([
    StructField("zone", StringType()), StructField("location", StringType()),
    StructField("fetched_at", TimestampType()), StructField("datetime", TimestampType()),
    StructField("is_observation", BooleanType()),
    *[StructField(variable, DoubleType()) for variable in GOLD_WEATHER_VARIABLES],
])


class SilverContractError(GridcastError, ValueError):
    """A silver frame lacks columns gold is built from."""


def require_columns(df: DataFrame, columns: Iterable[str], table: Table) -> None:
    """Raise `SilverContractError` naming every column of `columns` missing from `df`."""
    missing = [column for column in columns if column not in df.columns]
    if missing:
        raise SilverContractError(f"{table} lacks column(s) gold needs: {', '.join(missing)}")


def location_prefix(name: str) -> str:
    """A location's column prefix: `Thessaloniki` -> `thessaloniki`, `São Paulo` -> `sao_paulo`."""
    return column_name(name)


def weather_columns(locations: Sequence[Location]) -> list[str]:
    """The pivoted weather columns, location by location in config order: `athens_temp`, ..."""
    return [
        f"{location_prefix(loc.name)}_{variable}"
        for loc in locations for variable in GOLD_WEATHER_VARIABLES
    ]


def hour_of(column: str) -> Column:
    """Whole hours since the epoch of a timestamp column."""
    return F.floor(F.unix_seconds(F.col(column)) / HOUR_S)


def is_observation() -> Column:
    """A silver weather row is an observation (null counts as not)."""
    return F.coalesce(F.col("is_observation"), F.lit(False))


def is_forecast() -> Column:
    """A silver weather row forecasts an hour after its issue time."""
    return (F.col("datetime") > F.col("fetched_at")) & ~is_observation()


def newest_observations(weather: DataFrame) -> DataFrame:
    """The observed weather per (zone, location, datetime), taken from its newest vintage.

    Args:
        weather: silver weather rows (any vintages, observations and forecasts).

    Returns:
        `zone, location, datetime` and the `GOLD_WEATHER_VARIABLES`, one row per key.
    """
    newest = F.max_by(F.struct(*GOLD_WEATHER_VARIABLES), F.col("fetched_at"))
    return (
        weather.filter(is_observation())
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
        weather: rows unique per (`keys`, location) with the `GOLD_WEATHER_VARIABLES`.
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
        for name in prefixes for variable in GOLD_WEATHER_VARIABLES
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
    previous_hour = ordered.rangeBetween(-HOUR_S, -HOUR_S)
    previous_day = ordered.rangeBetween(-LOOKBACK_HOURS * HOUR_S, -HOUR_S)
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
        `zone, fetched_at` (the vintage's exact fetch time), `datetime`, `forecast_offset`
        (hours from fetch to target, rounded up, >= 1) and `<location>_<variable>` columns.
    """
    require_columns(weather, REQUIRED_WEATHER_COLUMNS, SILVER_WEATHER)
    forecasts = weather.filter((F.col("zone") == zone.id) & is_forecast())
    keys = ("zone", "fetched_at", "datetime")
    pivoted = pivot_locations(forecasts, zone.locations, keys)
    seconds_ahead = F.unix_seconds(F.col("datetime")) - F.unix_seconds(F.col("fetched_at"))
    return pivoted.select(
        *keys, F.ceil(seconds_ahead / HOUR_S).cast("int").alias("forecast_offset"),
        *weather_columns(zone.locations),
    )
