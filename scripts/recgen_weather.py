"""Weather observations and forecast vintages, in Visual Crossing variables and metric units.

Real series (Open-Meteo archive, shared/data/weather) are used where they exist; what is
missing is filled by the stand-ins and simple models documented in data/README.md:

* Athens 2024-2025: temperature, shortwave radiation, 10 m wind are real; cloud cover is real
  for 2025 and modelled from the clear-sky index for 2024.
* Thessaloniki, Patras 2025: temperature, radiation, cloud cover are real.
* Thessaloniki, Patras 2024: Athens 2024 transformed (temperature + a month x hour offset,
  Athens' clear-sky index applied to the city's own clear-sky curve); cloud cover modelled.
* Thessaloniki, Patras wind (both years): the nearest Open-Meteo wind site (Kozani, Kalamata).
* Everything else (dew, humidity, precipitation, snow, pressure, wind direction, gusts,
  visibility, ...) is modelled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recgen_common import (
    LOCATIONS, ar1, ar1_filter, clear_sky_ghi, hourly_index, int_col, round_col, smooth_noise,
    std_normal_cdf,
)

VC_COLUMNS = (
    "temp", "feelslike", "dew", "humidity", "precip", "precipprob", "preciptype", "snow",
    "snowdepth", "windgust", "windspeed", "winddir", "sealevelpressure", "cloudcover",
    "visibility", "solarradiation", "solarenergy", "uvindex", "severerisk", "conditions", "icon",
    "stations",
)

# Nearest Open-Meteo wind site standing in for a city without a wind series (10 m, m/s).
WIND_STAND_IN = {"Thessaloniki": "Kozani_ws10m_ms", "Patras": "Kalamata_ws10m_ms"}

# Climatological monthly mean dew point (degC), rough values for each city.
DEW_CLIMATE = {
    "Athens": [5.0, 5.0, 6.5, 9.0, 12.5, 15.0, 15.5, 16.5, 15.0, 12.5, 10.0, 6.5],
    "Thessaloniki": [1.5, 2.5, 4.5, 8.0, 12.5, 15.5, 16.5, 16.5, 13.5, 10.0, 6.5, 3.0],
    "Patras": [6.5, 6.5, 8.0, 10.5, 14.0, 17.0, 18.5, 19.0, 17.0, 14.0, 11.0, 8.0],
}
# Target yearly precipitation (mm): used to scale the modelled rain amounts.
PRECIP_TARGET_MM = {"Athens": 380.0, "Thessaloniki": 450.0, "Patras": 700.0}
# Share of hours with a northerly regime, by month (meltemi in summer).
NORTH_SHARE = [0.55, 0.55, 0.5, 0.5, 0.55, 0.65, 0.8, 0.8, 0.7, 0.6, 0.55, 0.55]


# ============================================================================================
# Real series
# ============================================================================================
def _read_om(path: Path, time_col: str) -> pd.DataFrame:
    df = pd.read_csv(path)
    df[time_col] = pd.to_datetime(df[time_col], utc=True)
    return df.rename(columns={time_col: "time"})


def _hour_start(series: pd.Series) -> pd.Series:
    """Open-Meteo radiation at label T is the mean over [T-1h, T): relabel to hour start."""
    out = series.copy()
    out.index = out.index - pd.Timedelta(hours=1)
    return out


def load_real_weather(shared: Path) -> dict[str, dict]:
    """Real Open-Meteo series per city over 2023-2025 (hour-start radiation)."""
    wdir = shared / "weather"
    athens = _read_om(wdir / "athens_2024_2025_openmeteo.csv", "datetime_utc").set_index("time")
    cities = pd.concat([
        _read_om(wdir / f"greece_5cities_{y}_openmeteo.csv", "time") for y in (2023, 2025)
    ])
    sites = _read_om(wdir / "greece_wind_sites_2024_2025_openmeteo.csv",
                     "datetime_utc").set_index("time")
    out: dict[str, dict] = {}
    for loc in LOCATIONS:
        c = cities[cities.city == loc.name].set_index("time").sort_index()
        out[loc.name] = {
            "temp": c.temperature_2m,
            "ghi": _hour_start(c.shortwave_radiation),
            "cloud": c.cloudcover.astype(float),
        }
    a = out["Athens"]
    a["temp"] = pd.concat([a["temp"][a["temp"].index.year == 2023], athens.temperature_C])
    a["ghi"] = pd.concat([a["ghi"][a["ghi"].index.year <= 2023],
                          _hour_start(athens.irradiance_Wm2)])
    a["wind"] = athens.windspeed_ms
    for name, column in WIND_STAND_IN.items():
        out[name]["wind"] = sites[column]
    return out


# ============================================================================================
# Observations
# ============================================================================================
def _clear_sky_index(ghi: np.ndarray, cs: np.ndarray) -> np.ndarray:
    """GHI / clear-sky GHI where the sun is up enough, interpolated in time elsewhere."""
    k = np.full(len(ghi), np.nan)
    day = cs > 40
    k[day] = np.clip(ghi[day] / cs[day], 0.0, 1.2)
    return pd.Series(k).interpolate(limit_direction="both").to_numpy()


def _month_hour_table(values: pd.Series) -> pd.Series:
    idx = values.index
    return values.groupby([idx.month, idx.hour]).mean()


def _lookup(table: pd.Series, idx: pd.DatetimeIndex) -> np.ndarray:
    keys = pd.MultiIndex.from_arrays([idx.month, idx.hour])
    return table.reindex(keys).to_numpy()


def _cloud_from_k(k: np.ndarray, fit_k: np.ndarray, fit_cloud: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Cloud cover (%) from the clear-sky index by quantile mapping.

    Real hours (fit_k, fit_cloud) are binned by clear-sky index; an hour with index k takes the
    u-quantile of the real cloud covers in its bin, u following an AR(1) (rho 0.9) so that
    consecutive hours stay coherent. This keeps the real distribution's many 0 % and 100 % hours.
    """
    edges = np.linspace(0.0, 1.2, 25)
    fit_bin = np.clip(np.digitize(fit_k, edges) - 1, 0, len(edges) - 2)
    populated = [b for b in range(len(edges) - 1) if (fit_bin == b).sum() >= 30]
    hour_bin = np.clip(np.digitize(k, edges) - 1, 0, len(edges) - 2)
    nearest = np.asarray(populated)[np.abs(np.asarray(populated)[None, :]
                                           - hour_bin[:, None]).argmin(axis=1)]
    u = std_normal_cdf(ar1(rng, len(k), 0.9, 1.0))
    cloud = np.empty(len(k))
    for b in populated:
        sel = nearest == b
        if sel.any():
            cloud[sel] = np.quantile(fit_cloud[fit_bin == b], u[sel])
    return np.clip(cloud, 0, 100)


