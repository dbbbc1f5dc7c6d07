"""The two APIs' request handling: parameters, validation and what is visible at simulated now.

Handlers take the parsed request and the simulated clock and return a :class:`Response`, or
raise :class:`ApiError` with the provider's error body; rendering lives in :mod:`wire`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gridcast.hours import HOUR_S
from gridcast.replay.recording import WEATHER_VARIABLES, Location, Recording
from gridcast.replay.wire import (
    CSV_TYPE,
    JSON_TYPE,
    EnergyWire,
    Response,
    WeatherRow,
    WeatherWire,
    bad_vc_request,
    dumps,
    em_error,
    em_unauthorized,
    local_midnight,
    render_csv,
    render_json,
    vc_error,
)

EM_PREFIX = "/v3"
VC_PREFIX = "/VisualCrossingWebServices/rest/services/timeline"
MAX_PAST_RANGE = timedelta(days=10)  # 240 hourly entries per call, as the real API
MAX_WEATHER_DAYS = 400  # keeps one request from rendering years of rows by accident
# The records a timeline answer costs, as its JSON `queryCost` says; CSV has no place for it.
COST_HEADER = "X-Query-Cost"


# --------------------------------------------------------------------------------------------
# Electricity Maps v3
# --------------------------------------------------------------------------------------------
def _flag(params: Mapping[str, str], name: str, default: bool = False) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    lowered = value.casefold()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise em_error(400, f"Invalid value for {name}: expected true or false")


def _em_instant(params: Mapping[str, str], name: str) -> int:
    value = params.get(name)
    if not value:
        raise em_error(400, f"Missing required parameter: {name}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise em_error(400, f"Invalid {name} datetime: expected ISO-8601") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return math.ceil(parsed.timestamp())


class ElectricityMapsApi:
    """``GET /v3/{carbon-intensity|power-breakdown}/{history|latest|past-range}``."""

    ENDPOINTS = ("carbon-intensity", "power-breakdown")
    OPERATIONS = ("history", "latest", "past-range")

    def __init__(self, recording: Recording, token: str | None) -> None:
        self.recording = recording
        self.token = token
        self.wires = {zone: EnergyWire(series) for zone, series in recording.zones.items()}

    def handle(self, path: str, params: Mapping[str, str], headers: Mapping[str, str],
               now_ms: int) -> Response:
        parts = path[len(EM_PREFIX):].strip("/").split("/")
        if self.token is not None and headers.get("auth-token") != self.token:
            raise em_unauthorized()
        if len(parts) != 2 or parts[0] not in self.ENDPOINTS or parts[1] not in self.OPERATIONS:
            raise em_error(404, f"Unknown endpoint: {path}")
        endpoint, operation = parts
        granularity = params.get("temporalGranularity", "hourly")
        if granularity != "hourly":
            raise em_error(400, f"temporalGranularity {granularity!r} is not supported by the "
                                 "replay server (only 'hourly')")
        factor = params.get("emissionFactorType", "lifecycle")
        if factor not in ("lifecycle", "direct"):
            raise em_error(400, "emissionFactorType must be 'lifecycle' or 'direct'")
        include_estimated = not _flag(params, "disableEstimations")
        zone = params.get("zone") or params.get("zoneKey")
        if not zone:
            if "lat" in params or "lon" in params:
                raise em_error(400, "The replay server resolves zones by key only: pass zone=")
            raise em_error(400, "Missing required parameter: zone")
        wire = self.wires.get(zone) or self.wires.get(zone.upper())
        if wire is None:
            raise em_error(404, f'Zone "{zone}" is not available')
        if endpoint == "power-breakdown" and not wire.series.has_power_breakdown:
            raise em_error(404, f'No power breakdown data for zone "{wire.zone}" '
                                 "(carbon intensity only)")

        now_hour = (now_ms // 1000) // HOUR_S * HOUR_S
        if operation == "past-range":
            start_s, end_s = _em_instant(params, "start"), _em_instant(params, "end")
            if end_s <= start_s:
                raise em_error(400, "end must be after start")
            if end_s - start_s > MAX_PAST_RANGE.total_seconds():
                raise em_error(400, "The requested range exceeds the maximum of 10 days "
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
            raise em_error(404, f'No recent data for zone "{wire.zone}"')
        zone_json = dumps(wire.zone)
        if operation == "latest":
            body = entries[-1]
        elif operation == "history":
            body = (b'{"zone":' + zone_json + b',"history":[' + b",".join(entries)
                    + b'],"temporalGranularity":"hourly"}')
        else:
            body = (b'{"zone":' + zone_json + b',"data":[' + b",".join(entries)
                    + b'],"temporalGranularity":"hourly"}')
        return Response(200, JSON_TYPE, body, "em")


# --------------------------------------------------------------------------------------------
# Visual Crossing Timeline
# --------------------------------------------------------------------------------------------
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
        raise bad_vc_request(f"Invalid date parameter value: {token}") from None
    return day, day


def _day_range(date1: str | None, date2: str | None, today: date) -> tuple[date, date]:
    """First and last calendar day of a timeline request (no dates = 15-day forecast)."""
    if date1 is None:
        return today, today + timedelta(days=14)
    first, last = _period(date1, today)
    if date2 is not None:
        last = _period(date2, today)[1]
    if last < first:
        raise bad_vc_request("The end date is before the start date.")
    if (last - first).days >= MAX_WEATHER_DAYS:
        raise bad_vc_request(f"The replay server serves at most {MAX_WEATHER_DAYS} days.")
    return first, last


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


class VisualCrossingApi:
    """``GET /VisualCrossingWebServices/rest/services/timeline/{location}[/{date1}[/{date2}]]``."""

    def __init__(self, recording: Recording, token: str | None) -> None:
        self.recording = recording
        self.token = token
        self.wires = {name: WeatherWire(loc) for name, loc in recording.locations.items()}

    def handle(self, path: str, params: Mapping[str, str], now_ms: int) -> Response:
        segments = [unquote(s) for s in path[len(VC_PREFIX):].strip("/").split("/") if s]
        key = params.get("key", "")
        if self.token is not None and key != self.token:
            # The real API echoes the key in its 401 body; clients must scrub it.
            raise vc_error(401, f"No account found with API key '{key}'")
        if not segments or len(segments) > 3:
            raise bad_vc_request("Invalid location parameter value.")
        address = segments[0]
        location = self.recording.find_location(address)
        if location is None:
            raise bad_vc_request("Invalid location parameter value.")
        unit_group = params.get("unitGroup", "us")
        if unit_group != "metric":
            raise bad_vc_request(f"The replay server only serves unitGroup=metric "
                                  f"(got {unit_group}).")
        include = {i.strip() for i in params.get("include", "hours").split(",")}
        if "hours" not in include:
            raise bad_vc_request("The replay server only serves include=hours.")
        content_type = params.get("contentType", "json")
        if content_type not in ("csv", "json"):
            raise bad_vc_request(f"Invalid contentType: {content_type}")
        tz_param = params.get("timezone")
        tz: ZoneInfo | timezone
        if tz_param in ("Z", "UTC", "z"):
            tz = UTC
        elif tz_param:
            try:
                tz = ZoneInfo(tz_param)
            except (ZoneInfoNotFoundError, ValueError):
                raise bad_vc_request(f"Invalid timezone: {tz_param}") from None
        else:
            tz = location.tzinfo

        now_s = now_ms / 1000
        today = datetime.fromtimestamp(now_s, tz).date()
        dated = len(segments) > 1
        first_day, last_day = _day_range(
            segments[1] if dated else None, segments[2] if len(segments) > 2 else None, today)
        start_s = local_midnight(first_day, tz)
        end_s = local_midnight(last_day + timedelta(days=1), tz)
        basis = params.get("forecastBasisDate")
        if basis:
            rows = self._archived_forecast(location, _basis_day(basis), start_s, end_s, now_s)
        else:
            rows = self._rows(location, start_s, end_s, now_s)
        cost = query_cost(rows, dated=dated)
        variables, with_source = _select_columns(params.get("elements"))
        cost_header = ((COST_HEADER, str(cost)),)
        if content_type == "csv":
            body = render_csv(address, rows, tz, variables, with_source)
            return Response(200, CSV_TYPE, body, "vc", cost_header)
        body = render_json(address, location, rows, tz, variables, first_day, last_day, cost)
        return Response(200, JSON_TYPE, body, "vc", cost_header)

    def _rows(self, location: Location, start_s: int, end_s: int,
              now_s: float) -> list[WeatherRow]:
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

    def _archived_forecast(self, location: Location, basis: date, start_s: int, end_s: int,
                           now_s: float) -> list[WeatherRow]:
        """The first vintage issued on the basis date (UTC), its hours within the request.

        The recording issues a vintage every 12 h (00 and 12 UTC); the day's first one is the
        forecast as it stood when the basis day began, the archive's natural "issued on" entry.
        A basis day with no vintage, or whose vintage the simulated clock has not reached yet,
        is a 400: the archive has nothing to give.
        """
        day_start = int(datetime(basis.year, basis.month, basis.day, tzinfo=UTC).timestamp())
        vintage = location.first_vintage_in(day_start, day_start + 24 * HOUR_S)
        if vintage is None or location.vintages_s[vintage] > now_s:
            raise bad_vc_request(
                f"No archived forecast for forecastBasisDate {basis.isoformat()} at this location.")
        wire = self.wires[location.name]
        return [wire.row("histfcst", i) for i in location.forecast_rows(vintage, start_s, end_s)]


def _basis_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise bad_vc_request(f"Invalid forecastBasisDate parameter value: {text}") from None


def query_cost(rows: list[WeatherRow], *, dated: bool) -> int:
    """Records a request counts against the plan, as Visual Crossing bills them.

    A forecast costs 1 whatever its length; history (observations and archived forecasts)
    costs one record per hourly row. A request without dates is the 15-day forecast: 1.
    """
    if not dated:
        return 1
    history = sum(1 for row in rows if row.source != "fcst")
    return history + (1 if len(rows) > history else 0)
