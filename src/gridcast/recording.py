"""Replay recordings: load a recording directory into in-memory indices, and write one.

A recording (format described in ``docs/replay-format.md``) holds what Electricity Maps and
Visual Crossing knew hour by hour: energy revisions per zone, weather observations and forecast
vintages per location. :func:`load_recording` reads it once into numpy arrays sorted for the
replay server's point-in-time look-ups (a few microseconds per hour). :func:`write_recording`
builds one from DataFrames, for tests and for the dataset generator. :func:`read_portal_csv`
turns an Electricity Maps data-portal file (carbon intensity only) into energy rows.

All instants are handled as integers: epoch milliseconds for revision times, epoch seconds for
hours. Every validation error is a :class:`RecordingError` whose message starts with the path.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from gridcast.errors import GridcastError

FORMAT_NAME = "gridcast-replay"
FORMAT_VERSION = 1
HOUR_S = 3600

# The 12 Electricity Maps source keys, in wire order; two contain a space.
ENERGY_SOURCES: tuple[str, ...] = (
    "nuclear", "geothermal", "biomass", "coal", "wind", "solar", "hydro", "gas", "oil",
    "unknown", "hydro discharge", "battery discharge",
)
TOTAL_COLUMNS: tuple[str, ...] = (
    "power_consumption_total", "power_production_total", "power_import_total",
    "power_export_total",
)
PERCENTAGE_COLUMNS: tuple[str, ...] = ("fossil_free_percentage", "renewable_percentage")
CARBON_COLUMNS: tuple[str, ...] = (
    "datetime", "available_at", "updated_at", "created_at", "is_estimated", "estimation_method",
    "carbon_intensity", "carbon_intensity_direct",
)
ENERGY_TIME_COLUMNS: tuple[str, ...] = ("datetime", "available_at", "updated_at", "created_at")

# Visual Crossing's default hourly CSV variables (metric), in wire order.
WEATHER_VARIABLES: tuple[str, ...] = (
    "temp", "feelslike", "dew", "humidity", "precip", "precipprob", "preciptype", "snow",
    "snowdepth", "windgust", "windspeed", "winddir", "sealevelpressure", "cloudcover",
    "visibility", "solarradiation", "solarenergy", "uvindex", "severerisk", "conditions", "icon",
    "stations",
)
WEATHER_TEXT_VARIABLES: frozenset[str] = frozenset({"preciptype", "conditions", "icon", "stations"})
WEATHER_NUMERIC_VARIABLES: tuple[str, ...] = tuple(
    v for v in WEATHER_VARIABLES if v not in WEATHER_TEXT_VARIABLES
)

_ZONE_KEYS = frozenset({"energy", "portal", "publication_delay_hours"})
_LOCATION_KEYS = frozenset(
    {"lat", "lon", "timezone", "resolved_address", "observations", "forecasts"}
)


class RecordingError(GridcastError, ValueError):
    """A recording (or data-portal file) is missing, malformed or inconsistent.

    The message starts with the offending path.
    """


def source_column(prefix: str, source: str) -> str:
    """CSV column of a wire source key: ``("production", "hydro discharge")`` ->
    ``production_hydro_discharge``."""
    return f"{prefix}_{source.replace(' ', '_')}"


POWER_COLUMNS: tuple[str, ...] = (
    tuple(source_column("production", s) for s in ENERGY_SOURCES)
    + tuple(source_column("consumption", s) for s in ENERGY_SOURCES)
    + TOTAL_COLUMNS
    + PERCENTAGE_COLUMNS
)


# --------------------------------------------------------------------------------------------
# In-memory model
# --------------------------------------------------------------------------------------------
@dataclass(eq=False)
class EnergySeries:
    """All revisions of one zone, sorted by (hour, available_at), with a per-hour row index.

    Matrices hold floats with NaN for null; ``power`` attributes are None for a zone that only
    has carbon intensity (a data-portal zone).
    """

    zone: str
    source: Path
    hour_s: np.ndarray  # int64 epoch seconds of each row's `datetime`
    available_ms: np.ndarray  # int64
    updated_ms: np.ndarray  # int64
    created_ms: np.ndarray  # int64
    is_estimated: np.ndarray  # bool
    estimation_method: list[str | None]
    carbon_intensity: np.ndarray  # float64
    carbon_intensity_direct: np.ndarray  # float64
    production: np.ndarray | None = None  # (rows, 12)
    consumption: np.ndarray | None = None  # (rows, 12)
    import_zones: tuple[str, ...] = ()
    imports: np.ndarray | None = None  # (rows, len(import_zones))
    export_zones: tuple[str, ...] = ()
    exports: np.ndarray | None = None
    totals: np.ndarray | None = None  # (rows, 4) in TOTAL_COLUMNS order
    percentages: np.ndarray | None = None  # (rows, 2) in PERCENTAGE_COLUMNS order
    first_hour_s: int = 0
    _offsets: list[int] = field(default_factory=list, repr=False)
    _available: list[int] = field(default_factory=list, repr=False)
    _estimated: list[bool] = field(default_factory=list, repr=False)

    @property
    def has_power_breakdown(self) -> bool:
        return self.production is not None

    @property
    def n_rows(self) -> int:
        return len(self.hour_s)

    @property
    def n_hours(self) -> int:
        return len(self._offsets) - 1

    def visible_row(self, hour_s: int, now_ms: int, include_estimated: bool = True) -> int | None:
        """Row of the newest revision of ``hour_s`` visible at ``now_ms``, or None (a gap)."""
        k = (hour_s - self.first_hour_s) // HOUR_S
        if k < 0 or k >= self.n_hours:
            return None
        lo, hi = self._offsets[k], self._offsets[k + 1]
        for row in range(hi - 1, lo - 1, -1):  # rows are sorted by available_at within an hour
            if self._available[row] <= now_ms and (include_estimated or not self._estimated[row]):
                return row
        return None

    def visible_rows(
        self, first_hour_s: int, last_hour_s: int, now_ms: int, include_estimated: bool = True
    ) -> list[int]:
        """Rows visible at ``now_ms`` for the hours first..last (inclusive), oldest first."""
        rows = []
        for hour in range(first_hour_s, last_hour_s + 1, HOUR_S):
            row = self.visible_row(hour, now_ms, include_estimated)
            if row is not None:
                rows.append(row)
        return rows

    def build_index(self) -> None:
        """Sort rows by (hour, available_at) and build the per-hour offsets (called once)."""
        order = np.lexsort((self.available_ms, self.hour_s))
        for name in ("hour_s", "available_ms", "updated_ms", "created_ms", "is_estimated",
                     "carbon_intensity", "carbon_intensity_direct", "production", "consumption",
                     "imports", "exports", "totals", "percentages"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value[order])
        self.estimation_method = [self.estimation_method[i] for i in order.tolist()]
        if self.n_rows == 0:
            self.first_hour_s, self._offsets = 0, [0]
            self._available, self._estimated = [], []
            return
        misaligned = np.nonzero(self.hour_s % HOUR_S)[0]
        if len(misaligned):
            raise RecordingError(
                f"{self.source}: datetime {_iso(int(self.hour_s[misaligned[0]]) * 1000)} "
                "is not the start of an hour"
            )
        same = (np.diff(self.hour_s) == 0) & (np.diff(self.available_ms) == 0)
        if same.any():
            at = int(np.nonzero(same)[0][0])
            raise RecordingError(
                f"{self.source}: duplicate revision for datetime "
                f"{_iso(int(self.hour_s[at]) * 1000)} available_at "
                f"{_iso(int(self.available_ms[at]))}"
            )
        self.first_hour_s = int(self.hour_s[0])
        relative = (self.hour_s - self.first_hour_s) // HOUR_S
        n_hours = int(relative[-1]) + 1
        self._offsets = np.searchsorted(relative, np.arange(n_hours + 1)).tolist()
        self._available = self.available_ms.tolist()
        self._estimated = self.is_estimated.tolist()


@dataclass(eq=False)
class WeatherTable:
    """Hourly weather rows: numeric variables in a float matrix, text ones dictionary-encoded."""

    time_s: np.ndarray  # int64 epoch seconds of `datetime`
    numeric: np.ndarray  # (rows, len(WEATHER_NUMERIC_VARIABLES)), NaN = null
    text_codes: dict[str, np.ndarray]  # variable -> int32 codes, -1 = null
    text_values: dict[str, list[str]]  # variable -> dictionary
    issued_s: np.ndarray | None = None  # int64 per row, forecasts only

    def __len__(self) -> int:
        return len(self.time_s)

    def take(self, order: np.ndarray) -> WeatherTable:
        return WeatherTable(
            time_s=self.time_s[order],
            numeric=self.numeric[order],
            text_codes={k: v[order] for k, v in self.text_codes.items()},
            text_values=self.text_values,
            issued_s=None if self.issued_s is None else self.issued_s[order],
        )

    def values(self, row: int) -> list[float | str | None]:
        """The WEATHER_VARIABLES of one row, in order; None for null."""
        numbers = iter(self.numeric[row].tolist())
        out: list[float | str | None] = []
        for variable in WEATHER_VARIABLES:
            if variable in WEATHER_TEXT_VARIABLES:
                code = int(self.text_codes[variable][row])
                out.append(None if code < 0 else self.text_values[variable][code])
            else:
                number = next(numbers)
                out.append(None if math.isnan(number) else number)
        return out


@dataclass(eq=False)
class Location:
    """A weather location: observations (one row per hour) and forecast vintages."""

    name: str
    lat: float
    lon: float
    timezone: str
    resolved_address: str
    observations: WeatherTable
    forecasts: WeatherTable
    vintages_s: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    _vintage_offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))

    @property
    def tzinfo(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def observation_rows(self, start_s: int, end_s: int) -> range:
        """Observation rows with start_s <= datetime < end_s."""
        times = self.observations.time_s
        return range(int(np.searchsorted(times, start_s)), int(np.searchsorted(times, end_s)))

    def vintage_at(self, now_s: float) -> int | None:
        """Index of the newest forecast vintage issued at or before ``now_s``."""
        k = int(np.searchsorted(self.vintages_s, now_s, side="right")) - 1
        return k if k >= 0 else None

    def forecast_rows(self, vintage: int, start_s: int, end_s: int) -> range:
        """Rows of one vintage with start_s <= datetime < end_s."""
        lo, hi = int(self._vintage_offsets[vintage]), int(self._vintage_offsets[vintage + 1])
        times = self.forecasts.time_s[lo:hi]
        first, last = np.searchsorted(times, start_s), np.searchsorted(times, end_s)
        return range(lo + int(first), lo + int(last))


@dataclass(eq=False)
class Recording:
    """A loaded recording: energy per zone and weather per location."""

    name: str
    path: Path | None
    zones: dict[str, EnergySeries]
    locations: dict[str, Location]
    description: str = ""
    start: datetime | None = None
    end: datetime | None = None
    attribution: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Recording:
        return load_recording(path)

    def find_zone(self, key: str) -> EnergySeries | None:
        """The zone with this key; Electricity Maps keys are upper case, so retry upper-cased."""
        return self.zones.get(key) or self.zones.get(key.upper())

    def find_location(self, query: str, max_distance_deg: float = 0.1) -> Location | None:
        """Resolve a Visual Crossing location: a name (``Athens``, ``athens,greece``:
        case-insensitive, the part before the first comma also matches) or ``lat,lon``
        (nearest location within ``max_distance_deg``)."""
        text = query.strip()
        coordinates = _parse_lat_lon(text)
        if coordinates is not None:
            best, best_distance = None, max_distance_deg
            for location in self.locations.values():
                distance = math.hypot(location.lat - coordinates[0], location.lon - coordinates[1])
                if distance <= best_distance:
                    best, best_distance = location, distance
            return best
        wanted = text.casefold()
        first_part = wanted.split(",", 1)[0].strip()
        for location in self.locations.values():
            name = location.name.casefold()
            if wanted in (name, location.resolved_address.casefold()) or first_part == name:
                return location
        return None


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def load_recording(path: str | os.PathLike[str]) -> Recording:
    """Load and validate a recording directory (manifest.json + CSVs, gzip or not)."""
    root = Path(path)
    manifest_path = root / "manifest.json"
    if not root.is_dir():
        raise RecordingError(f"{root}: not a directory (expected a gridcast-replay recording)")
    if not manifest_path.is_file():
        raise RecordingError(f"{manifest_path}: not found (is {root} a gridcast-replay recording?)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RecordingError(f"{manifest_path}: invalid JSON ({error})") from None
    _check_manifest_header(manifest_path, manifest)

    zones: dict[str, EnergySeries] = {}
    for zone, entry in _mapping(manifest_path, manifest, "zones").items():
        where = f"zones.{zone}"
        entry = _entry(manifest_path, where, entry, _ZONE_KEYS)
        if ("energy" in entry) == ("portal" in entry):
            raise RecordingError(
                f"{manifest_path}: {where} needs exactly one of 'energy', 'portal'")
        if "energy" in entry:
            file = _referenced_file(root, manifest_path, f"{where}.energy", entry["energy"])
            zones[zone] = read_energy_csv(file, zone)
        else:
            portal = entry["portal"]
            files = [portal] if isinstance(portal, str) else portal
            if not isinstance(files, list) or not files:
                raise RecordingError(f"{manifest_path}: {where}.portal must be a path or a list")
            delay = entry.get("publication_delay_hours", 1)
            if not isinstance(delay, (int, float)) or delay < 0:
                raise RecordingError(
                    f"{manifest_path}: {where}.publication_delay_hours must be a number >= 0"
                )
            paths = [
                _referenced_file(root, manifest_path, f"{where}.portal", item) for item in files
            ]
            zones[zone] = portal_energy_series(
                paths, zone=zone, publication_delay=timedelta(hours=delay)
            )

    locations: dict[str, Location] = {}
    for name, entry in _mapping(manifest_path, manifest, "locations").items():
        where = f"locations.{name}"
        entry = _entry(manifest_path, where, entry, _LOCATION_KEYS)
        locations[name] = _load_location(root, manifest_path, where, name, entry)

    if not zones and not locations:
        raise RecordingError(f"{manifest_path}: declares no zones and no locations")
    attribution = manifest.get("attribution", [])
    return Recording(
        name=str(manifest.get("name", root.name)),
        path=root,
        zones=zones,
        locations=locations,
        description=str(manifest.get("description", "")),
        start=_manifest_instant(manifest_path, manifest, "start"),
        end=_manifest_instant(manifest_path, manifest, "end"),
        attribution=tuple(str(a) for a in attribution) if isinstance(attribution, list) else (),
    )


def _check_manifest_header(manifest_path: Path, manifest: Any) -> None:
    if not isinstance(manifest, dict):
        raise RecordingError(f"{manifest_path}: expected a JSON object")
    if manifest.get("format") != FORMAT_NAME:
        raise RecordingError(
            f"{manifest_path}: format is {manifest.get('format')!r}, expected {FORMAT_NAME!r}"
        )
    if manifest.get("version") != FORMAT_VERSION:
        raise RecordingError(
            f"{manifest_path}: version {manifest.get('version')!r} is not supported "
            f"(this gridcast reads version {FORMAT_VERSION})"
        )


def _mapping(manifest_path: Path, manifest: dict[str, Any], key: str) -> dict[str, Any]:
    value = manifest.get(key, {})
    if not isinstance(value, dict):
        raise RecordingError(f"{manifest_path}: '{key}' must be an object")
    return value


def _entry(manifest_path: Path, where: str, entry: Any, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise RecordingError(f"{manifest_path}: {where} must be an object")
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise RecordingError(
            f"{manifest_path}: {where} has unknown key(s) {unknown}; allowed: {sorted(allowed)}"
        )
    return entry


def _referenced_file(root: Path, manifest_path: Path, where: str, relative: Any) -> Path:
    if not isinstance(relative, str) or not relative:
        raise RecordingError(f"{manifest_path}: {where} must be a relative file path")
    file = root / relative
    if not file.is_file():
        raise RecordingError(f"{file}: missing (referenced by {manifest_path.name} {where})")
    return file


def _manifest_instant(manifest_path: Path, manifest: dict[str, Any], key: str) -> datetime | None:
    value = manifest.get(key)
    if value is None:
        return None
    try:
        return parse_instant(str(value))
    except ValueError:
        raise RecordingError(
            f"{manifest_path}: '{key}' is not an ISO-8601 instant: {value!r}") from None


def _load_location(
    root: Path, manifest_path: Path, where: str, name: str, entry: dict[str, Any]
) -> Location:
    for key in ("lat", "lon"):
        if not isinstance(entry.get(key), (int, float)):
            raise RecordingError(f"{manifest_path}: {where}.{key} must be a number")
    tz_name = entry.get("timezone", "UTC")
    try:
        ZoneInfo(str(tz_name))
    except (ZoneInfoNotFoundError, ValueError):
        raise RecordingError(f"{manifest_path}: {where}.timezone {tz_name!r} is unknown") from None
    if "observations" not in entry:
        raise RecordingError(f"{manifest_path}: {where}.observations is required")
    obs_path = _referenced_file(root, manifest_path, f"{where}.observations", entry["observations"])
    observations = read_weather_csv(obs_path, forecast=False)
    if "forecasts" in entry:
        fcst_path = _referenced_file(root, manifest_path, f"{where}.forecasts", entry["forecasts"])
        forecasts = read_weather_csv(fcst_path, forecast=True)
    else:
        forecasts = _empty_weather(forecast=True)
    return make_location(
        name,
        lat=float(entry["lat"]),
        lon=float(entry["lon"]),
        timezone=str(tz_name),
        resolved_address=str(entry.get("resolved_address", name)),
        observations=observations,
        forecasts=forecasts,
        source=obs_path,
    )


def make_location(
    name: str,
    *,
    lat: float,
    lon: float,
    timezone: str,
    resolved_address: str,
    observations: WeatherTable,
    forecasts: WeatherTable,
    source: Path | str = "<memory>",
) -> Location:
    """Sort a location's tables and index forecast vintages (duplicates are errors)."""
    observations = observations.take(np.argsort(observations.time_s, kind="stable"))
    if len(observations) and (np.diff(observations.time_s) == 0).any():
        at = int(np.nonzero(np.diff(observations.time_s) == 0)[0][0])
        raise RecordingError(
            f"{source}: duplicate observation for datetime "
            f"{_iso(int(observations.time_s[at]) * 1000)}"
        )
    assert forecasts.issued_s is not None
    forecasts = forecasts.take(np.lexsort((forecasts.time_s, forecasts.issued_s)))
    issued = forecasts.issued_s
    assert issued is not None
    if len(forecasts):
        same = (np.diff(issued) == 0) & (np.diff(forecasts.time_s) == 0)
        if same.any():
            at = int(np.nonzero(same)[0][0])
            raise RecordingError(
                f"{source}: duplicate forecast row issued_at {_iso(int(issued[at]) * 1000)} "
                f"datetime {_iso(int(forecasts.time_s[at]) * 1000)}"
            )
    vintages, starts = np.unique(issued, return_index=True)
    offsets = np.append(starts, len(forecasts)).astype(np.int64)
    return Location(
        name=name, lat=lat, lon=lon, timezone=timezone, resolved_address=resolved_address,
        observations=observations, forecasts=forecasts,
        vintages_s=vintages.astype(np.int64), _vintage_offsets=offsets,
    )


