"""Backfill: input checks (no Spark), then real replay server + Spark + Delta end to end.

Bronze and silver are read back with `deltalake` (delta-rs), which keeps Spark actions out of the
assertions and compares tables as any Delta reader sees them.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import deltalake
import pandas as pd
import pytest

from gridcast.backfill import (
    BackfillCostError,
    BackfillInputError,
    backfill_range,
    check_cost,
    plan_backfill,
    portal_chunks,
    read_portal_file,
    read_weather_file,
    run_backfill,
)
from gridcast.config import load_config
from gridcast.ingest import BronzeBuffer, Request, bronze_row, ingest, stored_answers
from gridcast.replay import ReplayServer
from gridcast.sources import SourceSession
from gridcast.sources.electricitymaps import ElectricityMapsClient
from gridcast.sources.http import ApiResponse, AuthError, HttpClient, RetryPolicy
from gridcast.sources.visualcrossing import VisualCrossingClient
from gridcast.storage import LocalTableStore
from gridcast.tables import BRONZE_CARBON, BRONZE_TABLES
from replay_fixtures import build_tiny_recording
from utc import utc

START = utc(2025, 3, 10)  # the tiny recording's first hour
OLD_HEADER = ("Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO\u2082eq/kWh (direct),"
              "Carbon Intensity gCO\u2082eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,"
              "Data Source,Data Estimated,Data Estimation Method")
NEW_HEADER = ("Datetime (UTC),Country,Zone name,Zone id,Carbon intensity gCO\u2082eq/kWh (direct),"
              "Carbon intensity gCO\u2082eq/kWh (Life cycle),Carbon-free energy percentage (CFE%),"
              "Renewable energy percentage (RE%),Data source,Data estimated,Data estimation method")


@pytest.fixture(scope="module")
def cfg():
    return load_config([])


def write_portal(path: Path, start: datetime, hours: int, *, header: str = OLD_HEADER, zone: str = "GR",
                 rows: dict[int, str] | None = None) -> Path:
    """A data-portal CSV; `rows` replaces data row i (0-based) by the given line."""
    lines = [header]
    for i in range(hours):
        stamp = (start + timedelta(hours=i)).strftime("%Y-%m-%d %H:%M:%S")
        estimated = "true" if i == hours - 1 else "false"
        lines.append(f"{stamp},Greece,Greece,{zone},{300 + i}.4,{400 + i}.6,60.5,40.25,entsoe.eu,{estimated},"
                     + ("TIME_SLICER_AVERAGE" if i == hours - 1 else ""))
    for i, line in (rows or {}).items():
        lines[i + 1] = line
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_weather(path: Path, start: datetime, hours: int, *, header: str = "datetime,location,temp,humidity",
                  rows: dict[int, str] | None = None) -> Path:
    lines = [header]
    for location in ("Athens", "Patras"):
        lines += [f"{start + timedelta(hours=i):%Y-%m-%dT%H:%M:%SZ},{location},{10 + i / 10:.1f},{50 + i % 7}"
                  for i in range(hours)]
    for i, line in (rows or {}).items():
        lines[i + 1] = line
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- input checks -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("zone", "rows", "match"), [
    ("ES", {}, "holds zone 'ES', the backfill is for zone 'GR'"),
    ("GR", {3: "2025-03-10 03:00:00,Spain,Spain,ES,1,2,3,4,x,false,"}, "several zones"),
    ("GR", {2: "2025-03-10 02:30:00,Greece,Greece,GR,1,2,3,4,x,false,"},
     r"row 4, column 'Datetime \(UTC\)': 2025-03-10T02:30:00Z is not on the hour"),
    ("GR", {2: "2025-03-10 01:00:00,Greece,Greece,GR,1,2,3,4,x,false,"},
     r"row 4, column 'Datetime \(UTC\)': hour 2025-03-10T01:00Z repeats row 3"),
    ("GR", {4: "2025-03-10 04:00:00,Greece,Greece,GR,1,2500,3,4,x,false,"},
     r"row 6, column 'Carbon Intensity gCO₂eq/kWh \(LCA\)': 2500 is outside \[0, 2000\]"),
    ("GR", {1: "2025-03-10 01:00:00,Greece,Greece,GR,1,2,130,4,x,false,"},
     r"row 3, column 'Low Carbon Percentage': 130 is outside \[0, 100\]"),
], ids=["wrong-zone", "mixed-zones", "not-hourly", "duplicate-hour", "intensity-range", "percentage-range"])
def test_a_bad_portal_csv_names_file_row_and_column(tmp_path, zone, rows, match):
    path = write_portal(tmp_path / f"{zone}_2025_hourly.csv", START, 8, zone=zone, rows=rows)
    with pytest.raises(BackfillInputError, match=match):
        read_portal_file(path, "GR")


def test_a_portal_csv_without_intensity_is_refused(tmp_path):
    path = tmp_path / "GR_2025_hourly.csv"
    path.write_text("Datetime (UTC),Zone Id,Renewable Percentage\n2025-03-10 00:00:00,GR,40\n", encoding="utf-8")
    with pytest.raises(BackfillInputError, match="no carbon-intensity column"):
        read_portal_file(path, "GR")


@pytest.mark.parametrize(("header", "rows", "match"), [
    ("datetime,location,temp,wind_kph", {}, "unknown column.s. wind_kph; use Visual Crossing's names"),
    ("datetime,temp", {}, r"missing column\(s\) location"),
    (None, {1: "2025-03-10T01:00:00Z,Berlin,10,50"},
     "row 3, column 'location': 'Berlin' is not a location of zone GR"),
    (None, {2: "2025-03-10T02:15:00Z,Athens,10,50"}, "row 4, column 'datetime': 2025-03-10T02:15:00Z is not on the hour"),
    (None, {2: "2025-03-10T01:00:00Z,Athens,10,50"}, "row 4, column 'datetime': hour 2025-03-10T01:00Z repeats row 3"),
    (None, {3: "2025-03-10T05:00:00+02:00,Athens,10,50"}, "row 5, column 'datetime'.*not an ISO 8601 UTC time"),
    (None, {3: "yesterday,Athens,10,50"}, "row 5, column 'datetime': 'yesterday' is not an ISO 8601 UTC time"),
    (None, {5: "2025-03-10T05:00:00Z,Athens,10,120"}, r"row 7, column 'humidity': 120 is outside \[0, 100\]"),
    (None, {5: "2025-03-10T05:00:00Z,Athens,warm,50"}, "row 7, column 'temp': 'warm' is not a number"),
], ids=["unknown-column", "missing-column", "wrong-location", "not-hourly", "duplicate-hour", "not-utc",
        "unparsable-time", "out-of-range", "not-a-number"])
def test_a_bad_weather_csv_names_file_row_and_column(tmp_path, cfg, header, rows, match):
    path = write_weather(tmp_path / "weather.csv", START, 8, rows=rows,
                         **({"header": header} if header else {}))
    with pytest.raises(BackfillInputError, match=f"{path}: {match}"):
        read_weather_file(path, cfg.zone)


def test_the_same_hour_at_two_locations_is_not_a_duplicate(tmp_path, cfg):
    rows = read_weather_file(write_weather(tmp_path / "weather.csv", START, 4), cfg.zone)
    assert rows.groupby("location").size().to_dict() == {"Athens": 4, "Patras": 4}


def test_given_only_files_the_range_is_theirs_and_nothing_is_fetched(tmp_path, cfg):
    settings = dataclasses.replace(cfg.backfill, portal_csv=(write_portal(tmp_path / "GR_2025_hourly.csv", START, 30),))
    plan = plan_backfill(cfg.zone, settings, default_end=utc(2025, 12, 24), horizon_h=24)
    assert (plan.range.start, plan.range.end, plan.range.fetch) == (START, START + timedelta(hours=30), False)
    assert {c.origin for c in plan.chunks} == {"portal"} and plan.clock == plan.range.end


def test_without_start_the_range_is_history_days_before_the_end(cfg):
    settings = dataclasses.replace(cfg.backfill, history_days=180)
    span = backfill_range(settings, default_end=utc(2025, 12, 24))
    assert (span.start, span.end, span.fetch) == (utc(2025, 6, 27), utc(2025, 12, 24), True)


def test_past_range_chunks_never_exceed_240_hours(cfg):
    settings = dataclasses.replace(cfg.backfill, start=START, end=START + timedelta(days=25), weather=False)
    plan = plan_backfill(cfg.zone, settings, default_end=START, horizon_h=24)
    spans = [(c.last - c.first) for c in plan.chunks]
    assert len(plan.chunks) == 2 * 3 and max(spans) == timedelta(hours=240) and sum(spans, timedelta()) == timedelta(days=50)


@pytest.mark.parametrize(("confirm", "budget", "billed", "fails"), [
    (False, None, True, True), (False, 1000, True, True), (False, 5000, True, False), (True, None, True, False),
    (False, None, False, False),
], ids=["live-unconfirmed", "live-over-budget", "live-within-budget", "live-confirmed", "replay"])
def test_a_live_backfill_needs_its_record_cost_confirmed(cfg, confirm, budget, billed, fails):
    settings = dataclasses.replace(cfg.backfill, confirm_cost=confirm, max_records=budget)
    if fails:
        with pytest.raises(BackfillCostError, match="costs about 2160 Visual Crossing records"):
            check_cost(2160, settings, billed=billed)
    else:
        check_cost(2160, settings, billed=billed)


@pytest.mark.parametrize("header", [OLD_HEADER, NEW_HEADER, NEW_HEADER.upper()], ids=["old", "new", "upper"])
def test_portal_payloads_are_past_range_shaped_with_percentages_on_the_power_side(tmp_path, header):
    chunks = portal_chunks(read_portal_file(write_portal(tmp_path / "GR_2025_hourly.csv", START, 300,
                                                         header=header), "GR"), 240)
    carbon = [c for c in chunks if c.table.name == "carbon_data"]
    power = [c for c in chunks if c.table.name == "power_data"]
    assert [len(json.loads(c.payload.body)["data"]) for c in carbon] == [240, 60]
    entry = json.loads(carbon[1].payload.body)["data"][-1]
    assert entry == {"zone": "GR", "datetime": "2025-03-22T11:00:00.000Z", "updatedAt": None, "createdAt": None,
                     "isEstimated": True, "estimationMethod": "TIME_SLICER_AVERAGE", "carbonIntensity": 700,
                     "emissionFactorType": "lifecycle", "carbonIntensityDirect": 599.4}
    percent = json.loads(power[0].payload.body)["data"][0]
    assert (percent["fossilFreePercentage"], percent["renewablePercentage"], percent["powerProductionBreakdown"]) == (
        60.5, 40.25, None)
    assert carbon[0].payload.endpoint == "portal-csv" and carbon[0].payload.params["file"] == "GR_2025_hourly.csv"


def test_an_invalid_file_stops_the_step_before_anything_is_written(tmp_path, isolated, capsys):
    from steps import backfill as backfill_step

    good = write_portal(tmp_path / "GR_2025_hourly.csv", START, 10)
    bad = write_weather(tmp_path / "weather.csv", START, 4, rows={2: "2025-03-10T02:00:00Z,Athens,10,-5"})
    code = backfill_step.main([*isolated, f"backfill.portal_csv=[{good}]", f"backfill.weather_csv=[{bad}]"])
    assert code == 1
    assert "row 4, column 'humidity': -5 is outside [0, 100]" in capsys.readouterr().err
    assert not (tmp_path / "lake" / "bronze").exists()


# --- end to end: replay server, Spark, Delta ----------------------------------------------------------

@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return build_tiny_recording(tmp_path_factory.mktemp("recording"), start=START, hours=24 * 6)


def replay_source(server: ReplayServer) -> SourceSession:
    http = HttpClient(RetryPolicy(timeout_s=10, max_retries=0, backoff_s=0))
    return SourceSession("replay", ElectricityMapsClient(server.electricitymaps_url, None, http),
                         VisualCrossingClient(server.visualcrossing_url, None, http), [], server.set_now)


def bronze(lake: Path) -> dict[str, pd.DataFrame]:
    tables = {}
    for table in BRONZE_TABLES:
        if not (lake / "bronze" / table.name).exists():
            continue
        frame = deltalake.DeltaTable(str(lake / "bronze" / table.name)).to_pandas()
        tables[table.name] = frame.sort_values(list(frame.columns)[:5] + ["request_params"]).reset_index(drop=True)
    return tables


def test_an_interrupted_backfill_resumed_equals_an_uninterrupted_one(spark, recording, cfg, tmp_path):
    end = START + timedelta(days=5)
    settings = dataclasses.replace(cfg.backfill, start=START + timedelta(days=1), end=end, chunk_hours=24)
    plan = plan_backfill(cfg.zone, settings, default_end=end, horizon_h=24)
    assert len(plan.chunks) == 2 * 4 + 3 * (1 + 4)

    def backfill(lake: Path, server: ReplayServer):
        return run_backfill(spark, LocalTableStore(lake), replay_source(server), cfg.zone, plan, run_id="run",
                            concurrency=1, flush_every_chunks=5, progress_bar=False)

    with ReplayServer(recording.path, now=START) as server:
        whole = backfill(tmp_path / "whole", server)
        # The 12th request (power past-range, its 4th day) is refused: the run stops there.
        server.fail_next("power-breakdown/past-range?zone=GR&start=2025-03-14", "status", status=401)
        with pytest.raises(AuthError, match="past-range needs a paid Electricity Maps plan"):
            backfill(tmp_path / "resumed", server)
        interrupted = bronze(tmp_path / "resumed")
        resumed = backfill(tmp_path / "resumed", server)
        again = backfill(tmp_path / "resumed", server)
    assert whole.fetched == len(plan.chunks) and whole.failures == []
    assert 0 < sum(len(t) for t in interrupted.values()) < len(plan.chunks)
    assert resumed.skipped == sum(len(t) for t in interrupted.values())
    assert resumed.fetched == len(plan.chunks) - resumed.skipped
    assert (again.skipped, again.fetched, again.commits) == (len(plan.chunks), 0, 0)
    expected, actual = bronze(tmp_path / "whole"), bronze(tmp_path / "resumed")
    for name in expected:
        pd.testing.assert_frame_equal(actual[name], expected[name])
    weather = expected["weather_forecast_data"]
    assert weather["origin"].value_counts().to_dict() == {"archived-forecast": 12, "weather-history": 3}
    basis = weather.loc[weather["origin"] == "archived-forecast", "request_params"].map(json.loads)
    assert sorted({p["forecast_basis"] for p in basis}) == [f"2025-03-{d}T00:00:00Z" for d in (11, 12, 13, 14)]
    assert (expected["carbon_data"]["origin"] == "past-range").all()
    assert (expected["carbon_data"]["ingested_at"] == pd.Timestamp(end)).all()

    # The scheduled ingest starting at the backfill's clock still fetches its own first run.
    with ReplayServer(recording.path, now=end) as server:
        source = dataclasses.replace(replay_source(server), run_times=[end])
        summary = ingest(spark, LocalTableStore(tmp_path / "whole"), source, cfg.zone, run_id="ingest",
                         progress=lambda _: None)
    assert summary.skipped == 0 and sum(summary.rows.values()) == 2 + len(cfg.zone.locations)


def test_backfilled_files_and_fetches_reach_silver_as_known_when_published(spark, recording, cfg, tmp_path):
    from gridcast.medallion.silver import refresh_silver

    lake = tmp_path / "lake"
    store = LocalTableStore(lake)
    # An old bronze table (before the origin column): its rows must keep working.
    old_schema = BRONZE_CARBON.schema
    old_schema = type(old_schema)([f for f in old_schema.fields if f.name != "origin"])
    old = ApiResponse("carbon-intensity/history", {"zone": "GR"}, 404, '{"status": "error"}', attempts=1)
    row = bronze_row("GR", Request(BRONZE_CARBON), old, source="replay", ingested_at=START, run_id="old", failure=None)
    store.append(spark.createDataFrame([row[:-1]], schema=old_schema), BRONZE_CARBON)

    end = START + timedelta(days=5)
    portal = write_portal(tmp_path / "GR_2025_hourly.csv", START, 24, header=NEW_HEADER)
    weather = write_weather(tmp_path / "weather.csv", START, 24)
    settings = dataclasses.replace(cfg.backfill, start=end - timedelta(days=1), end=end,
                                   portal_csv=(portal,), weather_csv=(weather,))
    plan = plan_backfill(cfg.zone, settings, default_end=end, horizon_h=24)
    with ReplayServer(recording.path, now=START) as server:
        run_backfill(spark, store, replay_source(server), cfg.zone, plan, run_id="backfill", progress_bar=False)
    carbon = deltalake.DeltaTable(str(lake / "bronze" / "carbon_data")).to_pandas()
    assert carbon["origin"].isna().sum() == 1  # the old row, under the evolved schema
    assert stored_answers(spark, store, "GR", [START]) != {}  # still read as a scheduled fetch

    refresh_silver(spark, store, str(tmp_path / "checkpoints"), run_id="medallion",
                   publication_delay=timedelta(hours=3), progress=lambda _: None)
    energy = deltalake.DeltaTable(str(lake / "silver" / "energy_data")).to_pandas().set_index("datetime")
    first = energy.loc[pd.Timestamp(START)]
    assert (first["carbon_origin"], first["carbon_intensity"], first["renewable_percentage"]) == ("portal", 401, 40.25)
    assert first["carbon_updated_at"] == pd.Timestamp(START + timedelta(hours=3))
    assert (energy.loc[energy.index >= pd.Timestamp(end - timedelta(days=1)), "carbon_origin"] == "past-range").all()
    revisions = deltalake.DeltaTable(str(lake / "silver" / "energy_revisions")).to_pandas()
    portal_rows = revisions[revisions["origin"] == "portal"]
    assert len(portal_rows) == 2 * 24
    assert (portal_rows["available_at"] - portal_rows["datetime"] == pd.Timedelta(hours=3)).all()
    silver_weather = deltalake.DeltaTable(str(lake / "silver" / "weather_forecast_data")).to_pandas()
    user = silver_weather[silver_weather["origin"] == "user-csv"]
    assert len(user) == 2 * 24 and user["is_observation"].all() and set(user["location"]) == {"Athens", "Patras"}
    assert user.set_index(["location", "datetime"]).loc[("Athens", pd.Timestamp(START + timedelta(hours=5))), "temp"] == 10.5
    archived = silver_weather[(silver_weather["fetched_at"] == pd.Timestamp(end - timedelta(days=1)))]
    assert len(archived) > 0 and (archived["origin"] == "forecast").any()
