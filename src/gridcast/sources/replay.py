"""Local replay server: Electricity Maps v3 and Visual Crossing Timeline over a recording.

:class:`ReplayServer` serves a :class:`~gridcast.recording.Recording` on 127.0.0.1 (ephemeral
port, daemon thread) in both providers' wire formats, on a simulated clock: asked at simulated
time N, it answers what the real API would have answered at N (``docs/replay-format.md``).
It can inject faults (error statuses, latency, truncated and malformed bodies), randomly with a
seeded RNG or scripted per request, so that clients' retry and quarantine paths get exercised.

It never writes to stderr per request: the default ``BaseHTTPRequestHandler`` logs the request
line, which carries the Visual Crossing key. The request log (``ReplayServer.requests``) keeps
the path with credential parameters removed.

Usage::

    now = datetime(2025, 3, 11, 9, tzinfo=UTC)
    with ReplayServer("data/recordings/gr-2024-2025", now=now) as srv:
        requests.get(f"{srv.electricitymaps_url}/carbon-intensity/history", params={"zone": "GR"})
        srv.set_now(now + timedelta(hours=1))
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from gridcast.recording import (
    ENERGY_SOURCES,
    HOUR_S,
    WEATHER_VARIABLES,
    EnergySeries,
    Location,
    Recording,
    WeatherTable,
    load_recording,
)

log = logging.getLogger(__name__)

FAULT_KINDS = ("status", "latency", "truncated", "malformed")
EM_PREFIX = "/v3"
VC_PREFIX = "/VisualCrossingWebServices/rest/services/timeline"
MAX_PAST_RANGE = timedelta(days=10)
MAX_WEATHER_DAYS = 400  # keeps one request from rendering years of rows by accident
# Query parameters that carry credentials: dropped from the request log and fault matching.
_CREDENTIAL_PARAMS = frozenset({"key", "apikey", "api_key", "token", "auth-token", "auth_token"})

_JSON = "application/json; charset=utf-8"
_CSV = "text/csv; charset=utf-8"
_TEXT = "text/plain; charset=utf-8"
_UTC = timezone.utc


@dataclass(frozen=True)
class FaultConfig:
    """Random fault injection: ``rate`` of the requests get one of ``kinds``.

    Kinds: ``status`` (an error status among ``statuses`` with the API's error body),
    ``latency`` (sleep ``latency_s``, then answer normally), ``truncated`` (status 200, the body
    cut mid-way, Content-Length matching the cut body), ``malformed`` (status 200, invalid JSON
    or garbled CSV rows). Draws come from ``random.Random(seed)``, one per request, so the same
    request sequence gets the same faults.
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = ("status",)
    statuses: tuple[int, ...] = (500, 503, 429)
    latency_s: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        # Accept lists (from YAML config) but store tuples, so the config stays hashable.
        object.__setattr__(self, "kinds", tuple(self.kinds))
        object.__setattr__(self, "statuses", tuple(int(s) for s in self.statuses))
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"FaultConfig.rate must be within [0, 1], got {self.rate}")
        unknown = sorted(set(self.kinds) - set(FAULT_KINDS))
        if unknown or not self.kinds:
            raise ValueError(f"FaultConfig.kinds must be among {FAULT_KINDS}, got {self.kinds}")
        if not self.statuses or any(not 400 <= s <= 599 for s in self.statuses):
            raise ValueError(f"FaultConfig.statuses must be 4xx/5xx codes, got {self.statuses}")
        if self.latency_s < 0:
            raise ValueError("FaultConfig.latency_s must be >= 0")


class RequestRecord(NamedTuple):
    """One served request: method, path with query (credentials removed), status sent."""

    method: str
    path: str
    status: int


@dataclass(frozen=True)
class _Fault:
    kind: str
    status: int = 500


@dataclass
class _ScriptedFault:
    path_contains: str
    fault: _Fault
    remaining: int


@dataclass(frozen=True)
class _Response:
    status: int
    content_type: str
    body: bytes
    api: str  # "em" | "vc" | "other": decides the shape of injected error bodies


class _ApiError(Exception):
    """Raised by a handler to answer with an error response."""

    def __init__(self, response: _Response) -> None:
        super().__init__(response.status)
        self.response = response


