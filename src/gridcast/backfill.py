"""Backfill: history into bronze without waiting for the schedule (the free tier serves 24 h).

Four paths, each written to the bronze table and in the form silver already parses, with the
bronze `origin` column saying which:

- Electricity Maps `past-range` (carbon intensity, power breakdown), chunks of at most 240 h
  (`past-range`; live it needs a paid plan: a 401/403 says so).
- Visual Crossing history over explicit dates, chunks of `weather_chunk_days` (`weather-history`),
  and the archived forecast issued on each day of the range (`forecastBasisDate`,
  `archived-forecast`), its issue time in request params as `forecast_basis` (decision 0008).
- Electricity Maps data-portal CSVs: carbon intensity (life cycle; direct kept beside it in the
  raw entry), estimated flags into `bronze.carbon_data`, the two percentages (breakdown null)
  into `bronze.power_data`, as `portal-csv` payloads in the past-range shape with `updatedAt`
  null (`portal`; silver dates them hour + publication delay).
- Users' weather CSVs as observations (`user-csv`).

Every input file is checked before the first bronze write (`BackfillInputError` names file, row
and column). Resumable and idempotent: a chunk whose 2xx answer bronze holds is not fetched
again, a failed one is, and only a new answer is appended (ingest's rules, decision 0005); file
chunks are appended only when bronze lacks that exact payload. Every row is stamped with one
clock: in replay the simulated now the server answers at (the backfill's end), live the time the
backfill started (docs/decisions/0015-backfill.md).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import Row, SparkSession
from pyspark.sql import functions as F
from tqdm import tqdm

from gridcast.config import BackfillConfig, Location, ZoneConfig
from gridcast.errors import GridcastError
from gridcast.hours import HOUR
from gridcast.ingest import (
    BackgroundFlusher,
    BronzeBuffer,
    Request,
    StoredAnswers,
    answer_signature,
    bronze_row,
    collect_answers,
)
from gridcast.medallion.quality import ENERGY, WEATHER, InRange, Suite
from gridcast.medallion.silver import FORECAST_BASIS, PORTAL_CSV, USER_CSV
from gridcast.replay.portal import _PORTAL_HEADERS, _normalise_portal_header, read_portal_csv
from gridcast.replay.recording import RecordingError
from gridcast.sources import SourceSession
from gridcast.sources.http import ApiResponse, RetriesExhaustedError
from gridcast.storage import TableStore
from gridcast.tables import (
    BRONZE_CARBON,
    BRONZE_POWER,
    BRONZE_TABLES,
    BRONZE_WEATHER,
    SCHEDULED_ORIGIN,
    WEATHER_VARIABLES,
    Table,
)

PAST_RANGE, PORTAL, WEATHER_HISTORY, ARCHIVED_FORECAST = (
    "past-range",
    "portal",
    "weather-history",
    "archived-forecast",
)
SIGNALS = {BRONZE_CARBON: "carbon-intensity", BRONZE_POWER: "power-breakdown"}
_TEXT_VARIABLES = ("preciptype", "conditions", "icon", "stations")
_DAY = timedelta(days=1)


class BackfillInputError(GridcastError, ValueError):
    """A portal or weather CSV is unusable; the message names the file, row and column."""


class BackfillCostError(GridcastError, RuntimeError):
    """A live backfill would cost more Visual Crossing records than allowed."""


class BackfillIncompleteError(GridcastError, RuntimeError):
    """Some chunks failed after every retry; what did arrive was written."""


@dataclass(frozen=True)
class Chunk:
    """One request (or one file payload) of the backfill and where its answer goes."""

    table: Table
    origin: str
    location: Location | None
    first: datetime  # past-range: start; weather: first UTC day (midnight); files: first hour
    last: (
        datetime  # past-range: end (exclusive); weather: last UTC day (inclusive); files: last hour
    )
    basis: date | None = None  # archived forecast: the issue date
    payload: ApiResponse | None = None  # a file chunk: its bronze answer, built here
    records: int = 0  # Visual Crossing records the request is expected to cost

    @property
    def identity(self) -> Hashable:
        if self.payload is not None:
            return _identity(
                self.table.qualified_name,
                self.location and self.location.name,
                self.payload.endpoint,
                self.payload.params,
            )
        name = self.location.name if self.location else None
        if self.origin == PAST_RANGE:
            return (
                self.table.qualified_name,
                name,
                f"{SIGNALS[self.table]}/past-range",
                int(self.first.timestamp()),
                int(self.last.timestamp()),
            )
        return (
            self.table.qualified_name,
            name,
            "timeline",
            self.first.date().isoformat(),
            self.last.date().isoformat(),
            self.basis.isoformat() if self.basis else None,
        )


def _identity(table: str, location: str | None, endpoint: str, params: dict) -> Hashable | None:
    """What request (or file payload) a bronze row answers, from its request params."""
    if endpoint.endswith("/past-range"):
        try:
            return (
                table,
                location,
                endpoint,
                int(_parse_instant(params["start"]).timestamp()),
                int(_parse_instant(params["end"]).timestamp()),
            )
        except (KeyError, ValueError):
            return None
    if endpoint == "timeline":
        return (
            table,
            location,
            endpoint,
            params.get("date1"),
            params.get("date2"),
            params.get("forecastBasisDate"),
        )
    if endpoint in (PORTAL_CSV, USER_CSV):
        return (
            table,
            location,
            endpoint,
            params.get("file"),
            params.get("start"),
            params.get("end"),
        )
    return None


def _parse_instant(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _em_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# --- the range and the clock ---------------------------------------------------------------------


@dataclass(frozen=True)
class BackfillRange:
    start: datetime
    end: datetime  # exclusive
    fetch: bool  # False: files only, nothing fetched


def backfill_range(
    settings: BackfillConfig, default_end: datetime, file_hours: Sequence[datetime] = ()
) -> BackfillRange:
    """The hours to backfill.

    Args:
        settings: the `backfill` section.
        default_end: end when `backfill.end` is null (replay: ingest.start; live: now).
        file_hours: every hour the portal and weather files hold.

    Returns:
        [start, end): with neither start nor end set and files given, the files' range and
        nothing to fetch; else end (or default_end) and start (or end - history_days).
    """
    if settings.start is None and settings.end is None and len(file_hours):
        return BackfillRange(min(file_hours), max(file_hours) + HOUR, fetch=False)
    end = settings.end or default_end
    start = settings.start or end - timedelta(days=settings.history_days)
    if end <= start:
        raise BackfillInputError(
            f"backfill range is empty: start {_iso(start)}, end {_iso(end)} "
            "(set backfill.start / backfill.end or history_days > 0)"
        )
    return BackfillRange(start, end, fetch=True)


# --- checking input files --------------------------------------------------------------------------


def _bounds(suite: Suite, column: str) -> tuple[float | None, float | None] | None:
    """The silver quality gate's range for a column, so a file is judged as silver would."""
    for expectation in suite.expectations:
        if isinstance(expectation, InRange) and (
            column in expectation.columns
            or (expectation.prefixes and column.startswith(expectation.prefixes))
        ):
            return expectation.low, expectation.high
    return None