# --------------------------------------------------------------------------------------------
# CSV reading (pyarrow: multi-threaded, so a 2-year recording loads in well under a second)
# --------------------------------------------------------------------------------------------
def _open_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise RecordingError(f"{path}: corrupt gzip data ({error})") from None
    return data


def _header(path: Path, data: bytes) -> list[str]:
    first_line = data.split(b"\n", 1)[0].rstrip(b"\r")
    if not first_line.strip():
        raise RecordingError(f"{path}: empty file (expected a CSV header)")
    try:
        text = first_line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RecordingError(f"{path}: the header is not UTF-8") from None
    return next(csv.reader([text]))


def _read_table(path: Path, data: bytes, column_types: dict[str, pa.DataType],
                header: Sequence[str]) -> pa.Table:
    try:
        return pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(encoding="utf8"),
            convert_options=pacsv.ConvertOptions(
                column_types=column_types,
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                true_values=["true", "True", "TRUE", "1"],
                false_values=["false", "False", "FALSE", "0"],
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise RecordingError(f"{path}: {_arrow_message(error, header)}") from None


def _arrow_message(error: Exception, header: Sequence[str]) -> str:
    """Arrow says "In CSV column #3: CSV conversion error to double: invalid value 'x'";
    name the column instead."""
    message = str(error).strip().splitlines()[0]
    match = re.match(r"In CSV column #(\d+): (.*)", message)
    if match and int(match.group(1)) < len(header):
        return f"column '{header[int(match.group(1))]}': {match.group(2)}"
    return message


def _epoch_ms(path: Path, name: str, column: pa.ChunkedArray) -> np.ndarray:
    """Parse an ISO-8601 column to epoch ms; a value without an offset is taken as UTC."""
    if column.null_count:
        raise RecordingError(f"{path}: column '{name}' has {column.null_count} empty value(s)")
    for target in (pa.timestamp("ms", tz="UTC"), pa.timestamp("ms")):
        try:
            return pc.cast(column, target).cast(pa.int64()).to_numpy()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    try:  # pandas accepts the remaining ISO-8601 spellings (mixed offsets, "T"-less dates)
        parsed = pd.to_datetime(column.to_pandas(), utc=True, format="ISO8601")
    except (ValueError, TypeError) as error:
        raise RecordingError(
            f"{path}: column '{name}' is not ISO-8601 datetimes ({error})") from None
    return parsed.to_numpy(dtype="datetime64[ms]").astype(np.int64)


def _float_array(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)


def _check_columns(
    path: Path, header: Sequence[str], required: Sequence[str], is_allowed: Any
) -> None:
    duplicates = sorted({c for c in header if list(header).count(c) > 1})
    if duplicates:
        raise RecordingError(f"{path}: duplicate column(s) {duplicates}")
    unknown = [c for c in header if c not in required and not is_allowed(c)]
    if unknown:
        raise RecordingError(f"{path}: unknown column '{unknown[0]}'")
    missing = [c for c in required if c not in header]
    if missing:
        raise RecordingError(f"{path}: missing column '{missing[0]}'")


def _is_power_column(column: str) -> bool:
    return column in POWER_COLUMNS or bool(re.fullmatch(r"(import|export)_\S+", column))


def read_energy_csv(path: str | os.PathLike[str], zone: str) -> EnergySeries:
    """Read one zone's energy file (one row per hour and revision) into an EnergySeries."""
    path = Path(path)
    data = _open_bytes(path)
    header = _header(path, data)
    has_power = any(_is_power_column(c) for c in header)
    required = list(CARBON_COLUMNS) + (list(POWER_COLUMNS) if has_power else [])
    _check_columns(path, header, required, _is_power_column)
    types: dict[str, pa.DataType] = {c: pa.float64() for c in header}
    types.update({c: pa.string() for c in ENERGY_TIME_COLUMNS})
    types.update({"is_estimated": pa.bool_(), "estimation_method": pa.string()})
    table = _read_table(path, data, types, header)
    return _energy_series(path, zone, table, header if has_power else None)


def _energy_series(
    path: Path, zone: str, table: pa.Table, power_header: Sequence[str] | None
) -> EnergySeries:
    estimated = table["is_estimated"]
    if estimated.null_count:
        raise RecordingError(f"{path}: column 'is_estimated' has empty value(s)")
    series = EnergySeries(
        zone=zone,
        source=path,
        hour_s=_epoch_ms(path, "datetime", table["datetime"]) // 1000,
        available_ms=_epoch_ms(path, "available_at", table["available_at"]),
        updated_ms=_epoch_ms(path, "updated_at", table["updated_at"]),
        created_ms=_epoch_ms(path, "created_at", table["created_at"]),
        is_estimated=np.asarray(estimated.to_numpy(zero_copy_only=False), dtype=bool),
        estimation_method=table["estimation_method"].to_pylist(),
        carbon_intensity=_float_array(table["carbon_intensity"]),
        carbon_intensity_direct=_float_array(table["carbon_intensity_direct"]),
    )
    if power_header is not None:
        def matrix(columns: Sequence[str]) -> np.ndarray:
            if not columns:
                return np.zeros((table.num_rows, 0))
            return np.column_stack([_float_array(table[c]) for c in columns])

        series.production = matrix([source_column("production", s) for s in ENERGY_SOURCES])
        series.consumption = matrix([source_column("consumption", s) for s in ENERGY_SOURCES])
        # Neighbour keys are kept in file order: that is the order the wire dict shows.
        imports = [c for c in power_header if c.startswith("import_")]
        exports = [c for c in power_header if c.startswith("export_")]
        series.import_zones = tuple(c[len("import_"):] for c in imports)
        series.imports = matrix(imports)
        series.export_zones = tuple(c[len("export_"):] for c in exports)
        series.exports = matrix(exports)
        series.totals = matrix(TOTAL_COLUMNS)
        series.percentages = matrix(PERCENTAGE_COLUMNS)
    series.build_index()
    return series


def read_weather_csv(path: str | os.PathLike[str], *, forecast: bool) -> WeatherTable:
    """Read an observation file (``datetime`` + variables) or a forecast file (``issued_at``,
    ``datetime`` + variables)."""
    path = Path(path)
    data = _open_bytes(path)
    header = _header(path, data)
    keys = ["issued_at", "datetime"] if forecast else ["datetime"]
    _check_columns(path, header, keys + list(WEATHER_VARIABLES), lambda _c: False)
    types: dict[str, pa.DataType] = {k: pa.string() for k in keys}
    types.update({v: pa.float64() for v in WEATHER_NUMERIC_VARIABLES})
    types.update({v: pa.string() for v in WEATHER_TEXT_VARIABLES})
    table = _read_table(path, data, types, header)
    codes: dict[str, np.ndarray] = {}
    dictionaries: dict[str, list[str]] = {}
    for variable in sorted(WEATHER_TEXT_VARIABLES):
        # Dictionary-encode: a few distinct strings repeated over many rows.
        encoded = table[variable].combine_chunks().dictionary_encode()
        codes[variable] = (
            pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32)
        )
        dictionaries[variable] = encoded.dictionary.to_pylist()
    time_s = _epoch_ms(path, "datetime", table["datetime"]) // 1000
    issued = _epoch_ms(path, "issued_at", table["issued_at"]) // 1000 if forecast else None
    for name, values in (("datetime", time_s), ("issued_at", issued)):
        if values is not None and len(values) and (values % HOUR_S).any():
            raise RecordingError(f"{path}: column '{name}' has a value that is not a whole hour")
    numeric = (
        np.column_stack([_float_array(table[v]) for v in WEATHER_NUMERIC_VARIABLES])
        if table.num_rows
        else np.zeros((0, len(WEATHER_NUMERIC_VARIABLES)))
    )
    return WeatherTable(time_s, numeric, codes, dictionaries, issued)


