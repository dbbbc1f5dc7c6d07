"""Calendar features of an hourly UTC timeline: hour, weekday, month and day of year, in UTC
and in the zone's local time, and the public holidays of the zone's country.

Every part is derived from epoch seconds, so the result does not depend on the Spark session's
time zone. Holidays come from the maintained `holidays` package, built once in the driver as a
small table and broadcast-joined on the local date: no Python UDF runs per row.
"""

from __future__ import annotations

from typing import Iterable

import holidays as holidays_package
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from gridcast.hours import HOUR_S

SECONDS_PER_DAY = 86400

HOLIDAY_SCHEMA = "local_date date, holiday_name string"

CALENDAR_COLUMNS = (
    "hour_utc", "day_of_week_utc", "month_utc", "day_of_year_utc",
    "local_date", "hour_local", "day_of_week_local", "month_local", "day_of_year_local",
    "is_holiday",
)


def holiday_calendar(spark: SparkSession, country: str, years: Iterable[int]) -> DataFrame:
    """The public holidays of a country, one row per date.

    Args:
        country: ISO 3166 code of the zone's country (`ZoneConfig.country`), e.g. `GR`.
        years: the calendar years the timeline touches (in local time).

    Returns:
        A small frame `(local_date date, holiday_name string)`, national holidays only.
    """
    calendar = holidays_package.country_holidays(country, years=sorted(set(years)))
    return spark.createDataFrame(sorted(calendar.items()), HOLIDAY_SCHEMA)


def _date_parts(epoch_seconds: Column, suffix: str) -> dict[str, Column]:
    """Hour, ISO weekday (1 = Monday), month and day of year of a wall-clock epoch."""
    day = F.date_from_unix_date(F.floor(epoch_seconds / SECONDS_PER_DAY).cast("int"))
    return {
        f"hour_{suffix}": F.pmod(F.floor(epoch_seconds / HOUR_S), 24).cast("int"),
        f"day_of_week_{suffix}": (F.weekday(day) + 1).cast("int"),
        f"month_{suffix}": F.month(day),
        f"day_of_year_{suffix}": F.dayofyear(day),
    }


def add_calendar_features(df: DataFrame, timezone: str, holidays: DataFrame) -> DataFrame:
    """Add calendar columns to a frame with a UTC `datetime` column.

    Args:
        df: any frame with `datetime` (timestamp, UTC instant).
        timezone: IANA time zone of the zone, e.g. `Europe/Athens`.
        holidays: `holiday_calendar(...)` covering the frame's local dates.

    Returns:
        `df` plus `hour_utc, day_of_week_utc, month_utc, day_of_year_utc`, the same four
        `*_local` in the zone's wall-clock time (across DST changes), `local_date` and
        `is_holiday` (the local date is a public holiday of the zone's country).
    """
    utc_epoch = F.unix_seconds(F.col("datetime"))
    # from_utc_timestamp shifts the instant by the zone's offset at that instant: its epoch
    # seconds are the local wall-clock time read as if it were UTC.
    local_epoch = F.unix_seconds(F.from_utc_timestamp(F.col("datetime"), timezone))
    with_parts = df.withColumns({
        **_date_parts(utc_epoch, "utc"),
        "local_date": F.date_from_unix_date(F.floor(local_epoch / SECONDS_PER_DAY).cast("int")),
        **_date_parts(local_epoch, "local"),
    })
    holiday_dates = holidays.select("local_date", F.lit(True).alias("is_holiday")).distinct()
    return (
        with_parts.join(F.broadcast(holiday_dates), "local_date", "left")
        .withColumn("is_holiday", F.coalesce(F.col("is_holiday"), F.lit(False)))
        .select(*df.columns, *CALENDAR_COLUMNS)
    )
