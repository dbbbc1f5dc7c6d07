"""Electricity Maps data-portal CSVs (yearly hourly files, carbon intensity only) as energy rows."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from gridcast.hours import HOUR
from gridcast.replay.recording import (
    EnergySeries,
    RecordingError,
    csv_header,
    epoch_ms,
    float_array,
    open_bytes,
    read_table,
)
from gridcast.replay.writer import energy_series_from_frame

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
    publication_delay: timedelta = HOUR,
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
    data = open_bytes(path)
    header = csv_header(path, data)
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
    table = read_table(path, data, types, header).select(list(renamed)).rename_columns(
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
    hour_ms = epoch_ms(path, "Datetime (UTC)", table["datetime"])
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
        return float_array(table[name]) if name in table.column_names else np.full(n, np.nan)

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
    publication_delay: timedelta = HOUR,
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


