"""Test-only point-in-time frames built from a synthetic hourly carbon-intensity series.

The series has daily and weekly seasonality, a temperature and renewables effect, AR(1) noise
and a level shift (a regime change) part-way. Features are computed plainly with index
arithmetic: this is test data, not the product frame. At issue hour T the newest known hour is
T - 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

START = pd.Timestamp("2025-01-06T00:00:00Z")  # a Monday


def synthetic_series(days: int, seed: int = 0, shift_at: float = 0.5) -> pd.DataFrame:
    """Hourly `carbon_intensity`, `renewable_percentage`, `temp` for `days` days from START."""
    rng = np.random.default_rng(seed)
    n = days * 24
    t = np.arange(n)
    hour = t % 24
    weekday = (t // 24) % 7
    solar = np.clip(np.sin((hour - 6) / 12 * np.pi), 0, None)
    wind = 20 + 10 * np.sin(t / 37.0) + rng.normal(0, 1, n)
    renewable = np.clip(25 * solar + wind, 0, 100)
    temp = (
        12 + 8 * np.sin((hour - 9) / 24 * 2 * np.pi) + 3 * np.sin(t / 200.0)
        + rng.normal(0, 1, n)
    )
    noise = np.zeros(n)
    shocks = rng.normal(0, 8, n)
    for i in range(1, n):
        noise[i] = 0.8 * noise[i - 1] + shocks[i]
    level = np.where(t >= int(n * shift_at), 320.0, 380.0)
    ci = (
        level
        + 60 * np.sin((hour - 15) / 24 * 2 * np.pi)
        - 25 * (weekday >= 5)
        - 2.5 * (renewable - 30)
        + 4.0 * np.abs(temp - 15)
        + noise
    )
    return pd.DataFrame({
        "datetime": START + pd.to_timedelta(t, unit="h"),
        "carbon_intensity": ci,
        "renewable_percentage": renewable,
        "temp": temp,
    })


def _at(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    inside = (index >= 0) & (index < len(values))
    out = np.full(index.shape, np.nan)
    out[inside] = values[index[inside]]
    return out


def point_in_time_frame(
    days: int = 45, horizon: int = 24, seed: int = 0, zone: str = "GR", warmup_days: int = 8,
    labelled_until: int | None = None, shift_at: float = 0.5,
) -> pd.DataFrame:
    """One row per (issued_at, horizon) for every issue hour after `warmup_days`.

    Targets beyond the series end (or beyond hour index `labelled_until`) are NaN, like hours
    not yet known. `shift_at`: where the level shift falls, as a share of the series (1 = none).
    """
    series = synthetic_series(days, seed, shift_at)
    ci = series["carbon_intensity"].to_numpy()
    if labelled_until is not None:
        ci_target = ci.copy()
        ci_target[labelled_until:] = np.nan
    else:
        ci_target = ci
    renewable = series["renewable_percentage"].to_numpy()
    temp = series["temp"].to_numpy()
    rng = np.random.default_rng(seed + 1)

    issue = np.arange(warmup_days * 24, days * 24)
    T = np.repeat(issue, horizon)
    h = np.tile(np.arange(1, horizon + 1), len(issue))
    target_index = T + h
    last = T - 1  # newest known hour at T
    target_hour = target_index % 24
    last_complete_day_start = (T // 24 - 1) * 24

    def known(index: np.ndarray) -> np.ndarray:
        value = _at(ci, index)
        value[index > last] = np.nan
        return value

    frame = pd.DataFrame({
        "zone": zone,
        "issued_at": START + pd.to_timedelta(T, unit="h"),
        "horizon": h,
        "datetime": START + pd.to_timedelta(target_index, unit="h"),
        "target": _at(ci_target, target_index),
        "ci_last": _at(ci, last),
        "ci_last_age_h": 1,
        "renewable_percentage_last": _at(renewable, last),
        "ci_lag_1h": _at(ci, T - 1),
        "ci_lag_2h": _at(ci, T - 2),
        "ci_lag_3h": _at(ci, T - 3),
        "ci_lag_24h": _at(ci, T - 24),
        "ci_target_m24": known(target_index - 24),
        "ci_target_m48": known(target_index - 48),
        "ci_target_m168": known(target_index - 168),
        "ci_same_hour_last_day": _at(ci, last_complete_day_start + target_hour),
        "ci_same_hour_mean_7d": np.mean(
            [_at(ci, last_complete_day_start - 24 * d + target_hour) for d in range(7)], axis=0
        ),
    })
    for window in (24, 168):
        windows = np.stack([_at(ci, T - k) for k in range(1, window + 1)])
        frame[f"ci_mean_{window}h"] = windows.mean(axis=0)
        frame[f"ci_min_{window}h"] = windows.min(axis=0)
        frame[f"ci_max_{window}h"] = windows.max(axis=0)
        frame[f"ci_std_{window}h"] = windows.std(axis=0)
    # A weather forecast: the true temperature at T + h plus an error growing with the lead.
    frame["athens_temp"] = _at(temp, target_index) + rng.normal(0, 0.5 + h / 24)
    frame["weather_lead_h"] = h
    frame["weather_is_fallback"] = False
    frame["weather_missing"] = False
    local = frame["datetime"].dt.tz_convert("Europe/Athens")
    frame["hour_local"] = local.dt.hour
    frame["day_of_week_local"] = local.dt.dayofweek + 1
    frame["month_local"] = local.dt.month
    frame["is_holiday"] = False
    frame["is_weekend"] = local.dt.dayofweek >= 5
    return frame
