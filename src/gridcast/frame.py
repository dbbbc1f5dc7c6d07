"""The point-in-time frame: one function builds training, backtest and scoring rows.

A forecast issued at hour T may use only what was known at T. `build_frame` turns the lake's
history (energy revisions, weather forecast vintages, optionally observed weather) into one row
per (issue hour T, horizon h) for any set of issue hours: a year of them for training and
backtests, the newest one for scoring. The same code builds both, so a model never trains on
features it could not have had when scoring.

The as-known rule: the value of column c for hour d known at T is the value of the newest
revision of d (by `available_at`, then `updated_at` when given, then input order) with
`available_at <= T` and c non-null. An hour with no such revision is unknown at T (NaN), whether
it is a gap, late, or in the future. Weather for T+h is the row for T+h of the newest vintage
with `fetched_at <= T` that has one. All of it is computed with sorted integer keys and
`numpy.searchsorted` (no per-row Python), see docs/decisions/0011-point-in-time-frame.md.

Output columns (one row per issued_at x horizon, sorted by both):

keys
    `zone` (str), `issued_at` (T, datetime64[ns, UTC]), `horizon` (h, int, 1..H),
    `datetime` (T + h, UTC).
target
    `target`: the final carbon intensity of T + h, the newest revision whatever T is; NaN when
    T + h has no value yet (scoring rows).
latest known at T
    `ci_last`: carbon intensity of the newest hour L known at T; `ci_last_age_h`: T - L in hours
    (NaN when nothing is known); `<mix>_last` for each of `FrameSettings.mix_columns` present in
    the revisions: that column's value at its own newest known hour.
lags at T
    `ci_lag_1h`, `ci_lag_2h`, `ci_lag_3h`, `ci_lag_24h`: hour T - k as known at T.
target-hour history as known at T
    `ci_target_m24`, `ci_target_m48`, `ci_target_m168`: hour T + h - 24 / 48 / 168 as known at T
    (NaN when not known at T, e.g. still in the future for h > 24);
    `ci_same_hour_last_day`: the newest known value among T + h - 24 k, k = 1 ..
    `same_hour_search_days` (the seasonal naive: t - 24, or t - 48 when t - 24 is not known);
    `ci_same_hour_mean_7d`: the mean of the `same_hour_days` (7) newest of those known values;
    `ci_same_hour_d2` .. `ci_same_hour_d7`: the 2nd .. 7th newest of them;
    `ci_profile_1d`: `ci_last` + (`ci_same_hour_last_day` - hour L - 24 as known), the last day's
    movement from L to the target's hour carried from the level now; `ci_profile_7d`: the same
    with the 7-day same-hour mean and the mean of L - 24 k, k = 1..7.
rolling, over the hours [L - 23, L] and [L - 167, L] as known at T
    `ci_mean_24h`, `ci_min_24h`, `ci_max_24h`, `ci_std_24h` (sample std, ddof 1),
    `ci_q10_24h`, `ci_q90_24h` (linear-interpolated quantiles) and the same with `_168h`.
    Unknown hours contribute nothing; NaN when none is known (std: fewer than two).
weather at T + h
    `<location>_<var>` for each zone location (`location_prefix` of gold) and each of
    `FrameSettings.weather_variables`; `weather_lead_h`: hours from the vintage's `fetched_at` to
    T + h (float; NaN for fallback or missing rows); `weather_is_fallback`: the observation of
    T + h stands in as a perfect forecast (only with `weather_fallback="observations"`);
    `weather_missing`: no vintage (nor fallback) row reaches T + h, so the weather is null.
    Such rows are kept, never dropped and never filled from later vintages.
calendar of T + h in the zone's local time
    `hour_local` (0..23), `day_of_week_local` (1 = Monday), `month_local`, `is_holiday`
    (national holidays of `ZoneConfig.country`, `holidays` package), `is_weekend` (the country's
    weekend days per `holidays`).

`feature_columns(frame)` lists the model inputs: every column but `zone`, `issued_at`,
`datetime` and `target` (`horizon` is an input of the multi-horizon model).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import holidays as holidays_package
import numpy as np
import pandas as pd

from gridcast.config import HORIZON_RANGE, ConfigError, ZoneConfig
from gridcast.errors import GridcastError
from gridcast.medallion.gold import location_prefix
from gridcast.tables import GOLD_WEATHER_VARIABLES as WEATHER_VARIABLES
from gridcast.settings import settings_from_mapping

FRAME_KEYS: tuple[str, ...] = ("zone", "issued_at", "horizon", "datetime")
TARGET = "target"
NOT_FEATURES = frozenset({"zone", "issued_at", "datetime", TARGET})

CI = "carbon_intensity"
REVISION_COLUMNS = ("datetime", "available_at", CI, "is_estimated")
VINTAGE_COLUMNS = ("fetched_at", "datetime")
OBSERVATION_COLUMNS = ("datetime",)
LAG_HOURS = (1, 2, 3, 24)
TARGET_HISTORY_HOURS = (24, 48, 168)
ROLLING_HOURS = (24, 168)
WEATHER_FALLBACKS = ("observations", "none")

_NS_PER_HOUR = 3_600_000_000_000
_NO_ROW = -1


class FrameError(GridcastError, ValueError):
    """The frame's input is unusable: a missing column, a naive or non-hourly datetime, a bad
    horizon or setting. The message names the input and the column."""


@dataclass(frozen=True)
class FrameSettings:
    """How the frame is built (Hydra section `frame`, wired by the steps).

    Attributes:
        weather_fallback: `"none"` (default, leak-free: no vintage, null weather flagged
            `weather_missing`) or `"observations"` (the observation of T + h as a perfect
            forecast, flagged `weather_is_fallback`; it uses data from after T, for training
            on history that predates the vintages).
        mix_columns: revision columns that get a `<mix>_last` feature when present.
        weather_variables: variables per location (`<location>_<var>`), gold's by default.
        same_hour_days: how many same-hour values `ci_same_hour_mean_7d` averages.
        same_hour_search_days: how many days back the same-hour features look.
    """

    weather_fallback: str = "none"
    mix_columns: tuple[str, ...] = (
        "fossil_free_percentage", "renewable_percentage", "power_production_total",
        "power_consumption_total", "production_wind", "production_solar",
    )
    weather_variables: tuple[str, ...] = WEATHER_VARIABLES
    same_hour_days: int = 7
    same_hour_search_days: int = 14

    def __post_init__(self) -> None:
        if self.weather_fallback not in WEATHER_FALLBACKS:
            raise ConfigError(
                f"frame.weather_fallback must be one of {', '.join(WEATHER_FALLBACKS)}, "
                f"got {self.weather_fallback!r}"
            )
        if self.same_hour_days < 1:
            raise ConfigError(f"frame.same_hour_days must be >= 1, got {self.same_hour_days}")
        if self.same_hour_search_days < self.same_hour_days:
            raise ConfigError(
                f"frame.same_hour_search_days ({self.same_hour_search_days}) must be >= "
                f"frame.same_hour_days ({self.same_hour_days})"
            )

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> FrameSettings:
        """Settings from a config mapping; unknown keys are errors (a typo would be ignored)."""
        return settings_from_mapping(cls, mapping, "frame")


# --- validation --------------------------------------------------------------------------------

def _require(df: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise FrameError(f"{name} lacks required column(s): {', '.join(missing)}")


def _utc_ns(
    values: pd.Series | pd.DatetimeIndex, name: str, column: str | None, hourly: bool
) -> np.ndarray:
    """Epoch nanoseconds of a tz-aware datetime column; naive, null or (if `hourly`) non-whole-hour
    values are errors naming the input and column."""
    label = name if column is None else f"{name}.{column}"
    if not isinstance(values.dtype, pd.DatetimeTZDtype):
        kind = "naive datetimes" if pd.api.types.is_datetime64_dtype(values.dtype) else values.dtype
        raise FrameError(f"{label} must be tz-aware UTC datetimes, got {kind}")
    as_utc = (values.dt if isinstance(values, pd.Series) else values).tz_convert("UTC")
    if pd.isna(as_utc).any():
        raise FrameError(f"{label} has null values")
    ns = np.asarray(as_utc.astype("datetime64[ns, UTC]").astype("int64"), dtype=np.int64)
    if hourly and (ns % _NS_PER_HOUR != 0).any():
        bad = as_utc[np.flatnonzero(ns % _NS_PER_HOUR != 0)[0]]
        raise FrameError(f"{label} must be whole hours, got {bad}")
    return ns


def _hours(df: pd.DataFrame, name: str) -> np.ndarray:
    """Whole hours since the epoch of a frame's `datetime` column."""
    return _utc_ns(df["datetime"], name, "datetime", hourly=True) // _NS_PER_HOUR


