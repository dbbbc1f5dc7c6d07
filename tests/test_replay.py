"""The replay server over real HTTP: both wire formats, the simulated clock, auth, faults, and
the recording loader's validation. Expectations are derived from the tiny recording's frames."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
import requests

from gridcast.config import ConfigError
from gridcast.hours import floor_hour
from gridcast.replay import (
    COST_HEADER,
    ENERGY_SOURCES,
    FaultSettings,
    Recording,
    RecordingError,
    ReplayServer,
    load_recording,
    read_portal_csv,
    write_recording,
)
from replay_fixtures import (
    ESTIMATION_METHOD,
    NEIGHBOURS,
    TinyRecording,
    build_tiny_recording,
)

UTC = timezone.utc
NOW = datetime(2025, 3, 11, 9, 30, tzinfo=UTC)  # inside the tiny recording's last day
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CARBON_KEYS = ["zone", "carbonIntensity", "datetime", "updatedAt", "createdAt",
               "emissionFactorType", "isEstimated", "estimationMethod", "temporalGranularity"]
POWER_KEYS = ["zone", "datetime", "updatedAt", "createdAt", "powerConsumptionBreakdown",
              "powerProductionBreakdown", "powerImportBreakdown", "powerExportBreakdown",
              "fossilFreePercentage", "renewablePercentage", "powerConsumptionTotal",
              "powerProductionTotal", "powerImportTotal", "powerExportTotal", "isEstimated",
              "estimationMethod", "temporalGranularity"]
VC_HEADER = ("name,datetime,temp,feelslike,dew,humidity,precip,precipprob,preciptype,snow,"
             "snowdepth,windgust,windspeed,winddir,sealevelpressure,cloudcover,visibility,"
             "solarradiation,solarenergy,uvindex,severerisk,conditions,icon,stations")
EM_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
VC_PARAMS = {"unitGroup": "metric", "include": "hours", "contentType": "csv", "timezone": "Z"}


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyRecording:
    return build_tiny_recording(tmp_path_factory.mktemp("replay"))


@pytest.fixture(scope="module")
def recording(tiny: TinyRecording) -> Recording:
    return load_recording(tiny.path)


@pytest.fixture(scope="module")
def shared_server(recording: Recording) -> Iterator[ReplayServer]:
    with ReplayServer(recording, now=NOW, faults=FaultSettings(latency_s=0.2)) as server:
        yield server


@pytest.fixture()
def server(shared_server: ReplayServer) -> ReplayServer:
    """The module's server, reset to NOW with an empty log and no pending scripted faults."""
    shared_server.set_now(NOW)
    shared_server.requests.clear()
    shared_server.clear_faults()
    return shared_server


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def em(http: requests.Session, server: ReplayServer, endpoint: str, **params: str
       ) -> requests.Response:
    params.setdefault("zone", "GR")
    return http.get(f"{server.electricitymaps_url}/{endpoint}", params=params, timeout=5)


