"""The API clients against the real replay server over real HTTP: retries, backoff, auth, scrubbing."""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gridcast.config import Location
from gridcast.sources.electricitymaps import ElectricityMapsClient
from gridcast.hours import HOUR, floor_hour
from gridcast.replay import FaultSettings, ReplayServer
from gridcast.sources.http import (
    AccessDeniedError,
    AuthError,
    HttpClient,
    RetriesExhaustedError,
    RetryPolicy,
)
from gridcast.sources.secrets import Secret
from gridcast.sources.visualcrossing import VisualCrossingClient, window_days
from replay_fixtures import build_tiny_recording

ATHENS = Location("Athens", 37.98, 23.73)
EM_TOKEN = "em-test-token-0123456789abcdef"
VC_KEY = "vc-test-key-ABCDEFGHIJKLMNOP"


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return build_tiny_recording(tmp_path_factory.mktemp("http"), hours=96)


@pytest.fixture
def server(recording):
    now = recording.start + timedelta(hours=60, minutes=30)
    with ReplayServer(recording.path, now=now, faults=FaultSettings(latency_s=1.0),
                      tokens={"electricitymaps": EM_TOKEN, "visualcrossing": VC_KEY}) as running:
        yield running


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def clients(server, *, em_token=EM_TOKEN, vc_key=VC_KEY, retries=3, timeout=5.0):
    sleeps = Sleeps()
    http = HttpClient(RetryPolicy(timeout_s=timeout, max_retries=retries, backoff_s=0.2, backoff_max_s=0.5),
                      sleep=sleeps, seed=1)
    em = ElectricityMapsClient(server.electricitymaps_url, Secret(em_token), http)
    vc = VisualCrossingClient(server.visualcrossing_url, Secret(vc_key), http)
    return em, vc, sleeps


def test_history_succeeds_first_time_with_safe_params(server):
    em, _, sleeps = clients(server)
    response = em.history("carbon-intensity", "GR")
    assert response.ok and response.attempts == 1 and not sleeps
    assert len(json.loads(response.body)["history"]) >= 23
    assert response.params == {"zone": "GR"}


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retryable_status_is_retried_then_succeeds(server, status):
    em, _, sleeps = clients(server)
    server.fail_next("carbon-intensity/history", "status", count=2, status=status)
    response = em.history("carbon-intensity", "GR")
    assert response.ok and response.attempts == 3
    assert len(sleeps) == 2
    # Exponential backoff with full jitter, capped: attempt n waits at most min(cap, base * 2^(n-1)).
    assert 0 <= sleeps[0] <= 0.2 and 0 <= sleeps[1] <= 0.4


def test_retries_exhausted_raise_a_clear_error_with_the_last_response(server):
    em, _, sleeps = clients(server, retries=2)
    server.fail_next("power-breakdown/history", "status", count=5, status=503)
    with pytest.raises(RetriesExhaustedError, match=r"Electricity Maps power-breakdown/history failed after 3 attempts: HTTP 503") as caught:
        em.history("power-breakdown", "GR")
    assert caught.value.response.status == 503
    assert len(sleeps) == 2


def test_a_timeout_is_retried(server):
    em, _, _ = clients(server, timeout=0.3)
    server.fail_next("carbon-intensity/history", "latency", count=1)
    response = em.history("carbon-intensity", "GR")
    assert response.ok and response.attempts == 2


def test_non_retryable_client_error_is_returned_not_retried(server):
    _, vc, sleeps = clients(server)
    response = vc.timeline(Location("Nowhere", 0.0, 0.0))
    assert response.status == 400 and response.attempts == 1 and not sleeps
    assert response.body.startswith("Bad API Request")


@pytest.mark.parametrize("kind", ["malformed", "truncated"])
def test_broken_bodies_come_back_as_they_are(server, kind):
    em, _, _ = clients(server)
    server.fail_next("power-breakdown/history", kind)
    response = em.history("power-breakdown", "GR")
    assert response.status == 200 and response.attempts == 1
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.body)


def test_electricitymaps_401_names_the_secret_and_never_the_token(server):
    wrong = "em-WRONG-token-zzzzzzzzzzzz"
    em, _, _ = clients(server, em_token=wrong)
    with pytest.raises(AuthError, match=r"HTTP 401\). Check the environment variable ELECTRICITYMAPS_TOKEN \(on Databricks: secret scope 'APIs', key 'electricitymaps-token'\)") as caught:
        em.history("carbon-intensity", "GR")
    assert wrong not in str(caught.value) and EM_TOKEN not in str(caught.value)
    assert caught.value.__cause__ is None


