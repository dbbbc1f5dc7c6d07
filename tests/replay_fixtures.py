"""Tiny replay recordings for tests: deterministic, valid in every field, small enough to write
in milliseconds.

``build_tiny_recording(tmp_path)`` writes a recording with one zone (energy revisions: every hour
first published as an estimate, revised two hours later; one hour missing altogether) and
weather locations (hourly observations, forecast vintages every 6 hours with a 48-hour
horizon). The returned :class:`TinyRecording` carries the frames it wrote, so a test can derive
its expectations from them instead of hard-coding numbers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd

from gridcast.replay import ENERGY_SOURCES, source_column, write_recording

UTC = timezone.utc
DEFAULT_START = datetime(2025, 3, 9, tzinfo=UTC)
NEIGHBOURS = ("AL", "BG", "IT-SO", "MK", "TR")
ESTIMATE_DELAY = timedelta(minutes=10)  # an estimate shows up 10 minutes into its hour
REVISION_DELAY = timedelta(hours=2, minutes=13)  # the measured value replaces it later
ESTIMATION_METHOD = "TIME_SLICER_AVERAGE"
STATIONS = "LGAV,LGEL,16716099999,remote"
CITIES: dict[str, tuple[float, float, str]] = {
    "Athens": (37.98, 23.73, "Athens, Attica, Greece"),
    "Thessaloniki": (40.64, 22.94, "Thessaloniki, Central Macedonia, Greece"),
    "Patras": (38.25, 21.73, "Patras, Western Greece, Greece"),
    "Heraklion": (35.34, 25.13, "Heraklion, Crete, Greece"),
    "Larissa": (39.64, 22.42, "Larissa, Thessaly, Greece"),
}
# Life-cycle and direct factors (gCO2eq/kWh) of the Greek zone config, per wire source.
LCA = {"coal": 1537, "gas": 503, "oil": 1125, "biomass": 230, "solar": 26.1, "wind": 12.6,
       "hydro": 10.7, "hydro discharge": 336, "unknown": 700}
DIRECT = {"coal": 1524, "gas": 383, "oil": 881, "unknown": 575}


@dataclass(frozen=True)
class TinyRecording:
    """What :func:`build_tiny_recording` wrote; usable wherever a path is expected."""

    path: Path
    start: datetime
    hours: int
    zone: str
    energy: pd.DataFrame
    observations: dict[str, pd.DataFrame]
    forecasts: dict[str, pd.DataFrame]
    missing_hour: datetime

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def final_row(self, hour: datetime) -> pd.Series:
        """The non-estimated revision of an hour."""
        rows = self.energy[(self.energy["datetime"] == hour) & ~self.energy["is_estimated"]]
        return rows.iloc[0]

    def estimate_row(self, hour: datetime) -> pd.Series:
        rows = self.energy[(self.energy["datetime"] == hour) & self.energy["is_estimated"]]
        return rows.iloc[0]


def _power_values(hour_index: int, hour_of_day: int) -> dict[str, float]:
    """Plausible Greek production (MW) for one hour; the same inputs give the same numbers."""
    sun = max(0.0, math.sin(math.pi * (hour_of_day - 6) / 13)) if 6 <= hour_of_day <= 19 else 0.0
    wind = 1100 + 500 * math.sin(hour_index / 7.0)
    return {
        "nuclear": math.nan, "geothermal": math.nan, "biomass": 95.0,
        "coal": 420.0 + (hour_index % 5) * 10, "wind": round(wind), "solar": round(5200 * sun),
        "hydro": 350.0, "gas": 600.0 + 900 * (1 - sun), "oil": 0.0, "unknown": 140.0,
        "hydro discharge": -380.0 if sun > 0.5 else 220.0, "battery discharge": math.nan,
    }


def _intensity(production: dict[str, float], factors: dict[str, float]) -> float:
    total = sum(v for v in production.values() if not math.isnan(v) and v > 0)
    emitted = sum(max(production[s], 0) * f for s, f in factors.items()
                  if not math.isnan(production[s]))
    return round(emitted / total)


def tiny_energy_frame(start: datetime, hours: int, zone: str = "GR",
                      missing_hour_index: int | None = None) -> pd.DataFrame:
    """Two revisions per hour (estimate, then final) in the energy file format."""
    records = []
    for i in range(hours):
        if i == missing_hour_index:
            continue
        hour = start + timedelta(hours=i)
        production = _power_values(i, hour.hour)
        for estimated in (True, False):
            # An estimate overshoots fossil output, so its intensity differs from the final one.
            values = {s: (v if math.isnan(v) else
                          round(v * (1.12 if estimated and s in ("coal", "gas") else 1.0)))
                      for s, v in production.items()}
            positive_total = sum(v for v in values.values() if not math.isnan(v) and v > 0)
            consumption = {s: (0.0 if math.isnan(v) else round(max(v, 0) * 0.78))
                           for s, v in values.items()}
            imports = {z: float((i * 37 + k * 50) % 200) for k, z in enumerate(NEIGHBOURS)}
            exports = {z: float((i * 53 + k * 90) % 500) for k, z in enumerate(NEIGHBOURS)}
            fossil = sum(values[s] for s in ("coal", "gas", "oil"))
            renewable = sum(max(values[s], 0) for s in ("wind", "solar", "hydro", "biomass"))
            available = hour + (ESTIMATE_DELAY if estimated else REVISION_DELAY)
            record = {
                "datetime": hour,
                "available_at": available,
                "updated_at": available,
                "created_at": hour - timedelta(days=3) + timedelta(minutes=47, seconds=12),
                "is_estimated": estimated,
                "estimation_method": ESTIMATION_METHOD if estimated else None,
                "carbon_intensity": _intensity(values, LCA),
                "carbon_intensity_direct": _intensity(values, DIRECT),
            }
            record.update({source_column("production", s): values[s] for s in ENERGY_SOURCES})
            record.update({source_column("consumption", s): consumption[s]
                           for s in ENERGY_SOURCES})
            record.update({f"import_{z}": v for z, v in imports.items()})
            record.update({f"export_{z}": v for z, v in exports.items()})
            record.update({
                "power_production_total": positive_total,
                "power_consumption_total": float(sum(consumption.values())),
                "power_import_total": sum(imports.values()),
                "power_export_total": sum(exports.values()),
                "fossil_free_percentage": round(100 * (1 - fossil / positive_total)),
                "renewable_percentage": round(100 * renewable / positive_total),
            })
            records.append(record)
    return pd.DataFrame.from_records(records)


def _weather_row(target: datetime, lat: float, lead_hours: int | None) -> dict[str, object]:
    """Synthetic hourly weather at ``target``; a forecast (lead_hours set) drifts with lead."""
    phase = 2 * math.pi * (target.hour - 9) / 24
    drift = 0.0 if lead_hours is None else 0.1 * lead_hours
    temp = round(14 + 6 * math.sin(phase) - (lat - 38) + drift, 1)
    raining = target.hour in (15, 16, 17)
    sun = max(0.0, math.sin(math.pi * (target.hour - 6) / 13)) if 6 <= target.hour <= 19 else 0.0
    return {
        "temp": temp, "feelslike": round(temp - 1.2, 1), "dew": round(temp - 6.5, 1),
        "humidity": round(60 + 15 * math.cos(phase), 1), "precip": 0.4 if raining else 0.0,
        "precipprob": 45.2 if raining else 0.0, "preciptype": "rain" if raining else None,
        "snow": 0.0, "snowdepth": 0.0, "windgust": round(20 + 5 * math.sin(phase), 1),
        "windspeed": round(10 + 3 * math.sin(phase), 1),
        "winddir": round(30 + 4 * math.sin(phase), 1),
        "sealevelpressure": 1012.0, "cloudcover": 40.0 if not raining else 65.0,
        "visibility": 10.0 if lead_hours is None else 24.1,
        "solarradiation": round(620 * sun, 1), "solarenergy": round(2.2 * sun, 1),
        "uvindex": float(round(6 * sun)), "severerisk": None if lead_hours is None else 10.0,
        "conditions": "Rain, Partially cloudy" if raining else "Partially cloudy",
        "icon": "rain" if raining else ("partly-cloudy-day" if sun else "partly-cloudy-night"),
        "stations": STATIONS if lead_hours is None else None,
    }


def tiny_weather_frames(start: datetime, hours: int, lat: float, *, forecast_every_hours: int = 6,
                        horizon_hours: int = 48) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(observations, forecasts) in the weather file formats."""
    hours_utc = [start + timedelta(hours=i) for i in range(hours)]
    observations = pd.DataFrame.from_records(
        [{"datetime": t, **_weather_row(t, lat, None)} for t in hours_utc])
    forecasts = []
    for issue in range(0, hours, forecast_every_hours):
        issued = start + timedelta(hours=issue)
        for lead in range(1, horizon_hours + 1):
            target = issued + timedelta(hours=lead)
            forecasts.append({"issued_at": issued, "datetime": target,
                              **_weather_row(target, lat, lead)})
    return observations, pd.DataFrame.from_records(forecasts)