# --------------------------------------------------------------------------------------------
# Wire helpers
# --------------------------------------------------------------------------------------------
def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _wire_times(epoch_ms: np.ndarray) -> list[str]:
    """Epoch ms -> Electricity Maps datetimes ``2025-03-11T09:00:00.000Z`` (vectorised)."""
    text = np.datetime_as_string(epoch_ms.astype("datetime64[ms]"), unit="ms")
    return [f"{t}Z" for t in text.tolist()]


def _wire_int(value: float) -> int | None:
    """Electricity Maps sends whole numbers; NaN is null."""
    return None if math.isnan(value) else int(round(value))


def _em_error(status: int, message: str) -> _ApiError:
    return _ApiError(_Response(status, _JSON, _dumps({"status": "error", "message": message}), "em"))


def _em_unauthorized() -> _ApiError:
    return _ApiError(_Response(401, _JSON, _dumps({"error": "Invalid auth-token"}), "em"))


def _vc_error(status: int, text: str) -> _ApiError:
    return _ApiError(_Response(status, _TEXT, text.encode("utf-8"), "vc"))


def _bad_vc_request(reason: str) -> _ApiError:
    return _vc_error(400, f"Bad API Request:{reason}")


def _csv_field(value: str) -> str:
    """Minimal CSV quoting, as Visual Crossing does (only fields with , " or newlines)."""
    if any(ch in value for ch in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _csv_value(value: float | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return _csv_field(value)


# --------------------------------------------------------------------------------------------
# Electricity Maps v3
# --------------------------------------------------------------------------------------------
class _EnergyWire:
    """Wire entries of one zone, serialised lazily and cached per row (rows never change)."""

    def __init__(self, series: EnergySeries) -> None:
        self.series = series
        self.zone = series.zone
        self.datetimes = _wire_times(series.hour_s * 1000)
        self.updated = _wire_times(series.updated_ms)
        self.created = _wire_times(series.created_ms)
        self._carbon: dict[tuple[int, str], bytes] = {}
        self._power: dict[int, bytes] = {}

    def carbon_value(self, row: int, factor: str) -> float:
        values = self.series.carbon_intensity_direct if factor == "direct" else (
            self.series.carbon_intensity)
        return float(values[row])

    def carbon(self, row: int, factor: str) -> bytes:
        cached = self._carbon.get((row, factor))
        if cached is None:
            s = self.series
            cached = _dumps({
                "zone": self.zone,
                "carbonIntensity": _wire_int(self.carbon_value(row, factor)),
                "datetime": self.datetimes[row],
                "updatedAt": self.updated[row],
                "createdAt": self.created[row],
                "emissionFactorType": factor,
                "isEstimated": bool(s.is_estimated[row]),
                "estimationMethod": s.estimation_method[row],
                "temporalGranularity": "hourly",
            })
            self._carbon[(row, factor)] = cached
        return cached

    def power(self, row: int) -> bytes:
        cached = self._power.get(row)
        if cached is None:
            s = self.series
            assert s.production is not None and s.consumption is not None
            assert s.imports is not None and s.exports is not None
            assert s.totals is not None and s.percentages is not None

            def breakdown(keys: Sequence[str], values: np.ndarray) -> dict[str, int | None]:
                return {k: _wire_int(v) for k, v in zip(keys, values.tolist())}

            totals = [_wire_int(v) for v in s.totals[row].tolist()]
            percentages = [_wire_int(v) for v in s.percentages[row].tolist()]
            cached = _dumps({
                "zone": self.zone,
                "datetime": self.datetimes[row],
                "updatedAt": self.updated[row],
                "createdAt": self.created[row],
                "powerConsumptionBreakdown": breakdown(ENERGY_SOURCES, s.consumption[row]),
                "powerProductionBreakdown": breakdown(ENERGY_SOURCES, s.production[row]),
                "powerImportBreakdown": breakdown(s.import_zones, s.imports[row]),
                "powerExportBreakdown": breakdown(s.export_zones, s.exports[row]),
                "fossilFreePercentage": percentages[0],
                "renewablePercentage": percentages[1],
                "powerConsumptionTotal": totals[0],
                "powerProductionTotal": totals[1],
                "powerImportTotal": totals[2],
                "powerExportTotal": totals[3],
                "isEstimated": bool(s.is_estimated[row]),
                "estimationMethod": s.estimation_method[row],
                "temporalGranularity": "hourly",
            })
            self._power[row] = cached
        return cached


def _flag(params: Mapping[str, str], name: str, default: bool = False) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    lowered = value.casefold()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise _em_error(400, f"Invalid value for {name}: expected true or false")


def _em_instant(params: Mapping[str, str], name: str) -> int:
    value = params.get(name)
    if not value:
        raise _em_error(400, f"Missing required parameter: {name}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _em_error(400, f"Invalid {name} datetime: expected ISO-8601") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_UTC)
    return math.ceil(parsed.timestamp())


class _ElectricityMapsApi:
    """``GET /v3/{carbon-intensity|power-breakdown}/{history|latest|past-range}``."""

    ENDPOINTS = ("carbon-intensity", "power-breakdown")
    OPERATIONS = ("history", "latest", "past-range")

    def __init__(self, recording: Recording, token: str | None) -> None:
        self.recording = recording
        self.token = token
        self.wires = {zone: _EnergyWire(series) for zone, series in recording.zones.items()}

    def handle(self, path: str, params: Mapping[str, str], headers: Mapping[str, str],
               now_ms: int) -> _Response:
        parts = path[len(EM_PREFIX):].strip("/").split("/")
        if self.token is not None and headers.get("auth-token") != self.token:
            raise _em_unauthorized()
        if len(parts) != 2 or parts[0] not in self.ENDPOINTS or parts[1] not in self.OPERATIONS:
            raise _em_error(404, f"Unknown endpoint: {path}")
        endpoint, operation = parts
        granularity = params.get("temporalGranularity", "hourly")
        if granularity != "hourly":
            raise _em_error(400, f"temporalGranularity {granularity!r} is not supported by the "
                                 "replay server (only 'hourly')")
        factor = params.get("emissionFactorType", "lifecycle")
        if factor not in ("lifecycle", "direct"):
            raise _em_error(400, "emissionFactorType must be 'lifecycle' or 'direct'")
        include_estimated = not _flag(params, "disableEstimations")
        zone = params.get("zone") or params.get("zoneKey")
        if not zone:
            if "lat" in params or "lon" in params:
                raise _em_error(400, "The replay server resolves zones by key only: pass zone=")
            raise _em_error(400, "Missing required parameter: zone")
        wire = self.wires.get(zone) or self.wires.get(zone.upper())
        if wire is None:
            raise _em_error(404, f'Zone "{zone}" is not available')
        if endpoint == "power-breakdown" and not wire.series.has_power_breakdown:
            raise _em_error(404, f'No power breakdown data for zone "{wire.zone}" '
                                 "(carbon intensity only)")

        now_hour = (now_ms // 1000) // HOUR_S * HOUR_S
        if operation == "past-range":
            start_s, end_s = _em_instant(params, "start"), _em_instant(params, "end")
            if end_s <= start_s:
                raise _em_error(400, "end must be after start")
            if end_s - start_s > MAX_PAST_RANGE.total_seconds():
                raise _em_error(400, "The requested range exceeds the maximum of 10 days "
                                     "for hourly granularity")
            first = -(-start_s // HOUR_S) * HOUR_S
            last = -(-end_s // HOUR_S) * HOUR_S - HOUR_S
        else:
            first, last = now_hour - 23 * HOUR_S, now_hour
        rows = wire.series.visible_rows(first, last, now_ms, include_estimated)

        if endpoint == "carbon-intensity":
            rows = [r for r in rows if not math.isnan(wire.carbon_value(r, factor))]
            entries = [wire.carbon(r, factor) for r in rows]
        else:
            entries = [wire.power(r) for r in rows]
        if not entries:
            raise _em_error(404, f'No recent data for zone "{wire.zone}"')
        zone_json = _dumps(wire.zone)
        if operation == "latest":
            body = entries[-1]
        elif operation == "history":
            body = (b'{"zone":' + zone_json + b',"history":[' + b",".join(entries)
                    + b'],"temporalGranularity":"hourly"}')
        else:
            body = (b'{"zone":' + zone_json + b',"data":[' + b",".join(entries)
                    + b'],"temporalGranularity":"hourly"}')
        return _Response(200, _JSON, body, "em")


# --------------------------------------------------------------------------------------------
# Visual Crossing Timeline
# --------------------------------------------------------------------------------------------
_JSON_HOUR_ORDER = (
    "temp", "feelslike", "humidity", "dew", "precip", "precipprob", "snow", "snowdepth",
    "preciptype", "windgust", "windspeed", "winddir", "sealevelpressure", "visibility",
    "cloudcover", "solarradiation", "solarenergy", "uvindex", "severerisk", "conditions",
    "icon", "stations",
)
_VARIABLE_INDEX = {v: i for i, v in enumerate(WEATHER_VARIABLES)}


@dataclass(frozen=True)
class _WeatherRow:
    time_s: int
    source: str  # "obs" | "fcst"
    fields: tuple[str, ...]  # CSV-formatted WEATHER_VARIABLES
    default_csv: str  # fields joined, for the default column set
    values: tuple[float | str | None, ...]


class _WeatherWire:
    """Rows of one location, formatted lazily and cached (rows never change)."""

    def __init__(self, location: Location) -> None:
        self.location = location
        self._cache: dict[tuple[str, int], _WeatherRow] = {}

    def row(self, source: str, index: int) -> _WeatherRow:
        cached = self._cache.get((source, index))
        if cached is None:
            table: WeatherTable = (
                self.location.observations if source == "obs" else self.location.forecasts)
            values = tuple(table.values(index))
            fields = tuple(_csv_value(v) for v in values)
            cached = _WeatherRow(int(table.time_s[index]), source, fields, ",".join(fields), values)
            self._cache[(source, index)] = cached
        return cached


def _period(token: str, today: date) -> tuple[date, date]:
    """A Visual Crossing date or dynamic period (lower case, as the real API requires)."""
    if token == "today":
        return today, today
    if token == "yesterday":
        return today - timedelta(days=1), today - timedelta(days=1)
    if token == "tomorrow":
        return today + timedelta(days=1), today + timedelta(days=1)
    if token.startswith("last") and token.endswith("days") and token[4:-4].isdigit():
        n = int(token[4:-4])  # lastNdays: N days ago .. yesterday
        return today - timedelta(days=n), today - timedelta(days=1)
    if token.startswith("next") and token.endswith("days") and token[4:-4].isdigit():
        n = int(token[4:-4])  # nextNdays: today .. N days ahead
        return today, today + timedelta(days=n)
    try:
        day = date.fromisoformat(token[:10])
    except ValueError:
        raise _bad_vc_request(f"Invalid date parameter value: {token}") from None
    return day, day


def _day_range(date1: str | None, date2: str | None, today: date) -> tuple[date, date]:
    """First and last calendar day of a timeline request (no dates = 15-day forecast)."""
    if date1 is None:
        return today, today + timedelta(days=14)
    first, last = _period(date1, today)
    if date2 is not None:
        last = _period(date2, today)[1]
    if last < first:
        raise _bad_vc_request("The end date is before the start date.")
    if (last - first).days >= MAX_WEATHER_DAYS:
        raise _bad_vc_request(f"The replay server serves at most {MAX_WEATHER_DAYS} days.")
    return first, last


def _local_midnight(day: date, tz: ZoneInfo | timezone) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())


def _select_columns(elements: str | None) -> tuple[list[str], bool]:
    """Variables to output (in wire order) and whether to add ``source``.

    ``elements=add:source`` adds to the default set, ``remove:x`` removes, a plain list
    restricts the set to those names (``datetime`` and ``name`` are always sent).
    """
    if elements is None:
        return list(WEATHER_VARIABLES), False
    items = [item.strip() for item in elements.split(",") if item.strip()]
    plain = {i for i in items if ":" not in i}
    added = {i[4:] for i in items if i.startswith("add:")}
    removed = {i[7:] for i in items if i.startswith("remove:")}
    chosen = set(WEATHER_VARIABLES) if not plain - {"datetime", "name"} else plain
    chosen = (chosen | added) - removed
    return [v for v in WEATHER_VARIABLES if v in chosen], "source" in chosen


class _VisualCrossingApi:
    """``GET /VisualCrossingWebServices/rest/services/timeline/{location}[/{date1}[/{date2}]]``."""

    def __init__(self, recording: Recording, token: str | None) -> None:
        self.recording = recording
        self.token = token
        self.wires = {name: _WeatherWire(loc) for name, loc in recording.locations.items()}

    def handle(self, path: str, params: Mapping[str, str], now_ms: int) -> _Response:
        segments = [unquote(s) for s in path[len(VC_PREFIX):].strip("/").split("/") if s]
        key = params.get("key", "")
        if self.token is not None and key != self.token:
            # The real API echoes the key in its 401 body; clients must scrub it.
            raise _vc_error(401, f"No account found with API key '{key}'")
        if not segments or len(segments) > 3:
            raise _bad_vc_request("Invalid location parameter value.")
        address = segments[0]
        location = self.recording.find_location(address)
        if location is None:
            raise _bad_vc_request("Invalid location parameter value.")
        unit_group = params.get("unitGroup", "us")
        if unit_group != "metric":
            raise _bad_vc_request(f"The replay server only serves unitGroup=metric "
                                  f"(got {unit_group}).")
        include = {i.strip() for i in params.get("include", "hours").split(",")}
        if "hours" not in include:
            raise _bad_vc_request("The replay server only serves include=hours.")
        content_type = params.get("contentType", "json")
        if content_type not in ("csv", "json"):
            raise _bad_vc_request(f"Invalid contentType: {content_type}")
        tz_param = params.get("timezone")
        tz: ZoneInfo | timezone
        if tz_param in ("Z", "UTC", "z"):
            tz = _UTC
        elif tz_param:
            try:
                tz = ZoneInfo(tz_param)
            except (ZoneInfoNotFoundError, ValueError):
                raise _bad_vc_request(f"Invalid timezone: {tz_param}") from None
        else:
            tz = location.tzinfo

        now_s = now_ms / 1000
        today = datetime.fromtimestamp(now_s, tz).date()
        first_day, last_day = _day_range(
            segments[1] if len(segments) > 1 else None,
            segments[2] if len(segments) > 2 else None,
            today,
        )
        start_s = _local_midnight(first_day, tz)
        end_s = _local_midnight(last_day + timedelta(days=1), tz)
        rows = self._rows(location, start_s, end_s, now_s)
        variables, with_source = _select_columns(params.get("elements"))
        if content_type == "csv":
            body = self._csv(address, rows, tz, variables, with_source)
            return _Response(200, _CSV, body, "vc")
        body = self._json(address, location, rows, tz, variables, first_day, last_day)
        return _Response(200, _JSON, body, "vc")

    def _rows(self, location: Location, start_s: int, end_s: int,
              now_s: float) -> list[_WeatherRow]:
        """Observations up to the current hour H, then the newest vintage issued at or before
        now (hours past its horizon are absent)."""
        wire = self.wires[location.name]
        now_hour = int(now_s) // HOUR_S * HOUR_S
        boundary = min(end_s, now_hour + HOUR_S)
        rows = [wire.row("obs", i) for i in location.observation_rows(start_s, boundary)]
        vintage = location.vintage_at(now_s)
        if vintage is not None and end_s > now_hour + HOUR_S:
            fcst = location.forecast_rows(vintage, max(start_s, now_hour + HOUR_S), end_s)
            rows.extend(wire.row("fcst", i) for i in fcst)
        return rows

    def _csv(self, address: str, rows: list[_WeatherRow], tz: ZoneInfo | timezone,
             variables: list[str], with_source: bool) -> bytes:
        header = ",".join(["name", "datetime", *variables, *(["source"] if with_source else [])])
        name = _csv_field(address)
        default = variables == list(WEATHER_VARIABLES)
        indices = [_VARIABLE_INDEX[v] for v in variables]
        utc = tz is _UTC
        lines = [header]
        for row in rows:
            stamp = (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(row.time_s)) if utc else
                     datetime.fromtimestamp(row.time_s, tz).strftime("%Y-%m-%dT%H:%M:%S"))
            values = row.default_csv if default else ",".join(row.fields[i] for i in indices)
            line = f"{name},{stamp},{values}" if variables else f"{name},{stamp}"
            lines.append(f"{line},{row.source}" if with_source else line)
        return ("\n".join(lines) + "\n").encode("utf-8")

    def _json(self, address: str, location: Location, rows: list[_WeatherRow],
              tz: ZoneInfo | timezone, variables: list[str], first_day: date,
              last_day: date) -> bytes:
        wanted = set(variables)
        days: dict[date, list[tuple[_WeatherRow, datetime]]] = {}
        for row in rows:
            local = datetime.fromtimestamp(row.time_s, tz)
            days.setdefault(local.date(), []).append((row, local))
        day_objects = []
        day = first_day
        while day <= last_day:
            hours = days.get(day, [])
            if hours:
                day_objects.append(_json_day(day, tz, hours, wanted))
            day += timedelta(days=1)
        first_instant = datetime.fromtimestamp(_local_midnight(first_day, tz), tz)
        offset = first_instant.utcoffset() or timedelta(0)
        return _dumps({
            "queryCost": len(rows),
            "latitude": location.lat,
            "longitude": location.lon,
            "resolvedAddress": location.resolved_address,
            "address": address,
            "timezone": "UTC" if tz is _UTC else getattr(tz, "key", str(tz)),
            "tzoffset": offset.total_seconds() / 3600,
            "days": day_objects,
        })


def _json_day(day: date, tz: ZoneInfo | timezone, hours: list[tuple[_WeatherRow, datetime]],
              wanted: set[str]) -> dict[str, Any]:
    """A JSON day: a few daily aggregates (a subset of the real API's) and its hours."""
    hour_objects = []
    for row, local in hours:
        entry: dict[str, Any] = {
            "datetime": local.strftime("%H:%M:%S"), "datetimeEpoch": row.time_s}
        for variable in _JSON_HOUR_ORDER:
            if variable not in wanted:
                continue
            value = row.values[_VARIABLE_INDEX[variable]]
            if variable in ("preciptype", "stations"):
                value = value.split(",") if isinstance(value, str) else None
            entry["pressure" if variable == "sealevelpressure" else variable] = value
        entry["source"] = row.source
        hour_objects.append(entry)
    temps = [r.values[_VARIABLE_INDEX["temp"]] for r, _ in hours]
    temps = [t for t in temps if isinstance(t, float)]
    precips = [r.values[_VARIABLE_INDEX["precip"]] for r, _ in hours]
    sources = {r.source for r, _ in hours}
    return {
        "datetime": day.isoformat(),
        "datetimeEpoch": _local_midnight(day, tz),
        "tempmax": max(temps) if temps else None,
        "tempmin": min(temps) if temps else None,
        "temp": round(sum(temps) / len(temps), 1) if temps else None,
        "precip": round(sum(p for p in precips if isinstance(p, float)), 3),
        "source": sources.pop() if len(sources) == 1 else "comb",
        "hours": hour_objects,
    }


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------
_EM_STATUS_MESSAGES = {
    400: "Bad request", 404: "Not found", 429: "Too many requests",
    500: "Internal server error", 502: "Bad gateway", 503: "Service unavailable",
    504: "Gateway timeout",
}
_VC_STATUS_TEXTS = {
    429: "Maximum daily cost exceeded", 500: "Internal server error",
    502: "Bad gateway", 503: "Service unavailable", 504: "Gateway timeout",
}


def _fault_status_response(api: str, status: int, key: str) -> _Response:
    """An injected error status, with the body the provider would send."""
    if api == "vc":
        if status == 401:
            text = f"No account found with API key '{key}'"
        elif status == 400:
            text = "Bad API Request:Invalid location parameter value."
        else:
            text = _VC_STATUS_TEXTS.get(status, f"HTTP error {status}")
        return _Response(status, _TEXT, text.encode("utf-8"), api)
    if status == 401:
        return _Response(status, _JSON, _dumps({"error": "Invalid auth-token"}), api)
    if status == 403:
        return _Response(status, _TEXT, b"Access denied", api)
    message = _EM_STATUS_MESSAGES.get(status, f"HTTP error {status}")
    return _Response(status, _JSON, _dumps({"status": "error", "message": message}), api)


def truncate_body(body: bytes, is_csv: bool) -> bytes:
    """Cut a payload mid-way; a CSV is cut inside a line, so its last row is incomplete."""
    if len(body) < 2:
        return b""
    middle = len(body) // 2
    if not is_csv:
        return body[:middle]
    line_start = body.rfind(b"\n", 0, middle) + 1
    line_end = body.find(b"\n", middle)
    line_end = len(body) if line_end < 0 else line_end
    return body[: line_start + max(1, (line_end - line_start) // 2)]


def garble_body(body: bytes, is_csv: bool) -> bytes:
    """Corrupt a payload so it no longer parses: JSON loses its colons in the second half;
    CSV rows alternately get ';' separators (wrong field count)."""
    if not is_csv:
        middle = len(body) // 2
        garbled = body[:middle] + body[middle:].replace(b":", b"")
        try:
            json.loads(garbled)
        except ValueError:
            return garbled
        return b"{" + body  # no colon to remove (a tiny payload): unbalance it instead
    lines = body.split(b"\n")
    data_lines = [i for i in range(1, len(lines)) if lines[i]]
    if not data_lines:
        return body + b"\x00\x00garbled\x00\n"
    for n, i in enumerate(data_lines):
        if n % 2 == 0:
            lines[i] = lines[i].replace(b",", b";")
    return b"\n".join(lines)


def _mangle(response: _Response, kind: str) -> _Response:
    if response.status != 200:
        return response  # only successful payloads get cut or garbled
    is_csv = response.content_type.startswith("text/csv")
    body = truncate_body(response.body, is_csv) if kind == "truncated" else (
        garble_body(response.body, is_csv))
    return _Response(200, response.content_type, body, response.api)


def strip_credentials(raw_path: str) -> str:
    """Path with query, credential parameters removed (original encoding of the rest kept)."""
    path, _, query = raw_path.partition("?")
    if not query:
        return path
    kept = [part for part in query.split("&")
            if unquote(part.partition("=")[0]).casefold() not in _CREDENTIAL_PARAMS]
    return f"{path}?{'&'.join(kept)}" if kept else path


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------
class _QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, server: ReplayServer) -> None:
        self.replay = server
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up on kept-alive clients, so a stopped server answers nothing more."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr; a client hanging up is routine here.
        log.debug("replay server: connection error from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a requests.Session reuses its connection
    disable_nagle_algorithm = True  # headers and body are two writes; avoid a 40 ms stall
    server_version = "gridcast-replay/1"
    sys_version = ""
    timeout = 60  # idle keep-alive connections free their thread eventually
    server: _QuietHTTPServer

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        response = self.server.replay._respond(self.command, self.path, self.headers)
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silenced: the request line carries the Visual Crossing key."""


class ReplayServer:
    """Serves a recording over HTTP in Electricity Maps v3 and Visual Crossing wire formats.

    Args:
        recording: a recording directory or a loaded :class:`Recording`.
        now: the simulated clock's start (timezone-aware).
        faults: random fault injection, off by default.
        tokens: ``{"electricitymaps": ..., "visualcrossing": ...}``; a missing key (or None)
            accepts any token or none.
    """

    def __init__(
        self,
        recording: str | Path | Recording,
        *,
        now: datetime,
        faults: FaultConfig | None = None,
        tokens: Mapping[str, str] | None = None,
    ) -> None:
        self.recording = (
            recording if isinstance(recording, Recording) else load_recording(recording))
        self.faults = faults or FaultConfig()
        tokens = dict(tokens or {})
        self._em = _ElectricityMapsApi(self.recording, tokens.get("electricitymaps"))
        self._vc = _VisualCrossingApi(self.recording, tokens.get("visualcrossing"))
        self._now_ms = _to_epoch_ms(now)
        self._rng = random.Random(self.faults.seed)
        self._lock = threading.Lock()
        self._scripted: list[_ScriptedFault] = []
        self.requests: list[RequestRecord] = []
        self._http: _QuietHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> ReplayServer:
        """Bind 127.0.0.1 on an ephemeral port and serve in a daemon thread."""
        if self._http is not None:
            return self
        self._http = _QuietHTTPServer(self)
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"replay-server-{self.port}", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._http is None:
            return
        self._http.shutdown()
        self._http.server_close()
        self._http.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._http, self._thread = None, None

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._http is None:
            raise RuntimeError("ReplayServer is not started: call start() or use a with block")
        return int(self._http.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def electricitymaps_url(self) -> str:
        return f"{self.base_url}{EM_PREFIX}"

    @property
    def visualcrossing_url(self) -> str:
        return f"{self.base_url}{VC_PREFIX}"

    # -- simulated clock and scripted faults -------------------------------------------------
    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self._now_ms / 1000, _UTC)

    def set_now(self, now: datetime) -> None:
        """Move the simulated clock (timezone-aware; any direction)."""
        self._now_ms = _to_epoch_ms(now)

    def fail_next(self, path_contains: str, kind: str = "status", count: int = 1,
                  status: int = 500) -> None:
        """Give the next ``count`` requests whose logged path (credentials removed, query
        included) contains ``path_contains`` the fault ``kind``. Scripted faults take
        precedence over random ones and are consumed in the order they were added."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}, got {kind!r}")
        if count < 1:
            raise ValueError("count must be >= 1")
        with self._lock:
            self._scripted.append(_ScriptedFault(path_contains, _Fault(kind, status), count))

    def clear_faults(self) -> None:
        """Drop scripted faults not yet consumed."""
        with self._lock:
            self._scripted.clear()

    # -- request handling --------------------------------------------------------------------
    def _next_fault(self, logged_path: str) -> _Fault | None:
        with self._lock:
            for scripted in self._scripted:
                if scripted.path_contains in logged_path:
                    scripted.remaining -= 1
                    if scripted.remaining == 0:
                        self._scripted.remove(scripted)
                    return scripted.fault
            config = self.faults
            if config.rate > 0 and self._rng.random() < config.rate:
                return _Fault(self._rng.choice(config.kinds), self._rng.choice(config.statuses))
        return None

    def _respond(self, method: str, raw_path: str, headers: Mapping[str, str]) -> _Response:
        logged_path = strip_credentials(raw_path)
        path, _, query = raw_path.partition("?")
        params = dict(parse_qsl(query, keep_blank_values=True))
        api = "em" if path.startswith(EM_PREFIX + "/") else (
            "vc" if path.startswith(VC_PREFIX + "/") else "other")
        fault = self._next_fault(logged_path)
        if fault is not None and fault.kind == "status":
            response = _fault_status_response(api, fault.status, params.get("key", ""))
        else:
            if fault is not None and fault.kind == "latency":
                time.sleep(self.faults.latency_s)
            response = self._route(method, api, path, params, headers)
            if fault is not None and fault.kind in ("truncated", "malformed"):
                response = _mangle(response, fault.kind)
        with self._lock:
            self.requests.append(RequestRecord(method, logged_path, response.status))
        return response

    def _route(self, method: str, api: str, path: str, params: Mapping[str, str],
               headers: Mapping[str, str]) -> _Response:
        now_ms = self._now_ms
        try:
            if method != "GET":
                raise _ApiError(_Response(405, _TEXT, b"Method not allowed", api))
            if api == "em":
                return self._em.handle(path, params, headers, now_ms)
            if api == "vc":
                return self._vc.handle(path, params, now_ms)
            raise _ApiError(_Response(404, _TEXT, b"Not found", api))
        except _ApiError as error:
            return error.response
        except Exception:  # a bug must not kill the connection; never echo the URL
            log.exception("replay server: internal error on %s", strip_credentials(path))
            return _fault_status_response(api, 500, "")


def _to_epoch_ms(now: datetime) -> int:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("the simulated clock needs a timezone-aware datetime (UTC)")
    return int(round(now.timestamp() * 1000))


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a recording until interrupted: ``python -m gridcast.sources.replay DIR --now T``."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("recording", type=Path)
    parser.add_argument("--now", required=True, help="simulated time, ISO-8601 (UTC if naive)")
    args = parser.parse_args(argv)
    now = datetime.fromisoformat(args.now)
    now = now if now.tzinfo else now.replace(tzinfo=_UTC)
    with ReplayServer(args.recording, now=now) as server:
        print(f"Electricity Maps: {server.electricitymaps_url}")
        print(f"Visual Crossing:  {server.visualcrossing_url}")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