def core_series(real: dict[str, dict], rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """Per city, hourly over the recording: temp, ghi, wind (m/s), cloud + provenance flags."""
    idx = hourly_index()
    y2024 = idx.year == 2024
    athens = real["Athens"]
    athens_cs = clear_sky_ghi(idx, LOCATIONS[0].lat, LOCATIONS[0].lon)
    athens_ghi = athens["ghi"].reindex(idx).fillna(0.0).to_numpy()  # last hour: night
    athens_k = _clear_sky_index(athens_ghi, athens_cs)
    out: dict[str, pd.DataFrame] = {}
    for loc in LOCATIONS:
        r = real[loc.name]
        cs = clear_sky_ghi(idx, loc.lat, loc.lon)
        temp = r["temp"].reindex(idx)
        ghi = r["ghi"].reindex(idx)
        if loc.name != "Athens":
            # 2024 stand-in: Athens 2024 transformed with offsets fitted on 2023 + 2025.
            both = pd.DataFrame({"x": r["temp"], "a": athens["temp"]}).dropna()
            dt = _month_hour_table(both.x - both.a)
            temp[y2024] = athens["temp"].reindex(idx[y2024]).to_numpy() + _lookup(dt, idx[y2024])
            fit = pd.DataFrame({"x": r["ghi"], "a": athens["ghi"]}).dropna()
            ratio = fit.x.groupby(fit.index.month).sum() / fit.a.groupby(fit.index.month).sum()
            scale = ratio.reindex(idx[y2024].month).to_numpy()
            k = athens_k[y2024] * scale
            ghi[y2024] = np.minimum(k * cs[y2024], 1.1 * cs[y2024] + 5)
        temp = temp.interpolate(limit_direction="both").to_numpy()
        ghi = np.clip(ghi.fillna(0.0).to_numpy(), 0, None)
        wind = r["wind"].reindex(idx).interpolate(limit_direction="both").to_numpy()
        # Cloud cover: real where we have it, else from the clear-sky index.
        cloud = r["cloud"].reindex(idx).to_numpy()
        fit_idx = r["cloud"].index.intersection(r["ghi"].index)
        fit_cs = clear_sky_ghi(fit_idx, loc.lat, loc.lon)
        fit_day = fit_cs > 40
        fit_k = np.clip(r["ghi"].reindex(fit_idx).to_numpy()[fit_day] / fit_cs[fit_day], 0, 1.2)
        fit_cloud = r["cloud"].reindex(fit_idx).to_numpy()[fit_day]
        modelled = _cloud_from_k(_clear_sky_index(ghi, cs), fit_k, fit_cloud, rng)
        missing = np.isnan(cloud)
        cloud[missing] = modelled[missing]
        out[loc.name] = pd.DataFrame(
            {"temp": temp, "ghi": ghi, "cs": cs, "wind": wind, "cloud": cloud,
             "cloud_modelled": missing},
            index=idx,
        )
    return out


def _smooth_climate(monthly: list[float], idx: pd.DatetimeIndex) -> np.ndarray:
    """Monthly values placed mid-month, interpolated periodically over the day of year."""
    mid = np.array([15.5 + 30.4 * m for m in range(12)])
    x = np.concatenate([mid - 365, mid, mid + 365])
    y = np.tile(np.asarray(monthly, dtype=float), 3)
    doy = idx.dayofyear.to_numpy() + idx.hour.to_numpy() / 24
    return np.interp(doy, x, y)


def relative_humidity(temp: np.ndarray, dew: np.ndarray) -> np.ndarray:
    a, b = 17.625, 243.04
    return 100 * np.exp(a * dew / (b + dew) - a * temp / (b + temp))


def feels_like(temp: np.ndarray, rh: np.ndarray, wind_kmh: np.ndarray) -> np.ndarray:
    """Wind chill (T <= 10 degC, wind >= 4.8 km/h), heat index (T >= 27 degC, RH >= 40)."""
    v = np.power(np.maximum(wind_kmh, 0.0), 0.16)
    chill = 13.12 + 0.6215 * temp - 11.37 * v + 0.3965 * temp * v
    f = temp * 9 / 5 + 32
    hi_f = (-42.379 + 2.04901523 * f + 10.14333127 * rh - 0.22475541 * f * rh
            - 6.83783e-3 * f * f - 5.481717e-2 * rh * rh + 1.22874e-3 * f * f * rh
            + 8.5282e-4 * f * rh * rh - 1.99e-6 * f * f * rh * rh)
    heat = (hi_f - 32) * 5 / 9
    out = np.where((temp <= 10) & (wind_kmh >= 4.8), np.minimum(chill, temp), temp)
    return np.where((temp >= 27) & (rh >= 40), np.maximum(heat, temp), out)


def conditions_icon(cloud: np.ndarray, precip: np.ndarray, snow: np.ndarray,
                    visibility: np.ndarray, daylight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sky = np.where(cloud < 20, "Clear", np.where(cloud < 90, "Partially cloudy", "Overcast"))
    wet = np.where(snow > 0, "Snow", np.where(precip > 0, "Rain", ""))
    cond = np.where(wet == "", sky, np.where(sky == "Clear", wet, np.char.add(
        np.char.add(wet.astype("U20"), ", "), sky.astype("U20"))))
    suffix = np.where(daylight, "day", "night")
    icon = np.where(cloud < 20, np.char.add("clear-", suffix.astype("U5")),
                    np.where(cloud < 90, np.char.add("partly-cloudy-", suffix.astype("U5")),
                             "cloudy"))
    icon = np.where(visibility < 1.0, "fog", icon)
    icon = np.where(precip > 0, "rain", icon)
    icon = np.where(snow > 0, "snow", icon)
    return cond.astype(object), icon.astype(object)


def observations(core: dict[str, pd.DataFrame], rng: np.random.Generator
                 ) -> dict[str, pd.DataFrame]:
    """Full VC hourly observation table per city (numeric, unrounded internals kept)."""
    idx = hourly_index()
    n = len(idx)
    month = idx.month.to_numpy() - 1
    # Synoptic pressure anomaly shared by the cities (~2-day memory), plus local noise.
    p_common = smooth_noise(rng, n, 36, 6.0)
    season_p = _smooth_climate([1018, 1017, 1015, 1013, 1013, 1011, 1009, 1010, 1014, 1016,
                                1017, 1018], idx)
    regime_common = ar1(rng, n, float(np.exp(-1 / 36)), 1.0)
    out: dict[str, pd.DataFrame] = {}
    for loc in LOCATIONS:
        c = core[loc.name]
        temp = c.temp.to_numpy()
        cloud = c.cloud.to_numpy()
        ghi = c.ghi.to_numpy()
        wind_kmh = c.wind.to_numpy() * 3.6
        # Dew point: climatology + slow anomaly + a little daily cycle, below the temperature.
        # Capped at 23 degC: Greek summer heat comes with dry air.
        dew = (_smooth_climate(DEW_CLIMATE[loc.name], idx) + smooth_noise(rng, n, 24, 2.8)
               + 0.3 * ar1(rng, n, 0.8, 1.0))
        dew = np.minimum(np.minimum(dew, 23.0), temp - 0.2 - 0.5 * (cloud < 90))
        rh = np.clip(relative_humidity(temp, dew), 5, 100)
        # Precipitation: a latent AR(1) "rain spell" process, only under thick cloud.
        latent = ar1(rng, n, 0.85, 1.0)
        wet_season = _smooth_climate([1.0, 0.9, 0.7, 0.45, 0.3, 0.15, 0.05, 0.05, 0.25, 0.6,
                                      0.9, 1.0], idx)
        threshold = 1.6 - 0.9 * wet_season
        raining = (cloud >= 75) & (latent > threshold)
        amount = np.where(raining, (latent - threshold) * (0.5 + rng.exponential(1.0, n)), 0.0)
        for year in (2024, 2025):
            sel = idx.year == year
            total = amount[sel].sum()
            if total > 0:
                amount[sel] *= PRECIP_TARGET_MM[loc.name] / total
        precip = round_col(amount, 1)
        cold = temp <= 0.5
        snow = np.where((precip > 0) & cold, precip, 0.0)  # mm water -> cm of snow (1:10)
        depth = np.zeros(n)
        d = 0.0
        for t in range(n):
            d = max(0.0, d + snow[t] - 0.08 * max(temp[t], 0.0) - 0.005 * d)
            depth[t] = d
        preciptype = np.where(precip > 0, np.where(cold, "snow", "rain"), None).astype(object)
        # Wind direction: two regimes (northerly / southerly) with wandering noise.
        north = std_normal_cdf(0.8 * regime_common + 0.6 * ar1(rng, n, 0.97, 1.0)) \
            < np.asarray(NORTH_SHARE)[month]
        winddir = np.where(north, 20.0, 200.0) + ar1(rng, n, 0.9, 35.0)
        winddir = np.mod(winddir, 360.0)
        gust = wind_kmh * (1.3 + 0.35 * np.abs(ar1(rng, n, 0.7, 1.0))) + 3.0 + 0.01 * ghi
        cloud_12h = pd.Series(cloud).rolling(12, min_periods=1, center=True).mean().to_numpy()
        pressure = season_p + p_common + smooth_noise(rng, n, 12, 1.0) - 0.06 * (cloud_12h - 40)
        visibility = np.where(precip > 0, 6.0, 10.0)
        visibility = np.where(rh >= 97, 0.8 + 2.0 * (100 - rh) / 3, visibility)
        daylight = c.cs.to_numpy() > 0
        solar = round_col(ghi, 0)
        snow_r = round_col(snow, 1)
        vis_r = round_col(visibility, 1)
        cond, icon = conditions_icon(cloud, precip, snow_r, vis_r, daylight)
        temp_r = round_col(temp, 1)
        wind_r = round_col(wind_kmh, 1)
        rh_r = round_col(rh, 1)
        obs = pd.DataFrame({
            "temp": temp_r,
            "feelslike": round_col(feels_like(temp_r, rh_r, wind_r), 1),
            "dew": round_col(dew, 1),
            "humidity": rh_r,
            "precip": precip,
            "precipprob": round_col(np.where(precip > 0, 100.0, 0.0), 0),
            "preciptype": preciptype,
            "snow": snow_r,
            "snowdepth": round_col(depth, 1),
            "windgust": round_col(np.maximum(gust, wind_kmh), 1),
            "windspeed": wind_r,
            "winddir": round_col(winddir, 0),
            "sealevelpressure": round_col(pressure, 1),
            "cloudcover": round_col(cloud, 0),
            "visibility": vis_r,
            "solarradiation": solar,
            "solarenergy": round_col(solar * 0.0036, 1),
            "uvindex": round_col(np.clip(np.round(solar / 100), 0, 11), 0),
            "severerisk": np.full(n, np.nan),
            "conditions": cond,
            "icon": icon,
            "stations": loc.stations,
        }, index=idx)
        obs.attrs["cs"] = c.cs.to_numpy()
        out[loc.name] = obs
    return out


def observation_frame(obs: pd.DataFrame, hour_iso: np.ndarray, sel: np.ndarray) -> pd.DataFrame:
    df = obs.loc[sel].copy()
    df.insert(0, "datetime", hour_iso[sel])
    for name in ("precipprob", "winddir", "cloudcover", "solarradiation", "uvindex"):
        df[name] = int_col(df[name].to_numpy())
    df["severerisk"] = int_col(df["severerisk"].to_numpy())
    return df.reset_index(drop=True)


# ============================================================================================
# Forecast vintages
# ============================================================================================
FCST_CADENCE_H = 12  # vintages at 00 and 12 UTC, like the main NWP runs
FCST_HORIZON_H = 54

# Error spread sigma(lead) = a + b * lead, in the variable's unit.
ERROR_MODEL = {
    "temp": (0.4, 0.035),
    "dew": (0.5, 0.035),
    "windspeed": (1.5, 0.07),
    "winddir": (15.0, 0.8),
    "sealevelpressure": (0.4, 0.07),
    "cloudcover": (8.0, 0.45),
}
RHO_LEAD = 0.92     # AR(1) correlation of a vintage's error from one lead to the next
RHO_TARGET = 0.95   # AR(1) correlation (in target time) of the error shared by all vintages
SHARED = 0.3        # share of the error variance common to every vintage of a target hour


def _errors(rng: np.random.Generator, n_vint: int, issue_pos: np.ndarray, n_hours: int,
            name: str) -> np.ndarray:
    a, b = ERROR_MODEL[name]
    lead = np.arange(1, FCST_HORIZON_H + 1)
    own = ar1_filter(rng.standard_normal((n_vint, FCST_HORIZON_H)), RHO_LEAD)
    common_series = ar1(rng, n_hours + FCST_HORIZON_H + 1, RHO_TARGET, 1.0)
    common = common_series[issue_pos[:, None] + lead[None, :]]
    z = np.sqrt(1 - SHARED) * own + np.sqrt(SHARED) * common
    return (a + b * lead)[None, :] * z


def forecasts(obs: dict[str, pd.DataFrame], rng: np.random.Generator) -> dict[str, dict]:
    """Vintages per city: arrays of shape (n_vintages, horizon) plus the target positions."""
    idx = hourly_index()
    n = len(idx)
    issue_pos = np.arange(0, n, FCST_CADENCE_H)
    lead = np.arange(1, FCST_HORIZON_H + 1)
    target_pos = issue_pos[:, None] + lead[None, :]
    valid = target_pos < n
    tp = np.minimum(target_pos, n - 1)
    out: dict[str, dict] = {}
    for loc in LOCATIONS:
        o = obs[loc.name]
        nv = len(issue_pos)

        def base(name: str) -> np.ndarray:
            return o[name].to_numpy(dtype=float)[tp]

        err = {k: _errors(rng, nv, issue_pos, n, k) for k in ERROR_MODEL}
        temp = base("temp") + err["temp"]
        dew = np.minimum(base("dew") + err["dew"], temp - 0.2)
        wind = np.clip(base("windspeed") + err["windspeed"], 0, None)
        gust_ratio = base("windgust") / np.maximum(base("windspeed"), 1.0)
        gust = np.maximum(wind * np.clip(gust_ratio, 1.1, 3.0), wind)
        winddir = np.mod(base("winddir") + err["winddir"], 360)
        pressure = base("sealevelpressure") + err["sealevelpressure"]
        cloud = np.clip(base("cloudcover") + err["cloudcover"], 0, 100)
        cs = o.attrs["cs"][tp]
        ghi_noise = ar1_filter(rng.standard_normal((nv, FCST_HORIZON_H)), RHO_LEAD)
        ghi = base("solarradiation") - cs * (0.6 * err["cloudcover"] / 100
                                              - (0.02 + 0.001 * lead) * ghi_noise)
        ghi = np.clip(ghi, 0, 1.05 * cs)
        # Precipitation: hits, misses and false alarms whose rates grow with lead time.
        u = std_normal_cdf(ar1_filter(rng.standard_normal((nv, FCST_HORIZON_H)), 0.8))
        obs_rain = base("precip") > 0
        miss = 0.1 + 0.006 * lead
        false_alarm = (0.03 + 0.002 * lead) * np.where(cloud >= 70, 1.0, 0.15)
        rain_f = np.where(obs_rain, u > miss, u > 1 - false_alarm)
        size = np.exp(rng.standard_normal((nv, FCST_HORIZON_H)) * (0.3 + 0.01 * lead))
        precip = np.where(rain_f, np.where(obs_rain, base("precip") * size, 0.1 + 0.6 * size), 0)
        precip = np.where(rain_f, np.maximum(precip, 0.1), 0.0)
        zp = rng.standard_normal((nv, FCST_HORIZON_H))
        prob = np.where(rain_f, np.clip(85 - 0.6 * lead + 10 * zp, 25, 100),
                        np.clip(3 + 30 * np.clip(cloud - 60, 0, 40) / 40 + 0.2 * lead
                                + 4 * zp, 0, 45))
        cold = temp <= 0.5
        snow = np.where((precip > 0) & cold, precip, 0.0)
        rh = np.clip(relative_humidity(temp, dew), 5, 100)
        visibility = np.where(precip > 0, 15.0, 24.1)
        visibility = np.where(rh >= 97, 5.0, visibility)
        warm_season = np.isin(idx.month.to_numpy()[tp], [4, 5, 6, 7, 8, 9, 10])
        severe = np.where((prob >= 40) & warm_season, np.where(temp >= 20, 60.0, 30.0), 10.0)
        out[loc.name] = {
            "issue_pos": issue_pos, "target_pos": target_pos, "valid": valid, "lead": lead,
            "temp": temp, "dew": dew, "humidity": rh, "precip": precip, "precipprob": prob,
            "snow": snow, "windgust": gust, "windspeed": wind, "winddir": winddir,
            "sealevelpressure": pressure, "cloudcover": cloud, "visibility": visibility,
            "solarradiation": ghi, "severerisk": severe, "daylight": cs > 0,
            "snowdepth": base("snowdepth"),
        }
    return out


def forecast_frame(f: dict, hour_iso: np.ndarray, sel_vintage: np.ndarray,
                   end_pos: int) -> pd.DataFrame:
    """Rows (issued_at, datetime) for the selected vintages, targets before `end_pos`."""
    keep = f["valid"] & sel_vintage[:, None] & (f["target_pos"] < end_pos)
    rows = np.nonzero(keep)

    def pick(name: str) -> np.ndarray:
        return f[name][rows]

    temp = round_col(pick("temp"), 1)
    dew = round_col(pick("dew"), 1)
    # Forecast precision is coarser than the observations' to fit the size budget
    # (docs/decisions/0002-embedded-dataset.md): humidity, pressure and wind in whole units,
    # wind direction to 10 degrees.
    rh = round_col(pick("humidity"), 0)
    wind = round_col(pick("windspeed"), 0)
    precip = round_col(pick("precip"), 1)
    snow = round_col(pick("snow"), 1)
    cloud = round_col(pick("cloudcover"), 0)
    vis = round_col(pick("visibility"), 1)
    solar = round_col(pick("solarradiation"), 0)
    cond, icon = conditions_icon(cloud, precip, snow, vis, pick("daylight"))
    preciptype = np.where(precip > 0, np.where(snow > 0, "snow", "rain"), None).astype(object)
    return pd.DataFrame({
        "issued_at": hour_iso[f["issue_pos"][rows[0]]],
        "datetime": hour_iso[f["target_pos"][rows]],
        "temp": temp,
        "feelslike": round_col(feels_like(temp, rh, wind), 1),
        "dew": dew,
        "humidity": int_col(rh),
        "precip": precip,
        "precipprob": int_col(pick("precipprob")),
        "preciptype": preciptype,
        "snow": snow,
        "snowdepth": round_col(pick("snowdepth"), 1),  # persisted from the analysis
        "windgust": int_col(np.maximum(pick("windgust"), wind)),
        "windspeed": int_col(wind),
        "winddir": int_col(np.mod(np.round(pick("winddir") / 10) * 10, 360)),
        "sealevelpressure": int_col(pick("sealevelpressure")),
        "cloudcover": int_col(cloud),
        "visibility": vis,
        "solarradiation": int_col(solar),
        "solarenergy": round_col(solar * 0.0036, 1),
        "uvindex": int_col(np.clip(np.round(solar / 100), 0, 11)),
        "severerisk": int_col(pick("severerisk")),
        "conditions": cond,
        "icon": icon,
        "stations": None,
    })


__all__ = ["VC_COLUMNS", "load_real_weather", "core_series", "observations",
           "observation_frame", "forecasts", "forecast_frame"]