def test_visualcrossing_401_echoes_the_key_but_the_error_does_not(server, caplog):
    wrong = "vc-WRONG-key-yyyyyyyyyyyy"
    _, vc, _ = clients(server, vc_key=wrong)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthError, match=r"VISUALCROSSING_TOKEN.*'vissualcrossing-token'") as caught:
        vc.timeline(ATHENS)
    assert wrong not in str(caught.value)
    # urllib3 logs the request line with its query string at DEBUG: the key must be masked there.
    assert "key=***" in caplog.text
    assert wrong not in caplog.text


def test_unreachable_server_error_does_not_leak_the_key(recording):
    with ReplayServer(recording.path, now=recording.start + timedelta(hours=30)) as server:
        url = server.visualcrossing_url
    http = HttpClient(RetryPolicy(timeout_s=1, max_retries=1, backoff_s=0), sleep=lambda _: None)
    vc = VisualCrossingClient(url, Secret(VC_KEY), http)
    with pytest.raises(RetriesExhaustedError, match="failed after 2 attempts: ConnectionError") as caught:
        vc.timeline(ATHENS)
    assert VC_KEY not in str(caught.value)
    assert VC_KEY not in (caught.value.response.error or "")
    assert caught.value.__cause__ is None


def test_visualcrossing_asks_for_utc_metric_hourly_csv(server):
    _, vc, _ = clients(server)
    response = vc.timeline(ATHENS)
    assert response.ok
    assert response.params == {
        "location": "37.9800,23.7300", "date1": "yesterday", "date2": "tomorrow", "unitGroup": "metric",
        "include": "hours", "contentType": "csv", "timezone": "Z", "elements": "add:source",
    }
    header = response.body.splitlines()[0]
    assert header.startswith("name,datetime,temp,") and header.endswith(",stations,source")
    assert VC_KEY not in response.params_json
    # The server logs the path with credentials removed.
    assert all(VC_KEY not in record.path for record in server.requests)


