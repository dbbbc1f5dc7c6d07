"""Carbon-aware scheduling: the cleanest windows to run flexible work, from gridcast's forecasts.

A zone's latest forecast (the rows of its newest `issued_at` in
`gold.carbon_intensity_predictions`) is an hourly series of p50 / p10 / p90 intensities. A job of
`duration_h` hours may start on any hour of that grid such that it ends by the deadline; each
candidate is scored by its time-weighted mean p50 (a fractional duration weights its last hour
partially). The lowest mean wins; ties are ordered by start and never cut (see decision 0013).

Everything here is a pure function over pandas frames: the steps read the Delta table, the
server (`gridcast.serve`) passes a provider, and both call the same functions.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from gridcast.config import ConfigError
from gridcast.settings import settings_from_mapping
from gridcast.errors import GridcastError

HOUR = pd.Timedelta(hours=1)
# p10 and p90 of a normal distribution are mean -/+ 1.2816 sigma, so sigma = (p90 - p10) / 2.5631.
P10_P90_SIGMAS = 2 * 1.2815515655446004
# Means closer than this (gCO2eq/kWh) are ties: the same hourly values averaged in another order
# can differ in the last bits, and that must not decide which window is "best".
TIE_TOLERANCE = 1e-9
# Ranking rounds means to this many decimals, so values within TIE_TOLERANCE sort as equal.
TIE_DECIMALS = round(-math.log10(TIE_TOLERANCE))

PREDICTION_COLUMNS = ("zone", "issued_at", "datetime", "prediction", "p10", "p90", "model_version")
WINDOW_COLUMNS = ["start", "end", "mean_intensity", "p10", "p90"]


class WindowError(GridcastError, ValueError):
    """A window request that cannot be answered; `parameter` names the argument at fault."""

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class NoForecastError(WindowError):
    """The zone has no forecast (yet): nothing was scored for it, or not for that version."""


@dataclass(frozen=True)
class RecommendSettings:
    """What `steps/recommend.py` asks for; defaults give one-hour windows over the whole forecast.

    `error_correlation_h` is the correlation length of forecast errors between hours for
    `p_beats_run_now` (0 = independent hours), see `difference_probability`.
    """

    duration_h: float = 1.0
    top: int = 3
    earliest: str | None = None
    deadline: str | None = None
    model_version: str | None = None
    error_correlation_h: float = 0.0

    def __post_init__(self) -> None:
        if not self.duration_h > 0:
            raise ConfigError(f"recommend.duration_h must be > 0 hours, got {self.duration_h}")
        if self.top < 1:
            raise ConfigError(f"recommend.top must be >= 1, got {self.top}")
        if self.error_correlation_h < 0:
            raise ConfigError(
                f"recommend.error_correlation_h must be >= 0 hours, got {self.error_correlation_h}")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> RecommendSettings:
        """Settings from a plain mapping (Hydra's `recommend` group); unknown keys are an error."""
        return settings_from_mapping(cls, mapping, "recommend")


@dataclass(frozen=True)
class Window:
    """One candidate run: [start, end) and its time-weighted mean p50, p10 and p90."""

    start: pd.Timestamp
    end: pd.Timestamp
    mean_intensity: float
    p10: float
    p90: float

    def to_dict(self) -> dict[str, Any]:
        return {"start": iso_z(self.start), "end": iso_z(self.end),
                "mean_intensity": _json_float(self.mean_intensity),
                "p10": _json_float(self.p10), "p90": _json_float(self.p90)}


@dataclass(frozen=True)
class Recommendation:
    """The answer to "when should this job run?" for one zone, forecast and duration."""

    zone: str
    generated_at: pd.Timestamp
    model_version: str
    duration_h: float
    earliest: pd.Timestamp
    deadline: pd.Timestamp
    windows: tuple[Window, ...]
    run_now: Window
    savings_g_per_kwh: float
    savings_pct: float | None
    p_beats_run_now: float | None

    @property
    def best(self) -> Window:
        return self.windows[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "generated_at": iso_z(self.generated_at),
            "model_version": self.model_version,
            "duration_h": self.duration_h,
            "earliest": iso_z(self.earliest),
            "deadline": iso_z(self.deadline),
            "windows": [w.to_dict() for w in self.windows],
            "run_now": self.run_now.to_dict(),
            "savings_g_per_kwh": _json_float(self.savings_g_per_kwh),
            "savings_pct": _json_float(self.savings_pct),
            "p_beats_run_now": _json_float(self.p_beats_run_now),
        }

    def to_json(self) -> str:
        """One JSON object, times as ISO-8601 UTC with a `Z`."""
        return json.dumps(self.to_dict(), allow_nan=False)


def iso_z(value: pd.Timestamp | datetime) -> str:
    """`2025-03-11T06:00:00Z` (seconds kept, sub-seconds only when present)."""
    stamp = pd.Timestamp(value).tz_convert("UTC")
    text = stamp.isoformat()
    return text.replace("+00:00", "Z")


def _json_float(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def parse_iso_time(text: str) -> pd.Timestamp | None:
    """An ISO-8601 time (`Z` or an offset allowed), or None if `text` is not one.

    Stricter than `pd.Timestamp(text)`, which also reads "now" and "today" as the local clock.
    """
    try:
        return pd.Timestamp(datetime.fromisoformat(text.strip()))
    except ValueError:
        return None


def to_utc(value: str | datetime | pd.Timestamp, parameter: str) -> pd.Timestamp:
    """An aware UTC timestamp; a naive value is refused rather than guessed (local or UTC?)."""
    stamp = parse_iso_time(value) if isinstance(value, str) else pd.Timestamp(value)
    if stamp is None or stamp is pd.NaT:
        raise WindowError(f"{parameter}: cannot read {value!r} as an ISO-8601 time",
                          parameter=parameter)
    if stamp.tzinfo is None:
        raise WindowError(f"{parameter}: {value!r} has no time zone; give it in UTC, e.g. "
                          "2025-03-11T06:00:00Z", parameter=parameter)
    return stamp.tz_convert("UTC")


def latest_forecast(predictions: pd.DataFrame, zone: str,
                    model_version: str | None = None) -> pd.DataFrame:
    """The hourly rows of a zone's newest forecast, oldest hour first.

    Args:
        predictions: frame in the `gold.carbon_intensity_predictions` contract.
        zone: the zone id, e.g. "GR".
        model_version: keep only this model version (the champion's); default: the version of
            the rows with the newest `issued_at`.

    Returns:
        Columns `datetime`, `prediction`, `p10`, `p90`, `issued_at`, `model_version`, one row per
        target hour, sorted by `datetime`.
    """
    missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise WindowError(f"predictions lack column(s) {', '.join(missing)}")
    for column in ("issued_at", "datetime"):
        if not isinstance(predictions[column].dtype, pd.DatetimeTZDtype):
            raise WindowError(f"predictions.{column} must be timezone-aware UTC, "
                              f"got {predictions[column].dtype}")
    rows = predictions[predictions["zone"] == zone]
    if model_version is not None:
        rows = rows[rows["model_version"] == model_version]
    if rows.empty:
        version = f" from model version {model_version}" if model_version is not None else ""
        raise NoForecastError(f"no forecast for zone {zone}{version} yet", parameter="zone")
    newest = rows[rows["issued_at"] == rows["issued_at"].max()]
    versions = sorted(newest["model_version"].astype(str).unique())
    if len(versions) > 1:
        raise WindowError(
            f"the newest forecast for {zone} ({iso_z(newest['issued_at'].iloc[0])}) exists for "
            f"model versions {', '.join(versions)}; pass model_version (the champion's)",
            parameter="model_version")
    if newest["datetime"].duplicated().any():
        raise WindowError(f"the newest forecast for {zone} has more than one row for an hour")
    columns = ["datetime", "prediction", "p10", "p90", "issued_at", "model_version"]
    return newest[columns].sort_values("datetime").reset_index(drop=True)


@dataclass(frozen=True)
class _Span:
    earliest: pd.Timestamp
    deadline: pd.Timestamp


def _span(forecast: pd.DataFrame, duration_h: float, earliest: Any, deadline: Any) -> _Span:
    if not duration_h > 0:
        raise WindowError(f"duration must be more than 0 hours, got {duration_h}",
                          parameter="duration_h")
    first = forecast["datetime"].iloc[0]
    end_of_forecast = forecast["datetime"].iloc[-1] + HOUR
    start = first if earliest is None else to_utc(earliest, "earliest")
    stop = end_of_forecast if deadline is None else to_utc(deadline, "deadline")
    if stop > end_of_forecast:
        raise WindowError(f"deadline {iso_z(stop)} is beyond the forecast, which ends at "
                          f"{iso_z(end_of_forecast)}", parameter="deadline")
    if start > stop:
        raise WindowError(f"earliest {iso_z(start)} is after the deadline {iso_z(stop)}",
                          parameter="earliest")
    # Hours before the forecast's first hour cannot be scored, and a job cannot start in the
    # past anyway: an early `earliest` means "as soon as the forecast allows".
    start = max(start, first)
    if stop - start < _length(duration_h):
        raise WindowError(
            f"the window {iso_z(start)} to {iso_z(stop)} is shorter than the {duration_h:g} h "
            "duration", parameter="duration_h")
    return _Span(start, stop)


def _length(duration_h: float) -> pd.Timedelta:
    # To the second: 20 minutes is 0.333... hours, which would otherwise end 1 ns early.
    return pd.Timedelta(hours=duration_h).round("1s")


def _weights(duration_h: float) -> np.ndarray:
    """Hours a window covers: 1 for each whole hour, the fraction for a partial last hour."""
    whole = math.floor(duration_h)
    fraction = duration_h - whole
    weights = [1.0] * whole + ([fraction] if fraction > 1e-12 else [])
    return np.array(weights)


def _window_means(hourly: np.ndarray, duration_h: float) -> np.ndarray:
    """Time-weighted means of every `duration_h`-hour run of consecutive hours, row by row.

    Args:
        hourly: values on a contiguous hourly grid, hours along the last axis, NaN where unknown.
        duration_h: the job's length in hours (fractions weight the last hour partially).

    Returns:
        The means, one per start hour of the grid whose window fits on it (the last axis shrinks
        by the window's hours less one); NaN where a window covers an unknown hour.
    """
    weights = _weights(duration_h)
    if hourly.shape[-1] < len(weights):
        return np.empty((*hourly.shape[:-1], 0))
    spans = np.lib.stride_tricks.sliding_window_view(hourly, len(weights), axis=-1)
    return spans @ weights / duration_h


def candidate_windows(forecast: pd.DataFrame, *, duration_h: float, earliest: Any = None,
                      deadline: Any = None) -> pd.DataFrame:
    """Every run of `duration_h` hours starting on the forecast's hourly grid within the bounds.

    Args:
        forecast: one forecast's hourly rows (`latest_forecast`).
        duration_h: the job's length in hours (> 0; fractions allowed).
        earliest: first allowed start (aware); default the forecast's first hour.
        deadline: the job must end by then (aware); default the end of the forecast's last hour.

    Returns:
        Columns `start`, `end`, `mean_intensity`, `p10`, `p90` (time-weighted means), one row per
        candidate, in start order. A window over an hour the forecast lacks is not a candidate.
    """
    if forecast.empty:
        raise NoForecastError("the forecast has no hours", parameter="zone")
    span = _span(forecast, duration_h, earliest, deadline)
    hours = forecast["datetime"]
    grid = pd.date_range(hours.min(), hours.max(), freq=HOUR)
    on_grid = forecast.set_index("datetime").reindex(grid)  # a missing hour becomes NaN
    means = _window_means(on_grid[["prediction", "p10", "p90"]].to_numpy(dtype=float).T,
                          duration_h)
    starts = grid[:means.shape[1]]
    length = _length(duration_h)
    keep = ((starts >= span.earliest) & (starts + length <= span.deadline)
            & ~np.isnan(means[0]))  # a gap in the forecast: that window cannot be scored
    if not keep.any():
        raise WindowError(
            f"no complete {duration_h:g} h window between {iso_z(span.earliest)} and "
            f"{iso_z(span.deadline)}: the forecast has gaps there", parameter="duration_h")
    return pd.DataFrame({"start": starts[keep], "end": starts[keep] + length,
                         "mean_intensity": means[0, keep], "p10": means[1, keep],
                         "p90": means[2, keep]}, columns=WINDOW_COLUMNS)


def rank_windows(windows: pd.DataFrame) -> pd.DataFrame:
    """Windows best first (lowest mean, then earliest start), with a competition `rank`.

    Windows whose means differ by less than `TIE_TOLERANCE` share a rank (1, 1, 3, ...).
    """
    ordered = windows.assign(_key=windows["mean_intensity"].round(TIE_DECIMALS))
    ordered = ordered.sort_values(["_key", "start"], kind="stable").reset_index(drop=True)
    rank = ordered["_key"].rank(method="min").astype(int)
    return ordered.drop(columns="_key").assign(rank=rank)


def optimal_windows(windows: pd.DataFrame) -> pd.DataFrame:
    """The windows tied at the lowest mean, in start order."""
    best = windows["mean_intensity"].min()
    tied = windows[(windows["mean_intensity"] - best).abs() <= TIE_TOLERANCE]
    return tied.sort_values("start").reset_index(drop=True)


def _normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def difference_probability(forecast: pd.DataFrame, lower_start: pd.Timestamp,
                           higher_start: pd.Timestamp, *, duration_h: float,
                           error_correlation_h: float = 0.0) -> float | None:
    """P(the window at `lower_start` really has a lower mean intensity than the one at
    `higher_start`), from the forecast's intervals.

    Model: each hour's intensity is normal with mean p50 and sigma (p90 - p10) / 2.563. Errors of
    hours t_i, t_j correlate as exp(-|t_i - t_j| / error_correlation_h) (0 = independent hours).
    A window mean is a weighted sum of hours, so the difference of two window means is normal;
    hours both windows share cancel exactly.

    Returns:
        The probability, or None when an hour involved lacks p10 or p90.
    """
    hours = forecast["datetime"]
    position = {stamp: i for i, stamp in enumerate(hours)}
    weights = _weights(duration_h) / duration_h
    contrast = np.zeros(len(forecast))
    for start, sign in ((higher_start, 1.0), (lower_start, -1.0)):
        first = position[start]
        contrast[first:first + len(weights)] += sign * weights
    involved = np.flatnonzero(np.abs(contrast) > 1e-15)
    if involved.size == 0:
        return 0.5
    p50 = forecast["prediction"].to_numpy(dtype=float)[involved]
    sigma = ((forecast["p90"] - forecast["p10"]).to_numpy(dtype=float) / P10_P90_SIGMAS)[involved]
    if np.isnan(sigma).any():
        return None
    sigma = np.abs(sigma)
    c = contrast[involved]
    offsets_h = ((hours.iloc[involved] - hours.iloc[0]) / HOUR).to_numpy(dtype=float)
    lag = np.abs(offsets_h[:, None] - offsets_h[None, :])
    if error_correlation_h > 0:
        correlation = np.exp(-lag / error_correlation_h)
    else:
        correlation = (lag == 0).astype(float)
    mean = float(c @ p50)  # E[higher - lower]: > 0 when the lower window is expected lower
    variance = float(c @ (correlation * np.outer(sigma, sigma)) @ c)
    if variance <= 1e-18:
        return 0.5 if abs(mean) <= TIE_TOLERANCE else float(mean > 0)
    return _normal_cdf(mean / math.sqrt(variance))


def _window(row: Mapping[str, Any]) -> Window:
    return Window(start=row["start"], end=row["end"], mean_intensity=float(row["mean_intensity"]),
                  p10=float(row["p10"]), p90=float(row["p90"]))


def recommend_windows(predictions: pd.DataFrame, *, zone: str, duration_h: float,
                      earliest: Any = None, deadline: Any = None, top: int = 3,
                      model_version: str | None = None,
                      error_correlation_h: float = 0.0) -> Recommendation:
    """The best windows to run a `duration_h`-hour job in `zone`, from its latest forecast.

    Args:
        predictions: frame in the `gold.carbon_intensity_predictions` contract.
        zone: the zone id.
        duration_h: the job's length in hours (> 0; fractions weight the last hour partially).
        earliest: first allowed start (aware; default the forecast's first hour).
        deadline: the job must end by then (aware; default the end of the forecast).
        top: how many windows to report; windows tied with the last one reported are added, so
            a tie is never cut arbitrarily.
        model_version: the version to read (the champion's); default that of the newest rows.
        error_correlation_h: correlation length of hourly errors for `p_beats_run_now`.

    Returns:
        The ranked windows, the run-now window (the earliest allowed start), the savings of the
        best over running now and the probability that the best really beats running now.
    """
    if top < 1:
        raise WindowError(f"top must be at least 1, got {top}", parameter="top")
    forecast = latest_forecast(predictions, zone, model_version)
    windows = candidate_windows(forecast, duration_h=duration_h, earliest=earliest,
                                deadline=deadline)
    span = _span(forecast, duration_h, earliest, deadline)
    ranked = rank_windows(windows)
    cutoff = ranked["mean_intensity"].iloc[min(top, len(ranked)) - 1]
    reported = ranked[(ranked.index < top)
                      | ((ranked["mean_intensity"] - cutoff).abs() <= TIE_TOLERANCE)]
    run_now = _window(windows.iloc[0])
    best = _window(ranked.iloc[0])
    savings = run_now.mean_intensity - best.mean_intensity
    if best.start == run_now.start:
        # Running now is (one of) the best: there is no later window to move to.
        probability: float | None = 0.0
    else:
        probability = difference_probability(forecast, best.start, run_now.start,
                                             duration_h=duration_h,
                                             error_correlation_h=error_correlation_h)
    return Recommendation(
        zone=zone,
        generated_at=forecast["issued_at"].iloc[0],
        model_version=str(forecast["model_version"].iloc[0]),
        duration_h=float(duration_h),
        earliest=span.earliest,
        deadline=span.deadline,
        windows=tuple(_window(row) for row in reported.to_dict("records")),
        run_now=run_now,
        savings_g_per_kwh=savings,
        savings_pct=100.0 * savings / run_now.mean_intensity if run_now.mean_intensity else None,
        p_beats_run_now=probability,
    )


GREEN_WINDOW_COLUMNS = ["zone", "generated_at", "duration_h", "start", "end", "rank",
                        "mean_intensity", "p10", "p90", "savings_g_per_kwh", "model_version"]


def green_window_rows(rec: Recommendation) -> pd.DataFrame:
    """Rows for `gold.green_windows`, keyed (zone, generated_at, duration_h, start).

    Returns:
        One row per reported window with its competition rank (ties share it) and its saving
        over running now; times datetime64[ns, UTC].
    """
    ranked = rank_windows(pd.DataFrame(
        [{"start": w.start, "end": w.end, "mean_intensity": w.mean_intensity, "p10": w.p10,
          "p90": w.p90} for w in rec.windows], columns=WINDOW_COLUMNS))
    rows = ranked.assign(
        zone=rec.zone,
        generated_at=pd.Timestamp(rec.generated_at),
        duration_h=rec.duration_h,
        savings_g_per_kwh=rec.run_now.mean_intensity - ranked["mean_intensity"],
        model_version=rec.model_version,
    )[GREEN_WINDOW_COLUMNS]
    for column in ("generated_at", "start", "end"):
        rows[column] = pd.to_datetime(rows[column], utc=True).astype("datetime64[ns, UTC]")
    return rows.astype({"rank": "int32"}).reset_index(drop=True)


def hindsight_comparison(forecasts: pd.DataFrame, *, duration_h: float = 4.0,
                         deadline_h: int = 24,
                         choosers: Sequence[str] = ("prediction", "baseline_seasonal_naive"),
                         ) -> pd.DataFrame:
    """How much carbon each way of choosing a window really saved, against hindsight.

    Each forecast (zone, issued_at) is one decision: a `duration_h`-hour job may start on any
    of its first `deadline_h` hours (issued_at + 1 h .. issued_at + deadline_h h) and must end
    by the last of them. Each `chooser` column picks the window it ranks best (lowest mean, ties
    to the earliest start, as `recommend` does); hindsight picks the window the actuals rank
    best among the same candidates; `run_now` starts at the first hour. Every choice is scored
    by the actual mean intensity of its window. A forecast is left out unless it has exactly
    those hours with an actual and a value from every chooser, so every choice is judged on the
    same days and "run now" is always the issue's first hour.

    Args:
        forecasts: rows with `zone`, `issued_at`, `datetime`, `actual` and the chooser columns
            (e.g. `gold.backtest_results`: model `prediction`, `baseline_seasonal_naive`), one
            row per (zone, issued_at, datetime).
        duration_h: the job's length in hours.
        deadline_h: hours after the issue by whose end the job must be done (<= the horizon).
        choosers: columns whose forecast picks a window.

    Returns:
        One row per complete forecast: `zone`, `issued_at`, then `run_now`, `hindsight` and one
        column per chooser (actual mean intensities, gCO2eq/kWh), then `hindsight_start` and
        `<chooser>_start` (the chosen windows' starts).

    Raises:
        WindowError: a forecast holds an hour twice (rows of several folds or model configs).
    """
    if deadline_h < duration_h:
        raise WindowError(f"deadline_h ({deadline_h}) is shorter than the {duration_h:g} h job",
                          parameter="deadline_h")
    choosers = list(choosers)
    missing = [c for c in ("zone", "issued_at", "datetime", "actual", *choosers)
               if c not in forecasts.columns]
    if missing:
        raise WindowError(f"forecasts lack column(s) {', '.join(missing)}")
    lead = (forecasts["datetime"] - forecasts["issued_at"]) / HOUR
    in_reach = (lead >= 1) & (lead <= deadline_h)
    candidates = forecasts[in_reach].assign(_lead=lead[in_reach].round().astype(int))
    repeated = candidates.duplicated(["zone", "issued_at", "datetime"])
    if repeated.any():
        first = candidates[repeated].iloc[0]
        raise WindowError(
            f"the forecast of {first['zone']} issued {iso_z(first['issued_at'])} has more than one "
            f"row for {iso_z(first['datetime'])}: keep one fold and model config per issue")
    # One row per issue, one column per (value, lead); an issue lacking anything drops out.
    columns = ["actual", *choosers]
    grid = candidates.set_index(["zone", "issued_at", "_lead"])[columns].unstack("_lead")
    grid = grid.reindex(columns=pd.MultiIndex.from_product([columns, range(1, deadline_h + 1)]))
    grid = grid[grid.notna().all(axis=1)]
    starts = math.floor(deadline_h - duration_h + 1e-9) + 1  # candidate starts: leads 1..starts

    def window_means(column: str) -> np.ndarray:
        return _window_means(grid[column].to_numpy(dtype=float), duration_h)[:, :starts]

    def first_best(means: np.ndarray) -> np.ndarray:
        # Lowest mean; ties (rounded as rank_windows rounds) go to the earliest start.
        return np.argmin(means.round(TIE_DECIMALS), axis=1)

    truth = window_means("actual")
    issues = np.arange(len(grid))
    issued = grid.index.get_level_values("issued_at")
    result = pd.DataFrame({"zone": grid.index.get_level_values("zone"), "issued_at": issued,
                           "run_now": truth[:, 0]})
    chosen = {"hindsight": first_best(truth)}
    chosen.update({column: first_best(window_means(column)) for column in choosers})
    for name, best in chosen.items():
        result[name] = truth[issues, best]
    for name, best in chosen.items():
        result[f"{name}_start"] = issued + pd.to_timedelta(best + 1, unit="h")
    return result.reset_index(drop=True)


def savings_summary(compared: pd.DataFrame,
                    choosers: Sequence[str] = ("prediction", "baseline_seasonal_naive"),
                    near_g_per_kwh: float = 10.0) -> pd.DataFrame:
    """What each way of choosing saved over running now, from `hindsight_comparison` rows.

    Args:
        compared: `hindsight_comparison` output (one row per decision).
        choosers: the chooser columns to summarise; hindsight is always the first row.
        near_g_per_kwh: a choice within this many gCO2eq/kWh of hindsight's actual mean
            counts as "near" hindsight.

    Returns:
        One row per choice (`hindsight`, then each chooser): `choice`, `days`, `saved_g_per_kwh`
        (mean over days of run_now - chosen), `saved_pct` (total saved over total run-now
        intensity, %), `share_of_hindsight` (total saved over hindsight's total saved; NaN when
        hindsight saved nothing), `same_window` and `near_hindsight` (shares of days).
    """
    saved_best = (compared["run_now"] - compared["hindsight"]).sum()
    rows = []
    for choice in ("hindsight", *choosers):
        saved = compared["run_now"] - compared[choice]
        rows.append({
            "choice": choice,
            "days": len(compared),
            "saved_g_per_kwh": saved.mean(),
            "saved_pct": 100.0 * saved.sum() / compared["run_now"].sum(),
            "share_of_hindsight": saved.sum() / saved_best if saved_best > 0 else float("nan"),
            "same_window": (compared[f"{choice}_start"] == compared["hindsight_start"]).mean(),
            "near_hindsight": ((compared[choice] - compared["hindsight"])
                               <= near_g_per_kwh).mean(),
        })
    return pd.DataFrame(rows)
