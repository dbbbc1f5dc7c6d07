"""Write a recording directory from DataFrames, for tests and for the dataset generator."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from gridcast.replay.recording import (
    CARBON_COLUMNS,
    ENERGY_TIME_COLUMNS,
    FORMAT_NAME,
    FORMAT_VERSION,
    POWER_COLUMNS,
    WEATHER_VARIABLES,
    EnergySeries,
    check_columns,
    energy_series,
    format_instant,
    is_power_column,
    read_table,
)

def energy_series_from_frame(
    frame: pd.DataFrame, *, zone: str, source: Path | str = "<frame>"
) -> EnergySeries:
    """Validate and index an energy DataFrame (columns of the energy file format)."""
    source = Path(source)
    header = [str(c) for c in frame.columns]
    has_power = any(is_power_column(c) for c in header)
    required = list(CARBON_COLUMNS) + (list(POWER_COLUMNS) if has_power else [])
    check_columns(source, header, required, is_power_column)
    buffer = io.BytesIO()
    _energy_csv_frame(frame).to_csv(buffer, index=False)
    types: dict[str, pa.DataType] = {c: pa.float64() for c in header}
    types.update({c: pa.string() for c in ENERGY_TIME_COLUMNS})
    types.update({"is_estimated": pa.bool_(), "estimation_method": pa.string()})
    table = read_table(source, buffer.getvalue(), types, header)
    return energy_series(source, zone, table, header if has_power else None)


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
        has_power = any(is_power_column(c) for c in header)
        required = list(CARBON_COLUMNS) + (list(POWER_COLUMNS) if has_power else [])
        check_columns(root / relative, header, required, is_power_column)
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
        check_columns(root / obs_rel, [str(c) for c in observations.columns],
                       ["datetime", *WEATHER_VARIABLES], lambda _c: False)
        check_columns(root / fcst_rel, [str(c) for c in forecasts.columns],
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