def _empty_weather(*, forecast: bool) -> WeatherTable:
    return WeatherTable(
        time_s=np.zeros(0, dtype=np.int64),
        numeric=np.zeros((0, len(WEATHER_NUMERIC_VARIABLES))),
        text_codes={v: np.zeros(0, dtype=np.int32) for v in WEATHER_TEXT_VARIABLES},
        text_values={v: [] for v in WEATHER_TEXT_VARIABLES},
        issued_s=np.zeros(0, dtype=np.int64) if forecast else None,
    )


# --------------------------------------------------------------------------------------------
# Electricity Maps data-portal CSVs
# --------------------------------------------------------------------------------------------
# Normalised header -> our name. Both the old and the renamed portal spellings are listed;
# normalisation lower-cases, maps "₂" (U+2082) to "2" and collapses blanks.
_PORTAL_HEADERS: dict[str, str] = {
    "datetime (utc)": "datetime",
    "zone id": "zone",
    "carbon intensity gco2eq/kwh (direct)": "carbon_intensity_direct",
    "carbon intensity gco2eq/kwh (lca)": "carbon_intensity",
    "carbon intensity gco2eq/kwh (life cycle)": "carbon_intensity",
    "low carbon percentage": "fossil_free_percentage",
    "carbon-free energy percentage (cfe%)": "fossil_free_percentage",
    "renewable percentage": "renewable_percentage",
    "renewable energy percentage (re%)": "renewable_percentage",
    "data source": "data_source",
    "data estimated": "is_estimated",
    "data estimation method": "estimation_method",
}