def _check_range(
    path: Path,
    values: np.ndarray,
    column: str,
    label: str,
    suite: Suite,
    row_of: Callable[[int], int],
) -> None:
    bounds = _bounds(suite, column)
    if bounds is None:
        return
    low, high = bounds
    with np.errstate(invalid="ignore"):
        outside = ((values < low) if low is not None else False) | (
            (values > high) if high is not None else False
        )
    bad = np.flatnonzero(outside)
    if len(bad):
        i = int(bad[0])
        raise BackfillInputError(
            f"{path}: row {row_of(i)}, column '{label}': {values[i]:g} is outside "
            f"[{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}]"
            + (f" ({len(bad)} rows)" if len(bad) > 1 else "")
        )


def _check_hours(
    path: Path,
    hours: pd.Series,
    label: str,
    row_of: Callable[[int], int],
    groups: pd.Series | None = None,
) -> None:
    """Every time on the hour, none twice (within `groups`, e.g. per location)."""
    off_hour = np.flatnonzero(
        (hours.dt.minute != 0) | (hours.dt.second != 0) | (hours.dt.microsecond != 0)
    )
    if len(off_hour):
        i = int(off_hour[0])
        raise BackfillInputError(
            f"{path}: row {row_of(i)}, column '{label}': {hours.iloc[i]:%Y-%m-%dT%H:%M:%SZ} "
            "is not on the hour (hourly data expected)"
        )
    keys = (
        hours.astype(str) if groups is None else groups.astype(str) + "\u0001" + hours.astype(str)
    )
    repeated = np.flatnonzero(keys.duplicated(keep="first").to_numpy())
    if len(repeated):
        i = int(repeated[0])
        first = int(np.flatnonzero((keys == keys.iloc[i]).to_numpy())[0])
        raise BackfillInputError(
            f"{path}: row {row_of(i)}, column '{label}': hour "
            f"{hours.iloc[i]:%Y-%m-%dT%H:%MZ} repeats row {row_of(first)}"
        )