def vc(http: requests.Session, server: ReplayServer, path: str, **params: str
       ) -> requests.Response:
    return http.get(f"{server.visualcrossing_url}/{path}", params={**VC_PARAMS, **params},
                    timeout=5)


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def wire_time(value: datetime | pd.Timestamp) -> str:
    return pd.Timestamp(value).tz_convert(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def expected_revision(tiny: TinyRecording, hour: datetime, now: datetime,
                      include_estimated: bool = True) -> pd.Series | None:
    """The newest revision of ``hour`` visible at ``now``, computed from the frame."""
    frame = tiny.energy
    visible = frame[(frame["datetime"] == hour) & (frame["available_at"] <= now)]
    if not include_estimated:
        visible = visible[~visible["is_estimated"]]
    return None if visible.empty else visible.sort_values("available_at").iloc[-1]


# --------------------------------------------------------------------------------------------
# Electricity Maps: carbon intensity
# --------------------------------------------------------------------------------------------
def test_urls_point_at_loopback_with_the_api_prefixes(server: ReplayServer) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v3", server.electricitymaps_url)
    assert server.visualcrossing_url.endswith(
        "/VisualCrossingWebServices/rest/services/timeline")


def test_carbon_history_has_the_wire_shape(http, server) -> None:
    response = em(http, server, "carbon-intensity/history")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["zone", "history", "temporalGranularity"]
    assert body["zone"] == "GR" and body["temporalGranularity"] == "hourly"
    for entry in body["history"]:
        assert list(entry) == CARBON_KEYS
        assert type(entry["carbonIntensity"]) is int
        assert all(EM_TIME.match(entry[k]) for k in ("datetime", "updatedAt", "createdAt"))
        assert entry["datetime"].endswith(":00:00.000Z")
        assert entry["emissionFactorType"] == "lifecycle"
        assert type(entry["isEstimated"]) is bool
        assert entry["estimationMethod"] in (None, ESTIMATION_METHOD)
        assert entry["temporalGranularity"] == "hourly"


def test_history_is_the_24_hours_ending_at_the_current_hour_oldest_first(http, server) -> None:
    history = em(http, server, "carbon-intensity/history").json()["history"]
    hour = floor_hour(NOW)
    assert [e["datetime"] for e in history] == [
        wire_time(hour - timedelta(hours=23 - i)) for i in range(24)]


def test_history_serves_the_newest_revision_visible_at_now(http, server, tiny) -> None:
    history = em(http, server, "carbon-intensity/history").json()["history"]
    for entry in history:
        expected = expected_revision(tiny, pd.Timestamp(entry["datetime"]).to_pydatetime(), NOW)
        assert expected is not None
        assert entry["carbonIntensity"] == round(expected["carbon_intensity"])
        assert entry["isEstimated"] == bool(expected["is_estimated"])
        assert entry["updatedAt"] == wire_time(expected["updated_at"])
        assert entry["createdAt"] == wire_time(expected["created_at"])
    assert [e["isEstimated"] for e in history][-2:] == [True, True]
    assert not any(e["isEstimated"] for e in history[:-2])


def test_an_estimate_is_later_replaced_by_its_revision(http, server, tiny) -> None:
    hour = floor_hour(NOW)
    early = em(http, server, "carbon-intensity/history").json()["history"][-1]
    server.set_now(NOW + timedelta(hours=3))
    later = em(http, server, "carbon-intensity/history").json()["history"]
    revised = next(e for e in later if e["datetime"] == wire_time(hour))
    assert early["isEstimated"] and early["estimationMethod"] == ESTIMATION_METHOD
    assert not revised["isEstimated"] and revised["estimationMethod"] is None
    assert revised["carbonIntensity"] == round(tiny.final_row(hour)["carbon_intensity"])
    assert revised["carbonIntensity"] != early["carbonIntensity"]
    assert revised["updatedAt"] > early["updatedAt"]


def test_a_missing_hour_is_left_out(http, server, tiny) -> None:
    server.set_now(tiny.missing_hour + timedelta(hours=6, minutes=30))
    history = em(http, server, "carbon-intensity/history").json()["history"]
    assert len(history) == 23
    assert wire_time(tiny.missing_hour) not in [e["datetime"] for e in history]


def test_an_hour_not_yet_published_is_absent(http, server) -> None:
    server.set_now(floor_hour(NOW) + timedelta(minutes=5))  # the estimate comes at :10
    history = em(http, server, "carbon-intensity/history").json()["history"]
    assert history[-1]["datetime"] == wire_time(floor_hour(NOW) - timedelta(hours=1))


def test_disable_estimations_skips_estimated_revisions(http, server, tiny) -> None:
    history = em(http, server, "carbon-intensity/history",
                 disableEstimations="true").json()["history"]
    assert history and not any(e["isEstimated"] for e in history)
    for entry in history:
        hour = pd.Timestamp(entry["datetime"]).to_pydatetime()
        expected = expected_revision(tiny, hour, NOW, include_estimated=False)
        assert entry["carbonIntensity"] == round(expected["carbon_intensity"])
    assert len(history) == 22  # the two newest hours only have estimates


def test_direct_emission_factor_serves_direct_intensity(http, server, tiny) -> None:
    history = em(http, server, "carbon-intensity/history",
                 emissionFactorType="direct").json()["history"]
    for entry in history:
        expected = expected_revision(tiny, pd.Timestamp(entry["datetime"]).to_pydatetime(), NOW)
        assert entry["emissionFactorType"] == "direct"
        assert entry["carbonIntensity"] == round(expected["carbon_intensity_direct"])


def test_zone_key_parameter_is_accepted_like_zone(http, server) -> None:
    by_zone = em(http, server, "carbon-intensity/history").json()
    by_key = http.get(f"{server.electricitymaps_url}/carbon-intensity/history",
                      params={"zoneKey": "GR"}, timeout=5).json()
    assert by_key == by_zone


@pytest.mark.parametrize("endpoint", ["carbon-intensity", "power-breakdown"])
def test_latest_is_the_newest_history_entry(http, server, endpoint) -> None:
    history = em(http, server, f"{endpoint}/history").json()["history"]
    latest = em(http, server, f"{endpoint}/latest").json()
    assert latest == history[-1]


def test_past_range_serves_start_to_end_exclusive_under_data(http, server, tiny) -> None:
    start, end = tiny.start + timedelta(hours=5), tiny.start + timedelta(hours=29)
    body = em(http, server, "carbon-intensity/past-range", start=start.isoformat(),
              end=end.isoformat()).json()
    assert list(body) == ["zone", "data", "temporalGranularity"]
    assert [e["datetime"] for e in body["data"]] == [
        wire_time(start + timedelta(hours=i)) for i in range(24)]
    assert not any(e["isEstimated"] for e in body["data"])


def test_past_range_only_shows_what_was_published_by_now(http, server, tiny) -> None:
    start = floor_hour(NOW) - timedelta(hours=4)
    data = em(http, server, "carbon-intensity/past-range", start=start.isoformat(),
              end=(start + timedelta(days=2)).isoformat()).json()["data"]
    assert data[-1]["datetime"] == wire_time(floor_hour(NOW))


def test_past_range_serves_240_hours_in_one_call(http, server, tiny) -> None:
    start = tiny.start
    ok = em(http, server, "carbon-intensity/past-range", start=start.isoformat(),
            end=(start + timedelta(hours=240)).isoformat())
    too_long = em(http, server, "carbon-intensity/past-range", start=start.isoformat(),
                  end=(start + timedelta(hours=241)).isoformat())
    assert ok.status_code == 200 and too_long.status_code == 400
    assert too_long.json() == {"status": "error", "message": "The requested range exceeds the "
                                                             "maximum of 10 days for hourly granularity"}


@pytest.mark.parametrize("endpoint", ["carbon-intensity/past-range", "power-breakdown/past-range"])
def test_past_range_for_an_unknown_zone_is_404(http, server, endpoint) -> None:
    response = em(http, server, endpoint, zoneKey="XX", zone="", start="2025-03-09T00:00:00Z",
                  end="2025-03-10T00:00:00Z")
    assert response.status_code == 404
    assert response.json() == {"status": "error", "message": 'Zone "XX" is not available'}


def test_power_past_range_accepts_zone_key(http, server, tiny) -> None:
    start = tiny.start + timedelta(hours=1)
    body = em(http, server, "power-breakdown/past-range", zone="", zoneKey="GR",
              start=start.isoformat(), end=(start + timedelta(hours=3)).isoformat()).json()
    assert body["zone"] == "GR" and body["temporalGranularity"] == "hourly"
    assert [e["datetime"] for e in body["data"]] == [wire_time(start + timedelta(hours=i))
                                                     for i in range(3)]


@pytest.mark.parametrize(("params", "message"), [
    ({"start": "2025-03-01T00:00:00Z", "end": "2025-03-11T01:00:00Z"}, "10 days"),
    ({"end": "2025-03-11T01:00:00Z"}, "start"),
    ({"start": "2025-03-11T00:00:00Z", "end": "2025-03-10T00:00:00Z"}, "after"),
    ({"start": "yesterday", "end": "2025-03-10T00:00:00Z"}, "start"),
])
def test_bad_past_range_is_400(http, server, params, message) -> None:
    response = em(http, server, "carbon-intensity/past-range", **params)
    assert response.status_code == 400
    assert response.json()["status"] == "error" and message in response.json()["message"]


@pytest.mark.parametrize("params", [
    {"temporalGranularity": "daily"},
    {"emissionFactorType": "marginal"},
    {"disableEstimations": "maybe"},
    {"zone": ""},
])
def test_unsupported_parameters_are_400(http, server, params) -> None:
    response = em(http, server, "carbon-intensity/history", **params)
    assert response.status_code == 400
    assert list(response.json()) == ["status", "message"]


def test_unknown_zone_is_404_with_error_body(http, server) -> None:
    response = em(http, server, "carbon-intensity/history", zone="XX")
    assert response.status_code == 404
    assert response.json()["status"] == "error" and "XX" in response.json()["message"]


def test_no_data_at_now_is_404(http, server, tiny) -> None:
    server.set_now(tiny.start - timedelta(days=2))
    response = em(http, server, "carbon-intensity/history")
    assert response.status_code == 404
    assert response.json() == {"status": "error", "message": 'No recent data for zone "GR"'}


# --------------------------------------------------------------------------------------------
# Electricity Maps: power breakdown
# --------------------------------------------------------------------------------------------
def _wire_number(value: float) -> int | None:
    return None if math.isnan(value) else round(value)


def test_power_history_entries_match_the_recording(http, server, tiny) -> None:
    body = em(http, server, "power-breakdown/history").json()
    assert list(body) == ["zone", "history", "temporalGranularity"]
    assert len(body["history"]) == 24
    for entry in body["history"]:
        assert list(entry) == POWER_KEYS
        row = expected_revision(tiny, pd.Timestamp(entry["datetime"]).to_pydatetime(), NOW)
        for key, prefix in (("powerProductionBreakdown", "production"),
                            ("powerConsumptionBreakdown", "consumption")):
            assert list(entry[key]) == list(ENERGY_SOURCES)
            assert entry[key] == {
                s: _wire_number(row[f"{prefix}_{s.replace(' ', '_')}"]) for s in ENERGY_SOURCES}
        assert entry["powerImportBreakdown"] == {z: round(row[f"import_{z}"]) for z in NEIGHBOURS}
        assert entry["powerExportBreakdown"] == {z: round(row[f"export_{z}"]) for z in NEIGHBOURS}
        assert entry["powerProductionTotal"] == round(row["power_production_total"])
        assert entry["powerConsumptionTotal"] == round(row["power_consumption_total"])
        assert entry["powerImportTotal"] == round(row["power_import_total"])
        assert entry["powerExportTotal"] == round(row["power_export_total"])
        assert entry["fossilFreePercentage"] == round(row["fossil_free_percentage"])
        assert entry["renewablePercentage"] == round(row["renewable_percentage"])
        assert entry["isEstimated"] == bool(row["is_estimated"])
    production = body["history"][0]["powerProductionBreakdown"]
    assert production["nuclear"] is None and production["hydro discharge"] < 0


# --------------------------------------------------------------------------------------------
# Electricity Maps: auth
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def guarded(recording: Recording) -> Iterator[ReplayServer]:
    tokens = {"electricitymaps": "em-secret", "visualcrossing": "vc-secret"}
    with ReplayServer(recording, now=NOW, tokens=tokens) as server:
        yield server


@pytest.mark.parametrize("headers", [{"auth-token": "wrong"}, {}])
def test_wrong_or_missing_em_token_is_401(http, guarded, headers) -> None:
    response = http.get(f"{guarded.electricitymaps_url}/carbon-intensity/history",
                        params={"zone": "GR"}, headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid auth-token"}


def test_right_em_token_is_accepted(http, guarded) -> None:
    response = http.get(f"{guarded.electricitymaps_url}/carbon-intensity/history",
                        params={"zone": "GR"}, headers={"auth-token": "em-secret"}, timeout=5)
    assert response.status_code == 200


def test_without_configured_tokens_any_token_is_accepted(http, server) -> None:
    response = http.get(f"{server.electricitymaps_url}/carbon-intensity/latest",
                        params={"zone": "GR"}, headers={"auth-token": "anything"}, timeout=5)
    assert response.status_code == 200


# --------------------------------------------------------------------------------------------
# Visual Crossing
# --------------------------------------------------------------------------------------------
def test_vc_csv_header_quoting_and_nulls(http, server) -> None:
    response = vc(http, server, "Athens,Greece/today")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    lines = response.text.split("\n")
    assert lines[0] == VC_HEADER and lines[-1] == ""
    first_obs = lines[1]
    assert first_obs.startswith('"Athens,Greece",2025-03-11T00:00:00,')
    assert first_obs.endswith(',"LGAV,LGEL,16716099999,remote"')
    assert ",,Partially cloudy," in first_obs  # severerisk is null for observations
    rows = csv_rows(response.text)
    assert all(len(r) == 24 and None not in r.values() for r in rows)
    forecast = [r for r in rows if r["stations"] == ""]
    assert forecast and all(r["severerisk"] == "10.0" for r in forecast)


def test_vc_today_is_observations_to_the_current_hour_then_the_newest_vintage(
        http, server, tiny) -> None:
    rows = csv_rows(vc(http, server, "Athens/today", elements="add:source").text)
    hour = floor_hour(NOW)
    times = [datetime.fromisoformat(r["datetime"]).replace(tzinfo=UTC) for r in rows]
    assert times == [hour.replace(hour=0) + timedelta(hours=i) for i in range(24)]
    assert [r["source"] for r in rows] == ["obs" if t <= hour else "fcst" for t in times]
    obs, fcst = tiny.observations["Athens"], tiny.forecasts["Athens"]
    vintage = hour.replace(hour=6)  # vintages every 6 h; the 06:00 one is the newest by 09:30
    for row, t in zip(rows, times):
        if row["source"] == "obs":
            expected = obs[obs["datetime"] == t].iloc[0]
            assert row["stations"] == expected["stations"]
        else:
            expected = fcst[(fcst["issued_at"] == vintage) & (fcst["datetime"] == t)].iloc[0]
            assert row["stations"] == ""
        assert float(row["temp"]) == expected["temp"]


def test_vc_forecast_moves_to_a_newer_vintage_with_the_clock(http, server, tiny) -> None:
    target = "2025-03-11T20:00:00"
    before = next(r for r in csv_rows(vc(http, server, "Athens/today").text)
                  if r["datetime"] == target)
    server.set_now(NOW + timedelta(hours=3))  # 12:30: the 12:00 vintage is out
    after = next(r for r in csv_rows(vc(http, server, "Athens/today").text)
                 if r["datetime"] == target)
    fcst = tiny.forecasts["Athens"]
    at = datetime(2025, 3, 11, 20, tzinfo=UTC)
    newer = fcst[(fcst["issued_at"] == datetime(2025, 3, 11, 12, tzinfo=UTC))
                 & (fcst["datetime"] == at)].iloc[0]
    assert float(after["temp"]) == newer["temp"] and after["temp"] != before["temp"]


def test_vc_forecast_stops_at_the_vintage_horizon(http, server) -> None:
    rows = csv_rows(vc(http, server, "Athens/today/next5days").text)
    assert rows[-1]["datetime"] == "2025-03-13T06:00:00"  # issued 03-11 06:00 + 48 h


def test_vc_history_costs_a_record_per_hour_and_a_forecast_costs_one(http, server) -> None:
    history = vc(http, server, "Athens/2025-03-09/2025-03-10")
    forecast = vc(http, server, "Athens")
    mixed = vc(http, server, "Athens/today/tomorrow", elements="add:source")
    observed_today = sum(r["source"] == "obs" for r in csv_rows(mixed.text))
    assert history.headers[COST_HEADER] == "48"
    assert forecast.headers[COST_HEADER] == "1"
    assert mixed.headers[COST_HEADER] == str(observed_today + 1)


def test_vc_archived_forecast_is_tagged_histfcst_in_json(http, server, tiny) -> None:
    body = vc(http, server, "Athens/2025-03-10/2025-03-10", contentType="json",
              forecastBasisDate="2025-03-10").json()
    hours = [h for d in body["days"] for h in d["hours"]]
    issued = datetime(2025, 3, 10, tzinfo=UTC)
    vintage = tiny.forecasts["Athens"][tiny.forecasts["Athens"]["issued_at"] == issued]
    expected = vintage[vintage["datetime"] < issued + timedelta(days=1)]
    assert [h["datetimeEpoch"] for h in hours] == [int(t.timestamp()) for t in expected["datetime"]]
    assert {h["source"] for h in hours} == {"histfcst"} and body["queryCost"] == len(hours)


@pytest.mark.parametrize(("basis", "message"), [
    ("2025-13-01", "Invalid forecastBasisDate parameter value: 2025-13-01"),
    ("2025-02-01", "No archived forecast for forecastBasisDate 2025-02-01"),  # before the recording
    ("2025-03-12", "No archived forecast for forecastBasisDate 2025-03-12"),  # after now
])
def test_vc_bad_forecast_basis_date_is_400(http, server, basis, message) -> None:
    response = vc(http, server, "Athens/2025-03-10/2025-03-12", forecastBasisDate=basis)
    assert response.status_code == 400 and response.text.startswith("Bad API Request:")
    assert message in response.text


def test_vc_local_time_without_timezone_z(http, server) -> None:
    params = {k: v for k, v in VC_PARAMS.items() if k != "timezone"}
    local = csv_rows(http.get(f"{server.visualcrossing_url}/Athens/2025-03-10", params=params,
                              timeout=5).text)
    utc = csv_rows(vc(http, server, "Athens/2025-03-09/2025-03-10").text)
    assert len(local) == 24 and local[0]["datetime"] == "2025-03-10T00:00:00"
    by_utc = {r["datetime"]: r for r in utc}
    assert local[0]["temp"] == by_utc["2025-03-09T22:00:00"]["temp"]  # Athens is UTC+2 in March


@pytest.mark.parametrize(("path", "first", "count"), [
    ("Athens/yesterday", "2025-03-10T00:00:00", 24),
    ("Athens/2025-03-09/2025-03-10", "2025-03-09T00:00:00", 48),
    ("Athens/last7days", "2025-03-09T00:00:00", 48),  # the recording starts on 03-09
    ("Athens/tomorrow", "2025-03-12T00:00:00", 24),
])
def test_vc_date_keywords_are_relative_to_now(http, server, path, first, count) -> None:
    rows = csv_rows(vc(http, server, path).text)
    assert (rows[0]["datetime"], len(rows)) == (first, count)


@pytest.mark.parametrize("location", ["athens", "ATHENS,GREECE", "37.98,23.73", "37.93,23.70",
                                      "Athens, Attica, Greece"])
def test_vc_location_by_name_or_coordinates(http, server, location) -> None:
    response = vc(http, server, f"{location}/today")
    assert response.status_code == 200
    echoed = f'"{location}"' if "," in location else location  # `name` echoes the request
    assert response.text.split("\n")[1].startswith(f"{echoed},2025-03-11T00:00:00,")


def test_vc_unknown_location_is_400_plain_text(http, server) -> None:
    for location in ("Berlin", "10.0,10.0"):
        response = vc(http, server, f"{location}/today")
        assert response.status_code == 400
        assert response.text == "Bad API Request:Invalid location parameter value."


def test_vc_bad_key_is_401_and_echoes_the_key(http, guarded) -> None:
    response = vc(http, guarded, "Athens/today", key="not-my-key")
    assert response.status_code == 401
    assert response.text == "No account found with API key 'not-my-key'"
    assert vc(http, guarded, "Athens/today", key="vc-secret").status_code == 200


def test_vc_requires_metric_units(http, server) -> None:
    response = vc(http, server, "Athens/today", unitGroup="us")
    assert response.status_code == 400 and response.text.startswith("Bad API Request:")


def test_vc_elements_can_restrict_columns(http, server) -> None:
    text = vc(http, server, "Athens/today", elements="datetime,temp,source").text
    assert text.split("\n")[0] == "name,datetime,temp,source"
    assert csv_rows(text)[0]["source"] == "obs"


def test_vc_json_shape(http, server) -> None:
    response = vc(http, server, "Athens,Greece/today/tomorrow", contentType="json")
    body = response.json()
    assert list(body) == ["queryCost", "latitude", "longitude", "resolvedAddress", "address",
                          "timezone", "tzoffset", "days"]
    assert body["address"] == "Athens,Greece" and body["resolvedAddress"].startswith("Athens")
    assert [d["datetime"] for d in body["days"]] == ["2025-03-11", "2025-03-12"]
    hours = [h for d in body["days"] for h in d["hours"]]
    # History costs a record per hourly row; the forecast part costs 1 however long it is.
    assert body["queryCost"] == sum(h["source"] == "obs" for h in hours) + 1
    first = hours[0]
    assert list(first)[:3] == ["datetime", "datetimeEpoch", "temp"]
    assert first["datetime"] == "00:00:00" and first["source"] == "obs"
    assert first["datetimeEpoch"] == int(datetime(2025, 3, 11, tzinfo=UTC).timestamp())
    assert "pressure" in first and "sealevelpressure" not in first
    assert first["stations"] == ["LGAV", "LGEL", "16716099999", "remote"]
    assert hours[-1]["source"] == "fcst" and hours[-1]["stations"] is None


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [500, 503, 429])
def test_scripted_status_fault_on_em_has_a_json_error_body(http, server, status) -> None:
    server.fail_next("carbon-intensity", status=status)
    response = em(http, server, "carbon-intensity/history")
    assert response.status_code == status
    assert response.json()["status"] == "error"
    assert em(http, server, "carbon-intensity/history").status_code == 200


@pytest.mark.parametrize(("status", "text"), [
    (429, "Maximum daily cost exceeded"), (500, "Internal server error"),
    (503, "Service unavailable"),
])
def test_scripted_status_fault_on_vc_is_plain_text(http, server, status, text) -> None:
    server.fail_next("timeline/Athens", status=status)
    response = vc(http, server, "Athens/today")
    assert (response.status_code, response.text) == (status, text)


def test_truncated_fault_cuts_the_json_body_under_status_200(http, server) -> None:
    full = em(http, server, "power-breakdown/history").content
    server.fail_next("power-breakdown", kind="truncated")
    response = em(http, server, "power-breakdown/history")
    assert response.status_code == 200
    assert full.startswith(response.content) and 0 < len(response.content) < len(full)
    with pytest.raises(ValueError):
        json.loads(response.content)


def test_truncated_fault_leaves_an_incomplete_last_csv_row(http, server) -> None:
    server.fail_next("timeline", kind="truncated")
    text = vc(http, server, "Athens/today").text
    lines = text.split("\n")
    assert not text.endswith("\n")
    assert len(next(csv.reader([lines[-1]]))) < 24


@pytest.mark.parametrize("endpoint", ["carbon-intensity/history", "power-breakdown/latest"])
def test_malformed_fault_on_em_is_invalid_json(http, server, endpoint) -> None:
    server.fail_next(endpoint, kind="malformed")
    response = em(http, server, endpoint)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        json.loads(response.content)


def test_malformed_fault_on_vc_garbles_csv_rows(http, server) -> None:
    server.fail_next("timeline", kind="malformed")
    response = vc(http, server, "Athens/today")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == VC_HEADER.split(",")
    assert any(len(r) != 24 for r in rows[1:])


def test_latency_fault_delays_a_normal_answer(http, server) -> None:
    server.fail_next("carbon-intensity", kind="latency")
    started = time.perf_counter()
    response = em(http, server, "carbon-intensity/latest")
    assert time.perf_counter() - started >= 0.2
    assert response.status_code == 200 and response.json()["zone"] == "GR"


def test_scripted_faults_are_consumed_in_order_and_only_on_matching_paths(http, server) -> None:
    server.fail_next("carbon-intensity/history", count=2, status=500)
    server.fail_next("carbon-intensity/history", status=503)
    assert em(http, server, "power-breakdown/history").status_code == 200
    statuses = [em(http, server, "carbon-intensity/history").status_code for _ in range(4)]
    assert statuses == [500, 500, 503, 200]


def _statuses_and_bodies(recording: Recording, faults: FaultSettings, n: int) -> list[tuple]:
    with ReplayServer(recording, now=NOW, faults=faults) as server, requests.Session() as http:
        return [(r.status_code, r.content) for r in
                (em(http, server, "carbon-intensity/history") for _ in range(n))]


def _parses(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def test_random_faults_are_deterministic_for_a_seed(recording) -> None:
    faults = FaultSettings(rate=0.5, kinds=("status", "truncated", "malformed"), seed=7)
    first = _statuses_and_bodies(recording, faults, 40)
    assert first == _statuses_and_bodies(recording, faults, 40)
    faulted = [status != 200 or not _parses(body) for status, body in first]
    assert 8 <= sum(faulted) <= 32  # about half
    other = _statuses_and_bodies(recording, FaultSettings(rate=0.5, kinds=faults.kinds, seed=8), 40)
    assert other != first


def test_random_status_faults_use_the_configured_statuses(recording) -> None:
    results = _statuses_and_bodies(recording, FaultSettings(rate=1.0, statuses=(503,)), 5)
    assert [s for s, _ in results] == [503] * 5


def test_scripted_faults_take_precedence_over_random_ones(recording) -> None:
    faults = FaultSettings(rate=1.0, statuses=(503,))
    with ReplayServer(recording, now=NOW, faults=faults) as server, requests.Session() as http:
        server.fail_next("history", status=500)
        statuses = [em(http, server, "carbon-intensity/history").status_code for _ in range(2)]
    assert statuses == [500, 503]


@pytest.mark.parametrize("kwargs, message", [
    ({"rate": 1.5}, "source.faults.rate must be between 0 and 1"),
    ({"kinds": ("explode",)}, "source.faults.kinds must be among status, latency"),
    ({"statuses": (200,)}, "source.faults.statuses must be 4xx/5xx codes"),
    ({"latency_s": -1}, "source.faults.latency_s must be >= 0"),
])
def test_fault_settings_reject_bad_values(kwargs, message) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        FaultSettings(**kwargs)


FAULTED_REQUESTS = [
    ("carbon-intensity/history", {}), ("power-breakdown/history", {}),
    ("carbon-intensity/latest", {}), ("power-breakdown/latest", {}),
    ("carbon-intensity/history", {"emissionFactorType": "direct"}),
    ("carbon-intensity/history", {"disableEstimations": "true"}),
]


def _faults_by_request(recording: Recording, order: list[int], *, concurrent: bool,
                       now_offsets_h: tuple[int, ...] = (0, 1)) -> dict[tuple, list[tuple]]:
    """Serve every request of FAULTED_REQUESTS three times (its attempts) at two simulated
    times, in the given order; return each request's answers in attempt order."""
    faults = FaultSettings(rate=0.5, kinds=("status", "truncated", "malformed"), seed=11)
    answers: dict[tuple, list[tuple]] = {}
    with ReplayServer(recording, now=NOW, faults=faults) as server:
        for offset in now_offsets_h:
            server.set_now(NOW + timedelta(hours=offset))

            def attempts(index: int) -> tuple[tuple, list[tuple]]:
                endpoint, params = FAULTED_REQUESTS[index]
                with requests.Session() as http:
                    replies = [em(http, server, endpoint, **params) for _ in range(3)]
                return ((offset, index), [(r.status_code, r.content) for r in replies])

            if concurrent:
                with ThreadPoolExecutor(max_workers=len(order)) as pool:
                    answers.update(pool.map(attempts, order))
            else:
                answers.update(attempts(index) for index in order)
    return answers


def test_random_faults_do_not_depend_on_request_order_or_concurrency(recording) -> None:
    forward = list(range(len(FAULTED_REQUESTS)))
    in_order = _faults_by_request(recording, forward, concurrent=False)
    reversed_order = _faults_by_request(recording, forward[::-1], concurrent=False)
    concurrent = _faults_by_request(recording, forward[::-1], concurrent=True)
    assert in_order == reversed_order == concurrent
    statuses = [status for replies in in_order.values() for status, _ in replies]
    assert 200 in statuses and any(status != 200 for status in statuses)


def test_a_retry_of_the_same_request_gets_its_own_fault_decision(recording) -> None:
    # With rate 0.5, 3 attempts x 12 requests all faulted alike would mean one draw per request.
    answers = _faults_by_request(recording, list(range(len(FAULTED_REQUESTS))), concurrent=False)
    assert any(len({status for status, _ in replies}) > 1 for replies in answers.values())


# --------------------------------------------------------------------------------------------
# Request log and stderr
# --------------------------------------------------------------------------------------------
def test_request_log_keeps_the_path_but_never_the_key(http, guarded) -> None:
    guarded.requests.clear()
    vc(http, guarded, "Athens/today", key="vc-secret")
    vc(http, guarded, "Athens/today", key="leaked-key")
    assert [(r.method, r.status) for r in guarded.requests] == [("GET", 200), ("GET", 401)]
    for record in guarded.requests:
        assert record.path.startswith("/VisualCrossingWebServices/rest/services/timeline/Athens")
        assert "key=" not in record.path and "secret" not in record.path
        assert "leaked" not in record.path and "unitGroup=metric" in record.path


def test_server_writes_nothing_to_stderr(http, guarded, capfd) -> None:
    capfd.readouterr()
    vc(http, guarded, "Athens/today", key="leaked-key")
    vc(http, guarded, "Nowhere/today", key="vc-secret")
    http.get(f"{guarded.base_url}/no/such/path?key=leaked-key", timeout=5)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


def test_naive_now_is_rejected(recording) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ReplayServer(recording, now=datetime(2025, 3, 11))


# --------------------------------------------------------------------------------------------
# Data-portal CSV zones
# --------------------------------------------------------------------------------------------
OLD_PORTAL_HEADER = ("Datetime (UTC),Country,Zone Name,Zone Id,"
                     "Carbon Intensity gCO\u2082eq/kWh (direct),"
                     "Carbon Intensity gCO\u2082eq/kWh (LCA),"
                     "Low Carbon Percentage,Renewable Percentage,Data Source,Data Estimated,"
                     "Data Estimation Method")
NEW_PORTAL_HEADER = ("Datetime (UTC),Country,Zone name,Zone id,"
                     "Carbon intensity gCO\u2082eq/kWh (direct),"
                     "Carbon intensity gCO\u2082eq/kWh (Life cycle),"
                     "Carbon-free energy percentage (CFE%),Renewable energy percentage (RE%),"
                     "Data source,Data estimated,Data estimation method")


def write_portal_csv(path: Path, header: str, start: datetime, hours: int) -> Path:
    lines = [header]
    for i in range(hours):
        stamp = (start + timedelta(hours=i)).strftime("%Y-%m-%d %H:%M:%S")
        estimated = "true" if i == hours - 1 else "false"
        method = "TIME_SLICER_AVERAGE" if i == hours - 1 else ""
        lines.append(f"{stamp},Greece,Greece,GR,{300 + i}.4,{400 + i}.6,60.1,40.2,"
                     f"entsoe.eu,{estimated},{method}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("header", [OLD_PORTAL_HEADER, NEW_PORTAL_HEADER,
                                    NEW_PORTAL_HEADER.upper()],
                         ids=["old", "new", "upper"])
def test_portal_zone_serves_carbon_intensity(http, tmp_path, header) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    portal = write_portal_csv(tmp_path / "GR_2024_hourly.csv", header, start, 48)
    path = write_recording(tmp_path / "rec", name="portal", portal_zones={"GR": [portal]})
    now = start + timedelta(hours=47, minutes=30)  # hour 47 is published at 48:00
    with ReplayServer(path, now=now) as server:
        lifecycle = em(http, server, "carbon-intensity/history").json()["history"]
        direct = em(http, server, "carbon-intensity/history",
                    emissionFactorType="direct").json()["history"]
        server.set_now(now + timedelta(hours=1))
        newest = em(http, server, "carbon-intensity/latest").json()
        power = em(http, server, "power-breakdown/history")
    # Window = hours 24..47; hour 47 is not published yet.
    assert [e["datetime"] for e in lifecycle] == [
        wire_time(start + timedelta(hours=24 + i)) for i in range(23)]
    assert [e["carbonIntensity"] for e in lifecycle] == [round(400.6 + 24 + i) for i in range(23)]
    assert [e["carbonIntensity"] for e in direct] == [round(300.4 + 24 + i) for i in range(23)]
    assert list(lifecycle[0]) == CARBON_KEYS and not lifecycle[0]["isEstimated"]
    assert newest["isEstimated"] and newest["estimationMethod"] == "TIME_SLICER_AVERAGE"
    assert power.status_code == 404
    assert power.json()["status"] == "error" and "GR" in power.json()["message"]


def test_portal_csv_without_a_datetime_column_is_rejected(tmp_path) -> None:
    bad = tmp_path / "GR_2024_hourly.csv"
    bad.write_text("when,Carbon Intensity gCO\u2082eq/kWh (LCA)\n2024-01-01 00:00:00,1\n")
    with pytest.raises(RecordingError, match=re.escape(str(bad))):
        read_portal_csv(bad)


@pytest.mark.skipif(not (SHARED / "electricitymaps").is_dir(), reason="reference data absent")
@pytest.mark.parametrize("name", ["DE_2021_hourly.csv", "GR_2022_hourly_lca_only.csv"])
def test_real_portal_files_load(name) -> None:
    zone, frame = read_portal_csv(SHARED / "electricitymaps" / name)
    assert zone == name.split("_")[0] and len(frame) == 8760
    assert frame["carbon_intensity"].notna().all()
    assert frame["datetime"].iloc[0] == pd.Timestamp(f"{name.split('_')[1]}-01-01", tz="UTC")


# --------------------------------------------------------------------------------------------
# Recording validation and writer
# --------------------------------------------------------------------------------------------
def _copy_tiny(tiny: TinyRecording, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(tiny.path, tmp_path / "copy"))


def _edit_manifest(root: Path, **changes) -> None:
    manifest = json.loads((root / "manifest.json").read_text())
    manifest.update(changes)
    (root / "manifest.json").write_text(json.dumps(manifest))


def _rewrite_gz_csv(path: Path, edit) -> None:
    frame = pd.read_csv(path, keep_default_na=False, dtype=str)
    with gzip.open(path, "wt") as handle:
        edit(frame).to_csv(handle, index=False)


@pytest.mark.parametrize(("breakage", "message", "culprit"), [
    ("no_manifest", "not found", "manifest.json"),
    ("bad_json", "invalid JSON", "manifest.json"),
    ("format", "format is 'something-else'", "manifest.json"),
    ("version", "version 2 is not supported", "manifest.json"),
    ("missing_file", "missing", "energy/GR.csv.gz"),
    ("unknown_key", "unknown key", "manifest.json"),
    ("unknown_column", "unknown column 'bogus'", "energy/GR.csv.gz"),
    ("missing_column", "missing column 'temp'", "weather/athens.obs.csv.gz"),
    ("bad_number", "carbon_intensity", "energy/GR.csv.gz"),
])
def test_bad_recordings_fail_with_the_path_in_the_message(tiny, tmp_path, breakage, message,
                                                          culprit) -> None:
    root = _copy_tiny(tiny, tmp_path)
    if breakage == "no_manifest":
        (root / "manifest.json").unlink()
    elif breakage == "bad_json":
        (root / "manifest.json").write_text("{not json")
    elif breakage == "format":
        _edit_manifest(root, format="something-else")
    elif breakage == "version":
        _edit_manifest(root, version=2)
    elif breakage == "missing_file":
        (root / "energy" / "GR.csv.gz").unlink()
    elif breakage == "unknown_key":
        manifest = json.loads((root / "manifest.json").read_text())
        manifest["locations"]["Athens"]["forecast"] = "typo"
        (root / "manifest.json").write_text(json.dumps(manifest))
    elif breakage == "unknown_column":
        _rewrite_gz_csv(root / "energy" / "GR.csv.gz", lambda f: f.assign(bogus="1"))
    elif breakage == "missing_column":
        _rewrite_gz_csv(root / "weather" / "athens.obs.csv.gz", lambda f: f.drop(columns="temp"))
    elif breakage == "bad_number":
        _rewrite_gz_csv(root / "energy" / "GR.csv.gz",
                        lambda f: f.assign(carbon_intensity="lots"))
    with pytest.raises(RecordingError, match=re.escape(message)) as caught:
        load_recording(root)
    assert str(root / culprit) in str(caught.value)


def test_writer_round_trips_uncompressed_csv(tmp_path) -> None:
    tiny = build_tiny_recording(tmp_path, hours=30, locations=("Athens",), compress=False)
    assert (tiny.path / "energy" / "GR.csv").is_file()
    loaded = load_recording(tiny.path)
    assert set(loaded.zones) == {"GR"} and set(loaded.locations) == {"Athens"}
    assert loaded.zones["GR"].n_rows == len(tiny.energy)
    assert len(loaded.locations["Athens"].observations) == 30
    assert loaded.start == tiny.start and loaded.end == tiny.start + timedelta(hours=30)


def test_writer_rejects_unknown_columns(tmp_path, tiny) -> None:
    with pytest.raises(RecordingError, match="unknown column 'bogus'"):
        write_recording(tmp_path / "bad", name="bad", zones={"GR": tiny.energy.assign(bogus=1)})


# --------------------------------------------------------------------------------------------
# Against the reference samples (only where /work/shared is present)
# --------------------------------------------------------------------------------------------
SAMPLES = SHARED / "api-samples"
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason="api samples absent")