def _normalise_portal_header(name: str) -> str:
    return " ".join(name.replace("\u2082", "2").casefold().split())


def read_portal_csv(
    path: str | os.PathLike[str],
    *,
    zone: str | None = None,
    publication_delay: timedelta = timedelta(hours=1),
) -> tuple[str, pd.DataFrame]:
    """Read an Electricity Maps data-portal file (e.g. ``GR_2024_hourly.csv``) as energy rows.

    Both header spellings are accepted, case-insensitively. Each hour becomes one revision,
    visible (and ``updated_at``/``created_at``) ``publication_delay`` after the hour starts;
    ``is_estimated`` comes from ``Data Estimated``. Columns the replay format has no use for
    (country, zone name, data source, extra research columns) are ignored.

    Returns:
        (zone, frame with the carbon columns of the energy file format). The zone is taken from
        ``zone``, else the file's ``Zone Id`` column, else the file name (``GR_2024_hourly``).

    Raises:
        RecordingError: no datetime or carbon-intensity column, or a zone mismatch.
    """
    path = Path(path)
    data = _open_bytes(path)
    header = _header(path, data)
    renamed = {c: _PORTAL_HEADERS[_normalise_portal_header(c)]
               for c in header if _normalise_portal_header(c) in _PORTAL_HEADERS}
    targets = set(renamed.values())
    if "datetime" not in targets:
        raise RecordingError(f"{path}: no 'Datetime (UTC)' column (not a data-portal CSV?)")
    if not targets & {"carbon_intensity", "carbon_intensity_direct"}:
        raise RecordingError(f"{path}: no carbon-intensity column (LCA / Life cycle / direct)")
    types = {c: pa.string() for c in header}
    for original, target in renamed.items():
        if target in ("carbon_intensity", "carbon_intensity_direct", "fossil_free_percentage",
                      "renewable_percentage"):
            types[original] = pa.float64()
    table = _read_table(path, data, types, header).select(list(renamed)).rename_columns(
        [renamed[c] for c in renamed]
    )
    file_zones = (
        {z for z in table["zone"].to_pylist() if z} if "zone" in table.column_names else set()
    )
    if len(file_zones) > 1:
        raise RecordingError(f"{path}: several zones in one file: {sorted(file_zones)}")
    file_zone = next(iter(file_zones), None) or path.name.split("_", 1)[0]
    if zone is not None and file_zones and file_zone != zone:
        raise RecordingError(f"{path}: holds zone {file_zone!r}, expected {zone!r}")
    hour_ms = _epoch_ms(path, "Datetime (UTC)", table["datetime"])
    available_ms = hour_ms + int(publication_delay.total_seconds() * 1000)
    n = table.num_rows
    if "is_estimated" in table.column_names:
        flags = [str(v).strip().casefold() if v is not None else "" for v in
                 table["is_estimated"].to_pylist()]
        estimated = np.array([v in ("true", "1", "yes") for v in flags], dtype=bool)
    else:
        estimated = np.zeros(n, dtype=bool)
    methods = (
        table["estimation_method"].to_pylist()
        if "estimation_method" in table.column_names else [None] * n
    )

    def numbers(name: str) -> np.ndarray:
        return _float_array(table[name]) if name in table.column_names else np.full(n, np.nan)

    frame = pd.DataFrame({
        "datetime": pd.to_datetime(hour_ms, unit="ms", utc=True),
        "available_at": pd.to_datetime(available_ms, unit="ms", utc=True),
        "updated_at": pd.to_datetime(available_ms, unit="ms", utc=True),
        "created_at": pd.to_datetime(available_ms, unit="ms", utc=True),
        "is_estimated": estimated,
        "estimation_method": [m or None for m in methods],
        "carbon_intensity": numbers("carbon_intensity"),
        "carbon_intensity_direct": numbers("carbon_intensity_direct"),
    })
    return (zone or file_zone), frame


