"""The recording format's in-memory model and its CSV readers.

A recording (format described in ``docs/replay-format.md``) holds what Electricity Maps and
Visual Crossing knew hour by hour: energy revisions per zone, weather observations and forecast
vintages per location. The classes here hold it as numpy arrays sorted for the replay server's
point-in-time look-ups (a few microseconds per hour); ``reader.load_recording`` fills them from a
directory, ``writer.write_recording`` writes one, ``portal`` reads data-portal files.

All instants are handled as integers: epoch milliseconds for revision times, epoch seconds for
hours. Every validation error is a :class:`RecordingError` whose message starts with the path.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from gridcast.errors import GridcastError
from gridcast.hours import HOUR_S

FORMAT_NAME = "gridcast-replay"
FORMAT_VERSION = 1

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
                f"{self.source}: datetime {format_epoch_ms(int(self.hour_s[misaligned[0]]) * 1000)} "
                "is not the start of an hour"
            )
        same = (np.diff(self.hour_s) == 0) & (np.diff(self.available_ms) == 0)
        if same.any():
            at = int(np.nonzero(same)[0][0])
            raise RecordingError(
                f"{self.source}: duplicate revision for datetime "
                f"{format_epoch_ms(int(self.hour_s[at]) * 1000)} available_at "
                f"{format_epoch_ms(int(self.available_ms[at]))}"
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

    def first_vintage_in(self, start_s: int, end_s: int) -> int | None:
        """Index of the first vintage issued in [start_s, end_s), or None."""
        k = int(np.searchsorted(self.vintages_s, start_s, side="left"))
        return k if k < len(self.vintages_s) and self.vintages_s[k] < end_s else None

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
# CSV reading (pyarrow: multi-threaded, so a 2-year recording loads in well under a second)
# --------------------------------------------------------------------------------------------
def open_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise RecordingError(f"{path}: corrupt gzip data ({error})") from None
    return data


def csv_header(path: Path, data: bytes) -> list[str]:
    first_line = data.split(b"\n", 1)[0].rstrip(b"\r")
    if not first_line.strip():
        raise RecordingError(f"{path}: empty file (expected a CSV header)")
    try:
        text = first_line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RecordingError(f"{path}: the header is not UTF-8") from None
    return next(csv.reader([text]))


def read_table(path: Path, data: bytes, column_types: dict[str, pa.DataType],
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


def epoch_ms(path: Path, name: str, column: pa.ChunkedArray) -> np.ndarray:
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


def float_array(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)


def check_columns(
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


def is_power_column(column: str) -> bool:
    return column in POWER_COLUMNS or bool(re.fullmatch(r"(import|export)_\S+", column))


def read_energy_csv(path: str | os.PathLike[str], zone: str) -> EnergySeries:
    """Read one zone's energy file (one row per hour and revision) into an EnergySeries."""
    path = Path(path)
    data = open_bytes(path)
    header = csv_header(path, data)
    has_power = any(is_power_column(c) for c in header)
    required = list(CARBON_COLUMNS) + (list(POWER_COLUMNS) if has_power else [])
    check_columns(path, header, required, is_power_column)
    types: dict[str, pa.DataType] = {c: pa.float64() for c in header}
    types.update({c: pa.string() for c in ENERGY_TIME_COLUMNS})
    types.update({"is_estimated": pa.bool_(), "estimation_method": pa.string()})
    table = read_table(path, data, types, header)
    return energy_series(path, zone, table, header if has_power else None)


def energy_series(
    path: Path, zone: str, table: pa.Table, power_header: Sequence[str] | None
) -> EnergySeries:
    estimated = table["is_estimated"]
    if estimated.null_count:
        raise RecordingError(f"{path}: column 'is_estimated' has empty value(s)")
    series = EnergySeries(
        zone=zone,
        source=path,
        hour_s=epoch_ms(path, "datetime", table["datetime"]) // 1000,
        available_ms=epoch_ms(path, "available_at", table["available_at"]),
        updated_ms=epoch_ms(path, "updated_at", table["updated_at"]),
        created_ms=epoch_ms(path, "created_at", table["created_at"]),
        is_estimated=np.asarray(estimated.to_numpy(zero_copy_only=False), dtype=bool),
        estimation_method=table["estimation_method"].to_pylist(),
        carbon_intensity=float_array(table["carbon_intensity"]),
        carbon_intensity_direct=float_array(table["carbon_intensity_direct"]),
    )
    if power_header is not None:
        def matrix(columns: Sequence[str]) -> np.ndarray:
            if not columns:
                return np.zeros((table.num_rows, 0))
            return np.column_stack([float_array(table[c]) for c in columns])

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
    data = open_bytes(path)
    header = csv_header(path, data)
    keys = ["issued_at", "datetime"] if forecast else ["datetime"]
    check_columns(path, header, keys + list(WEATHER_VARIABLES), lambda _c: False)
    types: dict[str, pa.DataType] = {k: pa.string() for k in keys}
    types.update({v: pa.float64() for v in WEATHER_NUMERIC_VARIABLES})
    types.update({v: pa.string() for v in WEATHER_TEXT_VARIABLES})
    table = read_table(path, data, types, header)
    codes: dict[str, np.ndarray] = {}
    dictionaries: dict[str, list[str]] = {}
    for variable in sorted(WEATHER_TEXT_VARIABLES):
        # Dictionary-encode: a few distinct strings repeated over many rows.
        encoded = table[variable].combine_chunks().dictionary_encode()
        codes[variable] = (
            pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32)
        )
        dictionaries[variable] = encoded.dictionary.to_pylist()
    time_s = epoch_ms(path, "datetime", table["datetime"]) // 1000
    issued = epoch_ms(path, "issued_at", table["issued_at"]) // 1000 if forecast else None
    for name, values in (("datetime", time_s), ("issued_at", issued)):
        if values is not None and len(values) and (values % HOUR_S).any():
            raise RecordingError(f"{path}: column '{name}' has a value that is not a whole hour")
    numeric = (
        np.column_stack([float_array(table[v]) for v in WEATHER_NUMERIC_VARIABLES])
        if table.num_rows
        else np.zeros((0, len(WEATHER_NUMERIC_VARIABLES)))
    )
    return WeatherTable(time_s, numeric, codes, dictionaries, issued)


def empty_weather(*, forecast: bool) -> WeatherTable:
    return WeatherTable(
        time_s=np.zeros(0, dtype=np.int64),
        numeric=np.zeros((0, len(WEATHER_NUMERIC_VARIABLES))),
        text_codes={v: np.zeros(0, dtype=np.int32) for v in WEATHER_TEXT_VARIABLES},
        text_values={v: [] for v in WEATHER_TEXT_VARIABLES},
        issued_s=np.zeros(0, dtype=np.int64) if forecast else None,
    )


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


def format_epoch_ms(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_lat_lon(text: str) -> tuple[float, float] | None:
    match = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*", text)
    if not match:
        return None
    lat, lon = float(match.group(1)), float(match.group(2))
    return (lat, lon) if -90 <= lat <= 90 and -180 <= lon <= 180 else None