def test_past_range_is_chunked_into_ten_day_requests(server, recording):
    em, _, _ = clients(server)
    start = recording.start
    responses = em.past_range("carbon-intensity", "GR", start, start + timedelta(days=25))
    assert [r.params["start"] for r in responses] == [
        (start + timedelta(days=d)).strftime("%Y-%m-%dT%H:%M:%S.000Z") for d in (0, 10, 20)
    ]
    assert responses[-1].params["end"] == (start + timedelta(days=25)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    with pytest.raises(ValueError, match="must be after start"):
        em.past_range("carbon-intensity", "GR", start, start)


# --- 403, redirects and Retry-After, against small real HTTP servers --------------------------

@pytest.mark.parametrize("endpoint", ["history", "latest"])
def test_electricitymaps_403_says_plan_or_zone_not_credentials(server, endpoint):
    em, _, sleeps = clients(server)
    server.fail_next(f"carbon-intensity/{endpoint}", "status", status=403)
    call = em.history if endpoint == "history" else em.latest
    with pytest.raises(AccessDeniedError, match=r"refused carbon-intensity/.* for this token \(HTTP 403\): "
                       r"its plan or zone does not allow this request") as caught:
        call("carbon-intensity", "GR")
    assert "rejected the credentials" not in str(caught.value) and not sleeps


@pytest.mark.parametrize("status", [401, 403])
def test_past_range_refused_names_the_paid_plan(server, recording, status):
    em, _, _ = clients(server)
    server.fail_next("past-range", "status", status=status)
    with pytest.raises(AuthError, match=r"past-range needs a paid Electricity Maps plan"):
        em.past_range("carbon-intensity", "GR", recording.start, recording.start + timedelta(days=1))


Reply = tuple[int, dict[str, str], bytes]


@contextmanager
def http_server(answer: Callable[[BaseHTTPRequestHandler], Reply]) -> Iterator[tuple[str, list]]:
    """A real HTTP server on 127.0.0.1 whose handler calls `answer`; yields its URL and the
    (path, headers) of every request it got."""
    seen: list[tuple[str, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            status, headers, body = answer(self)
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


OK_HISTORY: Reply = (200, {"Content-Type": "application/json"}, b'{"zone":"GR","history":[]}')


def em_client(url: str, *, backoff_max_s: float = 5.0, retries: int = 3):
    sleeps = Sleeps()
    http = HttpClient(RetryPolicy(timeout_s=5, max_retries=retries, backoff_s=0.2,
                                  backoff_max_s=backoff_max_s), sleep=sleeps, seed=1)
    return ElectricityMapsClient(url, Secret(EM_TOKEN), http), sleeps


def test_redirect_to_another_host_drops_the_auth_token():
    with http_server(lambda _: OK_HISTORY) as (other_url, other_seen):
        # Same machine, another host name: requests compares host names, as for any domain.
        target = other_url.replace("127.0.0.1", "localhost")
        with http_server(lambda h: (302, {"Location": f"{target}{h.path}"}, b"")) as (url, seen):
            em, _ = em_client(url)
            assert em.history("carbon-intensity", "GR").ok
    assert seen[0][1]["auth-token"] == EM_TOKEN
    assert [path for path, _ in other_seen] == ["/carbon-intensity/history?zone=GR"]
    assert "auth-token" not in other_seen[0][1]


def test_redirect_on_the_same_host_keeps_the_auth_token():
    def answer(handler):
        if handler.path.startswith("/moved"):
            return OK_HISTORY
        return 301, {"Location": f"/moved{handler.path}"}, b""

    with http_server(answer) as (url, seen):
        em, _ = em_client(url)
        assert em.history("carbon-intensity", "GR").ok
    assert [headers.get("auth-token") for _, headers in seen] == [EM_TOKEN, EM_TOKEN]


def _busy_once(status: int, retry_after: str):
    calls = []

    def answer(_handler):
        calls.append(1)
        if len(calls) == 1:
            return status, {"Retry-After": retry_after, "Content-Type": "application/json"}, (
                b'{"status":"error","message":"busy"}')
        return OK_HISTORY
    return answer


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_is_honoured(status):
    with http_server(_busy_once(status, "2")) as (url, _):
        em, sleeps = em_client(url)
        response = em.history("carbon-intensity", "GR")
    assert response.ok and response.attempts == 2
    assert sleeps == [2.0]


def test_retry_after_beyond_the_budget_is_capped_at_backoff_max():
    with http_server(_busy_once(503, "3600")) as (url, _):
        em, sleeps = em_client(url, backoff_max_s=1.5)
        assert em.history("carbon-intensity", "GR").ok
    assert sleeps == [1.5]


def test_unparsable_retry_after_falls_back_to_the_backoff():
    with http_server(_busy_once(503, "Wed, 21 Oct 2015 07:28:00 GMT")) as (url, _):
        em, sleeps = em_client(url)
        assert em.history("carbon-intensity", "GR").ok
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.2


# --- history clients against the replay server ------------------------------------------------

def test_past_range_chunks_join_into_every_visible_hour_once(server, recording):
    em, _, _ = clients(server)
    start = recording.start + timedelta(hours=2)
    end = floor_hour(server.now) - timedelta(hours=2)
    responses = em.past_range("power-breakdown", "GR", start, end)
    assert all(r.ok for r in responses)
    hours = [entry["datetime"] for r in responses for entry in json.loads(r.body)["data"]]
    expected = [start + HOUR * i for i in range(int((end - start) / HOUR))]
    missing = recording.missing_hour
    assert hours == [t.strftime("%Y-%m-%dT%H:%M:%S.000Z") for t in expected if t != missing]


def test_past_range_splits_at_240_hours(server, recording):
    em, _, _ = clients(server)
    start = recording.start
    responses = em.past_range("carbon-intensity", "GR", start, start + timedelta(hours=241))
    assert [(r.params["start"], r.params["end"]) for r in responses] == [
        (f"{start:%Y-%m-%dT%H:%M:%S}.000Z", f"{start + timedelta(hours=240):%Y-%m-%dT%H:%M:%S}.000Z"),
        (f"{start + timedelta(hours=240):%Y-%m-%dT%H:%M:%S}.000Z",
         f"{start + timedelta(hours=241):%Y-%m-%dT%H:%M:%S}.000Z"),
    ]


def test_past_range_rejects_naive_datetimes(server):
    em, _, _ = clients(server)
    with pytest.raises(ValueError, match="timezone-aware"):
        em.past_range("carbon-intensity", "GR", datetime(2025, 3, 1), datetime(2025, 3, 2))


def csv_records(body: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body)))


def test_history_returns_observations_for_past_days(server, recording):
    _, vc, _ = clients(server)
    day = recording.start.date()  # the server's now is 60.5 h in: both days are past
    response = vc.history(ATHENS, day, day + timedelta(days=1))
    rows = csv_records(response.body)
    assert response.ok and {r["source"] for r in rows} == {"obs"}
    first = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    assert [r["datetime"] for r in rows] == [
        f"{first + HOUR * i:%Y-%m-%dT%H:%M:%S}" for i in range(48)]
    observed = recording.observations["Athens"].set_index("datetime")
    assert float(rows[5]["temp"]) == observed.loc[first + HOUR * 5, "temp"]


def test_archived_forecast_is_the_first_vintage_issued_on_the_basis_date(server, recording):
    _, vc, _ = clients(server)
    basis = recording.start.date() + timedelta(days=1)
    response = vc.archived_forecast(ATHENS, basis, basis, basis + timedelta(days=1))
    rows = csv_records(response.body)
    assert response.ok and {r["source"] for r in rows} == {"histfcst"}
    assert response.params["forecastBasisDate"] == basis.isoformat()
    issued = datetime(basis.year, basis.month, basis.day, tzinfo=timezone.utc)
    vintage = recording.forecasts["Athens"]
    vintage = vintage[vintage["issued_at"] == issued]
    last = issued + timedelta(days=2)
    expected = vintage[vintage["datetime"] < last]
    assert [r["datetime"] for r in rows] == [f"{t:%Y-%m-%dT%H:%M:%S}" for t in expected["datetime"]]
    assert [float(r["temp"]) for r in rows] == expected["temp"].tolist()


@pytest.mark.parametrize("days_from_start, reason", [(-30, "before the recording"),
                                                     (3, "issued after the simulated now")])
def test_archived_forecast_without_a_vintage_is_a_400(server, recording, days_from_start, reason):
    _, vc, sleeps = clients(server)
    basis = recording.start.date() + timedelta(days=days_from_start)
    response = vc.archived_forecast(ATHENS, basis, basis, basis)
    assert response.status == 400 and not sleeps, reason
    assert response.body == (f"Bad API Request:No archived forecast for forecastBasisDate "
                             f"{basis.isoformat()} at this location.")


def test_history_with_date2_before_date1_is_refused_before_any_request(server):
    _, vc, _ = clients(server)
    with pytest.raises(ValueError, match="before date1"):
        vc.history(ATHENS, date(2025, 3, 10), date(2025, 3, 9))
    assert not server.requests


@pytest.fixture(scope="module")
def twelve_hourly(tmp_path_factory):
    # As the embedded recording: a vintage every 12 h reaching 54 h ahead.
    return build_tiny_recording(tmp_path_factory.mktemp("vintages"), hours=24 * 5,
                                forecast_every_hours=12, forecast_horizon_hours=54)


@pytest.mark.parametrize("horizon", [24, 48, 72])
def test_scheduled_weather_window_reaches_the_horizon(twelve_hourly, horizon):
    now = twelve_hourly.start + timedelta(days=2, hours=21)  # a late fetch: 21:00 UTC
    vintage_issued = twelve_hourly.start + timedelta(days=2, hours=12)
    with ReplayServer(twelve_hourly.path, now=now) as replay:
        _, vc, _ = clients(replay)
        response = vc.timeline(ATHENS, *window_days(now, horizon))
    rows = csv_records(response.body)
    times = [datetime.fromisoformat(r["datetime"]).replace(tzinfo=timezone.utc) for r in rows]
    assert times[0] <= now - timedelta(hours=24)
    assert times == [times[0] + HOUR * i for i in range(len(times))]
    # The forecast reaches now + horizon, or as far as the newest vintage reaches (54 h).
    assert times[-1] >= min(now + timedelta(hours=horizon), vintage_issued + timedelta(hours=54))
    assert times[-1] <= vintage_issued + timedelta(hours=54)
    assert {r["source"] for r in rows if datetime.fromisoformat(r["datetime"]).replace(
        tzinfo=timezone.utc) > now} == {"fcst"}
