"""Shared constants and small helpers for the recording generator (scripts/build_recording.py).

Nothing here reads files except `write_csv_gz`, which writes them byte-reproducibly.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

# --------------------------------------------------------------------------------------------
# Recording span and identity
# --------------------------------------------------------------------------------------------
START = pd.Timestamp("2024-01-01T00:00:00Z")
END = pd.Timestamp("2026-01-01T00:00:00Z")  # exclusive
NAME = "gr-2024-2025"
ZONE = "GR"
DEFAULT_SEED = 20240101


@dataclass(frozen=True)
class Location:
    name: str
    slug: str
    lat: float
    lon: float
    stations: str  # Visual Crossing `stations` value for observation rows
    demand_weight: float  # share in the population-weighted temperature driving demand


LOCATIONS = (
    Location("Athens", "athens", 37.98, 23.73, "LGAV,LGEL,16716099999,remote", 0.60),
    Location("Thessaloniki", "thessaloniki", 40.64, 22.94, "LGTS,16622099999,remote", 0.25),
    Location("Patras", "patras", 38.25, 21.73, "LGRX,16687099999,remote", 0.15),
)
TIMEZONE = "Europe/Athens"

# --------------------------------------------------------------------------------------------
# Electricity Maps wire vocabulary and the GR facts (shared/data/README.md, EM defaults)
# --------------------------------------------------------------------------------------------
SOURCES = (
    "nuclear", "geothermal", "biomass", "coal", "wind", "solar", "hydro", "gas", "oil",
    "unknown", "hydro discharge", "battery discharge",
)
# Sources the GR zone has no production of. The api-sample serves nuclear, geothermal and
# battery discharge as null and oil as 0 for GR; we do the same.
NULL_PRODUCTION = ("nuclear", "geothermal", "battery discharge")
NEIGHBOURS = ("AL", "BG", "IT-SO", "MK", "TR")

CAPACITY_MW = {
    "gas": 6030, "coal": 2650, "hydro": 2722, "hydro storage": 699, "solar": 5100,
    "wind": 4150, "biomass": 127, "unknown": 120,
}

# Life-cycle factors gCO2eq/kWh for GR (shared/data/README.md). `unknown` is not listed there:
# Electricity Maps' default (700 life-cycle, 575 direct, "assume conventional") stands in.
LIFECYCLE_FACTORS = {
    "nuclear": 5.1, "geothermal": 38.0, "biomass": 230.0, "coal": 1537.0, "wind": 12.6,
    "solar": 26.1, "hydro": 10.7, "gas": 503.0, "oil": 1125.0, "unknown": 700.0,
    "hydro discharge": 336.0, "battery discharge": 336.0,
}
# Direct factors (README: coal 1524, oil 881, gas 383, biomass 0, renewables 0). Storage
# discharge direct: Electricity Maps' default fallback (2021 mean of all zones, 324.69) -> 325.
DIRECT_FACTORS = {
    "nuclear": 0.0, "geothermal": 0.0, "biomass": 0.0, "coal": 1524.0, "wind": 0.0,
    "solar": 0.0, "hydro": 0.0, "gas": 383.0, "oil": 881.0, "unknown": 575.0,
    "hydro discharge": 325.0, "battery discharge": 325.0,
}
# Electricity Maps defaults: everything but coal, gas, oil and unknown is low-carbon; storage
# discharge counts as renewable, nuclear does not.
FOSSIL_FREE = ("nuclear", "geothermal", "biomass", "wind", "solar", "hydro",
               "hydro discharge", "battery discharge")
RENEWABLE = ("geothermal", "biomass", "wind", "solar", "hydro",
             "hydro discharge", "battery discharge")


def col(prefix: str, source: str) -> str:
    """Recording column name for a wire key (`hydro discharge` -> `production_hydro_discharge`)."""
    return f"{prefix}_{source.replace(' ', '_')}"


# --------------------------------------------------------------------------------------------
# Time helpers
# --------------------------------------------------------------------------------------------
def hourly_index(start: pd.Timestamp = START, end: pd.Timestamp = END) -> pd.DatetimeIndex:
    return pd.date_range(start, end, freq="h", inclusive="left", tz="UTC")


def iso(times: pd.DatetimeIndex) -> np.ndarray:
    """ISO-8601 UTC strings with a Z suffix, seconds precision (`2024-03-31T01:00:00Z`)."""
    values = times.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[s]")
    return np.char.add(np.datetime_as_string(values, unit="s"), "Z").astype(object)


def iso_hours(index: pd.DatetimeIndex) -> np.ndarray:
    return iso(index)


# --------------------------------------------------------------------------------------------
# Random processes
# --------------------------------------------------------------------------------------------
def ar1(rng: np.random.Generator, n: int, rho: float, sigma: float = 1.0,
        shape: tuple[int, ...] = ()) -> np.ndarray:
    """Stationary AR(1) along the first axis: x_t = rho x_{t-1} + sqrt(1-rho^2) sigma e_t.

    With `shape`, independent processes of that trailing shape run side by side. The recursion
    runs in pandas' exponentially weighted mean (adjust=False is exactly this recursion).
    """
    eps = rng.standard_normal((n, *shape)).reshape(n, -1)
    k = np.sqrt(1.0 - rho * rho)
    z = eps.copy()
    z[0] *= (1.0 - rho) / k  # so that x_0 = e_0: a stationary start
    y = pd.DataFrame(z).ewm(alpha=1.0 - rho, adjust=False).mean().to_numpy()
    return (y * (k / (1.0 - rho)) * sigma).reshape((n, *shape))


def smooth_noise(rng: np.random.Generator, n: int, timescale_h: float, sigma: float) -> np.ndarray:
    """A smooth random series: AR(1) with memory `timescale_h`, then a triangular moving average
    over the same span, rescaled to standard deviation `sigma` (no hour-to-hour jitter)."""
    x = ar1(rng, n + 4 * int(timescale_h), float(np.exp(-1.0 / timescale_h)), 1.0)
    w = max(int(timescale_h), 1)
    kernel = np.convolve(np.ones(w), np.ones(w))
    y = np.convolve(x, kernel / kernel.sum(), mode="same")[2 * int(timescale_h):][:n]
    return sigma * (y - y.mean()) / y.std()


def ar1_filter(eps: np.ndarray, rho: float) -> np.ndarray:
    """Apply a unit-variance AR(1) filter along axis 1 of a 2-D array of N(0,1) draws."""
    out = np.empty_like(eps)
    out[:, 0] = eps[:, 0]
    k = np.sqrt(1.0 - rho * rho)
    for j in range(1, eps.shape[1]):
        out[:, j] = rho * out[:, j - 1] + k * eps[:, j]
    return out


def std_normal_cdf(x: np.ndarray) -> np.ndarray:
    """Normal CDF (tanh approximation, |error| < 2e-4: plenty for thresholds)."""
    return 0.5 * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))


# --------------------------------------------------------------------------------------------
# Sun
# --------------------------------------------------------------------------------------------
def cos_zenith(times: pd.DatetimeIndex, lat: float, lon: float) -> np.ndarray:
    """Cosine of the solar zenith angle at `times` (UTC), clipped at 0 (NOAA-style formulas)."""
    doy = times.dayofyear.to_numpy()
    hour = times.hour.to_numpy() + times.minute.to_numpy() / 60.0
    g = 2 * np.pi / 365.0 * (doy - 1 + (hour - 12) / 24)
    decl = (0.006918 - 0.399912 * np.cos(g) + 0.070257 * np.sin(g) - 0.006758 * np.cos(2 * g)
            + 0.000907 * np.sin(2 * g) - 0.002697 * np.cos(3 * g) + 0.00148 * np.sin(3 * g))
    eqtime = 229.18 * (0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g)
                       - 0.014615 * np.cos(2 * g) - 0.040849 * np.sin(2 * g))
    solar_time = hour * 60 + eqtime + 4 * lon  # minutes
    ha = np.deg2rad(solar_time / 4 - 180)
    phi = np.deg2rad(lat)
    cz = np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(ha)
    return np.clip(cz, 0.0, None)


def clear_sky_ghi(times: pd.DatetimeIndex, lat: float, lon: float) -> np.ndarray:
    """Hour-mean clear-sky GHI (Haurwitz) for hour-start `times`: mean of 4 sub-samples."""
    acc = np.zeros(len(times))
    for minutes in (7.5, 22.5, 37.5, 52.5):
        cz = cos_zenith(times + pd.Timedelta(minutes=minutes), lat, lon)
        with np.errstate(divide="ignore", invalid="ignore"):
            ghi = np.where(cz > 0.01, 1098.0 * cz * np.exp(-0.057 / np.maximum(cz, 0.01)), 0.0)
        acc += ghi
    return acc / 4


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------
def write_csv_gz(df: pd.DataFrame, path) -> int:
    """Write `df` as gzip CSV, byte-reproducibly (mtime=0, no file name in the header).

    Returns the compressed size in bytes.
    """
    text = df.to_csv(index=False, lineterminator="\n")
    raw = text.encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(raw)
    data = buf.getvalue()
    with open(path, "wb") as fh:
        fh.write(data)
    return len(data)


def round_col(x: np.ndarray, decimals: int) -> np.ndarray:
    """Round and clear negative zeros (so -0.0 is never written)."""
    return np.round(np.asarray(x, dtype=float), decimals) + 0.0


def int_col(x: np.ndarray) -> pd.array:
    """Nullable integer column (NaN -> empty field in the CSV)."""
    x = np.asarray(x, dtype=float)
    out = pd.array(np.where(np.isnan(x), 0, np.round(x)).astype(np.int64), dtype="Int64")
    out[np.isnan(x)] = pd.NA
    return out

