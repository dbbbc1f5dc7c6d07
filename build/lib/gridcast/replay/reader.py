"""Load a recording directory (manifest.json and its CSVs) into a :class:`Recording`."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from gridcast.replay.portal import portal_energy_series
from gridcast.replay.recording import (
    FORMAT_NAME,
    FORMAT_VERSION,
    EnergySeries,
    Location,
    Recording,
    RecordingError,
    WeatherTable,
    empty_weather,
    format_epoch_ms,
    parse_instant,
    read_energy_csv,
    read_weather_csv,
)

_ZONE_KEYS = frozenset({"energy", "portal", "publication_delay_hours"})
_LOCATION_KEYS = frozenset(
    {"lat", "lon", "timezone", "resolved_address", "observations", "forecasts"}
)

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
        forecasts = empty_weather(forecast=True)
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
            f"{format_epoch_ms(int(observations.time_s[at]) * 1000)}"
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
                f"{source}: duplicate forecast row issued_at {format_epoch_ms(int(issued[at]) * 1000)} "
                f"datetime {format_epoch_ms(int(forecasts.time_s[at]) * 1000)}"
            )
    vintages, starts = np.unique(issued, return_index=True)
    offsets = np.append(starts, len(forecasts)).astype(np.int64)
    return Location(
        name=name, lat=lat, lon=lon, timezone=timezone, resolved_address=resolved_address,
        observations=observations, forecasts=forecasts,
        vintages_s=vintages.astype(np.int64), _vintage_offsets=offsets,
    )