def portal_energy_series(
    paths: Sequence[str | os.PathLike[str]],
    *,
    zone: str | None = None,
    publication_delay: timedelta = timedelta(hours=1),
) -> EnergySeries:
    """An EnergySeries (carbon intensity only) from one or more data-portal files of a zone."""
    frames, zones = [], set()
    for path in paths:
        file_zone, frame = read_portal_csv(path, zone=zone, publication_delay=publication_delay)
        zones.add(file_zone)
        frames.append(frame)
    if len(zones) > 1:
        raise RecordingError(
            f"{Path(paths[0])}: the portal files hold several zones {sorted(zones)}")
    return energy_series_from_frame(pd.concat(frames, ignore_index=True), zone=zones.pop(),
                                    source=Path(paths[0]))


def energy_series_from_frame(
    frame: pd.DataFrame, *, zone: str, source: Path | str = "<frame>"
) -> EnergySeries:
    """Validate and index an energy DataFrame (columns of the energy file format)."""
    source = Path(source)
    header = [str(c) for c in frame.columns]
    has_power = any(_is_power_column(c) for c in header)
    required = list(CARBON_COLUMNS) + (list(POWER_COLUMNS) if has_power else [])
    _check_columns(source, header, required, _is_power_column)
    buffer = io.BytesIO()
    _energy_csv_frame(frame).to_csv(buffer, index=False)
    types: dict[str, pa.DataType] = {c: pa.float64() for c in header}
    types.update({c: pa.string() for c in ENERGY_TIME_COLUMNS})
    types.update({"is_estimated": pa.bool_(), "estimation_method": pa.string()})
    table = _read_table(source, buffer.getvalue(), types, header)
    return _energy_series(source, zone, table, header if has_power else None)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
