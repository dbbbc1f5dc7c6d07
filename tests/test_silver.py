"""Silver transforms on the API samples: flattening, typing, UTC weather, the quality gate.

Pure DataFrame -> DataFrame checks: no Delta writes. Each module fixture runs its Spark work
once and the tests assert on the collected rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import reduce
from zoneinfo import ZoneInfo

import pytest
from fixtures.silver_bronze import (
    bronze_row,
    carbon_entry,
    history,
    power_entry,
    sample,
    utc,
    weather_csv,
)
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from utc import utc_rows

from gridcast.hours import HOUR_S
from gridcast.medallion.quality import ENERGY, FAILURES, WEATHER, conform, passed
from gridcast.medallion.silver import (
    POWER_SOURCES,
    checked_carbon,
    checked_power,
    checked_weather,
    energy_updates,
    fixed_partitions,
    flatten_power_breakdown,
    parse_power_history,
    spread,
    weather_updates,
)
from gridcast.tables import (
    BRONZE_CARBON,
    BRONZE_POWER,
    BRONZE_WEATHER,
    SILVER_ENERGY,
    SILVER_WEATHER,
    WEATHER_VARIABLES,
)

FETCHED = utc("2025-03-11T10:13")


# --- energy: the samples flattened -----------------------------------------------------------------

@pytest.fixture(scope="module")
def energy(spark):
    """Both sample histories through parse, quality gate and the per-hour join: (schema, rows by hour)."""
    power = spark.createDataFrame(
        [bronze_row(BRONZE_POWER, sample("em_power_breakdown_history_GR.json"), FETCHED)], BRONZE_POWER.schema)
    carbon = spark.createDataFrame(
        [bronze_row(BRONZE_CARBON, sample("em_carbon_intensity_history_GR.json"), FETCHED)], BRONZE_CARBON.schema)
    updates = energy_updates(
        conform(checked_power(power, ["al", "bg", "it_so", "mk", "tr"]).filter(passed()), ENERGY),
        conform(checked_carbon(carbon).filter(passed()), ENERGY),
    )
    return updates.schema, {row["datetime"]: row for row in utc_rows(updates.collect())}


def test_energy_sample_gives_one_row_per_hour_with_both_sides(energy):
    _, rows = energy
    assert len(rows) == 24
    assert min(rows) == utc("2025-03-10T10:00") and max(rows) == utc("2025-03-11T09:00")
    assert all(r["carbon_intensity"] is not None and r["power_production_total"] is not None for r in rows.values())


def test_energy_columns_are_named_and_typed_as_the_contract(energy):
    schema, _ = energy
    declared = {f.name: f.dataType for f in SILVER_ENERGY.schema.fields}
    for field in schema.fields:
        if field.name in declared:
            assert field.dataType == declared[field.name], field.name
    flows = {f"{flow}_{s}" for flow in ("production", "consumption") for s in POWER_SOURCES}
    assert flows <= set(schema.names)
    assert {"production_hydro_discharge", "consumption_battery_discharge"} <= flows
    neighbours = {f"{d}_{n}" for d in ("import", "export") for n in ("al", "bg", "it_so", "mk", "tr")}
    assert neighbours <= set(schema.names)
    assert all(schema[c].dataType.simpleString() == "double" for c in neighbours)


def test_power_breakdown_values_keep_null_and_sign(energy):
    _, rows = energy
    first = rows[utc("2025-03-10T10:00")]
    assert first["production_nuclear"] is None  # no such source in GR
    assert first["consumption_nuclear"] == 36.0
    assert first["production_hydro_discharge"] == -380.0  # pumping
    assert first["production_battery_discharge"] is None
    assert (first["import_bg"], first["export_it_so"]) == (120.0, 500.0)
    assert (first["power_production_total"], first["power_export_total"]) == (8161.0, 1530.0)
    assert (first["fossil_free_percentage"], first["renewable_percentage"]) == (85.0, 85.0)


@pytest.mark.tz
def test_carbon_side_is_typed_as_served(energy):
    _, rows = energy
    first, last = rows[utc("2025-03-10T10:00")], rows[utc("2025-03-11T09:00")]
    assert (first["carbon_intensity"], first["emission_factor_type"]) == (160, "lifecycle")
    assert first["carbon_updated_at"] == utc("2025-03-10T16:13")
    assert (last["carbon_intensity"], last["carbon_is_estimated"], last["carbon_estimation_method"]) == (
        172, True, "TIME_SLICER_AVERAGE")
    assert (last["power_is_estimated"], last["power_estimation_method"]) == (True, "TIME_SLICER_AVERAGE")
    assert first["power_ingested_at"] == first["carbon_ingested_at"] == first["first_ingested_at"] == FETCHED


def test_wire_keys_become_column_names_as_silver_parses_them(spark):
    entry = power_entry(utc("2025-03-11T08:00"), utc("2025-03-11T08:40"), neighbours=("IT-SO", " GR-IS ", "AL"))
    bronze = spark.createDataFrame([bronze_row(BRONZE_POWER, history([entry]), FETCHED)], BRONZE_POWER.schema)
    row = flatten_power_breakdown(parse_power_history(bronze)).first().asDict()
    assert (row["import_it_so"], row["import_gr_is"], row["import_al"]) == ("10", "20", "30")
    assert row["production_hydro_discharge"] == "-380"  # the wire key `hydro discharge`


# --- weather: the CSV, UTC, daylight saving ---------------------------------------------------------

ATHENS = ZoneInfo("Europe/Athens")
DST_DAYS = {"2025-03-30": 23, "2025-10-26": 25}  # last Sundays of March and October: local hours


def _dst_day(day: str) -> tuple[datetime, datetime]:
    """First UTC hour (2 h before local midnight) and issue time of a 30-hour CSV around `day`."""
    midnight = datetime.fromisoformat(f"{day}T00:00").replace(tzinfo=ATHENS).astimezone(UTC)
    start = midnight - timedelta(hours=2)
    return start, start + timedelta(hours=30)


MISSING = ("windgust", "solarradiation")  # weather variables a payload's header may lack


def _without_columns(text: str, names: Sequence[str]) -> str:
    """The CSV `text` without the columns headed `names`, quoted as Visual Crossing quotes."""
    table = list(csv.reader(io.StringIO(text)))
    keep = [i for i, name in enumerate(table[0]) if name not in names]
    assert len(keep) == len(table[0]) - len(names), "a column to drop is not in the sample"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([[row[i] for i in keep] for row in table])
    return out.getvalue()


@pytest.fixture(scope="module")
def weather(spark):
    """Silver weather rows by location: the CSV sample (Athens), its variant with a `source`
    column (Patras), and 30 hours around each daylight-saving day (location = the day). Run with
    a session time zone that has daylight saving, as a Databricks workspace may."""
    rows = [
        bronze_row(BRONZE_WEATHER, sample("vc_timeline_athens_hours.csv"), FETCHED, location="Athens"),
        bronze_row(BRONZE_WEATHER, sample("vc_timeline_athens_hours_with_source.csv"), FETCHED, location="Patras"),
        bronze_row(BRONZE_WEATHER, _without_columns(sample("vc_timeline_athens_hours.csv"), MISSING),
                   FETCHED, location="Corinth"),
    ]
    for day in DST_DAYS:
        start, issued = _dst_day(day)
        rows.append(bronze_row(BRONZE_WEATHER, weather_csv(start, 30, issued), issued, location=day))
    previous = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "Europe/Athens")
    try:
        bronze = spark.createDataFrame(rows, BRONZE_WEATHER.schema)
        updates = weather_updates(conform(checked_weather(bronze).filter(passed()), WEATHER))
        # unix seconds: the instants themselves, whatever the session or Python time zone
        collected = updates.withColumn("epoch", F.unix_seconds("datetime")).orderBy("datetime").collect()
    finally:
        spark.conf.set("spark.sql.session.timeZone", previous)
    by_location: dict[str, list[dict]] = {}
    for row in utc_rows(collected):
        by_location.setdefault(row["location"], []).append(row)
    return updates.schema, by_location


def test_weather_schema_is_the_declared_one(weather):
    schema, _ = weather
    declared = [(f.name, f.dataType) for f in SILVER_WEATHER.schema.fields]
    assert [(f.name, f.dataType) for f in schema.fields if f.name != "epoch"] == declared


def test_weather_csv_quoted_commas_and_empty_fields(weather):
    _, rows = weather
    athens = rows["Athens"]
    assert len(athens) == 12
    first, rainy = athens[0], athens[9]
    assert first["stations"] == "LGAV,LGEL,16716099999,remote"
    assert (first["temp"], first["humidity"], first["sealevelpressure"]) == (8.6, 79.3, 1012.4)
    assert first["preciptype"] is None and first["severerisk"] is None  # empty field = null
    assert (rainy["conditions"], rainy["preciptype"], rainy["icon"]) == ("Rain, Partially cloudy", "rain", "rain")


@pytest.mark.tz
def test_weather_times_are_utc(weather):
    _, rows = weather
    first = rows["Athens"][0]
    assert first["epoch"] == int(utc("2025-03-11T06:00").timestamp())
    assert first["datetime"] == utc("2025-03-11T06:00")


def test_weather_marks_observations_and_forecast_offsets(weather):
    _, rows = weather
    athens = rows["Athens"]
    assert len({r["fetched_at"] for r in athens}) == 1
    assert [r["forecast_offset_h"] for r in athens] == list(range(-4, 8))  # issued 10:13 -> hour 10:00
    assert [r["is_observation"] for r in athens] == [True] * 5 + [False] * 7
    # an empty `stations` field marks the forecast rows: consistent with the issue hour
    assert all((r["stations"] is not None) == r["is_observation"] for r in athens)


def test_weather_columns_are_found_by_header_name(weather):
    _, rows = weather
    assert [r["temp"] for r in rows["Patras"]] == [r["temp"] for r in rows["Athens"]]
    assert [r["stations"] for r in rows["Patras"]] == [r["stations"] for r in rows["Athens"]]


def test_weather_variables_absent_from_the_header_are_null_and_the_rest_are_read(weather):
    _, rows = weather
    corinth, athens = rows["Corinth"], rows["Athens"]
    assert len(corinth) == len(athens) == 12
    assert all(r[name] is None for r in corinth for name in MISSING)
    assert any(r[name] is not None for r in athens for name in MISSING)  # the sample has them
    present = [name for name in WEATHER_VARIABLES if name not in MISSING]
    assert [[r[n] for n in present] for r in corinth] == [[r[n] for n in present] for r in athens]


def test_payloads_of_one_file_are_spread_over_every_shuffle_partition(spark):
    start = utc("2025-03-11T00:00")
    rows = [bronze_row(BRONZE_WEATHER, weather_csv(start + timedelta(hours=i), 2, start), start)
            for i in range(40)]
    one_file = spark.createDataFrame(rows, BRONZE_WEATHER.schema).coalesce(1)
    per_partition = sorted(row["count"] for row in spread(one_file).groupBy(F.spark_partition_id()).count().collect())
    partitions = int(spark.conf.get("spark.sql.shuffle.partitions"))
    assert partitions > 1 and len(per_partition) == partitions
    assert sum(per_partition) == len(rows) and per_partition[0] >= len(rows) // (2 * partitions)


@pytest.mark.parametrize(("setting", "expected"), [("4", 4), ("auto", None), (None, None), ("0", None)])
def test_spread_leaves_the_partition_count_to_spark_unless_the_session_fixes_one(setting, expected):
    assert fixed_partitions(setting) == expected


@pytest.mark.tz
@pytest.mark.parametrize("day", DST_DAYS)
def test_weather_loses_or_duplicates_no_hour_across_daylight_saving(weather, day):
    _, rows = weather
    start, _ = _dst_day(day)
    first = int(start.timestamp())
    assert [r["epoch"] for r in rows[day]] == [first + HOUR_S * i for i in range(30)]
    local_dates = [datetime.fromtimestamp(r["epoch"], ATHENS).date().isoformat() for r in rows[day]]
    assert local_dates.count(day) == DST_DAYS[day]
    assert [r["forecast_offset_h"] for r in rows[day]] == list(range(-30, 0))


# --- the quality gate --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def verdicts(spark):
    """Failing rows of bad payloads and rows, per bronze table: {table: [(record, checks, messages)]}."""
    hour, updated = utc("2025-03-11T08:00"), utc("2025-03-11T08:40")
    power = spark.createDataFrame([
        bronze_row(BRONZE_POWER, '{"zone": "GR", "history": [{"datetime": "2025-', FETCHED),
        bronze_row(BRONZE_POWER, '{"status": "error", "message": "Internal server error"}', FETCHED, status=500,
                   error="Electricity Maps power-breakdown/history failed after 4 attempts: HTTP 500"),
        bronze_row(BRONZE_POWER, None, FETCHED, status=None, error="timed out after 10 s"),
        bronze_row(BRONZE_POWER, history([
            power_entry(hour, updated, renewablePercentage=120, fossilFreePercentage="lots"),
            power_entry(hour + timedelta(hours=1), updated),
        ]), FETCHED),
    ], BRONZE_POWER.schema)
    carbon = spark.createDataFrame([
        bronze_row(BRONZE_CARBON, history([
            carbon_entry(hour, updated, 2500),
            carbon_entry(hour + timedelta(hours=1), updated, 300, datetime="2025-03-11T09:30:00.000Z"),
            carbon_entry(hour + timedelta(hours=2), updated, 300, emissionFactorType="marginal"),
            carbon_entry(hour + timedelta(hours=3), updated, 300),
            carbon_entry(hour + timedelta(hours=3), updated, 301),
            carbon_entry(hour + timedelta(hours=4), updated, 250),
        ]), FETCHED),
        bronze_row(BRONZE_CARBON, sample("em_error_404_nodata.json"), FETCHED, status=404),
        bronze_row(BRONZE_CARBON, sample("em_error_401.json"), FETCHED, status=401),
    ], BRONZE_CARBON.schema)
    good_csv = sample("vc_timeline_athens_hours.csv")
    weather = spark.createDataFrame([
        bronze_row(BRONZE_WEATHER, good_csv[: good_csv.index("rain,0.0,0.0,27.4") + 12], FETCHED),
        bronze_row(BRONZE_WEATHER, good_csv.replace("\n\"Athens,Greece\",2025-03-11T06:00:00,8.6,6.8,4.5,79.3",
                                                     "\n\"Athens,Greece\",2025-03-11T06:00:00,8.6,6.8,4.5,179.3"),
                   FETCHED, location="Patras"),
        bronze_row(BRONZE_WEATHER, sample("vc_error_429.txt"), FETCHED, status=429, location="Larissa"),
        bronze_row(BRONZE_WEATHER, sample("vc_error_400.txt"), FETCHED, status=400, location="Volos"),
        bronze_row(BRONZE_WEATHER, "Bad API Request:Invalid location parameter value.", FETCHED, location="Lamia"),
        bronze_row(BRONZE_WEATHER, good_csv, FETCHED, location="Kozani", params={"unitGroup": "metric"}),
    ], BRONZE_WEATHER.schema)
    checked = [checked_power(power), checked_carbon(carbon), checked_weather(weather)]
    verdicts = reduce(DataFrame.unionByName, [frame.select(
        "_source_table", "_record", passed().alias("passed"),
        F.transform(FAILURES, lambda f: f["check"]).alias("checks"),
        F.transform(FAILURES, lambda f: f["message"]).alias("messages"),
    ) for frame in checked]).collect()
    return {
        table: ([(r["_record"], r["checks"], r["messages"]) for r in verdicts
                 if r["_source_table"] == table.qualified_name and not r["passed"]],
                sum(1 for r in verdicts if r["_source_table"] == table.qualified_name and r["passed"]))
        for table in (BRONZE_POWER, BRONZE_CARBON, BRONZE_WEATHER)
    }


def _find(failures, fragment):
    matches = [f for f in failures if fragment in (f[0] or "")]
    assert len(matches) == 1, f"{fragment!r} in {[f[0][:60] for f in failures]}"
    return matches[0]


def test_unparseable_power_payloads_fail_once_each_with_their_reason(verdicts):
    failures, passing = verdicts[BRONZE_POWER]
    assert _find(failures, '"history": [{"datetime": "2025-')[1] == ["json"]
    http_500 = _find(failures, "Internal server error")
    assert http_500[1] == ["http_status"] and http_500[2][0].startswith("HTTP 500: ")
    timeout = _find(failures, "timed out")
    assert timeout[2] == ["no response: timed out after 10 s"]
    assert passing == 1  # the good hour of the mixed payload still flows


def test_a_bad_row_carries_every_reason(verdicts):
    failures, _ = verdicts[BRONZE_POWER]
    record, checks, messages = _find(failures, '"renewablePercentage":120')
    assert sorted(checks) == ["range:renewable_percentage", "type:fossil_free_percentage"]
    assert "renewable_percentage = '120' outside [0, 100]" in messages
    assert "fossil_free_percentage = 'lots' is not a valid double" in messages


def test_carbon_expectations_range_hour_factor_uniqueness(verdicts):
    failures, passing = verdicts[BRONZE_CARBON]
    assert _find(failures, '"carbonIntensity":2500')[1] == ["range:carbon_intensity"]
    assert _find(failures, "09:30:00.000Z")[1] == ["hour_aligned:datetime"]
    assert _find(failures, "marginal")[1] == ["one_of:emission_factor_type"]
    duplicated = [f for f in failures if f[1] == ["unique:zone,datetime"]]
    assert len(duplicated) == 2  # both copies of an hour repeated inside one response
    assert _find(failures, "No recent data")[2][0].startswith("HTTP 404: ")
    assert _find(failures, "Invalid auth-token")[2][0].startswith("HTTP 401: ")
    assert passing == 1


def test_weather_truncated_csv_and_error_bodies_fail(verdicts):
    failures, passing = verdicts[BRONZE_WEATHER]
    truncated = [f for f in failures if f[1] == ["csv_row"]]
    assert len(truncated) == 1 and "fields, the header 24" in truncated[0][2][0]
    assert _find(failures, "179.3")[1] == ["range:humidity"]
    assert _find(failures, "Maximum daily cost")[2][0] == "HTTP 429: Maximum daily cost exceeded"
    bad_request = [f for f in failures if "Bad API Request" in f[0]]
    assert sorted(f[1][0] for f in bad_request) == ["csv_header", "http_status"]  # as a 200 body too
    assert [f for f in failures if f[1] == ["timezone"]], "a payload not requested in UTC is refused"
    # rows before the cut, and the other rows of the payload with one bad value, flow on
    assert passing == 9 + 11


def test_negative_output_passes_for_storage_only(spark):
    hour, updated = utc("2025-03-11T08:00"), utc("2025-03-11T08:40")
    pumping = power_entry(hour, updated)  # the sample's hydro discharge is -380 (pumping)
    negative_solar = power_entry(hour + timedelta(hours=1), updated)
    negative_solar["powerProductionBreakdown"] = {**negative_solar["powerProductionBreakdown"], "solar": -5}
    bronze = spark.createDataFrame([bronze_row(BRONZE_POWER, history([pumping, negative_solar]), FETCHED)],
                                   BRONZE_POWER.schema)
    checks = {row["datetime"]: row["checks"] for row in checked_power(bronze).select(
        "datetime", F.transform(FAILURES, lambda f: f["check"]).alias("checks")).collect()}
    assert checks == {"2025-03-11T08:00:00.000Z": [], "2025-03-11T09:00:00.000Z": ["range:production_solar"]}


def test_two_zones_with_a_location_of_the_same_name_keep_their_own_weather(spark):
    csv = weather_csv(utc("2025-03-11T08:00"), 3, FETCHED)
    bronze = spark.createDataFrame([
        bronze_row(BRONZE_WEATHER, csv, FETCHED, zone="GR", location="Athens"),
        bronze_row(BRONZE_WEATHER, weather_csv(utc("2025-03-11T08:00"), 3, FETCHED, temp0=20.0), FETCHED,
                   zone="US-GA", location="Athens"),
    ], BRONZE_WEATHER.schema)
    rows = weather_updates(conform(checked_weather(bronze).filter(passed()), WEATHER)).collect()
    assert sorted((r["zone"], r["feelslike"]) for r in rows) == [("GR", 10.0)] * 3 + [("US-GA", 20.0)] * 3


@pytest.mark.tz
def test_two_fetches_in_one_hour_stay_two_vintages_and_an_archived_forecast_is_its_basis_time(spark):
    csv = weather_csv(utc("2025-03-11T08:00"), 6, utc("2025-03-11T10:00"))
    basis = utc("2025-03-01T00:00")
    archived = {"unitGroup": "metric", "include": "hours", "contentType": "csv", "timezone": "Z",
                "forecastBasisDate": "2025-03-01", "forecast_basis": "2025-03-01T00:00:00Z"}
    bronze = spark.createDataFrame([
        bronze_row(BRONZE_WEATHER, csv, utc("2025-03-11T10:13")),
        bronze_row(BRONZE_WEATHER, csv, utc("2025-03-11T10:43")),
        bronze_row(BRONZE_WEATHER, csv, utc("2025-03-11T10:50"), location="Patras", params=archived),
    ], BRONZE_WEATHER.schema)
    rows = utc_rows(weather_updates(conform(checked_weather(bronze).filter(passed()), WEATHER)).collect())
    vintages = {(r["location"], r["fetched_at"]) for r in rows}
    assert vintages == {("Athens", utc("2025-03-11T10:13")), ("Athens", utc("2025-03-11T10:43")),
                        ("Patras", basis)}
    first = sorted((r for r in rows if r["fetched_at"] == utc("2025-03-11T10:13")), key=lambda r: r["datetime"])
    assert [r["forecast_offset_h"] for r in first] == [-2, -1, 0, 1, 2, 3]  # 11:00 is 1 h after 10:13
    assert [r["origin"] for r in first] == ["observation"] * 3 + ["forecast"] * 3
    assert {r["forecast_offset_h"] for r in rows if r["location"] == "Patras"} == set(range(248, 254))


def test_concurrent_writes_all_run_to_their_end_before_the_first_failure_is_raised(spark):
    import threading

    from gridcast.medallion.silver import write_concurrently

    together = threading.Barrier(3, timeout=10)  # broken unless three writes run at once
    done = []

    def write(name, error=None):
        def body():
            if error:
                raise error
            together.wait()
            done.append(name)
        return body

    with pytest.raises(ValueError, match="energy"):
        write_concurrently(spark, [write("revisions"), write("energy", ValueError("energy")),
                            write("weather"), write("quarantine")])
    assert sorted(done) == ["quarantine", "revisions", "weather"]
