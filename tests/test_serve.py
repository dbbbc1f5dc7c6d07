"""The forecasts API: a real server on a free port, asked over HTTP with requests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import requests

from gridcast.config import ConfigError
from gridcast.serve import ForecastServer, ServeSettings
from test_windows import H, T0, predictions

URL = "/emissions/forecasts/current"
REQUESTED_AT = datetime(2025, 3, 11, 0, 30, tzinfo=UTC)
GR = predictions()  # hours 00..05: 300, 200, 100, 100, 250, 400
DE = predictions([50.0, 40.0, 60.0], zone="DE", issued_at=T0 - 2 * H)


@pytest.fixture()
def serve():
    """Start a server over the given frame (or provider); stops every server at the end."""
    servers: list[ForecastServer] = []

    def start(frame: pd.DataFrame | None = None, *, provider=None,
              zones=("GR", "DE", "FR")) -> str:
        source = provider or (lambda: frame)
        server = ForecastServer(source, ServeSettings(port=0, zones=zones),
                                clock=lambda: REQUESTED_AT).start()
        servers.append(server)
        return server.base_url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture()
def base_url(serve) -> str:
    return serve(pd.concat([GR, DE], ignore_index=True))


def get(base_url: str, **params) -> requests.Response:
    return requests.get(base_url + URL, params=params, timeout=10)


def points(items) -> list[tuple[str, int, float]]:
    return [(p["timestamp"], p["duration"], round(p["value"], 6)) for p in items]


def test_a_good_request_answers_the_sdk_forecast_shape_with_window_means(base_url):
    response = get(base_url, location="GR", dataStartAt="2025-03-11T01:00:00Z",
                   dataEndAt="2025-03-11T05:00:00Z", windowSize=120)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    [forecast] = response.json()
    assert {k: v for k, v in forecast.items() if k not in ("forecastData", "optimalDataPoints")} \
        == {"generatedAt": "2025-03-10T23:00:00Z", "requestedAt": "2025-03-11T00:30:00Z",
            "location": "GR", "dataStartAt": "2025-03-11T01:00:00Z",
            "dataEndAt": "2025-03-11T05:00:00Z", "windowSize": 120}
    # 2 h means from 01:00, 02:00, 03:00 (the 03:00 run ends at the 05:00 bound).
    assert points(forecast["forecastData"]) == [
        ("2025-03-11T01:00:00Z", 120, 150.0), ("2025-03-11T02:00:00Z", 120, 100.0),
        ("2025-03-11T03:00:00Z", 120, 175.0)]
    assert forecast["optimalDataPoints"] == [
        {"location": "GR", "timestamp": "2025-03-11T02:00:00Z", "duration": 120, "value": 100.0}]


def test_defaults_use_the_whole_forecast_and_one_hour_windows_and_report_every_tie(base_url):
    [forecast] = get(base_url, location="GR").json()
    assert (forecast["dataStartAt"], forecast["dataEndAt"], forecast["windowSize"]) == (
        "2025-03-11T00:00:00Z", "2025-03-11T06:00:00Z", 60)
    assert [p["value"] for p in forecast["forecastData"]] == [300, 200, 100, 100, 250, 400]
    assert points(forecast["optimalDataPoints"]) == [
        ("2025-03-11T02:00:00Z", 60, 100.0), ("2025-03-11T03:00:00Z", 60, 100.0)]


def test_a_window_of_ninety_minutes_weights_its_last_hour_by_half(base_url):
    [forecast] = get(base_url, location="GR", windowSize=90).json()
    assert points(forecast["optimalDataPoints"]) == [("2025-03-11T02:00:00Z", 90, 100.0)]
    assert forecast["forecastData"][0]["value"] == pytest.approx(400 / 1.5)


def test_each_requested_location_gets_its_own_forecast_in_request_order(base_url):
    response = requests.get(base_url + URL + "?location=DE&location=GR", timeout=10)
    assert [f["location"] for f in response.json()] == ["DE", "GR"]
    assert response.json()[0]["generatedAt"] == "2025-03-10T22:00:00Z"
    assert points(response.json()[0]["optimalDataPoints"]) == [("2025-03-11T01:00:00Z", 60, 40.0)]


def test_an_unencoded_plus_offset_in_the_query_is_read_as_an_offset(base_url):
    # "+" in a query string decodes to a space; clients often forget to encode it.
    response = requests.get(base_url + URL + "?location=GR&dataStartAt=2025-03-11T04:00:00+02:00",
                            timeout=10)
    assert response.status_code == 200
    assert response.json()[0]["forecastData"][0]["timestamp"] == "2025-03-11T02:00:00Z"


@pytest.mark.parametrize(("params", "parameter", "detail"), [
    ({}, "location", "location is required"),
    ({"location": "XX"}, "location", "unknown location 'XX'; choose one of: DE, FR, GR"),
    ({"location": "GR", "dataStartAt": "yesterday"}, "dataStartAt",
     "cannot read 'yesterday' as an ISO-8601 time"),
    ({"location": "GR", "dataEndAt": "2025-13-01T00:00:00Z"}, "dataEndAt", "cannot read"),
    # pandas would read "now" as the local wall clock, then taken for UTC.
    ({"location": "GR", "dataStartAt": "now"}, "dataStartAt", "cannot read 'now'"),
    ({"location": "GR", "windowSize": 0}, "windowSize", "more than 0 minutes, got 0"),
    ({"location": "GR", "windowSize": -30}, "windowSize", "more than 0 minutes, got -30"),
    ({"location": "GR", "windowSize": "1h"}, "windowSize", "whole number of minutes, got '1h'"),
    ({"location": "GR", "windowSize": 180, "dataStartAt": "2025-03-11T01:00:00Z",
      "dataEndAt": "2025-03-11T03:00:00Z"}, "windowSize",
     "windowSize 180 min is longer than the 120 min from dataStartAt to dataEndAt"),
    ({"location": "GR", "windowSize": 420}, "windowSize",
     "windowSize 420 min does not fit: the window .* is shorter than the 7 h duration"),
    ({"location": "GR", "dataStartAt": "2025-03-11T04:00:00Z",
      "dataEndAt": "2025-03-11T02:00:00Z"}, "dataStartAt",
     "dataStartAt 2025-03-11T04:00:00Z is after dataEndAt 2025-03-11T02:00:00Z"),
    ({"location": "GR", "dataEndAt": "2025-03-12T00:00:00Z"}, "dataEndAt",
     "dataEndAt 2025-03-12T00:00:00Z is beyond the forecast, which ends at 2025-03-11T06:00:00Z"),
    ({"location": "GR", "windowsize": 60}, "windowsize", "unknown parameter windowsize"),
])
def test_a_bad_parameter_is_a_400_problem_naming_it(base_url, params, parameter, detail):
    response = get(base_url, **params)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert (problem["type"], problem["title"], problem["status"], problem["parameter"]) == (
        "urn:gridcast:problem:invalid-parameter", "Bad Request", 400, parameter)
    assert problem["errors"] == {parameter: [problem["detail"]]}
    assert re.search(detail, problem["detail"]), problem


def test_a_known_location_without_a_forecast_is_a_404_problem(base_url):
    response = get(base_url, location="FR")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == "urn:gridcast:problem:no-forecast"
    assert response.json()["detail"] == "no forecast for zone FR yet"


def test_no_predictions_at_all_is_a_404_even_without_configured_zones(serve):
    base_url = serve(GR.iloc[0:0], zones=())
    response = get(base_url, location="GR")
    assert (response.status_code, response.json()["type"]) == (
        404, "urn:gridcast:problem:no-forecast")


def test_without_configured_zones_the_zones_with_predictions_are_the_known_ones(serve):
    base_url = serve(GR, zones=())
    problem = get(base_url, location="DE").json()
    assert (problem["status"], problem["detail"]) == (
        400, "unknown location 'DE'; choose one of: GR")


def test_an_unknown_path_is_a_404_problem(base_url):
    response = requests.get(base_url + "/emissions/forecasts/latest?location=GR", timeout=10)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == "urn:gridcast:problem:not-found"
    assert response.json()["instance"] == "/emissions/forecasts/latest"


def test_other_methods_are_a_405_problem_that_allows_get(base_url):
    response = requests.post(base_url + URL, timeout=10)
    assert (response.status_code, response.headers["Allow"]) == (405, "GET")
    assert response.json()["type"] == "urn:gridcast:problem:method-not-allowed"


def test_a_failing_provider_is_a_500_problem_that_does_not_leak_the_error(serve):
    def broken() -> pd.DataFrame:
        raise OSError("cannot open s3://bucket?token=secret")

    response = get(serve(provider=broken), location="GR")
    assert response.status_code == 500
    assert response.json()["detail"] == "the forecast could not be read; see the server log"
    assert "secret" not in response.text


def test_two_model_versions_in_the_newest_forecast_are_a_500_telling_which_setting_to_set(serve):
    both = pd.concat([GR, predictions(version="4")], ignore_index=True)
    problem = get(serve(both), location="GR").json()
    assert (problem["status"], problem["type"]) == (
        500, "urn:gridcast:problem:forecast-unavailable")
    assert "model versions 3, 4; pass model_version" in problem["detail"]


def test_the_configured_model_version_is_the_one_served():
    both = pd.concat([GR, predictions([7.0] * 6, version="4")], ignore_index=True)
    with ForecastServer(lambda: both, ServeSettings(port=0, model_version="4")) as server:
        [forecast] = get(server.base_url, location="GR").json()
    assert {p["value"] for p in forecast["forecastData"]} == {7.0}


def test_the_provider_is_read_on_every_request(serve):
    frames = [GR, predictions([5.0] * 6, issued_at=T0)]
    base_url = serve(provider=lambda: frames[0])
    assert get(base_url, location="GR").json()[0]["generatedAt"] == "2025-03-10T23:00:00Z"
    frames.reverse()
    assert get(base_url, location="GR").json()[0]["generatedAt"] == "2025-03-11T00:00:00Z"


def test_stop_lets_a_request_in_flight_finish_then_refuses_connections():
    def slow() -> pd.DataFrame:
        time.sleep(0.5)
        return GR

    server = ForecastServer(slow, ServeSettings(port=0)).start()
    base_url = server.base_url
    answers: list[requests.Response] = []
    client = threading.Thread(target=lambda: answers.append(get(base_url, location="GR")))
    client.start()
    time.sleep(0.2)  # the request is inside the provider now
    server.stop()
    client.join(timeout=10)
    assert answers[0].status_code == 200
    with pytest.raises(requests.ConnectionError):
        get(base_url, location="GR")


def test_the_serving_process_stops_cleanly_on_sigterm_and_logs_no_queries(tmp_path):
    script = tmp_path / "serve_once.py"
    script.write_text(
        "import logging, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_windows import predictions\n"
        "from gridcast.serve import ServeSettings, serve_until_signalled\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stderr)\n"
        "frame = predictions()\n"
        "serve_until_signalled(lambda: frame, ServeSettings(port=0))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(["src", os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE, text=True,
                               env=env, cwd=Path(__file__).parents[1])
    try:
        first_line = process.stderr.readline()
        base_url = first_line.split(" on ")[1].split("/emissions")[0]
        assert get(base_url, location="GR", windowSize=120).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
    log = first_line + process.stderr.read()
    assert "serving carbon-intensity forecasts on http://127.0.0.1:" in log
    assert "stopped serving" in log
    assert "windowSize" not in log and "GET" not in log


def test_serve_settings_from_a_mapping_keep_defaults_and_refuse_unknown_keys():
    assert ServeSettings.from_mapping({"zones": ["GR"]}) == ServeSettings(port=8090, zones=("GR",))
    with pytest.raises(ConfigError, match="unknown serve setting.* prot; choose from"):
        ServeSettings.from_mapping({"prot": 1})
    with pytest.raises(ConfigError, match="serve.port must be between 0 and 65535, got 70000"):
        ServeSettings.from_mapping({"port": 70000})