@dataclass
class PortalFile:
    path: Path
    zone: str
    frame: (
        pd.DataFrame
    )  # datetime (UTC), carbon_intensity[_direct], is_estimated, estimation_method, percentages
    emission_factor_type: str = "lifecycle"  # "direct" when the file has only direct intensity


def read_portal_file(path: Path, zone: str) -> PortalFile:
    """A data-portal CSV, checked: its zone, hourly times without repeats, values in range.

    Raises:
        BackfillInputError: naming the file, row and column.
    """
    try:
        file_zone, frame = read_portal_csv(path)
    except RecordingError as error:
        raise BackfillInputError(str(error)) from None
    if file_zone != zone:
        raise BackfillInputError(
            f"{path}: holds zone {file_zone!r}, the backfill is for zone {zone!r}"
        )
    header = pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns
    labels = {_PORTAL_HEADERS.get(_normalise_portal_header(c)): c for c in header}
    percentages = [c for c in ("fossil_free_percentage", "renewable_percentage") if c in labels]
    if percentages:
        extra = pd.read_csv(
            path,
            usecols=[labels[c] for c in percentages],
            encoding="utf-8-sig",
            compression="infer",
        )
        for name in percentages:
            frame[name] = pd.to_numeric(extra[labels[name]], errors="coerce").to_numpy()

    def row_of(i: int) -> int:
        return i + 2  # line numbers: the header is line 1

    _check_hours(path, frame["datetime"], labels.get("datetime", "Datetime (UTC)"), row_of)
    for name in ("carbon_intensity", "carbon_intensity_direct", *percentages):
        if name in labels:
            _check_range(
                path, frame[name].to_numpy(dtype=float), name, labels[name], ENERGY, row_of
            )
    if "carbon_intensity" not in labels:  # a file with direct intensity only
        frame["carbon_intensity"] = frame["carbon_intensity_direct"]
        return PortalFile(path, zone, frame, "direct")
    return PortalFile(path, zone, frame)