def build_tiny_recording(
    tmp_path: str | os.PathLike[str],
    start: datetime = DEFAULT_START,
    hours: int = 72,
    zone: str = "GR",
    locations: Sequence[str] = ("Athens", "Thessaloniki", "Patras"),
    *,
    missing_hour_index: int | None = None,
    compress: bool = True,
    forecast_every_hours: int = 6,
    forecast_horizon_hours: int = 48,
) -> TinyRecording:
    """Write a tiny recording under ``tmp_path/tiny-<zone>`` and return what it holds.

    The missing hour defaults to ``hours - 10`` (inside the last day, so a 24-hour history
    near the end shows the gap). Location names must be keys of :data:`CITIES`.
    """
    missing = hours - 10 if missing_hour_index is None else missing_hour_index
    energy = tiny_energy_frame(start, hours, zone, missing)
    observations, forecasts, specs = {}, {}, {}
    for name in locations:
        lat, lon, resolved = CITIES[name]
        obs, fcst = tiny_weather_frames(start, hours, lat, forecast_every_hours=forecast_every_hours,
                                        horizon_hours=forecast_horizon_hours)
        observations[name], forecasts[name] = obs, fcst
        meta = {"lat": lat, "lon": lon, "timezone": "Europe/Athens", "resolved_address": resolved}
        specs[name] = (meta, obs, fcst)
    path = write_recording(
        Path(tmp_path) / f"tiny-{zone}", name=f"tiny-{zone}", zones={zone: energy},
        locations=specs, description="synthetic test recording",
        attribution=["synthetic"], compress=compress,
    )
    energy = energy.assign(is_estimated=energy["is_estimated"].astype(bool))
    return TinyRecording(path, start, hours, zone, energy, observations, forecasts,
                         start + timedelta(hours=missing))


__all__ = [
    "CITIES", "DEFAULT_START", "ESTIMATE_DELAY", "ESTIMATION_METHOD", "NEIGHBOURS",
    "REVISION_DELAY", "STATIONS", "TinyRecording", "build_tiny_recording", "tiny_energy_frame",
    "tiny_weather_frames",
]
