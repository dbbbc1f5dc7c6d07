"""The API clients against the real replay server over real HTTP: retries, backoff, auth, scrubbing."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import pytest

from gridcast.config import Location
from gridcast.sources.electricitymaps import ElectricityMapsClient
from gridcast.sources.http import AuthError, HttpClient, RetriesExhaustedError, RetryPolicy
from gridcast.replay import FaultSettings, ReplayServer
from gridcast.sources.secrets import Secret
from gridcast.sources.visualcrossing import VisualCrossingClient
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
        "include": "hours", "contentType": "csv", "timezone": "Z",
    }
    header = response.body.splitlines()[0]
    assert header.startswith("name,datetime,temp,") and header.endswith(",stations")
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
