"""The providers' wire formats: Electricity Maps JSON entries, Visual Crossing CSV and JSON.

Rows never change, so each rendered entry is cached per row: a 7-day replay renders each hour
once however often it is served. Error bodies are built here too, in each provider's shape.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from gridcast.hours import HOUR_S
from gridcast.replay.recording import (
    ENERGY_SOURCES,
    WEATHER_VARIABLES,
    EnergySeries,
    Location,
    WeatherTable,
)

JSON_TYPE = "application/json; charset=utf-8"
CSV_TYPE = "text/csv; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes
    api: str  # "em" | "vc" | "other": decides the shape of injected error bodies
    headers: tuple[tuple[str, str], ...] = ()  # extra headers, e.g. the record cost


class ApiError(Exception):
    """Raised by a handler to answer with an error response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


# --------------------------------------------------------------------------------------------
# Wire helpers
# --------------------------------------------------------------------------------------------
def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _wire_times(epoch_ms: np.ndarray) -> list[str]:
    """Epoch ms -> Electricity Maps datetimes ``2025-03-11T09:00:00.000Z`` (vectorised)."""
    text = np.datetime_as_string(epoch_ms.astype("datetime64[ms]"), unit="ms")
    return [f"{t}Z" for t in text.tolist()]


def _wire_int(value: float) -> int | None:
    """Electricity Maps sends whole numbers; NaN is null."""
    return None if math.isnan(value) else int(round(value))


def em_error(status: int, message: str) -> ApiError:
    return ApiError(Response(status, JSON_TYPE, dumps({"status": "error", "message": message}), "em"))


def em_unauthorized() -> ApiError:
    return ApiError(Response(401, JSON_TYPE, dumps({"error": "Invalid auth-token"}), "em"))


def vc_error(status: int, text: str) -> ApiError:
    return ApiError(Response(status, TEXT_TYPE, text.encode("utf-8"), "vc"))


def bad_vc_request(reason: str) -> ApiError:
    return vc_error(400, f"Bad API Request:{reason}")