@needs_samples
def test_em_entries_match_the_sample_key_order(http, server) -> None:
    carbon = json.loads((SAMPLES / "em_carbon_intensity_history_GR.json").read_text())
    power = json.loads((SAMPLES / "em_power_breakdown_history_GR.json").read_text())
    ours_carbon = em(http, server, "carbon-intensity/history").json()
    ours_power = em(http, server, "power-breakdown/history").json()
    assert list(ours_carbon) == list(carbon)
    assert list(ours_carbon["history"][0]) == list(carbon["history"][0])
    assert list(ours_power["history"][0]) == list(power["history"][0])
    for key in ("powerConsumptionBreakdown", "powerProductionBreakdown", "powerImportBreakdown"):
        assert list(ours_power["history"][0][key]) == list(power["history"][0][key])


@needs_samples
def test_error_bodies_match_the_samples(http, guarded, server) -> None:
    em_401 = http.get(f"{guarded.electricitymaps_url}/carbon-intensity/history",
                      params={"zone": "GR"}, timeout=5)
    assert em_401.json() == json.loads((SAMPLES / "em_error_401.json").read_text())
    vc_400 = vc(http, server, "Nowhere/today")
    assert vc_400.text == (SAMPLES / "vc_error_400.txt").read_text().strip()
    server.fail_next("timeline", status=429)
    assert vc(http, server, "Athens/today").text == (
        (SAMPLES / "vc_error_429.txt").read_text().strip())
    sample_401 = (SAMPLES / "vc_error_401.txt").read_text().strip()
    assert vc(http, guarded, "Athens/today", key="K").text == re.sub(r"'.*'", "'K'", sample_401)


@needs_samples
def test_vc_csv_headers_match_the_samples(http, server) -> None:
    for sample, extra in (("vc_timeline_athens_hours.csv", {}),
                          ("vc_timeline_athens_hours_with_source.csv",
                           {"elements": "add:source"})):
        expected = (SAMPLES / sample).read_text().split("\n")[0]
        assert vc(http, server, "Athens,Greece/today", **extra).text.split("\n")[0] == expected


def test_a_stopped_server_answers_nothing_more(recording) -> None:
    with requests.Session() as http:
        server = ReplayServer(recording, now=NOW).start()
        url = f"{server.electricitymaps_url}/carbon-intensity/latest"
        assert http.get(url, params={"zone": "GR"}, timeout=5).status_code == 200
        server.stop()
        with pytest.raises(requests.ConnectionError):
            http.get(url, params={"zone": "GR"}, timeout=5)