def _for_zone(df: pd.DataFrame, zone: ZoneConfig) -> pd.DataFrame:
    """The zone's rows when the frame carries a `zone` column (one lake table holds all zones)."""
    if "zone" in df.columns:
        return df.loc[df["zone"] == zone.id]
    return df


# --- the point-in-time index ---------------------------------------------------------------------

class _AsKnown:
    """For rows keyed by an hour and an instant (a revision of an hour, a vintage's row for a
    target hour), which row of hour d was the newest known at instant T, for arrays of (d, T).

    Rows are sorted by (hour, rank of instant, tie-break) into one int64 key, so one
    `searchsorted` answers any number of look-ups exactly (instants are ranked, not rounded).
    """

    def __init__(self, hours: np.ndarray, instants_ns: np.ndarray, tiebreak: np.ndarray) -> None:
        self.instants = np.unique(instants_ns)
        self.width = np.int64(len(self.instants) + 1)
        ranks = np.searchsorted(self.instants, instants_ns, side="left") + 1
        self.first_hour = np.int64(hours.min()) if len(hours) else np.int64(0)
        self.last_hour = np.int64(hours.max()) if len(hours) else np.int64(-1)
        keys = (hours - self.first_hour) * self.width + ranks
        self.order = np.lexsort((tiebreak, keys))
        self.keys = keys[self.order]
        self.hours = hours[self.order]
        # The newest hour known at each instant, for `latest_hour`.
        by_instant = np.argsort(instants_ns, kind="stable")
        self.sorted_instants = instants_ns[by_instant]
        self.newest_hour = np.maximum.accumulate(hours[by_instant]) if len(hours) else hours

    def rank(self, as_of_ns: np.ndarray) -> np.ndarray:
        """How many distinct instants are <= each as-of instant (the look-up's time key)."""
        return np.searchsorted(self.instants, as_of_ns, side="right")

    def final_rank(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.full(shape, len(self.instants), dtype=np.int64)

    def row(self, hours: np.ndarray, ranks: np.ndarray) -> np.ndarray:
        """Positions (into the original rows) of the newest row of each hour with a rank <= the
        given rank; `_NO_ROW` where there is none. Broadcasts `hours` against `ranks`."""
        hours, ranks = np.broadcast_arrays(hours, ranks)
        if not len(self.keys):
            return np.full(hours.shape, _NO_ROW, dtype=np.int64)
        inside = (hours >= self.first_hour) & (hours <= self.last_hour)
        clipped = np.clip(hours, self.first_hour, self.last_hour)
        query = (clipped - self.first_hour) * self.width + ranks
        position = np.searchsorted(self.keys, query.ravel(), side="right").reshape(query.shape) - 1
        safe = np.maximum(position, 0)
        found = inside & (position >= 0) & (self.hours[safe] == hours)
        return np.where(found, self.order[safe], _NO_ROW)

    def latest_hour(self, as_of_ns: np.ndarray) -> np.ndarray:
        """The newest hour with a row known at each instant, as float (NaN: none known)."""
        position = np.searchsorted(self.sorted_instants, as_of_ns, side="right") - 1
        latest = np.full(as_of_ns.shape, np.nan)
        known = position >= 0
        latest[known] = self.newest_hour[position[known]]
        return latest


def _take(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """values[rows] as float, NaN where rows is `_NO_ROW`."""
    out = np.full(rows.shape, np.nan)
    found = rows != _NO_ROW
    out[found] = values[rows[found]]
    return out


class _Column:
    """One revision column's point-in-time index over its non-null revisions."""

    def __init__(self, revisions: pd.DataFrame, hours: np.ndarray, available_ns: np.ndarray,
                 tiebreak: np.ndarray, column: str) -> None:
        values = pd.to_numeric(revisions[column], errors="coerce").to_numpy(dtype=float)
        given = ~np.isnan(values)
        self.values = values[given]
        self.index = _AsKnown(hours[given], available_ns[given], tiebreak[given])

    def known(self, hours: np.ndarray, ranks: np.ndarray) -> np.ndarray:
        return _take(self.values, self.index.row(hours, ranks))


# --- the frame ---------------------------------------------------------------------------------

def build_frame(
    revisions: pd.DataFrame,
    *,
    zone: ZoneConfig,
    issue_hours: pd.DatetimeIndex,
    horizon: int,
    vintages: pd.DataFrame | None = None,
    observations: pd.DataFrame | None = None,
    settings: FrameSettings = FrameSettings(),
) -> pd.DataFrame:
    """Model rows for each issue hour T and horizon 1..`horizon`, using only what was known at T.

    Args:
        revisions: one row per revision of an energy hour: `datetime` (hour), `available_at`,
            `carbon_intensity`, `is_estimated`, optional mix columns and `updated_at` (tie-break
            between revisions made available at the same instant), optional `zone`.
        zone: the zone (id, timezone, country, weather locations).
        issue_hours: the issue hours T (tz-aware, whole hours); duplicates are built once.
        horizon: the longest horizon H, 1..72.
        vintages: forecast vintages: `fetched_at`, `datetime` (target hour), `<location>_<var>`.
        observations: observed weather `datetime`, `<location>_<var>`; used only with
            `settings.weather_fallback == "observations"`.
        settings: see `FrameSettings`.

    Returns:
        One row per (issued_at, horizon), sorted, with the columns of the module docstring.

    Raises:
        FrameError: a missing required column, a naive or non-hourly datetime, a horizon outside
            1..72, a duplicate observation hour.
    """
    low, high = HORIZON_RANGE
    is_integer = isinstance(horizon, (int, np.integer)) and not isinstance(horizon, bool)
    if not is_integer or not low <= horizon <= high:
        raise FrameError(f"horizon must be an integer between {low} and {high}, got {horizon!r}")
    horizon = int(horizon)
    if not isinstance(issue_hours, pd.DatetimeIndex):
        raise FrameError(
            f"issue_hours must be a pandas DatetimeIndex, got {type(issue_hours).__name__}"
        )
    issued_ns = np.unique(_utc_ns(issue_hours, "issue_hours", None, hourly=True))
    _require(revisions, REVISION_COLUMNS, "revisions")
    revisions = _for_zone(revisions, zone)
    revision_hours = _hours(revisions, "revisions")
    available_ns = _utc_ns(revisions["available_at"], "revisions", "available_at", hourly=False)
    tiebreak = (
        _utc_ns(revisions["updated_at"], "revisions", "updated_at", hourly=False)
        if "updated_at" in revisions.columns else np.zeros(len(revisions), dtype=np.int64)
    )
    weather_columns = [
        f"{location_prefix(location.name)}_{variable}"
        for location in zone.locations for variable in settings.weather_variables
    ]

    n_issued = len(issued_ns)
    issued_hour = issued_ns // _NS_PER_HOUR                       # (T,)
    horizons = np.arange(1, horizon + 1, dtype=np.int64)          # (H,)
    target_hour = issued_hour[:, None] + horizons[None, :]        # (T, H)

    ci = _Column(revisions, revision_hours, available_ns, tiebreak, CI)
    rank = ci.index.rank(issued_ns)                               # (T,)
    features: dict[str, np.ndarray] = {}
    per_issue: dict[str, np.ndarray] = {}

    last_hour = ci.index.latest_hour(issued_ns)
    has_last = ~np.isnan(last_hour)
    last = np.where(has_last, last_hour, issued_hour).astype(np.int64)
    per_issue["ci_last"] = np.where(has_last, ci.known(last, rank), np.nan)
    per_issue["ci_last_age_h"] = np.where(has_last, issued_hour - last, np.nan)
    for mix in settings.mix_columns:
        if mix in revisions.columns:
            column = _Column(revisions, revision_hours, available_ns, tiebreak, mix)
            mix_rank = column.index.rank(issued_ns)
            mix_hour = column.index.latest_hour(issued_ns)
            mix_known = ~np.isnan(mix_hour)
            mix_last = np.where(mix_known, mix_hour, issued_hour).astype(np.int64)
            per_issue[f"{mix}_last"] = np.where(mix_known, column.known(mix_last, mix_rank), np.nan)
    for lag in LAG_HOURS:
        per_issue[f"ci_lag_{lag}h"] = ci.known(issued_hour - lag, rank)

    for back in TARGET_HISTORY_HOURS:
        features[f"ci_target_m{back}"] = ci.known(target_hour - back, rank[:, None])
    same_hour = _same_hour(ci, target_hour, rank[:, None], settings)
    features["ci_same_hour_last_day"], features["ci_same_hour_mean_7d"] = same_hour[:2]
    for day, values in enumerate(same_hour[2], start=2):
        features[f"ci_same_hour_d{day}"] = values
    # The last known day's profile carried to the target hour: the level now plus how the same
    # hours moved a day (a week, on average) ago, from the hour L to the target's hour.
    last_a_day_ago = ci.known(last - 24, rank)
    days_ago = np.stack(
        [ci.known(last - 24 * day, rank) for day in range(1, settings.same_hour_days + 1)]
    )
    known_days = (~np.isnan(days_ago)).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        last_days_ago = np.where(known_days > 0, np.nansum(days_ago, axis=0) / known_days, np.nan)
    features["ci_profile_1d"] = (per_issue["ci_last"] - last_a_day_ago)[:, None] + same_hour[0]
    features["ci_profile_7d"] = (per_issue["ci_last"] - last_days_ago)[:, None] + same_hour[1]

    window = ci.known(last[:, None] - np.arange(max(ROLLING_HOURS))[None, :], rank[:, None])
    window[~has_last] = np.nan
    for hours in ROLLING_HOURS:
        per_issue.update(_rolling(window[:, :hours], hours))

    features[TARGET] = ci.known(target_hour, ci.index.final_rank(target_hour.shape))
    weather = _weather(vintages, observations, zone, weather_columns, issued_ns, target_hour,
                       settings)

    datetimes = pd.DatetimeIndex(
        (target_hour.ravel() * _NS_PER_HOUR).astype("datetime64[ns]"), tz="UTC"
    )
    frame = {
        "zone": np.full(n_issued * horizon, zone.id, dtype=object),
        "issued_at": pd.DatetimeIndex(
            np.repeat(issued_ns, horizon).astype("datetime64[ns]"), tz="UTC"
        ),
        "horizon": np.tile(horizons, n_issued),
        "datetime": datetimes,
        TARGET: features.pop(TARGET).ravel(),
    }
    ordered_per_issue = ["ci_last", "ci_last_age_h"] + [
        f"{mix}_last" for mix in settings.mix_columns if f"{mix}_last" in per_issue
    ] + [f"ci_lag_{lag}h" for lag in LAG_HOURS]
    for name in ordered_per_issue:
        frame[name] = np.repeat(per_issue[name], horizon)
    for name, values in features.items():
        frame[name] = values.ravel()
    for hours in ROLLING_HOURS:
        for stat in ("mean", "min", "max", "std", "q10", "q90"):
            frame[f"ci_{stat}_{hours}h"] = np.repeat(per_issue[f"ci_{stat}_{hours}h"], horizon)
    frame.update(weather)
    frame.update(_calendar(datetimes, zone))
    return pd.DataFrame(frame)


def _same_hour(ci: _Column, target_hour: np.ndarray, rank: np.ndarray,
               settings: FrameSettings) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """The newest known value among the target's hour of day on the previous days, the mean
    of the `same_hour_days` newest known ones, and the 2nd .. `same_hour_days`-th newest known
    ones. One pass per day back (a handful, not per row) keeps memory at one (issue hour x
    horizon) array per running aggregate."""
    newest = np.full(target_hour.shape, np.nan)
    total = np.zeros(target_hour.shape)
    count = np.zeros(target_hour.shape, dtype=np.int64)
    older = [np.full(target_hour.shape, np.nan) for _ in range(settings.same_hour_days - 1)]
    for day in range(1, settings.same_hour_search_days + 1):
        value = ci.known(target_hour - 24 * day, rank)
        known = ~np.isnan(value)
        newest = np.where(np.isnan(newest), value, newest)
        for k, values in enumerate(older, start=1):
            np.copyto(values, value, where=known & (count == k))
        taken = known & (count < settings.same_hour_days)
        total += np.where(taken, value, 0.0)
        count += taken
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
    return newest, mean, older


def _rolling(window: np.ndarray, hours: int) -> dict[str, np.ndarray]:
    """Mean, min, max and sample std over each row's known values (NaN = unknown)."""
    known = ~np.isnan(window)
    n = known.sum(axis=1)
    filled = np.where(known, window, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, filled.sum(axis=1) / n, np.nan)
        squares = np.where(known, (window - mean[:, None]) ** 2, 0.0).sum(axis=1)
        std = np.where(n > 1, np.sqrt(squares / (n - 1)), np.nan)
    quantiles = np.full((2, len(window)), np.nan)
    some = n > 0
    if some.any():
        with np.errstate(invalid="ignore"):
            quantiles[:, some] = np.nanquantile(window[some], [0.1, 0.9], axis=1)
    return {
        f"ci_q10_{hours}h": quantiles[0],
        f"ci_q90_{hours}h": quantiles[1],
        f"ci_mean_{hours}h": mean,
        f"ci_min_{hours}h": np.where(n > 0, np.where(known, window, np.inf).min(axis=1), np.nan),
        f"ci_max_{hours}h": np.where(n > 0, np.where(known, window, -np.inf).max(axis=1), np.nan),
        f"ci_std_{hours}h": std,
    }


def _weather(
    vintages: pd.DataFrame | None, observations: pd.DataFrame | None, zone: ZoneConfig,
    columns: list[str], issued_ns: np.ndarray, target_hour: np.ndarray, settings: FrameSettings,
) -> dict[str, np.ndarray]:
    """Weather columns for each (T, T + h): the newest vintage fetched at or before T with a row
    for T + h, else the fallback, else null and `weather_missing`."""
    shape = target_hour.shape
    values = {column: np.full(shape, np.nan) for column in columns}
    lead = np.full(shape, np.nan)
    found = np.zeros(shape, dtype=bool)
    if vintages is not None:
        _require(vintages, VINTAGE_COLUMNS, "vintages")
        vintages = _for_zone(vintages, zone)
        fetched_ns = _utc_ns(vintages["fetched_at"], "vintages", "fetched_at", hourly=False)
        hours = _hours(vintages, "vintages")
        index = _AsKnown(hours, fetched_ns, np.zeros(len(hours), dtype=np.int64))
        rows = index.row(target_hour, index.rank(issued_ns)[:, None])
        found = rows != _NO_ROW
        lead[found] = (target_hour[found] * _NS_PER_HOUR - fetched_ns[rows[found]]) / _NS_PER_HOUR
        for column in columns:
            if column in vintages.columns:
                source = pd.to_numeric(vintages[column], errors="coerce").to_numpy(dtype=float)
                values[column] = _take(source, rows)
    fallback = np.zeros(shape, dtype=bool)
    if settings.weather_fallback == "observations" and observations is not None:
        _require(observations, OBSERVATION_COLUMNS, "observations")
        observations = _for_zone(observations, zone)
        hours = _hours(observations, "observations")
        if len(np.unique(hours)) != len(hours):
            raise FrameError("observations.datetime has duplicate hours; pass one row per hour")
        order = np.argsort(hours)
        sorted_hours = hours[order]
        position = np.minimum(np.searchsorted(sorted_hours, target_hour), max(len(hours) - 1, 0))
        observed = (
            (sorted_hours[position] == target_hour) if len(hours) else np.zeros(shape, dtype=bool)
        )
        fallback = ~found & observed
        rows = np.where(fallback, order[position] if len(hours) else 0, _NO_ROW)
        for column in columns:
            if column in observations.columns:
                source = pd.to_numeric(observations[column], errors="coerce").to_numpy(dtype=float)
                values[column] = np.where(fallback, _take(source, rows), values[column])
    out = {column: values[column].ravel() for column in columns}
    out["weather_lead_h"] = lead.ravel()
    out["weather_is_fallback"] = fallback.ravel()
    out["weather_missing"] = (~found & ~fallback).ravel()
    return out


def _calendar(datetimes: pd.DatetimeIndex, zone: ZoneConfig) -> dict[str, np.ndarray]:
    """Local-time calendar of each target hour, computed once per distinct hour."""
    distinct, inverse = np.unique(datetimes.asi8, return_inverse=True)
    local = pd.DatetimeIndex(distinct.astype("datetime64[ns]"), tz="UTC").tz_convert(zone.timezone)
    calendar = holidays_package.country_holidays(
        zone.country, years=sorted(set(local.year.tolist())) or None
    )
    dates = local.date
    weekday = local.dayofweek.to_numpy()
    parts = {
        "hour_local": local.hour.to_numpy(dtype=np.int64),
        "day_of_week_local": (weekday + 1).astype(np.int64),
        "month_local": local.month.to_numpy(dtype=np.int64),
        "is_holiday": np.fromiter((d in calendar for d in dates), dtype=bool, count=len(dates)),
        "is_weekend": np.isin(weekday, sorted(calendar.weekend)),
    }
    return {name: values[inverse] for name, values in parts.items()}


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The model inputs of a frame, in frame order: all but zone, issued_at, datetime, target."""
    return [column for column in frame.columns if column not in NOT_FEATURES]
