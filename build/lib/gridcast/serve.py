"""A local HTTP API over gridcast's forecasts, in the Carbon Aware SDK's WebAPI shape.

`GET /emissions/forecasts/current?location=GR&dataStartAt=...&dataEndAt=...&windowSize=<min>`
answers what the Green Software Foundation's Carbon Aware SDK answers for its endpoint of that
name (one `EmissionsForecastDTO` per location), so tools written against the SDK can ask gridcast
instead. Deviations are listed in docs/decisions/0013-green-windows.md.

The server reads through a provider, `() -> pd.DataFrame` in the
`gold.carbon_intensity_predictions` contract, called once per request: the serve step passes a
Delta reader, tests pass a frame. Errors are RFC 7807 problem details.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import parse_qs, urlsplit

import pandas as pd

from gridcast.config import ConfigError
from gridcast.httpserver import HOST, BackgroundServer
from gridcast.settings import settings_from_mapping
from gridcast.windows import (
    HOUR,
    NoForecastError,
    WindowError,
    candidate_windows,
    iso_z,
    latest_forecast,
    optimal_windows,
    parse_iso_time,
)

log = logging.getLogger(__name__)

FORECASTS_CURRENT = "/emissions/forecasts/current"
PARAMETERS = ("location", "dataStartAt", "dataEndAt", "windowSize")
# The library's argument names, as the API calls them.
_API_PARAMETER = {"zone": "location", "earliest": "dataStartAt", "deadline": "dataEndAt",
                  "duration_h": "windowSize"}
# In a query string "+" means a space, so an unencoded "+02:00" offset arrives as " 02:00".
_SPACE_OFFSET = re.compile(r" (\d{2}(:?\d{2})?)$")

PredictionsProvider = Callable[[], pd.DataFrame]


@dataclass(frozen=True)
class ServeSettings:
    """What `steps/serve.py` asks for.

    `zones`: the locations the API knows (empty: any zone that has predictions); a known zone
    without a forecast is a 404, an unknown one a 400. `model_version`: read only this version
    (the champion's); default the version of each zone's newest forecast.
    """

    port: int = 8090
    zones: tuple[str, ...] = ()
    model_version: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"serve.port must be between 0 and 65535, got {self.port}")
        object.__setattr__(self, "zones", tuple(self.zones))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> ServeSettings:
        """Settings from a plain mapping (Hydra's `serve` group); unknown keys are an error."""
        return settings_from_mapping(cls, mapping, "serve")


class Problem(Exception):
    """An RFC 7807 problem: the HTTP answer to a request that cannot be served."""

    def __init__(self, status: HTTPStatus, kind: str, detail: str,
                 parameter: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail, self.parameter = status, kind, detail, parameter

    def body(self, instance: str) -> dict[str, Any]:
        problem: dict[str, Any] = {
            "type": f"urn:gridcast:problem:{self.kind}",
            "title": self.status.phrase,
            "status": int(self.status),
            "detail": self.detail,
            "instance": instance,
        }
        if self.parameter is not None:
            problem["parameter"] = self.parameter
            # ASP.NET's ValidationProblemDetails member, which the SDK's own WebAPI answers with.
            problem["errors"] = {self.parameter: [self.detail]}
        return problem


def _bad(parameter: str, detail: str) -> Problem:
    return Problem(HTTPStatus.BAD_REQUEST, "invalid-parameter", detail, parameter)


def _single(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name, [])
    if len(values) > 1:
        raise _bad(name, f"{name} was given {len(values)} times; give it once")
    return values[0] if values else None


def _time(query: Mapping[str, list[str]], name: str) -> pd.Timestamp | None:
    raw = _single(query, name)
    if raw is None or raw == "":
        return None
    stamp = parse_iso_time(_SPACE_OFFSET.sub(r"+\1", raw.strip()))
    if stamp is None:
        raise _bad(name, f"{name}: cannot read {raw!r} as an ISO-8601 time, "
                         "e.g. 2025-03-11T06:00:00Z")
    # The SDK reads a time without an offset as UTC too (its examples are all UTC).
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _window_minutes(query: Mapping[str, list[str]]) -> int:
    raw = _single(query, "windowSize")
    if raw is None or raw == "":
        return 60  # the SDK's default: one forecast data point
    try:
        minutes = int(raw)
    except ValueError:
        raise _bad("windowSize",
                   f"windowSize must be a whole number of minutes, got {raw!r}") from None
    if minutes <= 0:
        raise _bad("windowSize", f"windowSize must be more than 0 minutes, got {minutes}")
    return minutes


def _data_point(location: str, start: pd.Timestamp, minutes: int, value: float) -> dict[str, Any]:
    return {"location": location, "timestamp": iso_z(start), "duration": minutes,
            "value": float(value)}


def forecasts_current(query: Mapping[str, list[str]], predictions: pd.DataFrame,
                      settings: ServeSettings, requested_at: datetime) -> list[dict[str, Any]]:
    """The body of `GET /emissions/forecasts/current`: one forecast object per location.

    Args:
        query: the parsed query string (`parse_qs`), each name to its list of values.
        predictions: frame in the `gold.carbon_intensity_predictions` contract.
        settings: the known zones and the model version to read.
        requested_at: when the request arrived (aware).

    Returns:
        `EmissionsForecastDTO` objects: `forecastData` holds every window's mean in start order,
        `optimalDataPoints` every window tied at the lowest mean.

    Raises:
        Problem: 400 naming the bad parameter, 404 when a location has no forecast yet.
    """
    unknown = sorted(set(query) - set(PARAMETERS))
    if unknown:
        raise _bad(unknown[0], f"unknown parameter {unknown[0]}; "
                               f"this endpoint takes {', '.join(PARAMETERS)}")
    locations = [loc for value in query.get("location", []) for loc in value.split(",") if loc]
    if not locations:
        raise _bad("location", "location is required, e.g. location=GR")
    start, end = _time(query, "dataStartAt"), _time(query, "dataEndAt")
    minutes = _window_minutes(query)
    if start is not None and end is not None:
        if start > end:
            raise _bad("dataStartAt", f"dataStartAt {iso_z(start)} is after dataEndAt "
                                      f"{iso_z(end)}")
        if pd.Timedelta(minutes=minutes) > end - start:
            raise _bad("windowSize", f"windowSize {minutes} min is longer than the "
                                     f"{(end - start) / pd.Timedelta(minutes=1):g} min from "
                                     "dataStartAt to dataEndAt")
    known = set(settings.zones) if settings.zones else set(predictions["zone"].unique())
    answers = []
    for location in locations:
        if location not in known and (settings.zones or not predictions.empty):
            raise _bad("location", f"unknown location {location!r}; choose one of: "
                                   f"{', '.join(sorted(known))}")
        answers.append(_forecast(location, predictions, settings, start, end, minutes,
                                 requested_at))
    return answers


def _forecast(location: str, predictions: pd.DataFrame, settings: ServeSettings,
              start: pd.Timestamp | None, end: pd.Timestamp | None, minutes: int,
              requested_at: datetime) -> dict[str, Any]:
    try:
        forecast = latest_forecast(predictions, location, settings.model_version)
        windows = candidate_windows(forecast, duration_h=minutes / 60, earliest=start,
                                    deadline=end)
    except NoForecastError as exc:
        raise Problem(HTTPStatus.NOT_FOUND, "no-forecast", str(exc)) from exc
    except WindowError as exc:
        parameter = _API_PARAMETER.get(exc.parameter or "")
        if parameter is None:
            # Not the request's fault (the table, or which model version to serve): the message
            # is a GridcastError's, safe to show and saying what the operator should fix.
            log.error("cannot serve %s: %s", location, exc)
            raise Problem(HTTPStatus.INTERNAL_SERVER_ERROR, "forecast-unavailable",
                          str(exc)) from exc
        if parameter == "windowSize":
            detail = f"windowSize {minutes} min does not fit: {exc}"
        else:
            # The library's messages name its own arguments; say them as the API does.
            detail = str(exc).replace("earliest", "dataStartAt").replace("deadline", "dataEndAt")
        raise _bad(parameter, detail) from exc
    data_start = start if start is not None else forecast["datetime"].iloc[0]
    data_end = end if end is not None else forecast["datetime"].iloc[-1] + HOUR
    return {
        "generatedAt": iso_z(forecast["issued_at"].iloc[0]),
        "requestedAt": iso_z(requested_at),
        "location": location,
        "dataStartAt": iso_z(data_start),
        "dataEndAt": iso_z(data_end),
        "windowSize": minutes,
        "optimalDataPoints": [_data_point(location, row.start, minutes, row.mean_intensity)
                              for row in optimal_windows(windows).itertuples()],
        "forecastData": [_data_point(location, row.start, minutes, row.mean_intensity)
                         for row in windows.itertuples()],
    }


class _Server(ThreadingHTTPServer):
    # Graceful stop: server_close() waits for the requests in flight to finish.
    daemon_threads = False
    block_on_close = True

    def __init__(self, port: int, provider: PredictionsProvider, settings: ServeSettings,
                 clock: Callable[[], datetime]) -> None:
        self.provider, self.settings, self.clock = provider, settings, clock
        super().__init__((HOST, port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback for a client that hung up; that is routine.
        log.debug("connection error from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "gridcast-serve/1"
    sys_version = ""
    timeout = 30  # a client that sends nothing frees its thread

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        try:
            if path != FORECASTS_CURRENT:
                raise Problem(HTTPStatus.NOT_FOUND, "not-found",
                              f"no endpoint {path}; try GET {FORECASTS_CURRENT}")
            query = parse_qs(url.query, keep_blank_values=True)
            body = forecasts_current(query, self.server.provider(), self.server.settings,
                                     self.server.clock())
            self._send(HTTPStatus.OK, "application/json", body)
        except Problem as problem:
            self._send(problem.status, "application/problem+json", problem.body(path))
        except Exception:
            log.exception("serving %s failed", path)  # the path only: queries are noise
            problem = Problem(HTTPStatus.INTERNAL_SERVER_ERROR, "internal",
                              "the forecast could not be read; see the server log")
            self._send(problem.status, "application/problem+json", problem.body(path))

    def _refuse(self) -> None:
        path = urlsplit(self.path).path
        problem = Problem(HTTPStatus.METHOD_NOT_ALLOWED, "method-not-allowed",
                          f"{self.command} is not allowed; this API answers GET")
        self._send(problem.status, "application/problem+json", problem.body(path),
                   extra_headers={"Allow": "GET"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815

    def _send(self, status: HTTPStatus, content_type: str, body: Any,
              extra_headers: Mapping[str, str] | None = None) -> None:
        payload = json.dumps(body, allow_nan=False).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (extra_headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        log.debug("%s %s -> %d", self.command, urlsplit(self.path).path, status)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silenced: one line per request with its whole query string is noise."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ForecastServer(BackgroundServer):
    """The HTTP API on 127.0.0.1, serving in a background thread.

    Args:
        provider: returns the predictions frame; called once per request.
        settings: port (0 picks a free one), known zones, model version.
        clock: the request time (`requestedAt`); default the wall clock.
    """

    _thread_name = "gridcast-serve"

    def __init__(self, provider: PredictionsProvider, settings: ServeSettings | None = None,
                 *, clock: Callable[[], datetime] = _utc_now) -> None:
        self.provider, self.settings, self.clock = provider, settings or ServeSettings(), clock
        super().__init__()

    def _make_server(self) -> _Server:
        return _Server(self.settings.port, self.provider, self.settings, self.clock)

    def _started(self) -> None:
        log.info("serving carbon-intensity forecasts on %s%s", self.base_url, FORECASTS_CURRENT)

    def _stopped(self) -> None:
        log.info("stopped serving")


def serve_until_signalled(provider: PredictionsProvider, settings: ServeSettings | None = None,
                          *, signals: Sequence[signal.Signals] = (signal.SIGINT,
                                                                  signal.SIGTERM)) -> None:
    """Serve until SIGINT or SIGTERM, then stop gracefully (for `steps/serve.py`, main thread)."""
    stopping = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in signals}
    try:
        with ForecastServer(provider, settings):
            stopping.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