LocationSpec = tuple[Mapping[str, Any], pd.DataFrame, pd.DataFrame]


def write_recording(
    path: str | os.PathLike[str],
    *,
    name: str,
    zones: Mapping[str, pd.DataFrame] | None = None,
    locations: Mapping[str, LocationSpec] | None = None,
    portal_zones: Mapping[str, Sequence[str | os.PathLike[str]]] | None = None,
    description: str = "",
    attribution: Sequence[str] = (),
    start: datetime | None = None,
    end: datetime | None = None,
    compress: bool = True,
) -> Path:
    """Write a recording directory that :func:`load_recording` reads back.

    Args:
        path: directory to create (may exist; files in it are overwritten).
        name: recording name for the manifest.
        zones: zone -> energy frame (columns of the energy file; datetimes as tz-aware or naive-UTC
            timestamps or ISO strings; ``is_estimated`` bool).
        locations: name -> (meta, observations frame, forecasts frame). ``meta`` has ``lat``,
            ``lon`` and optionally ``timezone`` (default UTC) and ``resolved_address``.
        portal_zones: zone -> data-portal CSV files, copied into ``portal/``.
        start, end: recording span (end exclusive); inferred from the energy data when omitted.
        compress: write ``.csv.gz`` (deterministic gzip, no timestamp) rather than ``.csv``.

    Returns:
        The recording directory.

    Raises:
        RecordingError: a frame has an unknown or missing column.
    """
    root = Path(path)
    (root / "energy").mkdir(parents=True, exist_ok=True)
    suffix = ".csv.gz" if compress else ".csv"
    manifest_zones: dict[str, dict[str, Any]] = {}
    hours: list[pd.Series] = []
    for zone, frame in (zones or {}).items():
        relative = f"energy/{zone}{suffix}"
        header = [str(c) for c in frame.columns]
        has_power = any(_is_power_column(c) for c in header)
        required = list(CARBON_COLUMNS) + (list(POWER_COLUMNS) if has_power else [])
        _check_columns(root / relative, header, required, _is_power_column)
        _write_csv(_energy_csv_frame(frame), root / relative)
        manifest_zones[zone] = {"energy": relative}
        hours.append(pd.to_datetime(frame["datetime"], utc=True, format="ISO8601"))
    for zone, files in (portal_zones or {}).items():
        (root / "portal").mkdir(exist_ok=True)
        copied = []
        for file in files:
            shutil.copyfile(file, root / "portal" / Path(file).name)
            copied.append(f"portal/{Path(file).name}")
        manifest_zones[zone] = {"portal": copied}

    manifest_locations: dict[str, dict[str, Any]] = {}
    for location_name, (meta, observations, forecasts) in (locations or {}).items():
        (root / "weather").mkdir(exist_ok=True)
        slug = re.sub(r"[^a-z0-9]+", "-", location_name.casefold()).strip("-") or "location"
        obs_rel, fcst_rel = f"weather/{slug}.obs{suffix}", f"weather/{slug}.fcst{suffix}"
        _check_columns(root / obs_rel, [str(c) for c in observations.columns],
                       ["datetime", *WEATHER_VARIABLES], lambda _c: False)
        _check_columns(root / fcst_rel, [str(c) for c in forecasts.columns],
                       ["issued_at", "datetime", *WEATHER_VARIABLES], lambda _c: False)
        _write_csv(_weather_csv_frame(observations, ["datetime"]), root / obs_rel)
        _write_csv(_weather_csv_frame(forecasts, ["issued_at", "datetime"]), root / fcst_rel)
        entry: dict[str, Any] = {
            "lat": float(meta["lat"]), "lon": float(meta["lon"]),
            "timezone": str(meta.get("timezone", "UTC")),
        }
        if "resolved_address" in meta:
            entry["resolved_address"] = str(meta["resolved_address"])
        entry.update({"observations": obs_rel, "forecasts": fcst_rel})
        manifest_locations[location_name] = entry

    if start is None and hours:
        start = min(h.min() for h in hours).to_pydatetime()
    if end is None and hours:
        end = (max(h.max() for h in hours) + pd.Timedelta(hours=1)).to_pydatetime()
    manifest: dict[str, Any] = {
        "format": FORMAT_NAME, "version": FORMAT_VERSION, "name": name,
        "description": description,
    }
    if start is not None:
        manifest["start"] = format_instant(start)
    if end is not None:
        manifest["end"] = format_instant(end)
    manifest.update({"zones": manifest_zones, "locations": manifest_locations,
                     "attribution": list(attribution)})
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return root