def read_weather_file(path: Path, zone: ZoneConfig) -> pd.DataFrame:
    """A user's weather CSV, checked: `datetime` (UTC, ISO 8601), `location` (one of the zone's),
    any Visual Crossing variable (metric units); hourly, no repeated (location, hour), values in
    silver's ranges.

    Returns:
        The rows with `datetime` parsed (UTC), variables as given (text), file order.

    Raises:
        BackfillInputError: naming the file, row and column.
    """
    try:
        rows = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise BackfillInputError(f"{path}: not a readable CSV ({str(error).strip()})") from None
    rows.columns = [c.strip() for c in rows.columns]
    missing = [c for c in ("datetime", "location") if c not in rows.columns]
    if missing:
        raise BackfillInputError(
            f"{path}: missing column(s) {', '.join(missing)} "
            "(expected datetime, location and Visual Crossing variables)"
        )
    unknown = [c for c in rows.columns if c not in ("datetime", "location", *WEATHER_VARIABLES)]
    if unknown:
        raise BackfillInputError(
            f"{path}: unknown column(s) {', '.join(unknown)}; use Visual Crossing's "
            f"names: {', '.join(WEATHER_VARIABLES)}"
        )
    variables = [c for c in rows.columns if c in WEATHER_VARIABLES]
    if not variables:
        raise BackfillInputError(
            f"{path}: no weather variable column (e.g. temp, humidity, windspeed)"
        )

    def row_of(i: int) -> int:
        return i + 2

    names = {loc.name for loc in zone.locations}
    wrong = np.flatnonzero(~rows["location"].isin(names).to_numpy())
    if len(wrong):
        i = int(wrong[0])
        raise BackfillInputError(
            f"{path}: row {row_of(i)}, column 'location': {rows['location'].iloc[i]!r} is not "
            f"a location of zone {zone.id} ({', '.join(sorted(names))})"
        )
    text = rows["datetime"].str.strip()
    # An ISO time with an offset other than UTC, or none: accepted as UTC only when it says so.
    offset = text.str.extract(r"(Z|[+-]\d\d:?\d\d)$")[0]
    not_utc = np.flatnonzero(
        (offset.notna() & ~offset.isin(["Z", "+00:00", "+0000", "-00:00"])).to_numpy()
    )
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad) or len(not_utc):
        i = int(min([*bad[:1], *not_utc[:1]]))
        raise BackfillInputError(
            f"{path}: row {row_of(i)}, column 'datetime': {rows['datetime'].iloc[i]!r} is not "
            "an ISO 8601 UTC time (e.g. 2025-03-01T13:00:00Z)"
        )
    rows["datetime"] = parsed
    _check_hours(path, rows["datetime"], "datetime", row_of, groups=rows["location"])
    for name in variables:
        if name in _TEXT_VARIABLES:
            continue
        values = pd.to_numeric(rows[name].replace("", np.nan), errors="coerce")
        unparsable = np.flatnonzero((values.isna() & (rows[name].str.strip() != "")).to_numpy())
        if len(unparsable):
            i = int(unparsable[0])
            raise BackfillInputError(
                f"{path}: row {row_of(i)}, column '{name}': {rows[name].iloc[i]!r} is not a number"
            )
        _check_range(path, values.to_numpy(dtype=float), name, name, WEATHER, row_of)
    return rows


# --- file payloads ---------------------------------------------------------------------------------