def csv_field(value: str) -> str:
    """Minimal CSV quoting, as Visual Crossing does (only fields with , " or newlines)."""
    if any(ch in value for ch in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_value(value: float | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return csv_field(value)


# --------------------------------------------------------------------------------------------
# Electricity Maps v3
# --------------------------------------------------------------------------------------------
class EnergyWire:
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
            cached = dumps({
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
            cached = dumps({
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


# --------------------------------------------------------------------------------------------
# Visual Crossing Timeline
# --------------------------------------------------------------------------------------------
_JSON_HOUR_ORDER = (
    "temp", "feelslike", "humidity", "dew", "precip", "precipprob", "snow", "snowdepth",
    "preciptype", "windgust", "windspeed", "winddir", "sealevelpressure", "visibility",
    "cloudcover", "solarradiation", "solarenergy", "uvindex", "severerisk", "conditions",
    "icon", "stations",
)
VARIABLE_INDEX = {v: i for i, v in enumerate(WEATHER_VARIABLES)}


@dataclass(frozen=True)
class WeatherRow:
    time_s: int
    source: str  # "obs" | "fcst" | "histfcst" (an archived forecast)
    fields: tuple[str, ...]  # CSV-formatted WEATHER_VARIABLES
    default_csv: str  # fields joined, for the default column set
    values: tuple[float | str | None, ...]


class WeatherWire:
    """Rows of one location, formatted lazily and cached (rows never change)."""

    def __init__(self, location: Location) -> None:
        self.location = location
        self._cache: dict[tuple[str, int], WeatherRow] = {}

    def row(self, source: str, index: int) -> WeatherRow:
        cached = self._cache.get((source, index))
        if cached is None:
            table: WeatherTable = (
                self.location.observations if source == "obs" else self.location.forecasts)  # fcst, histfcst
            values = tuple(table.values(index))
            fields = tuple(csv_value(v) for v in values)
            cached = WeatherRow(int(table.time_s[index]), source, fields, ",".join(fields), values)
            self._cache[(source, index)] = cached
        return cached


def local_midnight(day: date, tz: ZoneInfo | timezone) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())


def render_csv(address: str, rows: list[WeatherRow], tz: ZoneInfo | timezone,
               variables: list[str], with_source: bool) -> bytes:
    """Visual Crossing's hourly CSV: ``name,datetime,<variables>[,source]``, minimal quoting."""
    header = ",".join(["name", "datetime", *variables, *(["source"] if with_source else [])])
    name = csv_field(address)
    default = variables == list(WEATHER_VARIABLES)
    indices = [VARIABLE_INDEX[v] for v in variables]
    utc = tz is UTC
    lines = [header]
    for row in rows:
        stamp = (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(row.time_s)) if utc else
                 datetime.fromtimestamp(row.time_s, tz).strftime("%Y-%m-%dT%H:%M:%S"))
        values = row.default_csv if default else ",".join(row.fields[i] for i in indices)
        line = f"{name},{stamp},{values}" if variables else f"{name},{stamp}"
        lines.append(f"{line},{row.source}" if with_source else line)
    return ("\n".join(lines) + "\n").encode("utf-8")


def render_json(address: str, location: Location, rows: list[WeatherRow],
                tz: ZoneInfo | timezone, variables: list[str], first_day: date,
                last_day: date, query_cost: int) -> bytes:
    """Visual Crossing's timeline JSON: the top-level fields, then days with their hours."""
    wanted = set(variables)
    days: dict[date, list[tuple[WeatherRow, datetime]]] = {}
    for row in rows:
        local = datetime.fromtimestamp(row.time_s, tz)
        days.setdefault(local.date(), []).append((row, local))
    day_objects = []
    day = first_day
    while day <= last_day:
        hours = days.get(day, [])
        if hours:
            day_objects.append(json_day(day, tz, hours, wanted))
        day += timedelta(days=1)
    first_instant = datetime.fromtimestamp(local_midnight(first_day, tz), tz)
    offset = first_instant.utcoffset() or timedelta(0)
    return dumps({
        "queryCost": query_cost,
        "latitude": location.lat,
        "longitude": location.lon,
        "resolvedAddress": location.resolved_address,
        "address": address,
        "timezone": "UTC" if tz is UTC else getattr(tz, "key", str(tz)),
        "tzoffset": offset.total_seconds() / HOUR_S,
        "days": day_objects,
    })


def json_day(day: date, tz: ZoneInfo | timezone, hours: list[tuple[WeatherRow, datetime]],
             wanted: set[str]) -> dict[str, Any]:
    """A JSON day: a few daily aggregates (a subset of the real API's) and its hours."""
    hour_objects = []
    for row, local in hours:
        entry: dict[str, Any] = {
            "datetime": local.strftime("%H:%M:%S"), "datetimeEpoch": row.time_s}
        for variable in _JSON_HOUR_ORDER:
            if variable not in wanted:
                continue
            value = row.values[VARIABLE_INDEX[variable]]
            if variable in ("preciptype", "stations"):
                value = value.split(",") if isinstance(value, str) else None
            entry["pressure" if variable == "sealevelpressure" else variable] = value
        entry["source"] = row.source
        hour_objects.append(entry)
    temps = [r.values[VARIABLE_INDEX["temp"]] for r, _ in hours]
    temps = [t for t in temps if isinstance(t, float)]
    precips = [r.values[VARIABLE_INDEX["precip"]] for r, _ in hours]
    sources = {r.source for r, _ in hours}
    return {
        "datetime": day.isoformat(),
        "datetimeEpoch": local_midnight(day, tz),
        "tempmax": max(temps) if temps else None,
        "tempmin": min(temps) if temps else None,
        "temp": round(sum(temps) / len(temps), 1) if temps else None,
        "precip": round(sum(p for p in precips if isinstance(p, float)), 3),
        "source": sources.pop() if len(sources) == 1 else "comb",
        "hours": hour_objects,
    }