def _iso_column(values: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(values, utc=True, format="ISO8601")
    whole = (stamps.dt.microsecond == 0).all()
    return stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ" if whole else "%Y-%m-%dT%H:%M:%S.%fZ")


def _energy_csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in ENERGY_TIME_COLUMNS:
        out[column] = _iso_column(out[column])
    out["is_estimated"] = [
        "true" if _truthy(v) else "false" for v in out["is_estimated"].tolist()
    ]
    return out


def _weather_csv_frame(frame: pd.DataFrame, time_columns: list[str]) -> pd.DataFrame:
    out = frame.copy()
    for column in time_columns:
        out[column] = _iso_column(out[column])
    return out


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().casefold() in ("true", "1", "yes")
    return bool(value)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    text = frame.to_csv(index=False, lineterminator="\n")
    if path.name.endswith(".gz"):
        # mtime=0 keeps the bytes reproducible, so a regenerated dataset diffs cleanly.
        with gzip.GzipFile(path, "wb", mtime=0) as handle:
            handle.write(text.encode("utf-8"))
    else:
        path.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------
def parse_instant(text: str) -> datetime:
    """Parse an ISO-8601 instant (``Z``, offset, or naive = UTC) to an aware UTC datetime."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def format_instant(value: datetime) -> str:
    """``2024-03-31T01:00:00Z`` (naive datetimes are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_lat_lon(text: str) -> tuple[float, float] | None:
    match = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*", text)
    if not match:
        return None
    lat, lon = float(match.group(1)), float(match.group(2))
    return (lat, lon) if -90 <= lat <= 90 and -180 <= lon <= 180 else None
