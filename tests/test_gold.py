"""Gold: calendar, lag/rolling over gaps, per-location pivots, future-only forecasts, and the
incremental update (equal to a full rebuild, no version on a rerun with nothing new).

Frames are silver-shaped and tiny. Module fixtures build once and several tests read the result.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from statistics import mean

import pytest
from fixtures.connect_mode import as_on_spark_connect
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StructField, StructType

from gridcast.config import Location, ZoneConfig
from gridcast.medallion.calendar import CALENDAR_COLUMNS, holiday_calendar
from gridcast.medallion.gold import (
    LAGGED_COLUMNS, SilverContractError, build_historic, build_weather_forecasts, weather_columns,
)
from gridcast.medallion.gold_update import affected_hours, hour_index, hourly_spine, update_gold
from gridcast.medallion.silver import WEATHER_GROUP
from gridcast.medallion.upsert import RevisionGroup, merge_revisions
from gridcast.storage import LocalTableStore
from gridcast.tables import GOLD_HISTORIC, GOLD_WEATHER_FORECASTS, SILVER_ENERGY, SILVER_WEATHER

ZONE = ZoneConfig(
    id="GR", name="Greece", country="GR", timezone="Europe/Athens",
    neighbours=("AL", "BG", "IT-SO", "MK", "TR"),
    locations=(Location("Athens", 37.98, 23.73), Location("Thessaloniki", 40.64, 22.94),
               Location("Patras", 38.25, 21.73)),
)
# Hour 0 of every scenario: the day before Greek Independence Day (25 March), five days before
# the spring DST change (2025-03-30 01:00 UTC: 03:00 EET becomes 04:00 EEST).
T0 = datetime(2025, 3, 24, 12, tzinfo=timezone.utc)


def _plain(schema: StructType) -> StructType:
    """A declared silver schema as plain columns (no generated-column metadata): test data
    supplies every column itself."""
    return StructType([StructField(f.name, f.dataType, f.nullable) for f in schema.fields])


# The silver contract as tables.py declares it; rows fill the columns gold uses, the rest is null.
ENERGY_SCHEMA = _plain(SILVER_ENERGY.schema)
WEATHER_SCHEMA = _plain(SILVER_WEATHER.schema)


def at(hour: int) -> datetime:
    return T0 + timedelta(hours=hour)


def energy_row(
    hour: int, carbon_intensity: int, *, ingested: int, import_tr: float | None = None,
) -> dict:
    """A silver energy row whose numbers derive from the hour, so every column is checkable."""
    row = {
        "zone": "GR", "datetime": at(hour), "carbon_intensity": carbon_intensity,
        "emission_factor_type": "lifecycle", "carbon_is_estimated": False,
        "carbon_updated_at": at(hour + 1), "carbon_ingested_at": at(ingested),
        "production_wind": 100.0 + hour, "production_solar": float(hour % 24),
        "production_gas": 2000.0, "consumption_gas": 0.0, "import_bg": 50.5, "export_bg": 10.25,
        "power_production_total": 4000.0 + hour, "power_consumption_total": 4100.0 + hour,
        "power_import_total": 300.0, "power_export_total": 200.0,
        "fossil_free_percentage": 40.0 + hour / 4, "renewable_percentage": 35.0 + hour / 8,
        "power_is_estimated": False, "power_updated_at": at(hour + 1),
        "power_ingested_at": at(ingested), "is_estimated": False, "updated_at": at(hour + 1),
        "first_ingested_at": at(ingested), "last_ingested_at": at(ingested),
    }
    if import_tr is not None:
        row["import_tr"] = import_tr
    return row


def weather_row(location: str, issued: int, hour: int, temp: float, *, observation: bool) -> dict:
    return {
        "zone": "GR", "location": location, "fetched_at": at(issued), "datetime": at(hour),
        "forecast_offset_h": hour - issued, "is_observation": observation,
        "temp": temp, "humidity": 60.0 + hour % 7, "cloudcover": 10.0 * (hour % 10),
        "solarradiation": 5.0 * (hour % 24), "windspeed": 12.5, "precip": 0.0, "dew": 3.0,
        "conditions": "Clear", "ingested_at": at(issued),
    }


def frame(spark: SparkSession, rows: list[dict], schema: StructType) -> DataFrame:
    fields = list(schema.fields)
    extra = sorted({key for row in rows for key in row} - {f.name for f in fields})
    fields += [StructField(name, DoubleType()) for name in extra]
    names = [f.name for f in fields]
    return spark.createDataFrame([tuple(row.get(n) for n in names) for row in rows], StructType(fields))


def hour_of(value: datetime) -> int:
    """Scenario hour of a collected timestamp (collected as naive local time by PySpark)."""
    return hour_index(value.astimezone(timezone.utc)) - hour_index(T0)


# --- transforms: one historic build, many assertions ------------------------------------------

GAP = (30, 31, 32)  # 2025-03-25 18:00-20:00 UTC: missing from silver
LAST_HOUR = 134  # 2025-03-30 02:00 UTC, after the DST change


@pytest.fixture(scope="module")
def historic(spark) -> dict[int, dict]:
    """`build_historic` over hours 0..134 with a 3-hour gap, rows by scenario hour."""
    energy = frame(spark, [
        energy_row(h, 100 + h, ingested=h + 1) for h in range(LAST_HOUR + 1) if h not in GAP
    ], ENERGY_SCHEMA)
    weather = frame(spark, [
        weather_row("Athens", 6, 5, 10.0, observation=True),
        weather_row("Athens", 8, 5, 11.0, observation=True),  # newer observation vintage wins
        weather_row("Athens", 2, 5, 99.0, observation=False),  # a forecast, not an observation
        weather_row("Thessaloniki", 6, 5, 7.5, observation=True),
        weather_row("Lisbon", 6, 5, 20.0, observation=True),  # not a GR location
    ], WEATHER_SCHEMA)
    hours = (hour_index(T0), hour_index(T0) + LAST_HOUR)
    spine = hourly_spine(spark, "GR", [hours])
    rows = build_historic(spine, energy, weather, holiday_calendar(spark, "GR", [2025]), ZONE).collect()
    return {hour_of(row["datetime"]): row.asDict() for row in rows} | {
        "columns": list(rows[0].asDict()), "energy_columns": energy.columns,
    }


def test_historic_has_one_row_per_spine_hour_and_gap_hours_are_null_rows(historic):
    hours = sorted(h for h in historic if isinstance(h, int))
    assert hours == list(range(LAST_HOUR + 1))
    assert [historic[h]["carbon_intensity"] for h in GAP] == [None, None, None]


def test_historic_columns_are_energy_weather_lag_rolling_then_calendar(historic):
    columns, energy = historic["columns"], historic["energy_columns"]
    lag_rolling = [
        name for column in LAGGED_COLUMNS
        for name in (f"lag_{column}_1h", f"rolling_avg_{column}_24h")
    ]
    assert columns[:len(energy)] == energy  # every silver column, import_bg/export_bg included
    assert columns[len(energy):] == [
        *weather_columns(ZONE.locations), *lag_rolling, "rolling_count_carbon_intensity_24h",
        *CALENDAR_COLUMNS,
    ]
    assert {"athens_temp", "thessaloniki_windspeed", "patras_cloudcover"} <= set(columns)


def test_lag_is_the_value_one_clock_hour_before_and_null_after_a_gap(historic):
    assert historic[0]["lag_carbon_intensity_1h"] is None  # no history yet
    assert historic[30]["lag_carbon_intensity_1h"] == 129  # hour 29
    assert historic[31]["lag_carbon_intensity_1h"] is None  # hour 30 is missing
    assert historic[33]["lag_carbon_intensity_1h"] is None  # hour 32 is missing, not hour 29
    assert historic[34]["lag_carbon_intensity_1h"] == 133
    assert historic[34]["lag_power_production_total_1h"] == 4033.0


def test_rolling_mean_covers_the_24_clock_hours_before_t_and_skips_missing_hours(historic):
    def expected(t: int) -> float:
        return mean(100 + h for h in range(max(0, t - 24), t) if h not in GAP)

    assert historic[0]["rolling_avg_carbon_intensity_24h"] is None
    # At 10: hours 0..9, not 10 itself.
    assert historic[10]["rolling_avg_carbon_intensity_24h"] == pytest.approx(expected(10))
    # At 40 the window is hours 16..39: 21 values, not the last 24 rows (13..39 without the gap).
    assert historic[40]["rolling_avg_carbon_intensity_24h"] == pytest.approx(expected(40))
    assert historic[40]["rolling_count_carbon_intensity_24h"] == 21
    # A gap row still has its history.
    assert historic[31]["rolling_avg_carbon_intensity_24h"] == pytest.approx(expected(31))
    assert historic[60]["rolling_count_carbon_intensity_24h"] == 24
    assert historic[60]["rolling_avg_renewable_percentage_24h"] == pytest.approx(
        mean(35.0 + h / 8 for h in range(36, 60))
    )


def test_observed_weather_is_pivoted_per_location_from_the_newest_observation(historic):
    row = historic[5]
    assert (row["athens_temp"], row["thessaloniki_temp"], row["patras_temp"]) == (11.0, 7.5, None)
    assert row["thessaloniki_windspeed"] == 12.5
    assert historic[6]["athens_temp"] is None  # no observation for that hour
    assert not any(c.startswith("lisbon") for c in historic["columns"])


@pytest.mark.tz
@pytest.mark.parametrize(
    ("utc", "local_hour", "local_weekday", "local_day_of_year", "holiday"),
    [
        (datetime(2025, 3, 24, 21), 23, 1, 83, False),  # Monday 23:00 EET
        (datetime(2025, 3, 24, 22), 0, 2, 84, True),  # Tuesday 25 March 00:00 EET: Independence Day
        (datetime(2025, 3, 30, 0), 2, 7, 89, False),  # Sunday 02:00 EET
        (datetime(2025, 3, 30, 1), 4, 7, 89, False),  # one hour later it is 04:00 EEST
    ],
)
def test_calendar_features_in_utc_and_local_time(
    historic, utc, local_hour, local_weekday, local_day_of_year, holiday,
):
    row = historic[hour_of(utc.replace(tzinfo=timezone.utc))]
    assert row["hour_utc"] == utc.hour
    assert row["day_of_week_utc"] == utc.isoweekday()
    assert (row["month_utc"], row["day_of_year_utc"]) == (3, utc.timetuple().tm_yday)
    local = (row["hour_local"], row["day_of_week_local"], row["month_local"])
    assert local == (local_hour, local_weekday, 3)
    assert row["day_of_year_local"] == local_day_of_year
    assert row["is_holiday"] is holiday


def test_missing_silver_column_raises_a_named_error(spark):
    energy = frame(spark, [energy_row(0, 100, ingested=1)], ENERGY_SCHEMA).drop("carbon_intensity")
    weather = frame(spark, [], WEATHER_SCHEMA)
    holidays = holiday_calendar(spark, "GR", [2025])
    with pytest.raises(SilverContractError,
                       match=r"silver.energy_data lacks column\(s\) gold needs: carbon_intensity"):
        build_historic(hourly_spine(spark, "GR", [(0, 1)]), energy, weather, holidays, ZONE)


def test_weather_forecasts_keep_future_hours_only_with_their_offset(spark):
    weather = frame(spark, [
        weather_row("Athens", 10, 9, 1.0, observation=True),  # observed, before issue
        weather_row("Athens", 10, 10, 2.0, observation=True),  # the issue hour itself
        weather_row("Athens", 10, 11, 3.0, observation=False),
        weather_row("Thessaloniki", 10, 11, 4.0, observation=False),
        weather_row("Athens", 10, 13, 5.0, observation=False),
        weather_row("Athens", 11, 13, 6.0, observation=False),  # a newer vintage of the same hour
    ], WEATHER_SCHEMA)
    rows = build_weather_forecasts(weather, ZONE).collect()
    assert rows[0].asDict().keys() >= {"zone", "fetched_at", "datetime", "forecast_offset"}
    got = sorted(
        (hour_of(r.fetched_at), hour_of(r.datetime), r.forecast_offset,
         r.athens_temp, r.thessaloniki_temp)
        for r in rows
    )
    assert got == [(10, 11, 1, 3.0, 4.0), (10, 13, 3, 5.0, None), (11, 13, 2, 6.0, None)]


def test_affected_hours_cover_each_change_and_the_24_hours_after_within_the_spine():
    # An energy change at 10 reaches 10..34; a weather change only its own hour; the spine grew
    # from (0, 40) to (0, 60): 41..60 are new rows.
    assert affected_hours({10}, {38}, (0, 40), (0, 60)) == [(10, 34), (38, 38), (41, 60)]
    # A change near the end is clipped to the spine; adjacent ranges merge.
    assert affected_hours({55, 35}, set(), (0, 60), (0, 60)) == [(35, 60)]
    assert affected_hours(set(), set(), None, (5, 9)) == [(5, 9)]


# --- incremental update == full rebuild -------------------------------------------------------

def silver_batches() -> list[tuple[list[dict], list[dict]]]:
    """Three successive silver states (energy rows, weather rows), each the whole table."""
    energy_1 = {h: energy_row(h, 200 + h, ingested=48) for h in range(48) if h not in GAP}
    locations = ("Athens", "Thessaloniki")
    weather_1 = [weather_row(loc, 47, h, float(h), observation=True) for loc in locations for h in range(48)]
    weather_1 += [
        weather_row(loc, 47, h, 100.0 + h, observation=False) for loc in locations for h in range(48, 54)
    ]

    # Batch 2: hour 20 revised, hours 48..71 arrive, a new vintage issued at 71 whose observations
    # (hours 60..71) include hour 40 revised.
    energy_2 = dict(energy_1)
    energy_2[20] = energy_row(20, 999, ingested=72)
    energy_2.update({h: energy_row(h, 200 + h, ingested=72) for h in range(48, 72)})
    weather_2 = weather_1 + [
        weather_row("Athens", 71, h, float(h), observation=True) for h in range(60, 72)
    ]
    weather_2 += [weather_row("Athens", 71, 40, -5.0, observation=True)]
    weather_2 += [weather_row("Athens", 71, h, 200.0 + h, observation=False) for h in range(72, 78)]

    # Batch 3: the late hour 31 fills part of the gap; hours 75..80 arrive after a 72..74 gap with
    # a new neighbour column (schema evolution); vintage 47's forecast for hour 50 is revised.
    energy_3 = dict(energy_2)
    energy_3[31] = energy_row(31, 555, ingested=81)
    energy_3.update({h: energy_row(h, 200 + h, ingested=81, import_tr=7.0) for h in range(75, 81)})
    weather_3 = [
        weather_row(r["location"], 47, 50, -1.0, observation=False) | {"ingested_at": at(81)}
        if (r["location"], hour_of(r["fetched_at"]), hour_of(r["datetime"])) == ("Athens", 47, 50)
        else r
        for r in weather_2
    ]
    return [
        (list(energy_1.values()), weather_1),
        (list(energy_2.values()), weather_2),
        (list(energy_3.values()), weather_3),
    ]


def write_silver(
    spark: SparkSession, store: LocalTableStore, energy: list[dict], weather: list[dict],
) -> None:
    """Replace the silver tables with a new state (a new Delta version of each)."""
    for table, rows, schema in (
        (SILVER_ENERGY, energy, ENERGY_SCHEMA), (SILVER_WEATHER, weather, WEATHER_SCHEMA),
    ):
        (frame(spark, rows, schema).write.format("delta").mode("overwrite")
         .option("overwriteSchema", "true").save(store.identifier(table)))


# Energy rows are revised when fetched later (their last_ingested_at grows), as silver's MERGE does.
_GENERATED = SILVER_ENERGY.generated_columns  # Delta computes them on every write
_BY_FETCH = RevisionGroup(
    "energy", order=("last_ingested_at",), prefixes=("import_", "export_"),
    columns=tuple(f.name for f in ENERGY_SCHEMA.fields
                  if f.name not in (*SILVER_ENERGY.key, *_GENERATED)))


def merge_silver(spark: SparkSession, store: LocalTableStore, energy: list[dict],
                 weather: list[dict] | None = None) -> None:
    """MERGE energy (and weather) rows into the silver tables as the medallion does; a table
    without rows gets an append (`merge_revisions`)."""
    rows = frame(spark, energy, ENERGY_SCHEMA).drop(*_GENERATED)
    merge_revisions(spark, store, SILVER_ENERGY, rows, groups=(_BY_FETCH,))
    if weather is not None:
        merge_revisions(spark, store, SILVER_WEATHER, frame(spark, weather, WEATHER_SCHEMA),
                        groups=(WEATHER_GROUP,))


def unlink_replaced_files(store: LocalTableStore, table) -> int:
    """Delete the data files the table's last commit removed (what VACUUM does once they are
    old enough): the versions before it can no longer be read."""
    log = Path(store.identifier(table)) / "_delta_log"
    last = max(log.glob("*.json"))
    removed = [json.loads(line)["remove"]["path"] for line in last.read_text().splitlines()
               if "remove" in json.loads(line)]
    for path in removed:
        (Path(store.identifier(table)) / path).unlink()
    return len(removed)


def silent(_: str) -> None:
    pass


class GoldElsewhere(LocalTableStore):
    """Reads silver from another lake, keeps gold in its own."""

    def __init__(self, silver: LocalTableStore, root: Path):
        super().__init__(root)
        self.silver = silver

    def identifier(self, table) -> str:
        return self.silver.identifier(table) if table.layer == "silver" else super().identifier(table)


@pytest.fixture(scope="module")
def lakes(spark, tmp_path_factory) -> dict:
    """Lake `incremental` gets the three silver batches one gold update at a time, then a rerun
    after a MERGE that changed nothing; lake `full` builds its gold once from the final silver.
    Silver is MERGEd as the medallion does, into tables with a change data feed, and the files
    each MERGE replaced are deleted at once (as VACUUM would later): the older versions gold was
    built from cannot be read, so the updates must read only what changed. The incremental
    updates run with a session that refuses Delta's `spark.databricks.*` settings, as serverless
    does: the tests of those updates (incremental == full included) then hold there too."""
    incremental = LocalTableStore(tmp_path_factory.mktemp("incremental"))
    full = GoldElsewhere(incremental, tmp_path_factory.mktemp("full"))
    batches = silver_batches()
    updates, unlinked = [], 0
    for table in (SILVER_ENERGY, SILVER_WEATHER):
        incremental.ensure(spark, table)
    with as_on_spark_connect():
        try:
            spark.conf.set("spark.databricks.delta.commitInfo.userMetadata", "{}")
        except AnalysisException:
            settings_refused = True
        else:
            settings_refused = False
        for energy, weather in batches:
            merge_silver(spark, incremental, energy, weather)
            unlinked += sum(unlink_replaced_files(incremental, t)
                            for t in (SILVER_ENERGY, SILVER_WEATHER))
            updated = update_gold(spark, incremental, ZONE, progress=silent)
            updates.append({u.table: u for u in updated})
        merge_silver(spark, incremental, *batches[-1])  # nothing newer: a commit changing no row
    gold = (GOLD_HISTORIC, GOLD_WEATHER_FORECASTS)
    versions_before_rerun = {t: incremental.version(spark, t) for t in gold}
    rerun = {u.table: u for u in update_gold(spark, incremental, ZONE, progress=silent)}
    versions_after_rerun = {t: incremental.version(spark, t) for t in gold}
    rebuild = {u.table: u for u in update_gold(spark, full, ZONE, progress=silent)}
    return {
        "incremental": incremental, "full": full, "updates": updates, "rerun": rerun,
        "rebuild": rebuild, "versions_before_rerun": versions_before_rerun,
        "versions_after_rerun": versions_after_rerun, "settings_refused": settings_refused,
        "unlinked": unlinked,
    }


def test_each_batch_recomputes_exactly_the_affected_rows(lakes):
    # From silver's change feed alone: the files of the versions gold was built from are gone.
    assert lakes["unlinked"] > 0
    historic = [batch[GOLD_HISTORIC] for batch in lakes["updates"]]
    forecasts = [batch[GOLD_WEATHER_FORECASTS] for batch in lakes["updates"]]
    assert [u.mode for u in historic] == ["full", "incremental", "incremental"]
    # 1: hours 0..47 (gap rows included). 2: 20..44 (revised 20 and the 24 after) and the new
    # 48..71. 3: 31..55 (late hour 31) and 72..80 (gap rows 72..74, new 75..80).
    assert [u.rows for u in historic] == [48, 25 + 24, 25 + 9]
    assert [u.mode for u in forecasts] == ["full", "incremental", "incremental"]
    assert [u.rows for u in forecasts] == [6, 6, 6]  # one vintage of 6 future hours each time


def test_incremental_updates_need_no_session_setting_and_record_their_build_in_the_commit(
        spark, lakes):
    # The updates above ran where every spark.databricks.* setting is refused (serverless).
    assert lakes["settings_refused"]
    for table in (GOLD_HISTORIC, GOLD_WEATHER_FORECASTS):
        commit = lakes["incremental"].delta_table(spark, table).history(1).collect()[0]
        assert commit.operationParameters["mode"] == "Overwrite"
        assert "predicate" in commit.operationParameters  # a partial overwrite (replaceWhere)
        assert '"writer": "gridcast.gold"' in commit.userMetadata


@pytest.mark.parametrize("table", [GOLD_HISTORIC, GOLD_WEATHER_FORECASTS], ids=str)
def test_incremental_gold_equals_a_full_rebuild(spark, lakes, table):
    assert lakes["rebuild"][table].mode == "full"

    def rows(store: LocalTableStore) -> list[dict]:
        collected = [row.asDict() for row in store.read(spark, table).collect()]
        return sorted(collected, key=lambda row: tuple(row[k] for k in table.key))

    incremental, full = rows(lakes["incremental"]), rows(lakes["full"])
    assert len(incremental) == len(full) > 0
    assert incremental == full  # same columns (in any order), same values, row by row


def test_rerun_with_nothing_new_adds_no_version(lakes):
    assert {u.mode for u in lakes["rerun"].values()} == {"unchanged"}
    assert lakes["versions_after_rerun"] == lakes["versions_before_rerun"]


def test_revisions_late_hours_and_new_columns_reach_gold(spark, lakes):
    rows = {
        hour_of(r.datetime): r for r in lakes["incremental"].read(spark, GOLD_HISTORIC)
        .filter(F.col("datetime").isin([at(h) for h in (20, 21, 31, 32, 40, 73, 75)])).collect()
    }
    assert rows[20].carbon_intensity == 999 and rows[21].lag_carbon_intensity_1h == 999
    assert rows[31].carbon_intensity == 555 and rows[32].carbon_intensity is None
    assert rows[32].lag_carbon_intensity_1h == 555
    assert rows[40].athens_temp == -5.0  # the newer observation vintage
    assert rows[73].carbon_intensity is None and rows[73].lag_carbon_intensity_1h is None
    assert rows[75].import_tr == 7.0 and rows[40].import_tr is None


# --- the step ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory) -> str:
    """One MLflow store for the step tests (creating a SQLite store takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def test_features_step_without_silver_says_so_and_exits_cleanly(tmp_path: Path, tracking_uri, capsys):
    from steps import features

    overrides = [f"storage.root={tmp_path / 'lake'}", f"mlflow.tracking_uri={tracking_uri}"]
    assert features.main(overrides) == 0
    assert "silver.energy_data does not exist yet" in capsys.readouterr().out


def test_features_step_records_silver_reads_and_reports_unchanged_gold(lakes, tracking_uri, capsys):
    import mlflow

    from steps import features

    overrides = [f"storage.root={lakes['incremental'].root}", f"mlflow.tracking_uri={tracking_uri}"]
    assert features.main(overrides) == 0
    out = capsys.readouterr().out
    assert "gold.historic_data unchanged (0 rows)" in out
    assert "gold.weather_forecasts unchanged (0 rows)" in out
    run = mlflow.search_runs(
        experiment_names=["gridcast"], output_format="list", order_by=["attributes.start_time DESC"],
    )[0]
    assert run.data.tags["features.mode.gold.historic_data"] == "unchanged"
    read = {i.dataset.name for i in run.inputs.dataset_inputs}
    assert read == {"silver.energy_data", "silver.weather_forecast_data"}


def test_weather_changes_outside_the_energy_span_leave_gold_unchanged(spark, tmp_path):
    # An Electricity Maps outage while Visual Crossing keeps working: only observations beyond
    # the last energy hour are new, so no gold row is affected.
    store = LocalTableStore(tmp_path)
    energy = [energy_row(h, 100 + h, ingested=6) for h in range(6)]
    weather = [weather_row("Athens", 5, h, float(h), observation=True) for h in range(6)]
    write_silver(spark, store, energy, weather)
    update_gold(spark, store, ZONE, progress=silent)
    later = weather + [weather_row("Athens", 30, h, float(h), observation=True) for h in range(20, 31)]
    write_silver(spark, store, energy, later)
    version = store.version(spark, GOLD_HISTORIC)
    updates = {u.table: u for u in update_gold(spark, store, ZONE, progress=silent)}
    assert updates[GOLD_HISTORIC].mode == "unchanged"
    assert store.version(spark, GOLD_HISTORIC) == version


def test_a_changed_definition_rebuilds_the_zone_without_stale_columns(spark, tmp_path):
    store = LocalTableStore(tmp_path)
    energy = [energy_row(h, 100 + h, ingested=6) for h in range(6)]
    weather = [weather_row(loc, 5, h, float(h), observation=True)
               for loc in ("Athens", "Thessaloniki") for h in range(6)]
    weather += [weather_row("Thessaloniki", 5, 7, 1.0, observation=False)]
    write_silver(spark, store, energy, weather)
    update_gold(spark, store, ZONE, progress=silent)
    athens_only = dataclasses.replace(ZONE, locations=ZONE.locations[:1])
    updates = {u.table: u for u in update_gold(spark, store, athens_only, progress=silent)}
    assert {u.mode for u in updates.values()} == {"full"}
    assert "definition" in updates[GOLD_HISTORIC].detail
    for table in (GOLD_HISTORIC, GOLD_WEATHER_FORECASTS):
        columns = store.read(spark, table).columns
        assert "athens_temp" in columns and not [c for c in columns if c.startswith("thessaloniki_")]
    rerun = update_gold(spark, store, athens_only, progress=silent)
    assert {u.mode for u in rerun} == {"unchanged"}