def _windows(hours: pd.Series, first: datetime, width: timedelta) -> pd.Series:
    """Which chunk of `width` (counted from `first`) each hour falls in."""
    return ((hours - pd.Timestamp(first)) // pd.Timedelta(width)).astype(int)


def _none_if_nan(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def portal_chunks(portal: PortalFile, chunk_hours: int) -> list[Chunk]:
    """A portal file as `portal-csv` payloads of at most `chunk_hours`: carbon entries (and,
    when the file has them, percentage entries for the power side, breakdowns null)."""
    frame = portal.frame.sort_values("datetime").reset_index(drop=True)
    first = frame["datetime"].iloc[0].to_pydatetime()
    factor = portal.emission_factor_type
    has_direct = factor == "lifecycle" and frame["carbon_intensity_direct"].notna().any()
    percentages = [
        c for c in ("fossil_free_percentage", "renewable_percentage") if c in frame.columns
    ]
    chunks = []
    for _, part in frame.groupby(
        _windows(frame["datetime"], first, timedelta(hours=chunk_hours)), sort=True
    ):
        start, last = (
            part["datetime"].iloc[0].to_pydatetime(),
            part["datetime"].iloc[-1].to_pydatetime(),
        )
        params = {
            "zone": portal.zone,
            "file": portal.path.name,
            "start": _iso(start),
            "end": _iso(last + HOUR),
        }
        carbon, power = [], []
        for row in part.itertuples(index=False):
            common = {
                "zone": portal.zone,
                "datetime": _em_time(row.datetime.to_pydatetime()),
                "updatedAt": None,
                "createdAt": None,
                "isEstimated": bool(row.is_estimated),
                "estimationMethod": row.estimation_method,
            }
            intensity = _none_if_nan(row.carbon_intensity)
            entry = {
                **common,
                "carbonIntensity": None if intensity is None else round(intensity),
                "emissionFactorType": factor,
            }
            if has_direct:
                entry["carbonIntensityDirect"] = _none_if_nan(row.carbon_intensity_direct)
            carbon.append(entry)
            if percentages:
                power.append(
                    {
                        **common,
                        **{_PERCENT_KEYS[c]: _none_if_nan(getattr(row, c)) for c in percentages},
                        "powerProductionBreakdown": None,
                        "powerConsumptionBreakdown": None,
                        "powerImportBreakdown": None,
                        "powerExportBreakdown": None,
                    }
                )
        for table, entries in ((BRONZE_CARBON, carbon), (BRONZE_POWER, power)):
            if entries:
                body = json.dumps(
                    {"zone": portal.zone, "data": entries, "temporalGranularity": "hourly"}
                )
                chunks.append(
                    Chunk(
                        table,
                        PORTAL,
                        None,
                        start,
                        last,
                        payload=ApiResponse(PORTAL_CSV, params, 200, body, attempts=1),
                    )
                )
    return chunks


_PERCENT_KEYS = {
    "fossil_free_percentage": "fossilFreePercentage",
    "renewable_percentage": "renewablePercentage",
}


def weather_csv_chunks(
    path: Path, rows: pd.DataFrame, zone: ZoneConfig, chunk_days: int
) -> list[Chunk]:
    """A checked weather CSV as `user-csv` payloads per location and `chunk_days`, in Visual
    Crossing's CSV shape (`name,datetime,...`, UTC) so silver parses them as observations."""
    variables = [c for c in rows.columns if c in WEATHER_VARIABLES]
    locations = {loc.name: loc for loc in zone.locations}
    chunks = []
    for name, located in rows.sort_values(["location", "datetime"]).groupby("location", sort=True):
        first = located["datetime"].iloc[0].to_pydatetime()
        for _, part in located.groupby(
            _windows(located["datetime"], first, timedelta(days=chunk_days)), sort=True
        ):
            start, last = (
                part["datetime"].iloc[0].to_pydatetime(),
                part["datetime"].iloc[-1].to_pydatetime(),
            )
            text = io.StringIO()
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(["name", "datetime", *variables])
            for row in part.itertuples(index=False):
                record = row._asdict()
                writer.writerow(
                    [
                        name,
                        f"{record['datetime']:%Y-%m-%dT%H:%M:%S}",
                        *[record[v] for v in variables],
                    ]
                )
            params = {
                "location": name,
                "file": path.name,
                "start": _iso(start),
                "end": _iso(last + HOUR),
                "timezone": "Z",
            }
            chunks.append(
                Chunk(
                    BRONZE_WEATHER,
                    USER_CSV,
                    locations[name],
                    start,
                    last,
                    payload=ApiResponse(USER_CSV, params, 200, text.getvalue(), attempts=1),
                )
            )
    return chunks


# --- planning --------------------------------------------------------------------------------------


@dataclass
class BackfillPlan:
    range: BackfillRange
    clock: datetime  # the ingested_at of every row (replay: the server's simulated now)
    chunks: list[Chunk]

    @property
    def expected_records(self) -> int:
        return sum(c.records for c in self.chunks)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def fetch_chunks(
    zone: ZoneConfig, settings: BackfillConfig, span: BackfillRange, horizon_h: int
) -> list[Chunk]:
    """The requests covering [start, end): past-range per signal in `chunk_hours`, weather
    history per location in `weather_chunk_days`, one archived forecast per location and UTC
    day (the vintage issued that day, reaching `horizon_h` past its issue midnight)."""
    chunks: list[Chunk] = []
    if not span.fetch:
        return chunks
    if settings.energy:
        for table in (BRONZE_CARBON, BRONZE_POWER):
            first = span.start
            while first < span.end:
                last = min(first + timedelta(hours=settings.chunk_hours), span.end)
                chunks.append(Chunk(table, PAST_RANGE, None, first, last))
                first = last
    if settings.weather:
        first_day, last_day = span.start.date(), (span.end - HOUR).date()
        ahead = timedelta(days=math.ceil(horizon_h / 24))
        for location in zone.locations:
            for offset in range(0, (last_day - first_day).days + 1, settings.weather_chunk_days):
                d1 = first_day + timedelta(days=offset)
                d2 = min(d1 + timedelta(days=settings.weather_chunk_days - 1), last_day)
                chunks.append(
                    Chunk(
                        BRONZE_WEATHER,
                        WEATHER_HISTORY,
                        location,
                        _midnight(d1),
                        _midnight(d2),
                        records=24 * ((d2 - d1).days + 1),
                    )
                )
            for basis in _days(first_day, last_day):
                chunks.append(
                    Chunk(
                        BRONZE_WEATHER,
                        ARCHIVED_FORECAST,
                        location,
                        _midnight(basis),
                        _midnight(basis + ahead),
                        basis=basis,
                        records=24 * ((ahead.days) + 1),
                    )
                )
    return chunks


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def plan_backfill(
    zone: ZoneConfig,
    settings: BackfillConfig,
    *,
    default_end: datetime,
    horizon_h: int,
    clock: datetime | None = None,
) -> BackfillPlan:
    """Check every input file, then list every chunk: nothing is written yet.

    Args:
        default_end: the end when `backfill.end` is null (replay: ingest.start; live: now).
        clock: the time rows are stamped with; None: the range's end (the replay clock).

    Raises:
        BackfillInputError: a file is unusable, or the files hold several zones.
    """
    portals = [read_portal_file(path, zone.id) for path in settings.portal_csv]
    weathers = [(path, read_weather_file(path, zone)) for path in settings.weather_csv]
    _check_no_overlap([(p.path, p.frame["datetime"]) for p in portals], "Datetime (UTC)")
    hours = [
        h.to_pydatetime()
        for p in portals
        for h in (p.frame["datetime"].min(), p.frame["datetime"].max())
    ]
    hours += [
        h.to_pydatetime() for _, w in weathers for h in (w["datetime"].min(), w["datetime"].max())
    ]
    span = backfill_range(settings, default_end, hours)
    stamp = clock or span.end
    for path, rows in weathers:
        future = np.flatnonzero((rows["datetime"] >= pd.Timestamp(stamp)).to_numpy())
        if len(future):
            i = int(future[0])
            raise BackfillInputError(
                f"{path}: row {i + 2}, column 'datetime': {rows['datetime'].iloc[i]:%Y-%m-%dT%H:%MZ} "
                f"is not before the backfill clock {_iso(stamp)} (observations only)"
            )
    chunks = [c for p in portals for c in portal_chunks(p, settings.chunk_hours)]
    chunks += [
        c
        for path, rows in weathers
        for c in weather_csv_chunks(path, rows, zone, settings.weather_chunk_days)
    ]
    chunks += fetch_chunks(zone, settings, span, horizon_h)
    return BackfillPlan(span, stamp, chunks)


def _check_no_overlap(files: list[tuple[Path, pd.Series]], label: str) -> None:
    """Two portal files of a zone must not both hold an hour (which one would be the value?)."""
    seen: dict[pd.Timestamp, Path] = {}
    for path, hours in files:
        for i, hour in enumerate(hours):
            if hour in seen:
                raise BackfillInputError(
                    f"{path}: row {i + 2}, column '{label}': hour {hour:%Y-%m-%dT%H:%MZ} "
                    f"is also in {seen[hour]}"
                )
        seen.update(dict.fromkeys(hours, path))


def check_cost(plan_records: int, settings: BackfillConfig, *, billed: bool) -> None:
    """A billed (live) backfill needs `confirm_cost=true` or a `max_records` budget covering it.

    Raises:
        BackfillCostError: neither, or the budget is too small.
    """
    if not billed or plan_records == 0 or settings.confirm_cost:
        return
    if settings.max_records is not None and plan_records <= settings.max_records:
        return
    budget = (
        ""
        if settings.max_records is None
        else f" (backfill.max_records={settings.max_records} is less)"
    )
    raise BackfillCostError(
        f"this backfill costs about {plan_records} Visual Crossing records{budget}; the free tier "
        "allows 1000 a day. Rerun with backfill.confirm_cost=true or backfill.max_records=N, "
        "shorten the range, or backfill.weather=false"
    )


# --- running ---------------------------------------------------------------------------------------


@dataclass
class BackfillSummary:
    chunks: int = 0
    fetched: int = 0
    skipped: int = 0  # already in bronze (a 2xx answer, or the same file payload)
    unchanged: int = 0  # re-fetched error answers identical to one bronze holds
    files: int = 0  # file payloads appended
    rows: dict[str, int] = field(
        default_factory=lambda: {t.qualified_name: 0 for t in BRONZE_TABLES}
    )
    records: int = 0  # Visual Crossing records the fetched answers cost (one per hourly row)
    expected_records: int = 0
    failures: list[str] = field(default_factory=list)
    http_errors: dict[str, int] = field(default_factory=dict)
    commits: int = 0
    versions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    write_seconds: float = 0.0

    def line(self) -> str:
        return (
            f"{self.chunks} chunks: {self.fetched} fetched, {self.skipped} already in bronze, "
            f"{self.unchanged} error answers unchanged, {self.files} file payloads; "
            f"{sum(self.rows.values())} bronze rows in {self.commits} commits; "
            f"{self.records} Visual Crossing records; {self.seconds:.1f} s ({self.write_seconds:.1f} s writing)"
        )


def stored_backfill_answers(
    spark: SparkSession, store: TableStore, zone: str
) -> dict[Hashable, StoredAnswers]:
    """What bronze holds for earlier backfills of the zone, per chunk identity."""

    def key(row: Row) -> Hashable | None:
        try:
            params = json.loads(row["request_params"])
        except (TypeError, ValueError):
            return None
        return _identity(row["table"], row["location"], row["endpoint"], params)

    return collect_answers(spark, store, zone, F.col("origin") != SCHEDULED_ORIGIN, key)


def _fetch(source: SourceSession, zone: ZoneConfig, chunk: Chunk) -> tuple[ApiResponse, str | None]:
    """One request; a retryable failure that persisted comes back as a response with an error."""
    try:
        if chunk.origin == PAST_RANGE:
            [response] = source.electricitymaps.past_range(
                SIGNALS[chunk.table], zone.id, chunk.first, chunk.last
            )
        elif chunk.origin == WEATHER_HISTORY:
            response = source.visualcrossing.history(
                chunk.location, chunk.first.date(), chunk.last.date()
            )
        else:
            response = source.visualcrossing.archived_forecast(
                chunk.location, chunk.basis, chunk.first.date(), chunk.last.date()
            )
        failure = None
    except RetriesExhaustedError as error:
        response, failure = error.response, str(error)
    if chunk.table is BRONZE_WEATHER:
        # The dates travel in the URL path: keep them even when no answer came (the identity).
        response.params = {
            **response.params,
            "date1": chunk.first.date().isoformat(),
            "date2": chunk.last.date().isoformat(),
        }
        if chunk.basis is not None:
            # The vintage: the forecast as issued at the start of its basis day (decision 0008).
            response.params[FORECAST_BASIS] = _iso(_midnight(chunk.basis))
    return response, failure


def _records(response: ApiResponse) -> int:
    """Visual Crossing bills one record per hourly row of history: the CSV's data lines."""
    if not response.ok or not response.body:
        return 0
    return max(0, sum(1 for line in response.body.splitlines()[1:] if line.strip()))


def run_backfill(
    spark: SparkSession,
    store: TableStore,
    source: SourceSession,
    zone: ZoneConfig,
    plan: BackfillPlan,
    *,
    run_id: str,
    concurrency: int = 4,
    flush_every_chunks: int = 400,
    progress_bar: bool = True,
    on_commit: Callable[[Table, int], None] | None = None,
) -> BackfillSummary:
    """Write the plan's file payloads and fetch its requests into bronze, skipping what bronze has.

    The source's clock is set to `plan.clock` (replay answers as the data stood then). Rows are
    appended every `flush_every_chunks` chunks, so an interrupted backfill keeps what it got
    and a rerun continues from there. AuthError (a token or plan that may not use past-range)
    stops at once, after writing what arrived.
    """
    started = time.monotonic()
    summary = BackfillSummary(chunks=len(plan.chunks))
    buffer = BronzeBuffer()
    stored = stored_backfill_answers(spark, store, zone.id)
    source.set_clock(plan.clock)
    source_kind = source.kind

    # Each flush is appended while the next chunks are fetched (the first one pays Delta's
    # cold start).
    flusher = BackgroundFlusher(spark, store, summary, on_commit)

    def flush() -> None:
        flusher.flush(buffer)

    def keep(chunk: Chunk, response: ApiResponse, failure: str | None) -> None:
        known = stored.get(chunk.identity, StoredAnswers())
        if chunk.payload is None:
            summary.fetched += 1
            if chunk.table is BRONZE_WEATHER:
                summary.records += _records(response)
        if failure:
            summary.failures.append(
                f"{response.endpoint} {chunk.location.name + ' ' if chunk.location else ''}"
                f"{_iso(chunk.first)}..{_iso(chunk.last)}: {failure}"
            )
        elif not response.ok:
            label = f"{response.endpoint} HTTP {response.status}"
            summary.http_errors[label] = summary.http_errors.get(label, 0) + 1
        if answer_signature(response, failure) in known.signatures:
            if chunk.payload is not None:
                summary.skipped += 1
            else:
                summary.unchanged += 1
            return
        request = Request(chunk.table, chunk.location.name if chunk.location else None)
        buffer.add(
            chunk.table,
            bronze_row(
                zone.id,
                request,
                response,
                source=source_kind,
                ingested_at=plan.clock,
                run_id=run_id,
                failure=failure,
                origin=chunk.origin,
            ),
        )
        summary.rows[chunk.table.qualified_name] += 1
        summary.files += chunk.payload is not None

    bar = tqdm(
        total=len(plan.chunks),
        desc=f"backfill {zone.id}",
        unit="chunk",
        disable=not progress_bar,
        mininterval=1.0,
    )
    try:
        files = [c for c in plan.chunks if c.payload is not None]
        for chunk in files:
            keep(chunk, chunk.payload, None)
            bar.update()
        flush()
        requests = [c for c in plan.chunks if c.payload is None]
        pending = [c for c in requests if not stored.get(c.identity, StoredAnswers()).ok]
        summary.skipped += len(requests) - len(pending)
        bar.update(len(requests) - len(pending))
        summary.expected_records = sum(c.records for c in pending)
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="backfill") as pool:
            for offset in range(0, len(pending), flush_every_chunks):
                batch = pending[offset : offset + flush_every_chunks]
                for chunk, (response, failure) in zip(
                    batch, pool.map(lambda c: _fetch(source, zone, c), batch)
                ):
                    keep(chunk, response, failure)
                    bar.update()
                flush()
    finally:
        # Whatever arrived is kept, even when an AuthError stops the run.
        try:
            flush()
        finally:
            flusher.close()
            bar.close()
            summary.seconds = time.monotonic() - started
    return summary
